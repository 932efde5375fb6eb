"""`import token_dropping` stays light: it registers the encoder config, the
task and our experiments, and loads nothing else.

Each check runs in a fresh interpreter, so what other tests imported before
cannot hide a heavy import.
"""

import json
import os
import subprocess
import sys

from helpers import ROOT

# Our modules `import token_dropping` may load: the encoder and its parts,
# its config, the task (with the consistency step) and the experiment configs.
LIGHT = {
    "token_dropping",
    "token_dropping.common",
    "token_dropping.common.checks",
    "token_dropping.common.errors",
    "token_dropping.model",
    "token_dropping.model.encoder",
    "token_dropping.model.encoder_config",
    "token_dropping.model.importance",
    "token_dropping.model.layout",
    "token_dropping.model.schedule",
    "token_dropping.model.selection",
    "token_dropping.train",
    "token_dropping.train.consistency",
    "token_dropping.train.experiment_configs",
    "token_dropping.train.task",
}
# Third-party modules our package alone would pull in. Model Garden's own
# `official.core` already loads tensorflow_datasets, matplotlib, gin and orbit,
# so those cannot be avoided and are not listed.
HEAVY = ("safetensors", "apache_beam", "transformers", "keras_hub",
         "official.nlp.configs.finetuning_experiments")


PROBE = """
import json, sys
import tf_keras
from official.core import exp_factory
NAMES = ("token_drop_bert_tiny", "bert_tiny", "token_drop_bert/pretraining",
         "bert/sentence_prediction", "bert/squad")
def registered():
    found = {}
    for name in NAMES:
        try:
            found[name] = exp_factory.get_exp_config(name) is not None
        except LookupError:
            found[name] = False
    found["keras"] = all(
        tf_keras.utils.get_registered_object(f"TokenDropping>{c}") is not None
        for c in ("TokenDropBertEncoder", "TokenImportance"))
    return found
# Experiment configs built while our modules import (none should be).
calls, real = [], exp_factory.get_exp_config
exp_factory.get_exp_config = lambda *a: calls.append(a) or real(*a)
import token_dropping
import_calls = list(calls)
after_package = [sorted(sys.modules), registered()]
import token_dropping.train.finetuning_experiments
lazy = [token_dropping.export_bert.__module__, token_dropping.flops.__name__]
with_finetuning = registered()
del calls[:]
import token_dropping.bench.benchmark
import_calls += calls
print(json.dumps([after_package, with_finetuning, lazy, import_calls]))
"""


def test_import_registers_ours_and_loads_nothing_else():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True,
                            text=True, cwd=ROOT,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    (modules, registered), with_finetuning, lazy, import_calls = json.loads(
        result.stdout.strip().splitlines()[-1])
    ours = {m for m in modules if m.split(".")[0] == "token_dropping"}
    assert ours == LIGHT, sorted(ours ^ LIGHT)
    assert not [m for m in HEAVY if m in modules]
    # Model Garden's registries and Keras serialization know ours ...
    assert registered == {
        "token_drop_bert_tiny": True, "bert_tiny": True,
        "token_drop_bert/pretraining": True,
        "bert/sentence_prediction": False, "bert/squad": False,
        "keras": True}
    # ... and Model Garden's fine-tuning experiments are one import away.
    assert all(with_finetuning.values()), with_finetuning
    # The public names not imported up front load on first use.
    assert lazy == ["token_dropping.export.bert", "token_dropping.model.flops"]
    # Importing the package and the benchmark (bench.benchmark: tools/
    # benchmark.py's body) builds no experiment config (checked here, in the
    # same fresh interpreter, rather than in a process of its own).
    assert import_calls == []

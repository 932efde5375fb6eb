"""Does token dropping pay? Pretrain BERT and token dropping with several
seeds, each annealed at several budgets, then probe every result at
BERT's largest compute.

    # The committed study (docs/study): bert_mini and token_drop_bert_mini
    # (8 layers of 96), 3 seeds each, annealed at BERT's 400, 700, 1,200
    # and 1,800 steps and around them, on Python's and the pinned packages'
    # documentation, probed on held-out sentences (cloze). The paper's
    # random-selection ablation joins with
    # --models=bert,token_drop,token_drop_random.
    python tools/study.py --output_dir=docs/study --runs_dir=runs/study

    # The whole pipeline at toy size (a few minutes):
    python tools/study.py --output_dir=/tmp/study --runs_dir=/tmp/study_runs \
        --quick

    # Your records and GLUE's CoLA (or SST-2) as the probe:
    python tools/study.py --output_dir=runs/study_wiki --size=base \
        --runs_dir=gs://bucket/study --budgets=10000,20000,40000 \
        --eval_every=2000 --data_dir=gs://bucket/data --glue_dir=glue/CoLA \
        --glue_task=cola --params_override=runtime.num_gpus=1

Rerunning the same command skips what is finished and resumes an interrupted
pretraining run from its checkpoint; a result made with other settings is
never reused (a pretraining run: one line says which setting differs). A
SIGTERM stops the study after the step it came in, exit code 42. Everything
happens in `token_dropping.study.driver.run_study`.
"""

import shlex
import sys
import time

from absl import app
from absl import flags

from token_dropping.train import preemption
from token_dropping.study import driver as study
from token_dropping.common import paths
from token_dropping.common.errors import UserError

_D = study.StudyConfig()
_FULL, _QUICK_VALUES = study.FULL, study.QUICK


def _default(name):
    return (f" Default {_FULL[name]}, with --quick {_QUICK_VALUES[name]}; "
            "given, it wins over --quick's.")

_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Where evaluations.csv, finetuning.csv, the plots and "
    "summary.md are written.")
_RUNS_DIR = flags.DEFINE_string(
    "runs_dir", _D.runs_dir, "Checkpoints, exports and built data; rerunning "
    "with the same directory resumes.")
_SIZE = flags.DEFINE_string("size", _D.size, "The experiments' size "
                            "(bert_<size>, token_drop_bert_<size>).")
_MODELS = flags.DEFINE_list(
    "models", list(_D.models), "Models, one of them BERT (the baseline, "
    f"in any position): {', '.join(study.MODELS)} or registered pretraining "
    "experiment names.")
_SEEDS = flags.DEFINE_integer("seeds", None, "Pretraining seeds per "
                              "model." + _default("seeds"))
_BUDGETS = flags.DEFINE_list(
    "budgets", None, "BERT's budgets in training steps, ascending: one "
    "annealed run each (a decay branch of one stable run per seed); every "
    "other model is annealed at the same training FLOPs, and from "
    "--reach_from to 1 of BERT's largest every 0.05."
    + _default("budgets"))
_REACH_FROM = flags.DEFINE_float(
    "reach_from", None, "Where the other models' extra budgets start, a "
    "share of BERT's largest budget's FLOPs." + _default("reach_from"))
_DECAY_FRACTION = flags.DEFINE_float(
    "decay_fraction", _D.decay_fraction, "The last share of each budget "
    "whose learning rate decays linearly to 0.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", None,
                                   "Steps between the stable runs' "
                                   "evaluations." + _default("eval_every"))
_WARMUP_STEPS = flags.DEFINE_integer("warmup_steps", None,
                                     "Learning-rate warmup steps."
                                     + _default("warmup_steps"))
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", _D.learning_rate, "The peak learning rate (after the "
    "warmup, before each decay), shared by every model.")
_FINETUNE_SEEDS = flags.DEFINE_integer(
    "finetune_seeds", None, "Fine-tuning seeds per pretrained "
    "model (fine-tuned probes)." + _default("finetune_seeds"))
_FINETUNE_EPOCHS = flags.DEFINE_integer("finetune_epochs", None,
                                        "Fine-tuning epochs."
                                        + _default("finetune_epochs"))
_PROBE = flags.DEFINE_enum(
    "probe", _D.probe, list(study.PROBES), "The built probe, from documents "
    "held out of pretraining: cloze (the default: the original word at one "
    "position or one as frequent, read from each model's MLM head, nothing "
    "fine-tuned); fine-tuned: order (a sentence as written, or with two "
    "adjacent words swapped: bag-of-words is at chance), sentence_order (two "
    "adjacent sentences in order or swapped), source (is a sentence from "
    "Python's standard library or a third-party package?) or acceptability "
    "(real against minimally corrupted sentences).")
_GLUE_DIR = flags.DEFINE_string(
    "glue_dir", "", "A GLUE task directory (train.tsv, dev.tsv) as the probe "
    "instead of the built one.")
_GLUE_TASK = flags.DEFINE_string("glue_task", _D.glue_task,
                                 f"Its task: {', '.join(study.GLUE_TASKS)}.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", "", "A dataset directory of tools/prepare_data.py (static "
    "records) instead of the built corpus; needs --glue_dir.")
_QUICK = flags.DEFINE_bool("quick", False, "The whole pipeline at toy size.")
_PARAMS_OVERRIDE = flags.DEFINE_string(
    "params_override", "", "Model Garden overrides for every pretraining "
    "run, e.g. runtime.num_gpus=1.")

_SWEEP = flags.DEFINE_multi_string(
    "sweep", [], "FIELD=VALUE,VALUE,...: every token-dropping model becomes "
    "one model per value (per combination, with several --sweep), e.g. "
    "--sweep=token_keep_k=32,64,96 --sweep=drop_layers=3-7,1-7 (a field of "
    "the token-dropping encoder, or drop_layers=START-END).")
_CARRY_DIR = flags.DEFINE_string(
    "carry_dir", "", "Keep every finished model and seed's results, without "
    "checkpoints, in this small directory (commit or copy it); the same "
    "command on a fresh --runs_dir restores them and trains only what is "
    "missing. Zero-shot probes only.")


def _budgets():
    if _BUDGETS.value is None:
        return None
    try:
        return tuple(int(b) for b in _BUDGETS.value)
    except ValueError:
        sys.exit(f"study.py: error: --budgets={','.join(_BUDGETS.value)} "
                 "must be step counts, e.g. 400,700,1200.")


def main(argv):
    if len(argv) > 1:
        sys.exit(f"study.py: error: unexpected arguments {argv[1:]}")
    home = paths.unexpanded_home(flags.FLAGS)
    if home:
        sys.exit(f"study.py: error: {home}")
    config = study.StudyConfig(
        output_dir=_OUTPUT_DIR.value, runs_dir=_RUNS_DIR.value,
        size=_SIZE.value, models=tuple(_MODELS.value), seeds=_SEEDS.value,
        budgets=_budgets(), reach_from=_REACH_FROM.value,
        decay_fraction=_DECAY_FRACTION.value, eval_every=_EVAL_EVERY.value,
        warmup_steps=_WARMUP_STEPS.value, learning_rate=_LEARNING_RATE.value,
        finetune_seeds=_FINETUNE_SEEDS.value,
        finetune_epochs=_FINETUNE_EPOCHS.value, probe=_PROBE.value,
        glue_dir=_GLUE_DIR.value,
        glue_task=_GLUE_TASK.value, data_dir=_DATA_DIR.value,
        quick=_QUICK.value,
        params_override=_PARAMS_OVERRIDE.value, sweep=tuple(_SWEEP.value),
        carry_dir=_CARRY_DIR.value)
    if _PROBE.present and _GLUE_DIR.value:
        sys.exit("study.py: error: --probe chooses the built probe; with "
                 "--glue_dir the GLUE task is the probe. Give one of them.")
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    try:
        result = study.run_study(config, command=command)
    except UserError as e:
        sys.exit(f"study.py: error: {e}")
    except (preemption.Preempted, study.StudyStopped) as e:
        print(f"study.py: {e}", file=sys.stderr)
        sys.exit(preemption.EXIT_CODE)
    print(result.summary)
    print("Wrote " + ", ".join(result.paths.values()))


if __name__ == "__main__":
    app.run(main)

"""Pretrain (or evaluate) a token-dropping BERT with Model Garden's trainer.

    # The CPU-sized model on the embedded default corpus (what `make demo` runs):
    python tools/train.py --experiment=token_drop_bert_tiny --mode=train_and_eval

    # The paper's BERT-base recipe; point it at records from prepare_data.py:
    python tools/train.py --experiment=token_drop_bert_base --mode=train_and_eval \
        --config_file=experiments/wiki_books_pretrain_sequence_pack.yaml \
        --params_override=task.train_data.input_path=gs://bucket/train-*

    # Cloud TPU:
    python tools/train.py --experiment=token_drop_bert_base --mode=train \
        --tpu=my-tpu --model_dir=gs://bucket/runs/base

    # The plain-BERT baseline with identical hyperparameters:
    python tools/train.py --experiment=bert_tiny --mode=train_and_eval

Flags are Model Garden's (`--experiment --mode --model_dir --config_file
--params_override --tpu --gin_file --gin_params`). `--model_dir` defaults to
runs/<experiment>; rerunning a command resumes from its last checkpoint.
On SIGTERM it saves a checkpoint at the step reached and exits with code 42
(`token_dropping.train.preemption.EXIT_CODE`); rerun the command to continue.
`token_dropping.train.driver` does the work: `params_from_flags`, then `run`.
"""

import sys

from absl import app
from absl import flags
from official.common import flags as tfm_flags

from token_dropping.train import actions
from token_dropping.train import preemption
from token_dropping.train import driver as training
from token_dropping.common import paths
from token_dropping.common.errors import UserError
# Model Garden's fine-tuning experiments (bert/sentence_prediction, bert/squad).
from token_dropping.train import finetuning_experiments  # noqa: F401


def main(argv):
    if len(argv) > 1:
        sys.exit(f"train.py: error: unexpected arguments {argv[1:]}")
    home = paths.unexpanded_home(flags.FLAGS)
    if home:
        sys.exit(f"train.py: error: {home}")
    try:
        params = training.params_from_flags(flags.FLAGS)
        result = training.run(
            params, mode=flags.FLAGS.mode,
            model_dir=(flags.FLAGS.model_dir
                       or training.default_model_dir(flags.FLAGS.experiment)))
    except UserError as e:
        sys.exit(f"train.py: error: {e}")
    except preemption.Preempted as e:
        print(f"train.py: {e}", file=sys.stderr)
        sys.exit(preemption.EXIT_CODE)
    print(actions.summary(result))


if __name__ == "__main__":
    tfm_flags.define_flags()
    app.run(main)

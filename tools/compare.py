"""Quality at equal compute: train BERT and token-dropping BERT side by side.

    # The default (about 10 minutes on 2 CPU cores): bert_tiny and
    # token_drop_bert_tiny, 600 steps each, evaluated every 100 steps, on the
    # embedded default corpus; writes comparison.csv, comparison.png and
    # summary.md.
    python tools/compare.py --output_dir=docs/compare

    # Longer, with random token selection as a third model:
    python tools/compare.py --output_dir=runs/compare_long \
        --train_steps=3000 --eval_every=250 --with_random

    # On your own records (tools/prepare_data.py), keeping the checkpoints:
    python tools/compare.py --output_dir=runs/compare \
        --train_input_path='data/train-*' \
        --validation_input_path='data/validation-*' --runs_dir=runs/compare

    # BERT-base shapes on a GPU (any Model Garden override applies to every
    # model):
    python tools/compare.py --output_dir=runs/compare_base --size=base \
        --train_steps=20000 --eval_every=2000 \
        --params_override=runtime.num_gpus=1

Every model trains through the same task and Model Garden trainer as
`tools/train.py`, on the same data and seed; evaluation runs the full model.
Everything happens in `token_dropping.compare.run_comparison`.
"""

import sys

from absl import app
from absl import flags

from token_dropping import compare
from token_dropping.errors import UserError

_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Where comparison.csv, comparison.png and summary.md "
    "are written.")
_SIZE = flags.DEFINE_string(
    "size", "tiny", "Compare bert_<size> with token_drop_bert_<size>: "
    f"{', '.join(compare.SIZES)}.")
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 600,
                                    "Training steps of every model.")
_EVAL_EVERY = flags.DEFINE_integer(
    "eval_every", 100, "Steps between evaluations; divides --train_steps.")
_WITH_RANDOM = flags.DEFINE_bool(
    "with_random", False, "Also train token dropping with random selection.")
_TRAIN_INPUT_PATH = flags.DEFINE_string(
    "train_input_path", "", "Training records; empty: the embedded corpus.")
_VALIDATION_INPUT_PATH = flags.DEFINE_string(
    "validation_input_path", "", "Validation records; with "
    "--train_input_path.")
_RUNS_DIR = flags.DEFINE_string(
    "runs_dir", "", "Keep each model's checkpoints and TensorBoard summaries "
    "under this directory; empty: a temporary one, deleted at the end.")
_SEED = flags.DEFINE_integer("seed", 1,
                             "Seeds the data order and the initial weights.")
_PARAMS_OVERRIDE = flags.DEFINE_string(
    "params_override", "", "Model Garden overrides applied to every model, "
    "e.g. runtime.num_gpus=1,task.train_data.global_batch_size=64.")


def main(argv):
    if len(argv) > 1:
        sys.exit(f"compare.py: error: unexpected arguments {argv[1:]}")
    try:
        result = compare.run_comparison(
            _OUTPUT_DIR.value, size=_SIZE.value,
            train_steps=_TRAIN_STEPS.value, eval_every=_EVAL_EVERY.value,
            with_random=_WITH_RANDOM.value,
            train_input_path=_TRAIN_INPUT_PATH.value,
            validation_input_path=_VALIDATION_INPUT_PATH.value,
            runs_dir=_RUNS_DIR.value, seed=_SEED.value,
            params_override=_PARAMS_OVERRIDE.value)
    except UserError as e:
        sys.exit(f"compare.py: error: {e}")
    print(result.summary)
    print(f"Wrote {result.csv_path}, {result.png_path}, {result.summary_path}")


if __name__ == "__main__":
    app.run(main)

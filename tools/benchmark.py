"""Training-step cost of BERT vs token-dropping BERT, timed side by side.

    # BERT-base shapes (12 x 768, seq 512, keep 256), batch 2, XLA:
    python tools/benchmark.py --preset=base --batch_size=2 --steps=10 \
        --output=results/base_xla.json
    # The same without XLA:
    python tools/benchmark.py --preset=base --batch_size=2 --steps=10 \
        --xla=false --output=results/base_no_xla.json
    # A quick look, and any explicit sizes on top of a preset:
    python tools/benchmark.py --preset=tiny --steps=5
    python tools/benchmark.py --preset=small --seq_length=256 --token_keep_k=128
    # A variant: the step with ScTD's consistency term every 10th step:
    python tools/benchmark.py --preset=tiny --steps=20 \
        --params_override=task.consistency_interval=10

Builds both models as tools/train.py does (experiments bert_<size> and
token_drop_bert_<size>, identical sizes) and times each task's own training
step (Model Garden's MaskedLMTask.train_step and TokenDropMaskedLMTask's, with
the experiment's optimizer and learning-rate schedule); compiles both, warms
up, then times them interleaved in this one process. Prints a markdown table;
with --output also writes the JSON, a `.md` table and a `.png` bar chart
beside it. Everything is in
`token_dropping.bench.benchmark`, which this file only wires to flags.
"""

import sys

from absl import app
from absl import flags

from token_dropping.bench import benchmark
from token_dropping.bench import report
from token_dropping.common import paths
from token_dropping.common.errors import UserError

_PRESET = flags.DEFINE_string(
    "preset", "base",
    f"Sizes to start from: {', '.join(benchmark.PRESET_EXPERIMENTS)}.")
_STEPS = flags.DEFINE_integer("steps", 10,
                              "Timed steps per model, after warm-up.")
_WARMUP_STEPS = flags.DEFINE_integer(
    "warmup_steps", 2, "Untimed steps per model; the first one compiles.")
_XLA = flags.DEFINE_bool("xla", True, "Compile the steps with XLA.")
_MEMORY = flags.DEFINE_bool(
    "memory", True, "Measure each model's peak memory (on CPU in child "
    "processes, which compile each model once more).")
_KEEP_ALL_CONTROL = flags.DEFINE_bool(
    "keep_all_control", False, "Also time token dropping with token_keep_k = "
    "seq_length: BERT's FLOPs plus the dropping machinery.")
_OUTPUT = flags.DEFINE_string(
    "output", None, "Results JSON path; .md and .png are written beside it.")
_PARAMS_OVERRIDE = flags.DEFINE_string(
    "params_override", None, "A variant of the token-dropping experiment, as "
    "train.py's --params_override, e.g. task.consistency_interval=10.")
_SIZES = {
    name: flags.DEFINE_integer(name, None, f"Override the preset's {name}.")
    for name in benchmark.SIZE_NAMES
}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    home = paths.unexpanded_home(flags.FLAGS)
    if home:
        sys.exit(f"benchmark.py: error: {home}")
    arguments = dict(preset=_PRESET.value, steps=_STEPS.value,
                     warmup_steps=_WARMUP_STEPS.value,
                     params_override=_PARAMS_OVERRIDE.value,
                     **{name: flag.value for name, flag in _SIZES.items()})
    try:
        benchmark.check_arguments(**arguments, output=_OUTPUT.value)
    except UserError as error:  # bad flags: one line, no traceback
        sys.exit(f"benchmark.py: error: {error}")
    results = benchmark.run(
        **arguments, xla=_XLA.value, measure_memory=_MEMORY.value,
        keep_all_control=_KEEP_ALL_CONTROL.value, output=_OUTPUT.value)
    print(report.benchmark_table(results))


if __name__ == "__main__":
    app.run(main)

"""The body of `tools/benchmark.py`: BERT vs token-dropping BERT, per step.

One process builds plain BERT (`bert_<size>`: Model Garden's `BertEncoderV2`
under `BertPretrainerV2`'s MLM head) and token-dropping BERT
(`token_drop_bert_<size>`, optionally a variant via `params_override`) as
tools/train.py builds them, with identical sizes, and times each task's own
training step (`benchmark_steps`): `MaskedLMTask.train_step` and
`TokenDropMaskedLMTask.train_step`, with the optimizer and learning-rate
schedule Model Garden's trainer makes from the experiment:

1. forward pass with the experiment's dropout, as in pretraining;
2. `MaskedLMTask.build_losses` and the training metrics;
3. backward pass and one AdamW update with the scheduled learning rate;
4. for token dropping, the importance update and the routing metrics (and
   whatever the variant adds: a consistency step, a keep_k schedule).

Each step is one `tf.function`, compiled with XLA unless `xla=False`.
Steps start at iteration 0, so a schedule is timed at its first stage. After
warm-up (compilation) the two steps run interleaved, A B A B, and medians are
reported, so drift in the machine's load hits both alike. Each step's process
CPU time (all threads) is recorded too: on cores shared with other jobs it is
a steadier measure of the work than wall-clock time. A third compiled
function does only what token dropping adds (selection, gather, scatter, their
gradients, and the importance update) on the same shapes; it is timed in the
same rotation to give its share of the token-dropping step.

Memory: on GPU/TPU the allocator's peak (`tf.config.experimental
.get_memory_info`) while running each model's steps. On CPU TensorFlow keeps no
such statistics, so each model is run again in a fresh child process and the
peak resident set size of its timed steps is read from Linux (`VmHWM` after
resetting it through `/proc/self/clear_refs` once compiled); it covers the
TensorFlow runtime, weights, optimizer slots, activations and gradients, and
leaves out the compiler's own peak (not memory the compiler keeps).

Batches are synthetic (random ids, [CLS] ... [SEP], no padding, every masked
slot used): step cost does not depend on the values, all shapes are static.
"""

import functools
import os
import statistics
import sys
import time

import numpy as np
import tensorflow as tf
from official.core import exp_factory

from token_dropping.bench import memory as benchmark_memory
from token_dropping.model import flops
from token_dropping.model.encoder_config import encoder_kwargs
from token_dropping.bench import report
from token_dropping.common import reporting
from token_dropping.bench.steps import FIRST_WORD_ID
from token_dropping.bench.steps import experiment_config
from token_dropping.bench.steps import make_added_ops_step
from token_dropping.bench.steps import make_train_step
from token_dropping.bench.steps import synthetic_batch
from token_dropping.model.layout import DropLayout
from token_dropping.common.checks import as_int
from token_dropping.common.checks import as_positive_int
from token_dropping.common.paths import check_output_path
from token_dropping.common.errors import UserError

# Each preset starts from a registered experiment size (its sizes, optimizer,
# schedule and dropout) with a batch size for a 2-core CPU (overridable);
# small: tiny's experiment and sequences with wider layers.
PRESET_EXPERIMENTS = {"tiny": "tiny", "small": "tiny", "base": "base",
                      "large": "large"}
_BATCH_SIZES = {"tiny": 8, "small": 8, "base": 2, "large": 1}
_WIDER = dict(num_layers=4, hidden_size=512, num_attention_heads=8,
              inner_dim=2048)
SIZE_NAMES = ("num_layers", "hidden_size", "num_attention_heads", "inner_dim",
              "seq_length", "token_keep_k", "vocab_size",
              "max_predictions_per_seq", "batch_size", "drop_start_layer",
              "drop_end_layer")


@functools.lru_cache(maxsize=None)
def _experiment_sizes(size):
    """The sizes of the registered `token_drop_bert_<size>` experiment
    (built on first use, not at import)."""
    params = exp_factory.get_exp_config(f"token_drop_bert_{size}")
    data = params.task.train_data
    kwargs = encoder_kwargs(params.task.model.encoder.any)
    return dict(
        {name: kwargs[name] for name in (
            "num_layers", "hidden_size", "num_attention_heads", "inner_dim")},
        seq_length=data.seq_length, token_keep_k=kwargs["token_keep_k"],
        vocab_size=kwargs["vocab_size"],
        max_predictions_per_seq=data.max_predictions_per_seq)


def preset_sizes(preset):
    """The sizes of `preset` (one of `PRESET_EXPERIMENTS`), batch included."""
    sizes = dict(_experiment_sizes(PRESET_EXPERIMENTS[preset]),
                 batch_size=_BATCH_SIZES[preset])
    return dict(sizes, **_WIDER) if preset == "small" else sizes


def resolve_sizes(preset="base", **overrides):
    """The preset's sizes with `overrides` (None values ignored), checked.

    Returns:
        dict of every name in `SIZE_NAMES`, drop layers resolved.

    Raises:
        UserError: naming the unknown preset or the invalid value.
    """
    if preset not in PRESET_EXPERIMENTS:
        raise UserError(f"preset={preset!r} is not one of "
                        f"{', '.join(repr(p) for p in PRESET_EXPERIMENTS)}.")
    unknown = sorted(set(overrides) - set(SIZE_NAMES))
    if unknown:
        raise UserError(f"Unknown size(s) {unknown}; known: {SIZE_NAMES}.")
    sizes = dict(preset_sizes(preset), drop_start_layer=None,
                 drop_end_layer=None)
    sizes.update({k: v for k, v in overrides.items() if v is not None})
    for name in SIZE_NAMES[:-2]:
        sizes[name] = as_positive_int(name, sizes[name])
    if sizes["hidden_size"] % sizes["num_attention_heads"]:
        raise UserError(
            f"hidden_size={sizes['hidden_size']} is not a multiple of "
            f"num_attention_heads={sizes['num_attention_heads']}.")
    # [CLS], the masked slots and [SEP] must fit, with distinct positions.
    if sizes["max_predictions_per_seq"] > sizes["seq_length"] - 2:
        raise UserError(
            f"max_predictions_per_seq={sizes['max_predictions_per_seq']} "
            f"must be at most seq_length - 2 = {sizes['seq_length'] - 2}.")
    if sizes["vocab_size"] <= FIRST_WORD_ID:
        raise UserError(f"vocab_size={sizes['vocab_size']} must exceed "
                        f"{FIRST_WORD_ID} (BERT's special and unused ids).")
    layout = DropLayout.resolve(
        num_layers=sizes["num_layers"], token_keep_k=sizes["token_keep_k"],
        drop_start_layer=sizes["drop_start_layer"],
        drop_end_layer=sizes["drop_end_layer"],
        seq_length=sizes["seq_length"])
    sizes["drop_start_layer"] = layout.drop_start_layer
    sizes["drop_end_layer"] = layout.drop_end_layer
    return sizes


def check_arguments(preset="base", steps=10, warmup_steps=2, output=None,
                    params_override=None, **overrides):
    """Checks `run`'s arguments; returns the resolved sizes.

    Raises:
        UserError: one line naming the invalid value.
    """
    if output:
        if not output.endswith(".json"):  # .md and .png are written beside
            raise UserError(
                f"--output={output!r} must be a .json file path; the table "
                "and the chart are written beside it (.md, .png).")
        check_output_path(output, "--output", directory=False)
    as_positive_int("steps", steps)
    as_int("warmup_steps", warmup_steps, 1, why="the first call compiles")
    sizes = resolve_sizes(preset, **overrides)
    if params_override:
        try:
            experiment_config("token_drop", PRESET_EXPERIMENTS[preset], sizes,
                              params_override).validate()
        except UserError:  # already names the flag
            raise
        except (KeyError, ValueError, TypeError) as error:
            message = str(error).strip().splitlines()[0] if str(error) else (
                type(error).__name__)
            raise UserError(f"params_override={params_override!r}: "
                            f"{message}") from None
    return sizes


def _timed(fn, inputs):
    """Wall-clock and process CPU seconds (all threads) of one call."""
    start, start_cpu = time.perf_counter(), time.process_time()
    result = fn(inputs)
    np.asarray(result)  # wait for the device
    return time.perf_counter() - start, time.process_time() - start_cpu


def time_interleaved(fns, inputs, steps, warmup_steps):
    """Warms each of `fns` up, then runs them in rotation `steps` times.

    Returns:
        (compile_and_warmup_s, per-function lists of wall-clock step seconds,
        per-function lists of process CPU seconds)
    """
    warmup = []
    for fn in fns:
        start = time.perf_counter()
        for _ in range(max(1, warmup_steps)):
            np.asarray(fn(inputs))
        warmup.append(time.perf_counter() - start)
    times = [[] for _ in fns]
    cpu_times = [[] for _ in fns]
    for _ in range(steps):
        for fn, wall, cpu in zip(fns, times, cpu_times):
            wall_s, cpu_s = _timed(fn, inputs)
            wall.append(wall_s)
            cpu.append(cpu_s)
    return warmup, times, cpu_times


def _median(values):
    return float(statistics.median(values))


def run(preset="base", steps=10, warmup_steps=2, xla=True,
        measure_memory=True, keep_all_control=False, output=None,
        params_override=None, **overrides):
    """Times BERT and token-dropping BERT side by side; see the module doc.

    Args:
        preset: "tiny", "small", "base" or "large".
        steps: timed steps per model, after warm-up.
        warmup_steps: untimed steps per model (the first compiles).
        xla: compile the steps with XLA.
        measure_memory: also measure each model's peak memory (on CPU, in
            child processes; takes about one more warm-up per model).
        keep_all_control: also time the token-dropping model with
            `token_keep_k = seq_length`: it does BERT's FLOPs plus all the
            token-dropping machinery, so its ratio to BERT is the machinery's
            cost inside the compiled step.
        output: path of the JSON results, or None; a markdown table (`.md`)
            and a bar chart (`.png`) are written beside it.
        params_override: a variant of the token-dropping experiment, as
            tools/train.py's `--params_override` (e.g.
            "task.consistency_interval=10"); its step is the one timed.
        **overrides: sizes replacing the preset's (`SIZE_NAMES`).

    Returns:
        dict of results (the JSON's content).
    """
    sizes = check_arguments(preset, steps, warmup_steps, output,
                            params_override, **overrides)
    experiment = PRESET_EXPERIMENTS[preset]
    inputs = synthetic_batch(sizes)
    baseline = make_train_step("baseline", experiment, sizes, inputs, xla)
    token_drop = make_train_step("token_drop", experiment, sizes, inputs, xla,
                                 params_override)
    added = make_added_ops_step(token_drop.model.encoder_network, inputs,
                                sizes, xla)
    names = ["baseline", "token_drop", "added_ops"]
    fns = [baseline, token_drop, added]
    if keep_all_control:
        keep_all = dict(sizes, token_keep_k=sizes["seq_length"])
        names.append("keep_all")
        fns.append(make_train_step("token_drop", experiment, keep_all, inputs,
                                   xla, params_override))
    warmup, times, cpu_times = time_interleaved(fns, inputs, steps,
                                                warmup_steps)
    base_s, drop_s, added_s = times[:3]

    batch, seq = sizes["batch_size"], sizes["seq_length"]
    layer_sizes = {k: sizes[k] for k in ("seq_length", "hidden_size",
                                         "num_layers", "inner_dim")}
    drop_layers = {k: sizes[k] for k in ("token_keep_k", "drop_start_layer",
                                         "drop_end_layer")}
    head = {k: sizes[k] for k in ("vocab_size", "max_predictions_per_seq")}
    baseline_step, token_drop_step = _median(base_s), _median(drop_s)
    results = dict(
        preset=preset,
        batch_size=batch,
        seq_length=seq,
        token_keep_k=sizes["token_keep_k"],
        baseline_step_s=baseline_step,
        token_drop_step_s=token_drop_step,
        step_time_ratio=token_drop_step / baseline_step,
        flop_ratio=flops.flop_ratio(**layer_sizes, **drop_layers, **head),
        device=reporting.describe_device(),
        # The median of the per-rotation ratios: robust to load that drifts
        # over the run, since both steps of a rotation see the same load.
        step_time_ratio_paired=_median(
            [d / b for d, b in zip(drop_s, base_s)]),
        # Process CPU seconds (all threads): counts only while this process
        # runs, so it is far less sensitive to other jobs on shared cores.
        cpu_time_ratio=_median(cpu_times[1]) / _median(cpu_times[0]),
        flop_ratio_layers_only=flops.flop_ratio(**layer_sizes, **drop_layers),
        added_ops_step_s=_median(added_s),
        added_ops_share=_median(added_s) / token_drop_step,
        baseline_examples_per_s=batch / baseline_step,
        token_drop_examples_per_s=batch / token_drop_step,
        baseline_tokens_per_s=batch * seq / baseline_step,
        token_drop_tokens_per_s=batch * seq / token_drop_step,
        baseline_train_tflops_per_s=3 * batch * flops.pretraining_flops(
            **layer_sizes, **head) / baseline_step / 1e12,
        token_drop_train_tflops_per_s=3 * batch * flops.pretraining_flops(
            **layer_sizes, **head, **drop_layers) / token_drop_step / 1e12,
        xla=bool(xla),
        steps=steps,
        warmup_steps=warmup_steps,
        warmup_s=dict(zip(names, warmup)),
        step_times_s=dict(zip(names, times)),
        cpu_times_s=dict(zip(names, cpu_times)),
        added_ops_cpu_share=_median(cpu_times[2]) / _median(cpu_times[1]),
        sizes=sizes,
        experiment=experiment,
        params_override=params_override or "",
        tensorflow=tf.__version__,
        command=" ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
    )
    if keep_all_control:
        results.update(
            keep_all_step_s=_median(times[3]),
            keep_all_ratio_paired=_median(
                [c / b for c, b in zip(times[3], base_s)]),
            keep_all_cpu_time_ratio=(_median(cpu_times[3])
                                     / _median(cpu_times[0])))
    if measure_memory:
        results.update(benchmark_memory.measure_memory(
            experiment, sizes, xla, baseline, token_drop, inputs,
            params_override=params_override))
    if output:
        report.write_benchmark(results, output)
    return results

"""The body of `tools/benchmark.py`: BERT vs token-dropping BERT, per step.

One process builds plain BERT (Model Garden's `BertEncoderV2` under
`BertPretrainerV2`'s MLM head) and `TokenDropBertEncoder` under the same head,
with identical sizes, and times the same full training step for both:

1. forward pass with dropout, as in pretraining;
2. MLM loss, the weighted mean over the masked predictions;
3. backward pass and one AdamW update (weight decay off LayerNorm and biases);
4. for token dropping only, the importance update (`record_mlm_loss`).

Each step is one `tf.function`, compiled with XLA unless `xla=False`. After
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

import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf
import tf_keras
from official.nlp.modeling import models
from official.nlp.modeling.networks import bert_encoder

from token_dropping import flops
from token_dropping.encoder import TokenDropBertEncoder
from token_dropping.layout import DropLayout
from token_dropping.paths import check_output_path
from token_dropping.layout import as_positive_int

# Sizes per preset. max_predictions_per_seq is BERT's masking budget
# (about 15% of seq_length: 76 of 512, 20 of 128); batch_size is the
# default for a 2-core CPU and can be overridden.
_TINY = dict(num_layers=2, hidden_size=128, num_attention_heads=2,
             inner_dim=512, seq_length=128, token_keep_k=64,
             vocab_size=30522, max_predictions_per_seq=20, batch_size=8)
_BASE = dict(num_layers=12, hidden_size=768, num_attention_heads=12,
             inner_dim=3072, seq_length=512, token_keep_k=256,
             vocab_size=30522, max_predictions_per_seq=76, batch_size=2)
# small and large: tiny's and base's sequences and masking, larger layers.
PRESETS = {
    "tiny": _TINY,
    "small": dict(_TINY, num_layers=4, hidden_size=512, num_attention_heads=8,
                  inner_dim=2048),
    "base": _BASE,
    "large": dict(_BASE, num_layers=24, hidden_size=1024,
                  num_attention_heads=16, inner_dim=4096, batch_size=1),
}
SIZE_NAMES = tuple(PRESETS["base"]) + ("drop_start_layer", "drop_end_layer")

# BERT's special ids (as in the uncased vocab) for the synthetic batches.
_CLS, _SEP, _MASK = 101, 102, 103
_FIRST_WORD_ID = 1000  # ids below are [unused] and special tokens


def resolve_sizes(preset="base", **overrides):
    """The preset's sizes with `overrides` (None values ignored), checked.

    Returns:
        dict of every name in `SIZE_NAMES`, drop layers resolved.

    Raises:
        ValueError: naming the unknown preset or the invalid value.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r} is not one of "
                         f"{', '.join(repr(p) for p in PRESETS)}.")
    unknown = sorted(set(overrides) - set(SIZE_NAMES))
    if unknown:
        raise ValueError(f"Unknown size(s) {unknown}; known: {SIZE_NAMES}.")
    sizes = dict(PRESETS[preset], drop_start_layer=None, drop_end_layer=None)
    sizes.update({k: v for k, v in overrides.items() if v is not None})
    for name in PRESETS["base"]:
        sizes[name] = as_positive_int(name, sizes[name])
    if sizes["hidden_size"] % sizes["num_attention_heads"]:
        raise ValueError(
            f"hidden_size={sizes['hidden_size']} is not a multiple of "
            f"num_attention_heads={sizes['num_attention_heads']}.")
    # [CLS], the masked slots and [SEP] must fit, with distinct positions.
    if sizes["max_predictions_per_seq"] > sizes["seq_length"] - 2:
        raise ValueError(
            f"max_predictions_per_seq={sizes['max_predictions_per_seq']} "
            f"must be at most seq_length - 2 = {sizes['seq_length'] - 2}.")
    if sizes["vocab_size"] <= _FIRST_WORD_ID:
        raise ValueError(f"vocab_size={sizes['vocab_size']} must exceed "
                         f"{_FIRST_WORD_ID} (BERT's special and unused ids).")
    layout = DropLayout.resolve(
        num_layers=sizes["num_layers"], token_keep_k=sizes["token_keep_k"],
        drop_start_layer=sizes["drop_start_layer"],
        drop_end_layer=sizes["drop_end_layer"],
        seq_length=sizes["seq_length"])
    sizes["drop_start_layer"] = layout.drop_start_layer
    sizes["drop_end_layer"] = layout.drop_end_layer
    return sizes


def check_arguments(preset="base", steps=10, warmup_steps=2, output=None,
                    **overrides):
    """Checks `run`'s arguments; returns the resolved sizes.

    Raises:
        ValueError: one line naming the invalid value.
    """
    if output:
        check_output_path(output, "--output", directory=False)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be a positive integer.")
    if (isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int)
            or warmup_steps < 1):
        raise ValueError(f"warmup_steps={warmup_steps!r} must be at least 1 "
                         "(the first call compiles).")
    return resolve_sizes(preset, **overrides)


def synthetic_batch(sizes, seed=0):
    """A pretraining batch: [CLS] words [SEP], masked slots set to [MASK]."""
    rng = np.random.RandomState(seed)
    batch, seq = sizes["batch_size"], sizes["seq_length"]
    predictions = sizes["max_predictions_per_seq"]
    word_ids = rng.randint(_FIRST_WORD_ID, sizes["vocab_size"],
                           size=(batch, seq))
    word_ids[:, 0], word_ids[:, -1] = _CLS, _SEP
    positions = np.sort(np.stack([
        rng.choice(np.arange(1, seq - 1), predictions, replace=False)
        for _ in range(batch)]), axis=1)  # [batch, predictions]
    masked_ids = np.take_along_axis(word_ids, positions, axis=1)
    np.put_along_axis(word_ids, positions, _MASK, axis=1)
    type_ids = np.zeros_like(word_ids)
    type_ids[:, seq // 2:] = 1
    return dict(
        input_word_ids=tf.constant(word_ids, tf.int32),
        input_mask=tf.ones((batch, seq), tf.int32),
        input_type_ids=tf.constant(type_ids, tf.int32),
        masked_lm_positions=tf.constant(positions, tf.int32),
        masked_lm_ids=tf.constant(masked_ids, tf.int32),
        masked_lm_weights=tf.ones((batch, predictions), tf.float32))


def _encoder_kwargs(sizes):
    return dict(
        vocab_size=sizes["vocab_size"], hidden_size=sizes["hidden_size"],
        num_layers=sizes["num_layers"],
        num_attention_heads=sizes["num_attention_heads"],
        inner_dim=sizes["inner_dim"],
        max_sequence_length=sizes["seq_length"], type_vocab_size=2)


def build_encoder(model, sizes):
    """`model` "baseline" (BertEncoderV2) or "token_drop", same sizes."""
    if model == "baseline":
        return bert_encoder.BertEncoderV2(**_encoder_kwargs(sizes))
    if model == "token_drop":
        encoder = TokenDropBertEncoder(
            **_encoder_kwargs(sizes), token_keep_k=sizes["token_keep_k"],
            drop_start_layer=sizes["drop_start_layer"],
            drop_end_layer=sizes["drop_end_layer"])
        # A learned-looking table, so selection has real work to do.
        rng = np.random.RandomState(1)
        encoder.importance.assign(rng.uniform(
            0.0, 10.0, size=sizes["vocab_size"]).astype(np.float32))
        return encoder
    raise ValueError(f"model={model!r} is not 'baseline' or 'token_drop'.")


def make_train_step(encoder, inputs, xla=True):
    """Builds `BertPretrainerV2` on `encoder` and returns its compiled step.

    The step runs forward, MLM loss, backward, AdamW and (for token dropping)
    the importance update, and returns the loss.
    """
    pretrainer = models.BertPretrainerV2(encoder_network=encoder)
    pretrainer(inputs, training=True)  # build
    optimizer = tf_keras.optimizers.AdamW(
        learning_rate=1e-4, weight_decay=0.01, jit_compile=xla)
    optimizer.exclude_from_weight_decay(
        var_names=["LayerNorm", "layer_norm", "bias"])
    variables = pretrainer.trainable_variables
    optimizer.build(variables)
    record = getattr(encoder, "record_mlm_loss", None)

    @tf.function(jit_compile=xla)
    def step(inputs):
        with tf.GradientTape() as tape:
            outputs = pretrainer(inputs, training=True)
            losses = tf_keras.losses.sparse_categorical_crossentropy(
                inputs["masked_lm_ids"], outputs["mlm_logits"],
                from_logits=True)  # [batch, predictions]
            weights = inputs["masked_lm_weights"]
            loss = tf.reduce_sum(losses * weights) / tf.reduce_sum(weights)
        grads = tape.gradient(loss, variables)
        # The pooler is not in the MLM loss; both models skip it alike.
        optimizer.apply_gradients(
            [(g, v) for g, v in zip(grads, variables) if g is not None])
        if record is not None:
            record(inputs["masked_lm_ids"], losses, weights)
        return loss

    return step


def make_added_ops_step(encoder, inputs, sizes, xla=True):
    """A compiled function of only what token dropping adds to a step.

    On the step's shapes: importance lookup and selection, the gather of the
    kept rows and their mask, the restoring scatter, the gradients of gather
    and scatter, and the importance update. The dropped layers in between are
    left out; their cost is the layers', already in the FLOP count.
    """
    shape = (sizes["batch_size"], sizes["seq_length"], sizes["hidden_size"])
    hidden = tf.random.stateless_normal(shape, seed=(1, 2))  # [batch, seq, hidden]
    upstream = tf.random.stateless_normal(shape, seed=(3, 4))
    losses = tf.random.stateless_uniform(
        inputs["masked_lm_ids"].shape, seed=(5, 6), maxval=10.0)

    @tf.function(jit_compile=xla)
    def added_ops(inputs, hidden, upstream, losses):
        with tf.GradientTape() as tape:
            tape.watch(hidden)
            kept = encoder.kept_positions(inputs)  # [batch, keep_k]
            x_kept = tf.gather(hidden, kept, batch_dims=1)  # [batch, keep_k, hidden]
            mask_kept = tf.gather(inputs["input_mask"], kept,
                                  batch_dims=1)  # [batch, keep_k]
            rows = tf.broadcast_to(tf.range(tf.shape(kept)[0])[:, None],
                                   tf.shape(kept))  # [batch, keep_k]
            index = tf.stack([rows, kept], axis=-1)  # [batch, keep_k, 2]
            # Stand-in for the dropped layers: any function of the kept rows.
            restored = tf.tensor_scatter_nd_update(
                hidden, index, x_kept * 0.5)  # [batch, seq, hidden]
        grad = tape.gradient(restored, hidden, output_gradients=upstream)
        encoder.record_mlm_loss(inputs["masked_lm_ids"], losses,
                                inputs["masked_lm_weights"])
        return tf.reduce_sum(grad[:, 0, 0]) + tf.cast(
            tf.reduce_sum(mask_kept), tf.float32)

    return lambda inputs: added_ops(inputs, hidden, upstream, losses)


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


def describe_device():
    """A short name of the device the steps run on."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU: {model}, {os.cpu_count()} cores, no GPU"


def _device_memory_supported():
    return bool(tf.config.list_logical_devices("GPU")
                or tf.config.list_logical_devices("TPU"))


def _device_peak_mb(step, inputs, steps):
    device = "GPU:0" if tf.config.list_logical_devices("GPU") else "TPU:0"
    tf.config.experimental.reset_memory_stats(device)
    for _ in range(steps):
        np.asarray(step(inputs))
    return tf.config.experimental.get_memory_info(device)["peak"] / 2**20


def _read_status_mb(field):
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB -> MiB
    raise OSError(f"{field} not in /proc/self/status")


def memory_child(model, sizes, xla, steps):
    """In a fresh process: peak RSS of one model's compiled training steps.

    Returns a dict with `rss_before_build_mb`, `peak_rss_mb` (high-water
    mark over `steps` compiled steps, after compilation; Linux only).
    """
    rss_before = _read_status_mb("VmRSS")
    inputs = synthetic_batch(sizes)
    step = make_train_step(build_encoder(model, sizes), inputs, xla=xla)
    np.asarray(step(inputs))  # compile
    with open("/proc/self/clear_refs", "w", encoding="utf-8") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current RSS
    for _ in range(steps):
        np.asarray(step(inputs))
    return dict(rss_before_build_mb=rss_before,
                peak_rss_mb=_read_status_mb("VmHWM"))


def _memory_in_child_process(model, sizes, xla, steps):
    code = ("import json, sys; from token_dropping import benchmark; "
            "print('RESULT ' + json.dumps(benchmark.memory_child("
            "**json.loads(sys.argv[1]))))")
    args = json.dumps(dict(model=model, sizes=sizes, xla=xla, steps=steps))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-c", code, args], env=env,
                          capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"Memory measurement of {model} failed:\n"
                       f"{done.stderr[-2000:]}")


def _median(values):
    return float(statistics.median(values))


def run(preset="base", steps=10, warmup_steps=2, xla=True,
        measure_memory=True, keep_all_control=False, output=None,
        **overrides):
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
        **overrides: sizes replacing the preset's (`SIZE_NAMES`).

    Returns:
        dict of results (the JSON's content).
    """
    sizes = check_arguments(preset, steps, warmup_steps, output, **overrides)
    inputs = synthetic_batch(sizes)
    baseline = make_train_step(build_encoder("baseline", sizes), inputs, xla)
    token_drop_encoder = build_encoder("token_drop", sizes)
    token_drop = make_train_step(token_drop_encoder, inputs, xla)
    added = make_added_ops_step(token_drop_encoder, inputs, sizes, xla)
    names = ["baseline", "token_drop", "added_ops"]
    fns = [baseline, token_drop, added]
    if keep_all_control:
        keep_all = dict(sizes, token_keep_k=sizes["seq_length"])
        names.append("keep_all")
        fns.append(make_train_step(build_encoder("token_drop", keep_all),
                                   inputs, xla))
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
        device=describe_device(),
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
        results.update(_measure_memory(sizes, xla, baseline, token_drop,
                                       inputs))
    if output:
        write_outputs(results, output)
    return results


def _measure_memory(sizes, xla, baseline, token_drop, inputs, steps=2):
    if _device_memory_supported():
        return dict(
            memory_method="device allocator peak over the timed steps "
                          "(tf.config.experimental.get_memory_info)",
            baseline_peak_memory_mb=_device_peak_mb(baseline, inputs, steps),
            token_drop_peak_memory_mb=_device_peak_mb(token_drop, inputs,
                                                      steps))
    if not os.path.exists("/proc/self/clear_refs"):
        return dict(memory_method="not measured (needs Linux /proc or a "
                                  "GPU/TPU allocator)")
    measured = {m: _memory_in_child_process(m, sizes, xla, steps)
                for m in ("baseline", "token_drop")}
    return dict(
        memory_method="peak RSS of a fresh process running only that model's "
                      "compiled steps (Linux VmHWM, reset after compiling); "
                      "includes weights, AdamW slots, activations, gradients "
                      "and the TensorFlow runtime",
        baseline_peak_memory_mb=measured["baseline"]["peak_rss_mb"],
        token_drop_peak_memory_mb=measured["token_drop"]["peak_rss_mb"],
        runtime_rss_before_build_mb=measured["baseline"][
            "rss_before_build_mb"])


def format_table(results):
    """A markdown table of the results."""
    def row(name, base, drop, ratio=""):
        return f"| {name} | {base} | {drop} | {ratio} |"

    r = results
    lines = [
        f"{r['device']}; preset {r['preset']}, batch {r['batch_size']}, "
        f"seq {r['seq_length']}, keep {r['token_keep_k']}, "
        f"XLA {'on' if r['xla'] else 'off'}, median of {r['steps']} "
        "interleaved steps.",
        "",
        "| | BERT | token dropping | ratio |",
        "|---|---:|---:|---:|",
        row("step time (s), median", f"{r['baseline_step_s']:.3f}",
            f"{r['token_drop_step_s']:.3f}", f"{r['step_time_ratio']:.3f}"),
        row("step time ratio, median of A/B pairs", "", "",
            f"{r['step_time_ratio_paired']:.3f}"),
        row("process CPU time per step (s), median",
            f"{_median(r['cpu_times_s']['baseline']):.3f}",
            f"{_median(r['cpu_times_s']['token_drop']):.3f}",
            f"{r['cpu_time_ratio']:.3f}"),
        row("analytic FLOPs (with MLM head)", "1", f"{r['flop_ratio']:.3f}",
            f"{r['flop_ratio']:.3f}"),
        row("analytic FLOPs (layers only)", "1",
            f"{r['flop_ratio_layers_only']:.3f}",
            f"{r['flop_ratio_layers_only']:.3f}"),
        row("examples/s", f"{r['baseline_examples_per_s']:.2f}",
            f"{r['token_drop_examples_per_s']:.2f}"),
        row("tokens/s", f"{r['baseline_tokens_per_s']:.0f}",
            f"{r['token_drop_tokens_per_s']:.0f}"),
        row("achieved training TFLOP/s", f"{r['baseline_train_tflops_per_s']:.3f}",
            f"{r['token_drop_train_tflops_per_s']:.3f}"),
    ]
    if "baseline_peak_memory_mb" in r:
        lines.append(row(
            "peak memory (MiB)", f"{r['baseline_peak_memory_mb']:.0f}",
            f"{r['token_drop_peak_memory_mb']:.0f}",
            f"{r['token_drop_peak_memory_mb'] / r['baseline_peak_memory_mb']:.3f}"))
    if "keep_all_step_s" in r:
        lines.append(row(
            f"control: token dropping keeping all {r['seq_length']} (s)",
            f"{r['baseline_step_s']:.3f}", f"{r['keep_all_step_s']:.3f}",
            f"{r['keep_all_ratio_paired']:.3f}"))
        lines.append(row(
            "control: CPU time per step (s), median",
            f"{_median(r['cpu_times_s']['baseline']):.3f}",
            f"{_median(r['cpu_times_s']['keep_all']):.3f}",
            f"{r['keep_all_cpu_time_ratio']:.3f}"))
    lines += [
        "",
        f"Added by token dropping (selection, gather, scatter, their "
        f"gradients, importance update), timed alone: "
        f"{1e3 * r['added_ops_step_s']:.2f} ms, "
        f"{100 * r['added_ops_share']:.2f}% of the token-dropping step "
        f"({100 * r['added_ops_cpu_share']:.2f}% in CPU time).",
    ]
    if "memory_method" in r:
        lines += ["", f"Memory: {r['memory_method']}."]
    return "\n".join(lines) + "\n"


def plot(results, path):
    """A PNG bar chart: step time of each model, and the FLOP expectation."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel

    r = results
    figure, axes = pyplot.subplots(figsize=(6, 3.6))
    names = ["BERT", "token dropping", "token dropping\n(FLOP model)"]
    values = [r["baseline_step_s"], r["token_drop_step_s"],
              r["baseline_step_s"] * r["flop_ratio"]]
    bars = axes.bar(names, values, color=["#888888", "#1f77b4", "#aec7e8"])
    for bar, value in zip(bars, values):
        axes.annotate(f"{value:.3f} s", (bar.get_x() + bar.get_width() / 2,
                                         value), ha="center", va="bottom")
    axes.set_ylabel("median training step (s)")
    axes.set_title(
        f"{r['preset']}: batch {r['batch_size']}, seq {r['seq_length']}, "
        f"keep {r['token_keep_k']}, XLA {'on' if r['xla'] else 'off'}\n"
        f"measured ratio {r['step_time_ratio']:.3f}, "
        f"FLOP ratio {r['flop_ratio']:.3f}", fontsize=10)
    axes.set_ylim(0, max(values) * 1.18)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def write_outputs(results, output):
    """Writes `output` (JSON) and, beside it, `.md` and `.png` versions."""
    stem = os.path.splitext(output)[0]
    directory = os.path.dirname(output)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    with open(stem + ".md", "w", encoding="utf-8") as f:
        f.write(format_table(results))
    plot(results, stem + ".png")

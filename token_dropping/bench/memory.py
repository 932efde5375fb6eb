"""Peak memory of each benchmarked model's training steps.

On GPU/TPU: the allocator's peak (`tf.config.experimental.get_memory_info`)
while running the steps. On CPU TensorFlow keeps no such statistics, so each
model is run again in a fresh child process and the peak resident set size
of its timed steps is read from Linux (`VmHWM` after resetting it through
`/proc/self/clear_refs` once compiled).
"""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from token_dropping.bench.steps import make_train_step
from token_dropping.bench.steps import synthetic_batch


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


def memory_child(model, experiment, sizes, xla, steps, params_override=None):
    """In a fresh process: peak RSS of one model's compiled training steps.

    Args: as `benchmark_steps.make_train_step`'s, and `steps` to run.

    Returns a dict with `rss_before_build_mb`, `peak_rss_mb` (high-water
    mark over `steps` compiled steps, after compilation; Linux only).
    """
    rss_before = _read_status_mb("VmRSS")
    inputs = synthetic_batch(sizes)
    step = make_train_step(model, experiment, sizes, inputs, xla=xla,
                           params_override=params_override)
    np.asarray(step(inputs))  # compile
    with open("/proc/self/clear_refs", "w", encoding="utf-8") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current RSS
    for _ in range(steps):
        np.asarray(step(inputs))
    return dict(rss_before_build_mb=rss_before,
                peak_rss_mb=_read_status_mb("VmHWM"))


def _memory_in_child_process(model, experiment, sizes, xla, steps,
                             params_override):
    code = ("import json, sys; from token_dropping.bench import memory; "
            "print('RESULT ' + json.dumps(memory.memory_child("
            "**json.loads(sys.argv[1]))))")
    args = json.dumps(dict(model=model, experiment=experiment, sizes=sizes,
                           xla=xla, steps=steps,
                           params_override=params_override))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-c", code, args], env=env,
                          capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"Memory measurement of {model} failed:\n"
                       f"{done.stderr[-2000:]}")


def measure_memory(experiment, sizes, xla, baseline, token_drop, inputs,
                   steps=2, params_override=None):
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
    measured = {m: _memory_in_child_process(
        m, experiment, sizes, xla, steps,
        params_override if m == "token_drop" else None)
        for m in ("baseline", "token_drop")}
    return dict(
        memory_method="peak RSS of a fresh process running only that model's "
                      "compiled steps (Linux VmHWM, reset after compiling); "
                      "includes weights, AdamW slots, activations, gradients, "
                      "metrics "
                      "and the TensorFlow runtime",
        baseline_peak_memory_mb=measured["baseline"]["peak_rss_mb"],
        token_drop_peak_memory_mb=measured["token_drop"]["peak_rss_mb"],
        runtime_rss_before_build_mb=measured["baseline"][
            "rss_before_build_mb"])

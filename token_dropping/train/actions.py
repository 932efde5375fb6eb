"""What a training run shows a person: a progress line, evaluations, a summary.

Orbit actions (callables on each loop's outputs) that Model Garden's
`train_lib.run_experiment` calls, and the closing lines of `tools/train.py`.
The token-dropping TensorBoard summaries are `summaries.TokenDropSummaries`.
"""

import math
import time

import tensorflow as tf
from absl import logging


def scalars(output):
    """The scalar entries of an orbit train/eval output, as floats."""
    return {k: float(v) for k, v in (output or {}).items() if tf.size(v) == 1}


class ProgressLog:
    """Orbit train action: one readable line per loop of training."""

    def __init__(self, global_step, total_steps, global_batch_size,
                 start_step=0):
        self.global_step = global_step
        self.total_steps = total_steps
        self.global_batch_size = global_batch_size
        # The first loop's rate includes start-up (tracing, compilation).
        self._last = (start_step, time.time())
        self.logs = {}

    def __call__(self, output):
        step = int(self.global_step.numpy())
        now = time.time()
        self.logs = scalars(output)
        last_step, last_time = self._last
        self._last = (step, now)
        rate = (step - last_step) / max(now - last_time, 1e-9)
        eta = (self.total_steps - step) / rate if rate > 0 else float("inf")
        line = (f"step {step}/{self.total_steps} | {rate:.2f} steps/s | "
                f"{rate * self.global_batch_size:.0f} examples/s | "
                f"ETA {_duration(eta)}")
        for key, label, fmt in (
                ("lm_example_loss", "MLM loss", "{:.3f}"),
                ("masked_lm_accuracy", "MLM accuracy", "{:.3f}"),
                ("dropped_token_fraction", "dropped", "{:.1%}")):
            if key in self.logs:
                line += f" | {label} {fmt.format(self.logs[key])}"
        logging.info(line)


class KeepLogs:
    """Orbit eval action: remembers every evaluation's results by step."""

    def __init__(self, global_step):
        self.global_step = global_step
        self.history = []  # [(step, {metric: value})]

    def __call__(self, output):
        self.history.append((int(self.global_step.numpy()), scalars(output)))


def _duration(seconds):
    if seconds == float("inf"):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def summary(result):
    """The closing lines a person reads after a run."""
    lines = [f"Run directory: {result.model_dir}"]
    if result.eval_logs and "lm_example_loss" not in result.eval_logs:
        lines.append("Validation: " + ", ".join(  # fine-tuning metrics
            f"{key} {value:.4f}" for key, value in
            sorted(result.eval_logs.items())))
    elif result.eval_history:
        step, ev = result.eval_history[-1]
        line = ("Validation at step "
                f"{step} (full sequences, no dropping): MLM loss "
                f"{ev.get('lm_example_loss', float('nan')):.3f}, MLM accuracy "
                f"{ev.get('masked_lm_accuracy', float('nan')):.3f}")
        if len(result.eval_history) > 1:
            first_step, first = result.eval_history[0]
            line += (f" (MLM loss {first.get('lm_example_loss', float('nan')):.3f}"
                     f" at step {first_step})")
        lines.append(line)
        if result.vocab_size > 1:
            lines.append(f"(An untrained model's MLM loss is about ln("
                         f"{result.vocab_size}) = "
                         f"{math.log(result.vocab_size):.2f}.)")
    if "dropped_token_fraction" in result.train_logs:
        lines.append(
            "Training: share of tokens dropped in the middle layers "
            f"{result.train_logs['dropped_token_fraction']:.1%}, last MLM "
            f"loss {result.train_logs.get('lm_example_loss', float('nan')):.3f}")
    lines.append(f"TensorBoard: tensorboard --logdir {result.model_dir}")
    return "\n".join(lines)

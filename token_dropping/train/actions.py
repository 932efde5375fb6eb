"""What a training run shows a person: a progress line, evaluations, a summary.

Orbit actions (callables on each loop's outputs) that Model Garden's
`train_lib.run_experiment` calls, and the closing lines of `tools/train.py`.
The token-dropping TensorBoard summaries are `summaries.TokenDropSummaries`.
"""

import math
import time

import tensorflow as tf
from absl import logging

from token_dropping.common import progress


def scalars(output):
    """The scalar entries of an orbit train/eval output, as floats."""
    return {k: float(v) for k, v in (output or {}).items() if tf.size(v) == 1}


class ProgressLog:
    """Orbit train action: one readable line per loop of training.

    The rate is the last loop's (the first loop's includes start-up:
    tracing, compilation), and the ETA what is left at that rate.

    Example:
    >>> progress = ProgressLog(trainer.global_step, 800, 32)
    >>> progress({"lm_example_loss": 6.484})  # after a loop of steps
    step 200/800 | 2.15 steps/s | 69 examples/s | ETA 5 min | MLM loss 6.484
    """

    def __init__(self, global_step, total_steps, global_batch_size,
                 start_step=0, clock=time.monotonic):
        self.global_step = global_step
        self.total_steps = total_steps
        self.global_batch_size = global_batch_size
        self.meter = progress.Meter(total_steps, done=start_step, clock=clock)
        self.logs = {}

    def __call__(self, output):
        step = int(self.global_step.numpy())
        self.meter.update(step)
        self.logs = scalars(output)
        rate = self.meter.lap_rate()
        eta = self.meter.seconds_left(rate)
        line = (f"step {step}/{self.total_steps} | {rate:.2f} steps/s | "
                f"{rate * self.global_batch_size:.0f} examples/s | ETA "
                f"{'?' if eta is None else progress.format_duration(eta)}")
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

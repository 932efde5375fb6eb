"""Warmup-stable-decay learning rates, composed from Model Garden's own.

A warmup-stable-decay (WSD) schedule warms up linearly to a peak, holds it,
and decays linearly to 0 over the last part of a run (Hägele et al. 2024,
"Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations",
arXiv 2405.18392: a 20% decay matches a cosine schedule tuned to the length).
Because the stable part does not depend on the run's length, one stable run
serves every budget: a run annealed at budget `B` is the stable run's
checkpoint at `decay_start(B)`, trained on to `B` with the decay branch's
schedule. A study gets an annealed model at each of several budgets for the
price of one run and a decay per budget.

No new schedule class: Model Garden's `optimizer_config` composes it.

- Warmup: `warmup.polynomial` with `power=1` (`lr_schedule.PolynomialWarmUp`):
  `peak * max(step, 1) / warmup_steps` before `warmup_steps`.
- The stable run (`stable`): `learning_rate.constant`, the peak, forever.
- A decay branch (`branch(total_steps)`): `learning_rate.power_linear`
  (`lr_schedule.PowerAndLinearDecay`) with `power=0`, whose `step**0` is 1:
  `peak * min(1, (total - step) / (total * fraction))`, floored at 0, with
  `fraction = decay_steps / total`. So the peak until `decay_start = total -
  decay_steps`, then a straight line to exactly 0 at `total`.

Before `decay_start` both give the same rates, so a branch from the stable
checkpoint at `decay_start` equals a run trained straight through with the
branch's schedule. At step `total` the rate is 0; the last update (the
optimizer applies `schedule(step)` to the update from `step` to `step + 1`)
uses `peak / decay_steps`, at most 1% of the peak once `decay_steps >= 100`.

Model Garden's `polynomial` with an `offset` does not do this (before its
offset the step is negative and the rate rises above the peak), nor do
`stepwise` (no decay within a step) or `step_cosine_with_offset` (its last
interval has no length).

Example:
>>> schedule = WarmupStableDecay(learning_rate=1e-3, warmup_steps=100)
>>> schedule.decay_start(1000)
800
>>> params.override({"trainer": {"optimizer_config": schedule.branch(1000)}})
"""

import dataclasses
import math

from token_dropping.common.errors import UserError

DECAY_FRACTION = 0.2  # of each budget; Hägele et al. 2024 use 10-20%.


@dataclasses.dataclass(frozen=True)
class WarmupStableDecay:
    """One warmup-stable-decay schedule and its decay branches.

    Attributes:
        learning_rate: float. The peak (stable) rate.
        warmup_steps: int. Linear warmup from 0 to the peak.
        decay_fraction: float in (0, 1]. Each budget's last share of steps
            that decays to 0.
        align: int >= 1. Decay starts are rounded down to a multiple of it
            (the stable run's loop length, so a branch starts at a loop's
            end); the decay is then a little longer than `decay_fraction`.
    """
    learning_rate: float
    warmup_steps: int
    decay_fraction: float = DECAY_FRACTION
    align: int = 1

    def __post_init__(self):
        if not (isinstance(self.learning_rate, (int, float))
                and self.learning_rate > 0
                and math.isfinite(self.learning_rate)):
            raise UserError(f"learning_rate={self.learning_rate!r} must be a "
                            "positive number.")
        if (isinstance(self.warmup_steps, bool)
                or not isinstance(self.warmup_steps, int)
                or self.warmup_steps < 0):
            raise UserError(f"warmup_steps={self.warmup_steps!r} must be an "
                            "integer >= 0.")
        if not 0 < self.decay_fraction <= 1:
            raise UserError(f"decay_fraction={self.decay_fraction!r} must be "
                            "in (0, 1], e.g. 0.2 (the last 20% of a budget).")
        if (isinstance(self.align, bool) or not isinstance(self.align, int)
                or self.align < 1):
            raise UserError(f"align={self.align!r} must be an integer >= 1.")

    def decay_steps(self, total_steps):
        """Steps of the linear decay that ends at `total_steps`."""
        return total_steps - self.decay_start(total_steps)

    def decay_start(self, total_steps):
        """The stable run's step a branch to `total_steps` starts from.

        Raises:
            UserError: the decay would start inside the warmup.
        """
        if (isinstance(total_steps, bool) or not isinstance(total_steps, int)
                or total_steps < 1):
            raise UserError(f"total_steps={total_steps!r} must be a positive "
                            "integer.")
        decay = max(1, round(self.decay_fraction * total_steps))
        start = (total_steps - decay) // self.align * self.align
        if start < self.warmup_steps:
            raise UserError(
                f"total_steps={total_steps}: its decay would start at step "
                f"{start}, inside the warmup of {self.warmup_steps} steps; "
                f"give a budget of at least "
                f"{math.ceil(self.warmup_steps / (1 - self.decay_fraction))}"
                " steps or a smaller decay_fraction.")
        return start

    def rate(self, step, total_steps=None):
        """The learning rate the optimizer uses at `step`: the stable run's
        (`total_steps` None) or the branch's annealed at `total_steps`
        (Model Garden's schedules above, in plain arithmetic)."""
        if step < self.warmup_steps:
            return self.learning_rate * max(step, 1) / self.warmup_steps
        if total_steps is None:
            return self.learning_rate
        decay = self.decay_steps(total_steps)
        return self.learning_rate * max(0.0, min(
            1.0, (total_steps - step) / decay))

    def _warmup(self):
        return {"type": "polynomial", "polynomial": {
            "warmup_steps": self.warmup_steps, "power": 1.0}}

    def stable(self):
        """The stable run's `trainer.optimizer_config` override (dict)."""
        return {"learning_rate": {"type": "constant", "constant": {
                    "learning_rate": self.learning_rate}},
                "warmup": self._warmup()}

    def branch(self, total_steps):
        """The `trainer.optimizer_config` override (dict) of the run
        annealed at `total_steps`: the stable rates until
        `decay_start(total_steps)`, then linear to 0 at `total_steps`."""
        decay = self.decay_steps(total_steps)
        return {"learning_rate": {"type": "power_linear", "power_linear": {
                    "initial_learning_rate": self.learning_rate,
                    "total_decay_steps": total_steps,
                    "power": 0.0,
                    "linear_decay_fraction": decay / total_steps,
                    "offset": 0}},
                "warmup": self._warmup()}

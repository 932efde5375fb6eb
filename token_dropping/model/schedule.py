"""KeepKSchedule: how many tokens the dropped layers keep, over training.

A schedule is a short list of stages `(start_fraction, token_keep_k)`: from
`start_fraction` of training (0.0 is the first step, 1.0 the end) until the
next stage starts, the dropped layers keep `token_keep_k` tokens. A stage
whose `token_keep_k` equals the training sequence length drops nothing (the
encoder then runs plain BERT's layers, at BERT's cost). This covers

- no dropping for the first X% / last Y% of training (ScTD's code tried it):
  `((0.0, 512), (0.1, 256), (0.9, 512))`;
- a ramp of the kept length (random-LTD, Yao et al. 2022, arXiv 2211.11586:
  BERT-large from 128 to 512 kept tokens): `KeepKSchedule.ramp(...)`.

Shapes stay static: the encoder compiles one branch per distinct
`token_keep_k` (`values`) and picks one per step with `tf.switch_case`, so
there are at most `MAX_STAGES` branches and the train function is traced once.
The stage is a function of the optimizer's step, which checkpoints hold, and
of the schedule, which `params.yaml` holds: a resumed run continues at the
right stage.

Pure Python (no TensorFlow): the encoder, the task, the FLOP model and the
config checks share it.

Example:
>>> schedule = KeepKSchedule.resolve([(0.0, 128), (0.1, 64), (0.9, 128)],
...                                  seq_length=128)
>>> schedule.keep_k_at(step=50, total_steps=1000), schedule.values
(128, (64, 128))
>>> [(keep_k, round(share, 3)) for keep_k, share in schedule.weights()]
[(128, 0.1), (64, 0.8), (128, 0.1)]
"""

import dataclasses
import math
import numbers
from typing import Tuple

from token_dropping.common.errors import UserError
from token_dropping.common.checks import as_int
from token_dropping.common.checks import as_positive_int

# Each distinct keep_k is one compiled branch of the training step.
MAX_STAGES = 32

_FORM = ("a list of (start_fraction, token_keep_k) stages, the first starting "
         "at 0.0, e.g. [[0.0, 128], [0.1, 64], [0.9, 128]]")


def _pairs(stages):
    """`stages` as (start, keep_k) pairs; MG stage configs welcome."""
    pairs = []
    for stage in stages:
        if hasattr(stage, "start_fraction"):  # a KeepKStage config
            stage = (stage.start_fraction, stage.token_keep_k)
        try:
            start, keep_k = stage
        except (TypeError, ValueError):
            raise UserError(f"keep_k_schedule stage {stage!r} is not a "
                            f"(start_fraction, token_keep_k) pair; the "
                            f"schedule is {_FORM}.") from None
        pairs.append((start, keep_k))
    return pairs


@dataclasses.dataclass(frozen=True)
class KeepKSchedule:
    """A validated keep_k schedule (see the module docstring).

    `stages` is empty for "no schedule": `token_keep_k` all along.
    """
    stages: Tuple[Tuple[float, int], ...] = ()

    @classmethod
    def resolve(cls, stages, seq_length=None, seq_length_name="seq_length"):
        """Checks every rule and returns the schedule.

        Args:
            stages: iterable of `(start_fraction, token_keep_k)` pairs (or
                `KeepKStage` configs); empty for no schedule.
            seq_length: int or None. If given, every `token_keep_k` fits it.
            seq_length_name: how to name `seq_length` in a message.

        Raises:
            UserError: one line naming the offending value.
        """
        if isinstance(stages, (str, bytes)):
            raise UserError(f"keep_k_schedule={stages!r} must be {_FORM}.")
        try:
            pairs = _pairs(stages or ())
        except TypeError:
            raise UserError(
                f"keep_k_schedule={stages!r} must be {_FORM}.") from None
        if len(pairs) > MAX_STAGES:
            raise UserError(
                f"keep_k_schedule has {len(pairs)} stages; at most "
                f"{MAX_STAGES} (each distinct token_keep_k compiles once).")
        resolved = []
        for start, keep_k in pairs:
            if (isinstance(start, bool)
                    or not isinstance(start, numbers.Real)
                    or not 0.0 <= start < 1.0):
                raise UserError(
                    f"keep_k_schedule start_fraction={start!r} must be a "
                    "number in [0, 1) (a fraction of training).")
            keep_k = as_positive_int("keep_k_schedule token_keep_k", keep_k)
            if seq_length is not None and keep_k > seq_length:
                raise UserError(
                    f"keep_k_schedule token_keep_k={keep_k} exceeds "
                    f"{seq_length_name}={seq_length}; a stage keeps at most "
                    "the whole sequence (which drops nothing).")
            resolved.append((float(start), keep_k))
        if resolved and resolved[0][0] != 0.0:
            raise UserError(
                f"keep_k_schedule starts at {resolved[0][0]}; its first stage "
                "must start at 0.0 (the first step of training).")
        starts = [start for start, _ in resolved]
        if any(b <= a for a, b in zip(starts, starts[1:])):
            raise UserError(
                f"keep_k_schedule start fractions {starts} must increase "
                "strictly, one stage after another.")
        return cls(tuple(resolved))

    @classmethod
    def ramp(cls, *, seq_length, start_keep_k, end_keep_k, num_stages,
             no_drop_first=0.0, no_drop_last=0.0):
        """A schedule that ramps keep_k in `num_stages` equal stages.

        Training is split into: the first `no_drop_first` fraction with no
        dropping (keep_k = `seq_length`), `num_stages` stages of equal length
        going from `start_keep_k` to `end_keep_k` in equal steps (rounded),
        and the last `no_drop_last` fraction with no dropping.

        Example: random-LTD's BERT-large recipe ramps 128 -> 512:
        `ramp(seq_length=512, start_keep_k=128, end_keep_k=512,
        num_stages=25)`.
        """
        seq_length = as_positive_int("seq_length", seq_length)
        num_stages = as_positive_int("num_stages", num_stages)
        for name, value in (("no_drop_first", no_drop_first),
                            ("no_drop_last", no_drop_last)):
            if not 0.0 <= value < 1.0:
                raise UserError(f"{name}={value!r} must be a fraction of "
                                "training in [0, 1).")
        if no_drop_first + no_drop_last >= 1.0:
            raise UserError(
                f"no_drop_first={no_drop_first} and no_drop_last="
                f"{no_drop_last} leave no training to drop tokens in.")
        stages = [(0.0, seq_length)] if no_drop_first else []
        span = 1.0 - no_drop_first - no_drop_last
        for i in range(num_stages):
            share = i / (num_stages - 1) if num_stages > 1 else 0.0
            keep_k = round(start_keep_k + (end_keep_k - start_keep_k) * share)
            stages.append((round(no_drop_first + span * i / num_stages, 6),
                           keep_k))
        if no_drop_last:
            stages.append((1.0 - no_drop_last, seq_length))
        # Equal neighbours are one stage (fewer branches, same schedule).
        merged = [s for i, s in enumerate(stages)
                  if i == 0 or s[1] != stages[i - 1][1]]
        return cls.resolve(merged, seq_length=seq_length)

    def __bool__(self):
        return bool(self.stages)

    @property
    def starts(self):
        """Start fractions, ascending."""
        return tuple(start for start, _ in self.stages)

    @property
    def keep_ks(self):
        """Each stage's keep_k, in stage order."""
        return tuple(keep_k for _, keep_k in self.stages)

    @property
    def values(self):
        """The distinct keep_k values, ascending: one compiled branch each."""
        return tuple(sorted(set(self.keep_ks)))

    def start_steps(self, total_steps):
        """The 0-based step each stage starts at, for `total_steps` steps:
        the first step at or past its fraction of training."""
        total_steps = as_positive_int("total_steps", total_steps)
        # Rounded first, so 0.1 * 1000 is step 100, not 101.
        return tuple(math.ceil(round(start * total_steps, 6))
                     for start in self.starts)

    def stage_at(self, step, total_steps):
        """Index of the stage that 0-based `step` of `total_steps` is in."""
        return max(i for i, start in enumerate(self.start_steps(total_steps))
                   if step >= start)

    def keep_k_at(self, step, total_steps):
        """The keep_k used at 0-based `step` of `total_steps`."""
        return self.keep_ks[self.stage_at(step, total_steps)]

    def steps_per_stage(self, steps, total_steps):
        """`((keep_k, number of steps), ...)` per stage over the first
        `steps` 0-based steps of `total_steps` (the last stage runs on past
        the end, as the encoder's does)."""
        steps = as_int("steps", steps, 0)
        starts = self.start_steps(total_steps) + (math.inf,)
        return tuple((keep_k, max(0, min(steps, end) - min(steps, start)))
                     for keep_k, start, end in zip(self.keep_ks, starts,
                                                   starts[1:]))

    def weights(self):
        """`((keep_k, fraction of training), ...)` per stage."""
        ends = self.starts[1:] + (1.0,)
        return tuple((keep_k, end - start)
                     for (start, keep_k), end in zip(self.stages, ends))

    def as_list(self):
        """Plain Python lists, for a layer's `get_config`."""
        return [[start, keep_k] for start, keep_k in self.stages]

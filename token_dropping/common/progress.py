"""Progress of long work: how much of how much, how fast, how long left.

The one place of the arithmetic behind every progress line of the package
(a build's bytes read, its records written, training steps, a study's FLOPs)
and of the way they write a duration. Each caller keeps its own line's
wording; `Meter` only counts, on a clock tests can fake.

Example:
>>> meter = Meter(total=2_000, every_seconds=10.0)
>>> for chunk in chunks:
...     if meter.add(len(chunk)):  # True at most every 10 s
...         print(f"{meter.done} of {meter.total}, {meter.rate:.0f}/s, "
...               f"about {format_duration(meter.seconds_left())} left")
"""

import time
from typing import Callable


def rate(work: float, seconds: float) -> float:
    """Work per second; 0 until some time has passed."""
    return work / seconds if seconds > 0 else 0.0


def seconds_left(done: float, total: float | None,
                 per_second: float) -> float | None:
    """What remains of `total` at `per_second`; None while that is not known
    (no total, or no rate yet)."""
    if total is None or per_second <= 0:
        return None
    return max(total - done, 0) / per_second


def fraction(done: float, total: float | None) -> float | None:
    """The share of `total` done (1 for a total of 0); None without one."""
    if total is None:
        return None
    return done / total if total else 1.0


def format_duration(seconds: float) -> str:
    """`4.2 s`, `42 s`, `3 min`, `1 h 05 min`: as precise as worth saying."""
    if seconds < 10:
        return f"{max(seconds, 0):.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class Meter:
    """Work done of a total, its rate and the time left, on one clock.

    Every figure is as of the last reading of the clock (`update`, `add`,
    `skip`), so one line's figures agree with each other.

    Args:
        total: the whole work (bytes, steps, FLOPs), or None if not known.
        done: work already done when the meter starts (the step a resumed
            run starts from): it counts toward `fraction` and the time left,
            not toward the rate.
        every_seconds: the least time between two readings `update` and
            `add` call due (0: every reading is).
        clock: the seconds clock (tests pass a fake one).
    """

    def __init__(self, total: float | None = None, done: float = 0,
                 every_seconds: float = 0.0,
                 clock: Callable[[], float] = time.monotonic):
        self.total = total
        self.done = done
        self.every_seconds = every_seconds
        self.clock = clock
        self.start = self.now = self._last_due = clock()
        self._not_timed = done  # work done outside this meter's time
        self._lap = (done, self.start)

    def update(self, done: float | None = None) -> bool:
        """Reads the clock and sets the work done so far (None: unchanged);
        True if `every_seconds` have passed since the last due reading."""
        if done is not None:
            self.done = done
        now = self.now = self.clock()
        if now - self._last_due < self.every_seconds:
            return False
        self._last_due = now
        return True

    def add(self, amount: float = 1) -> bool:
        """Counts `amount` more work done; `update`'s answer."""
        return self.update(self.done + amount)

    def skip(self, amount: float) -> None:
        """Counts work found already done (a finished run that a rerun
        skips): it moves `fraction` and the time left, not the rate."""
        self.done += amount
        self._not_timed += amount
        self.now = self.clock()

    @property
    def elapsed(self) -> float:
        """Seconds from the start to the last reading."""
        return self.now - self.start

    @property
    def rate(self) -> float:
        """Work per second since the start (skipped work left out)."""
        return rate(self.done - self._not_timed, self.elapsed)

    @property
    def fraction(self) -> float | None:
        """The share of `total` done (1 for a total of 0); None without one."""
        return fraction(self.done, self.total)

    def lap_rate(self) -> float:
        """Work per second since the previous lap (or the start); starts the
        next lap. A recent rate, for work whose speed settles after a slow
        start (the first steps of training compile)."""
        done, then = self._lap
        self._lap = (self.done, self.now)
        return rate(self.done - done, self.now - then)

    def seconds_left(self, per_second: float | None = None) -> float | None:
        """What remains at `per_second` (default: `rate`); None while not
        known."""
        return seconds_left(self.done, self.total,
                            self.rate if per_second is None else per_second)

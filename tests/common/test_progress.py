"""common.progress: the arithmetic of every progress line, on a fake clock.

Every expected figure is worked out by hand in the comment beside it.
"""

import pytest

from token_dropping.common import progress


@pytest.mark.parametrize("seconds, expected", [
    (-3.0, "0.0 s"), (0.04, "0.0 s"), (4.25, "4.2 s"), (9.96, "10.0 s"),
    (10.4, "10 s"), (59.4, "59 s"), (89, "1 min"), (91, "2 min"),
    (3599, "1 h 00 min"), (3630, "1 h 00 min"),
    (7 * 3600 + 5 * 60 + 20, "7 h 05 min"),
    (279, "5 min"),  # 4 min 39 s
])
def test_durations_are_as_precise_as_worth_saying(seconds, expected):
    assert progress.format_duration(seconds) == expected


def test_rate_and_time_left_of_plain_numbers():
    assert progress.rate(30, 10) == 3.0
    assert progress.rate(30, 0) == 0.0  # no time yet: no rate
    # 100 of 400 done at 3/s: 300 left, 100 s.
    assert progress.seconds_left(100, 400, 3.0) == 100.0
    assert progress.seconds_left(500, 400, 3.0) == 0.0  # overshoot: nothing
    assert progress.seconds_left(100, 400, 0.0) is None
    assert progress.seconds_left(100, None, 3.0) is None


def test_a_meter_counts_against_its_clock(clock):
    clock.now = 1000.0  # any origin: only differences count
    meter = progress.Meter(total=2_000, clock=clock)
    clock.now = 1040.0
    meter.update(500)
    # 500 in 40 s = 12.5/s; 1,500 left at that rate = 120 s; 25%.
    assert (meter.done, meter.elapsed) == (500, 40.0)
    assert meter.rate == 12.5
    assert meter.fraction == 0.25
    assert meter.seconds_left() == 120.0
    assert meter.seconds_left(per_second=50.0) == 30.0
    clock.now = 1050.0
    meter.add(250)
    meter.add()
    # 751 in 50 s.
    assert meter.done == 751
    assert meter.rate == pytest.approx(751 / 50)


def test_figures_hold_between_readings(clock):
    """A line's figures are those of the last reading, all of one instant."""
    meter = progress.Meter(total=100, clock=clock)
    clock.now = 10.0
    meter.update(20)
    clock.now = 99.0  # not read yet
    assert (meter.elapsed, meter.rate) == (10.0, 2.0)
    meter.update()  # reads the clock, keeps the work done
    assert (meter.done, meter.elapsed) == (20, 99.0)


def test_due_at_most_every_so_many_seconds(clock):
    meter = progress.Meter(total=None, every_seconds=10.0, clock=clock)
    due = []
    for now in [5, 10, 15, 19.9, 20, 35, 36]:
        clock.now = now
        due.append(meter.add())
    # Due at 10 (10 after the start), 20 (10 after 10), 35; not in between.
    assert due == [False, True, False, False, True, True, False]
    assert meter.done == 7
    assert meter.fraction is None and meter.seconds_left() is None


def test_every_reading_is_due_by_default(clock):
    meter = progress.Meter(total=3, clock=clock)
    assert [meter.add() for _ in range(3)] == [True, True, True]


def test_no_time_no_rate_and_a_total_of_zero_is_done(clock):
    meter = progress.Meter(total=0, clock=clock)
    assert meter.update(0)
    assert (meter.rate, meter.fraction, meter.seconds_left()) == (0.0, 1.0,
                                                                   None)


def test_work_done_before_counts_toward_the_share_not_the_rate(clock):
    """A resumed run starts at step 100 of 400; a rerun study skips a
    finished run's 4 of 10 FLOPs."""
    meter = progress.Meter(total=400, done=100, clock=clock)
    clock.now = 50.0
    meter.update(200)
    # 100 steps in 50 s = 2/s (not 200/50); 200 left = 100 s; half done.
    assert (meter.rate, meter.fraction, meter.seconds_left()) == (2.0, 0.5,
                                                                   100.0)

    study = progress.Meter(total=10, clock=clock)  # starts at 50
    study.skip(4)
    clock.now = 60.0
    study.add(2)
    # 2 timed in 10 s = 0.2/s; 4 left = 20 s; 60% done.
    assert (study.rate, study.fraction, study.seconds_left()) == (0.2, 0.6,
                                                                   20.0)


def test_the_lap_rate_is_the_rate_since_the_last_lap(clock):
    meter = progress.Meter(total=1_000, done=100, clock=clock)
    clock.now = 20.0
    meter.update(110)
    assert meter.lap_rate() == 0.5  # 10 steps in the first 20 s (compiling)
    clock.now = 30.0
    meter.update(130)
    assert meter.lap_rate() == 2.0  # 20 steps in the next 10 s
    assert meter.rate == 1.0  # 30 steps in 30 s since the start
    # 870 left at the lap's 2/s = 435 s.
    assert meter.seconds_left(per_second=2.0) == 435.0
    assert meter.lap_rate() == 0.0  # nothing since: no time, no rate


def test_the_share_done():
    assert progress.fraction(1, 4) == 0.25
    assert progress.fraction(0, 0) == 1.0  # nothing to do: all done
    assert progress.fraction(3, None) is None

"""KeepKSchedule: keep_k at chosen steps, ramps, and one-line errors."""

import pytest

from token_dropping.common.errors import UserError
from token_dropping.model.schedule import MAX_STAGES
from token_dropping.model.schedule import KeepKSchedule


def test_keep_k_at_chosen_steps():
    # 1000 steps: no dropping for steps 0-99, keep 64 for 100-899, none after.
    schedule = KeepKSchedule.resolve([(0.0, 128), (0.1, 64), (0.9, 128)],
                                     seq_length=128)
    assert schedule.start_steps(1000) == (0, 100, 900)
    expected = {0: 128, 99: 128, 100: 64, 500: 64, 899: 64, 900: 128,
                999: 128}
    assert {step: schedule.keep_k_at(step, 1000) for step in expected} == (
        expected)
    assert schedule.values == (64, 128)
    # A stage starts at the first step at or past its fraction: 0.1 of 15
    # is 1.5, so step 2.
    assert schedule.start_steps(15) == (0, 2, 14)
    assert [schedule.keep_k_at(s, 15) for s in (1, 2, 13, 14)] == [
        128, 64, 64, 128]


def test_ramp_is_the_random_ltd_recipe_in_stages():
    # random-LTD, BERT-large: 128 -> 512 in steps of 16 is 25 stages.
    ramp = KeepKSchedule.ramp(seq_length=512, start_keep_k=128,
                              end_keep_k=512, num_stages=25)
    assert ramp.keep_ks == tuple(range(128, 513, 16))
    assert ramp.starts[:3] == (0.0, 0.04, 0.08)
    with_ends = KeepKSchedule.ramp(seq_length=8, start_keep_k=4, end_keep_k=6,
                                   num_stages=3, no_drop_first=0.2,
                                   no_drop_last=0.2)
    assert with_ends.stages == ((0.0, 8), (0.2, 4), (0.4, 5),
                                (0.6, 6), (0.8, 8))
    shares = [round(share, 6) for _, share in with_ends.weights()]
    assert shares == [0.2, 0.2, 0.2, 0.2, 0.2]


def test_empty_schedule_is_off():
    assert not KeepKSchedule.resolve([])
    assert KeepKSchedule.resolve(()).weights() == ()


@pytest.mark.parametrize("stages,message", [
    ([(0.1, 64)], "keep_k_schedule starts at 0.1"),
    ([(0.0, 64), (0.5, 32), (0.5, 16)], "must increase strictly"),
    ([(0.0, 64), (1.0, 32)], "start_fraction=1.0 must be a number in [0, 1)"),
    ([(0.0, 200)], "keep_k_schedule token_keep_k=200 exceeds seq_length=128"),
    ([(0.0, 0)], "keep_k_schedule token_keep_k=0"),
    ([(0.0, 64, 3)], "stage (0.0, 64, 3) is not a (start_fraction, "),
    ("0.0:64", "keep_k_schedule='0.0:64' must be a list"),
    ([(i / 40, 8) for i in range(40)], f"40 stages; at most {MAX_STAGES}"),
])
def test_bad_schedules_are_one_line(stages, message):
    with pytest.raises(UserError) as error:
        KeepKSchedule.resolve(stages, seq_length=128)
    assert message in str(error.value)
    assert "\n" not in str(error.value)

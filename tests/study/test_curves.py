"""study/curves.py: reading loss-against-compute curves, by hand arithmetic."""

import pytest

from token_dropping.study import curves


def test_compute_to_reach_interpolates_along_the_curve():
    flops = [100.0, 200.0, 300.0, 400.0]
    losses = [6.0, 5.0, 4.0, 3.5]
    # 4.5 lies halfway between the evaluations at 200 (5.0) and 300 (4.0).
    assert curves.compute_to_reach(flops, losses, 4.5) == 250.0
    # 3.6: a fifth of the way from 300 (4.0) to 400 (3.5): 300 + 0.8 * 100.
    assert curves.compute_to_reach(flops, losses, 3.6) == pytest.approx(380.0)
    # Reached exactly at an evaluation.
    assert curves.compute_to_reach(flops, losses, 4.0) == 300.0
    # The first crossing counts, even if the curve goes back up.
    assert curves.compute_to_reach([1, 2, 3], [5.0, 3.0, 4.5], 4.0) == 1.5
    # Already below at the first evaluation: that evaluation, an upper bound.
    assert curves.compute_to_reach(flops, losses, 7.0) == 100.0
    # Never reached.
    assert curves.compute_to_reach(flops, losses, 3.0) is None
    # The summary's share: a baseline that used 400 FLOPs to reach 3.6, a
    # token-dropping curve at 0.75 of its FLOPs per step reaching it at 285.
    drop = [75.0, 150.0, 225.0, 300.0]
    assert curves.compute_to_reach(drop, losses, 3.6) / 400.0 == \
        pytest.approx(0.7125)
    with pytest.raises(ValueError, match="3 compute values but 2 losses"):
        curves.compute_to_reach([1, 2, 3], [1.0, 2.0], 1.5)


def test_interpolate_reads_the_curve_between_evaluations():
    flops = [100.0, 200.0, 400.0]
    losses = [6.0, 5.0, 3.0]
    assert curves.interpolate(flops, losses, 100.0) == 6.0  # the first point
    assert curves.interpolate(flops, losses, 150.0) == 5.5  # halfway
    # A quarter of the way from 200 (5.0) to 400 (3.0): 5.0 - 0.25 * 2.0.
    assert curves.interpolate(flops, losses, 250.0) == 4.5
    assert curves.interpolate(flops, losses, 400.0) == 3.0  # the last point
    # One evaluation: its loss, whatever the compute.
    assert curves.interpolate([100.0], [6.0], 100.0) == 6.0


def test_interpolate_and_compute_to_reach_are_inverse_on_a_falling_curve():
    flops = [10.0, 30.0, 60.0, 100.0]
    losses = [8.0, 6.0, 5.0, 2.0]
    for target in (7.5, 6.0, 5.5, 3.2):
        x = curves.compute_to_reach(flops, losses, target)
        assert curves.interpolate(flops, losses, x) == pytest.approx(target)

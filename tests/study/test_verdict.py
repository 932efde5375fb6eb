"""study/verdict.py: each model against the frontier's bar, on rows made
by hand (the report's table, with and without a reach interval)."""

import math

import pytest

from token_dropping.study import verdict
from token_dropping.study.stats import Interval

NAN = math.nan


def _entry(reach, per_seed, gap=None, label="drop"):
    probe = None if gap is None else dict(gap=Interval(*gap, 3))
    return dict(label=label, baseline=False, reach=Interval(*reach, 3),
                reach_per_seed=per_seed, probe=probe)


SEEDS = [(0.75, ""), (0.78, ""), (0.76, "")]


@pytest.mark.parametrize("entry, upper, bar, moonshot", [
    # The interval's upper end is what counts, not the mean.
    (_entry((0.76, 0.72, 0.80), SEEDS), 0.80, True, False),
    (_entry((0.76, 0.71, 0.81), SEEDS), 0.81, False, False),
    (_entry((0.60, 0.55, 0.66), SEEDS), 0.66, True, True),
    # At the bar and the moonshot exactly: met.
    (_entry((0.62, 0.57, 0.67), SEEDS), 0.67, True, True),
    (_entry((0.62, 0.57, 0.6701), SEEDS), 0.6701, True, False),
    # A probe below BERT's beyond its interval fails the bar whatever the
    # loss; one whose interval includes 0 does not.
    (_entry((0.60, 0.55, 0.66), SEEDS, gap=(-0.02, -0.03, -0.01)), 0.66,
     False, False),
    (_entry((0.60, 0.55, 0.66), SEEDS, gap=(-0.02, -0.04, +0.001)), 0.66,
     True, True),
    # A seed that never reaches BERT's loss: no share, no bar.
    (_entry((NAN, NAN, NAN), [(0.7, ""), (None, "not reached")]), None,
     False, False),
    # Seeds reached at the frontier's first point: the largest bound.
    (_entry((NAN, NAN, NAN), [(0.75, "bound"), (0.79, "")]), 0.79, True,
     False),
    # One seed: a share but no interval, so no verdict either way.
    (_entry((0.60, NAN, NAN), [(0.60, "")]), None, False, False),
])
def test_judge(entry, upper, bar, moonshot):
    result = verdict.judge(entry)
    assert result.upper == (None if upper is None else pytest.approx(upper))
    assert result.meets_bar is bar
    assert result.meets_moonshot is moonshot


def test_sentences_name_each_model_but_bert_with_its_numbers():
    table = [dict(label="BERT", baseline=True),
             _entry((0.90, 0.78, 1.03), SEEDS, gap=(0.013, 0.002, 0.024),
                    label="token dropping"),
             _entry((0.60, 0.55, 0.66), SEEDS, label="a quarter kept")]
    text = verdict.sentences(table)
    lines = text.splitlines()
    assert lines[0].startswith("The bar: BERT's annealed loss with at most "
                               "0.80 of its compute")
    assert lines[2:] == [
        "- **token dropping** does not meet the bar (0.80): it needs at most "
        "1.030 of BERT's compute to reach its loss (the upper end of its "
        "interval over seeds); its probe accuracy is not below BERT's.",
        "- **a quarter kept** meets the moonshot (0.67): it needs at most "
        "0.660 of BERT's compute to reach its loss (the upper end of its "
        "interval over seeds); its probe accuracy is not below BERT's."]
    assert verdict.sentences(table[:1]) == ""


def test_sentences_say_why_a_model_cannot_be_judged():
    table = [_entry((NAN, NAN, NAN), [(0.7, ""), (None, "not reached")],
                    gap=(-0.05, -0.08, -0.02), label="a"),
             _entry((0.6, NAN, NAN), [(0.6, "")], label="b"),
             _entry((NAN, NAN, NAN), [(0.75, "bound"), (0.79, "")],
                    label="c")]
    assert verdict.sentences(table).splitlines()[2:] == [
        "- **a** does not meet the bar (0.80): a seed does not reach BERT's "
        "loss within BERT's compute; its probe accuracy is below BERT's "
        "beyond the interval.",
        "- **b** does not meet the bar (0.80): with one seed there is no "
        "interval to judge; its probe accuracy is not below BERT's.",
        "- **c** meets the bar (0.80), not the moonshot: some seed reached "
        "BERT's loss at its frontier's first point, so it needs at most "
        "0.790 of BERT's compute on every seed (a bound, not an interval; a "
        "lower --reach_from measures it); its probe accuracy is not below "
        "BERT's."]

"""Does a way of dropping pay? Each model of a study against the bar.

The bar (the frontier's, `docs/frontier.md`): a model reaches annealed
BERT's validation loss with at most `BAR` of BERT's training compute at the
upper end of its interval over seeds, and its probe accuracy is not below
BERT's beyond their paired interval. `MOONSHOT` is the same with 0.67.

`judge(entry)` reads one row of `report.model_table`; `sentences(table)`
says it for every model but BERT, with the numbers.

Example:
>>> from token_dropping.study.stats import Interval
>>> judge(dict(reach=Interval(0.9, 0.78, 1.03, 3), reach_per_seed=[
...     (0.93, ""), (0.93, ""), (0.85, "")], probe=None)).meets_bar
False
"""

import dataclasses

import numpy as np

BAR = 0.80
MOONSHOT = 0.67


@dataclasses.dataclass(frozen=True)
class Judgement:
    """`upper`: the most of BERT's compute the model may need, None if it
    cannot be judged; `how`: what `upper` is ("interval": its interval's
    upper end over seeds; "bound": some seed reached BERT's loss at its
    frontier's first point, so the largest of the seeds' values and bounds,
    with no interval; "not reached": a seed never reached BERT's loss; "one
    seed": no interval). `probe_ok`: its probe accuracy is not below BERT's
    beyond their interval (True without a probe row to compare)."""
    upper: object
    how: str
    probe_ok: bool

    @property
    def meets_bar(self):
        return self.upper is not None and self.upper <= BAR and self.probe_ok

    @property
    def meets_moonshot(self):
        return (self.upper is not None and self.upper <= MOONSHOT
                and self.probe_ok)


def judge(entry):
    """A `Judgement` of one non-baseline row of `report.model_table`."""
    per_seed = entry["reach_per_seed"]
    gap = (entry.get("probe") or {}).get("gap")
    probe_ok = gap is None or not gap.high < 0
    if any(note == "not reached" for _, note in per_seed):
        return Judgement(None, "not reached", probe_ok)
    if any(note == "bound" for _, note in per_seed):
        # Reached at the frontier's first point on some seed: that point's
        # share bounds it (unrounded: 0.804 must not pass as 0.80).
        return Judgement(max(value for value, _ in per_seed), "bound",
                         probe_ok)
    if not np.isfinite(entry["reach"].high):  # fewer than two seeds
        return Judgement(None, "one seed", probe_ok)
    return Judgement(float(entry["reach"].high), "interval", probe_ok)


_NEED = {
    "interval": "it needs at most {upper:.3f} of BERT's compute to reach its "
                "loss (the upper end of its interval over seeds)",
    "bound": "some seed reached BERT's loss at its frontier's first point, "
             "so it needs at most {upper:.3f} of BERT's compute on every "
             "seed (a bound, not an interval; a lower --reach_from measures "
             "it)",
    "not reached": "a seed does not reach BERT's loss within BERT's compute",
    "one seed": "with one seed there is no interval to judge",
}


def sentences(table):
    """One markdown bullet per model but BERT: whether it meets the bar and
    the moonshot, with the numbers it was judged on."""
    lines = []
    for entry in table:
        if entry.get("baseline") or "reach_per_seed" not in entry:
            continue
        result = judge(entry)
        need = _NEED[result.how].format(upper=result.upper or 0.0)
        probe = ("its probe accuracy is not below BERT's" if result.probe_ok
                 else "its probe accuracy is below BERT's beyond the "
                 "interval")
        if result.meets_moonshot:
            verdict = f"meets the moonshot ({MOONSHOT:.2f})"
        elif result.meets_bar:
            verdict = f"meets the bar ({BAR:.2f}), not the moonshot"
        else:
            verdict = f"does not meet the bar ({BAR:.2f})"
        lines.append(f"- **{entry['label']}** {verdict}: {need}; {probe}.")
    if not lines:
        return ""
    return ("The bar: BERT's annealed loss with at most "
            f"{BAR:.2f} of its compute at the upper end of the interval over "
            "seeds, and a probe accuracy not below BERT's beyond the paired "
            f"interval (the moonshot: {MOONSHOT:.2f}).\n\n" + "\n".join(lines))

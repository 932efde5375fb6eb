"""The study's statistics: paired intervals, annealed frontiers, bootstraps.

Plain numbers in, plain data out (`Interval`, `BudgetComparison`); the
report module turns them into cells. Three jobs, each one function:

1. `paired_interval(values, baseline)`: a gap between two models over the
   same seeds, `{seed: value}` each. The per-seed differences get a Student
   t interval (`mean_interval`); the gap is "real" only where the interval
   excludes 0 (`Interval.real`). Pairing removes what the seeds share (the
   data order and initial weights are the seed's), which a comparison of two
   seed spreads does not.
2. `compare_frontiers(base, other)`: each model's annealed frontier is its
   points `(training compute, annealed loss)`, one per budget, per seed. At
   each of the baseline's budgets it reads, per seed, the other model's loss
   at the baseline's compute (a gap) and the compute the other model needs
   to reach the baseline's loss there, over the baseline's compute (a
   share), each with an interval over seeds.
3. `document_bootstrap(correct, documents)`: a dev accuracy with a
   percentile interval from resampling whole documents, not sentences:
   sentences of one document share topic and wording, so they are not
   independent and a sentence bootstrap would be too narrow. Two models
   on the same dev set: pass the per-sentence difference of their
   correctness (`a - b`, each maybe a mean over fine-tuning seeds) for the
   accuracy gap's interval, both resampled with the same documents (paired).

Between two points a frontier is linear in log-compute (`loss_at`,
`compute_to_reach`), not in compute: loss against compute is close to a
power law plus a constant (Kaplan et al. 2020, arXiv 2001.08361; Hoffmann
et al. 2022, arXiv 2203.15556), which bends much less against log-compute,
and budgets spaced by a constant factor are evenly spaced there. A power law
is convex in log-compute as well, so the chord lies above it: an
interpolated loss is, if anything, too high, and an interpolated compute to
reach a loss too large (conservative for the model read off its frontier).
A frontier is never extrapolated: a point outside it is None.

Example:
>>> paired_interval({1: 4.0, 2: 4.1, 3: 4.2}, {1: 3.9, 2: 4.1, 3: 4.0}).real
False
"""

import dataclasses
import math

import numpy as np
from scipy import stats as scipy_stats

from token_dropping.common.errors import UserError

CONFIDENCE = 0.95
# A point this close beyond a frontier's end is on it: runs stop on whole
# steps, so equal compute can end a fraction of a step short.
TOLERANCE = 1e-3


@dataclasses.dataclass(frozen=True)
class Interval:
    """An estimate and its two-sided `confidence` interval.

    `low` and `high` are nan where no interval exists (fewer than two seeds,
    or a seed without a value); `n` counts what the interval rests on
    (seeds with a value, or documents).
    """
    mean: float
    low: float
    high: float
    n: int
    confidence: float = CONFIDENCE

    @property
    def real(self):
        """True only if the interval excludes 0."""
        return bool(self.low > 0 or self.high < 0)  # nan compares False


def _check_confidence(confidence):
    if not 0 < confidence < 1:
        raise UserError(f"confidence={confidence!r} must be in (0, 1), "
                        "e.g. 0.95.")


def mean_interval(values, confidence=CONFIDENCE):
    """Mean of `values` with a Student t interval (n - 1 degrees of freedom).

    A None or non-finite value makes the whole interval nan (its mean too):
    dropping a seed that never reached a loss would bias what is left.
    """
    _check_confidence(confidence)
    values = list(values)
    finite = [float(v) for v in values
              if v is not None and math.isfinite(v)]
    nan = float("nan")
    if len(finite) < len(values) or not finite:
        return Interval(nan, nan, nan, len(finite), confidence)
    mean = float(np.mean(finite))
    if len(finite) < 2:
        return Interval(mean, nan, nan, 1, confidence)
    quantile = scipy_stats.t.ppf(0.5 + confidence / 2, len(finite) - 1)
    half = quantile * np.std(finite, ddof=1) / math.sqrt(len(finite))
    return Interval(mean, mean - half, mean + half, len(finite), confidence)


def paired_interval(values, baseline, confidence=CONFIDENCE):
    """`values[seed] - baseline[seed]` over the seeds: `mean_interval`.

    Args:
        values, baseline: {seed: float or None}, the same seeds.
    """
    if set(values) != set(baseline):
        raise UserError(
            f"paired_interval: seeds {sorted(values)} against the "
            f"baseline's {sorted(baseline)}; a paired gap needs the same "
            "seeds on both sides.")
    differences = [None if values[s] is None or baseline[s] is None
                   else values[s] - baseline[s] for s in sorted(values)]
    return mean_interval(differences, confidence)


def frontier(points):
    """`points` [(compute, loss), ...] sorted by compute, checked: compute
    positive and distinct, every number finite."""
    points = sorted((float(c), float(l)) for c, l in points)
    if not points:
        raise UserError("frontier: no points; give (compute, loss) pairs.")
    for compute, loss in points:
        if not (compute > 0 and math.isfinite(compute)
                and math.isfinite(loss)):
            raise UserError(f"frontier: point ({compute!r}, {loss!r}) needs "
                            "a positive finite compute and a finite loss.")
    for (c0, _), (c1, _) in zip(points, points[1:]):
        if c1 == c0:
            raise UserError(f"frontier: two points at compute {c0!r}; give "
                            "one annealed loss per budget.")
    return points


def loss_at(points, compute, tolerance=TOLERANCE):
    """The frontier's loss at `compute`, linear in log-compute between its
    points; None outside them (beyond `tolerance`, relative)."""
    points = frontier(points)
    first, last = points[0][0], points[-1][0]
    if not first * (1 - tolerance) <= compute <= last * (1 + tolerance):
        return None
    compute = min(max(compute, first), last)
    for (c0, l0), (c1, l1) in zip(points, points[1:]):
        if c0 <= compute <= c1:
            share = math.log(compute / c0) / math.log(c1 / c0)
            return l0 + share * (l1 - l0)
    return points[0][1]  # a single point


def compute_to_reach(points, target):
    """The least compute at which the frontier's loss is `target` or lower,
    linear in log-compute between its points.

    None when no point reaches `target`, and when the first point already
    does (the crossing lies before the frontier: only an upper bound, the
    first point's compute, is known).
    """
    points = frontier(points)
    if points[0][1] <= target:
        return None
    for (c0, l0), (c1, l1) in zip(points, points[1:]):
        if l1 <= target:
            share = (l0 - target) / (l0 - l1)
            return c0 * math.exp(share * math.log(c1 / c0))
    return None


def max_spacing(points, reference):
    """The widest gap between neighbouring points' compute, over
    `reference` (e.g. the baseline's largest budget)."""
    computes = [c for c, _ in frontier(points)]
    return max((b - a for a, b in zip(computes, computes[1:])),
               default=0.0) / reference


@dataclasses.dataclass(frozen=True)
class BudgetComparison:
    """Another model against the baseline at one of the baseline's budgets.

    Attributes:
        budget: the baseline's compute there (mean over seeds).
        gap: {seed: the other's frontier loss at the baseline's compute
            minus the baseline's loss; None outside the other's frontier}.
        gap_interval: `mean_interval` of `gap` (a paired gap).

    The share of the baseline's compute needed to reach its loss is read
    at its largest budget only, with the seeds' bounds (`report._reach`).
    """
    budget: float
    gap: dict
    gap_interval: Interval


def compare_frontiers(base, other, confidence=CONFIDENCE):
    """A `BudgetComparison` per budget of the baseline, smallest first.

    Args:
        base, other: {seed: [(compute, annealed loss), ...]}, the same
            seeds; the baseline's seeds have the same number of budgets.
    """
    if set(base) != set(other) or not base:
        raise UserError(f"compare_frontiers: seeds {sorted(other)} against "
                        f"the baseline's {sorted(base)}; give the same, at "
                        "least one.")
    seeds = sorted(base)
    base = {s: frontier(base[s]) for s in seeds}
    counts = {len(base[s]) for s in seeds}
    if len(counts) != 1:
        raise UserError(f"compare_frontiers: the baseline's seeds have "
                        f"{sorted(counts)} budgets; give each seed the same.")
    comparisons = []
    for j in range(counts.pop()):
        gap = {}
        for s in seeds:
            compute, loss = base[s][j]
            at = loss_at(other[s], compute)
            gap[s] = None if at is None else at - loss
        comparisons.append(BudgetComparison(
            budget=float(np.mean([base[s][j][0] for s in seeds])),
            gap=gap, gap_interval=mean_interval(gap.values(), confidence)))
    return comparisons


def bootstrap_accuracies(correct, documents, *, samples=10000, seed=0):
    """Accuracies of `samples` document resamples (numpy array).

    Each resample draws as many documents as there are, with replacement,
    and scores every sentence of each drawn document (a ratio: correct
    sentences over drawn sentences).

    Args:
        correct: per sentence, 1/True if the prediction was right (any
            number: a mean over seeds, or a difference of two models).
        documents: per sentence, its document (any hashable).
        samples: int. Resamples.
        seed: int. The resampling's seed (numpy's default generator).
    """
    correct = np.asarray(correct, dtype=np.float64)
    if correct.ndim != 1 or len(correct) != len(documents) or not len(correct):
        raise UserError(f"bootstrap: {correct.size} predictions for "
                        f"{len(documents)} documents; give one "
                        "document per sentence, at least one.")
    if (isinstance(samples, bool) or not isinstance(samples, int)
            or samples < 1):
        raise UserError(f"samples={samples!r} must be a positive integer.")
    ids = {}
    index = np.array([ids.setdefault(d, len(ids)) for d in documents])
    hits = np.bincount(index, weights=correct)
    sizes = np.bincount(index).astype(np.float64)
    rng = np.random.default_rng(seed)
    out = np.empty(samples)
    for start in range(0, samples, 1000):  # bounded memory
        stop = min(samples, start + 1000)
        drawn = rng.integers(0, len(sizes), size=(stop - start, len(sizes)))
        out[start:stop] = hits[drawn].sum(1) / sizes[drawn].sum(1)
    return out


def document_bootstrap(correct, documents, *, samples=10000, seed=0,
                       confidence=CONFIDENCE):
    """The accuracy and its percentile interval from
    `bootstrap_accuracies`; `n` is the number of documents."""
    _check_confidence(confidence)
    accuracies = bootstrap_accuracies(correct, documents, samples=samples,
                                      seed=seed)
    low, high = np.quantile(accuracies, [0.5 - confidence / 2,
                                         0.5 + confidence / 2])
    return Interval(float(np.mean(np.asarray(correct, dtype=np.float64))),
                    float(low), float(high), len(set(documents)),
                    confidence)

"""study/stats.py against numpy and scipy on handmade tables."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from token_dropping.common.errors import UserError
from token_dropping.study import stats

# Student t quantiles t_{0.975, df}, from the NIST/SEMATECH e-Handbook of
# Statistical Methods, section 1.3.6.7.2 ("Critical values of the Student's
# t distribution"), column 0.025 upper tail.
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 9: 2.262}

SEEDS = (1, 2, 3, 4, 5)
MODEL = {1: 3.912, 2: 3.951, 3: 3.930, 4: 3.944, 5: 3.921}
BERT = {1: 3.905, 2: 3.940, 3: 3.925, 4: 3.929, 5: 3.918}


def test_paired_interval_matches_scipy_and_the_textbook_quantile():
    a = np.array([MODEL[s] for s in SEEDS])
    b = np.array([BERT[s] for s in SEEDS])
    interval = stats.paired_interval(MODEL, BERT)
    reference = scipy_stats.ttest_rel(a, b).confidence_interval(0.95)
    assert interval.mean == pytest.approx(np.mean(a - b), abs=1e-12)
    assert interval.low == pytest.approx(reference.low, abs=1e-12)
    assert interval.high == pytest.approx(reference.high, abs=1e-12)
    assert interval.n == 5
    # The same by hand: mean +- t_{0.975,4} * sd / sqrt(n).
    d = a - b
    half = T_975[4] * d.std(ddof=1) / math.sqrt(5)
    assert interval.high - interval.mean == pytest.approx(half, rel=2e-4)
    # Every seed is worse and the interval excludes 0; scipy's test agrees.
    assert interval.real and interval.low > 0
    assert scipy_stats.ttest_rel(a, b).pvalue < 0.05


@pytest.mark.parametrize("n", [2, 3, 4, 10])
def test_mean_interval_uses_n_minus_one_degrees_of_freedom(n):
    values = [0.8 + 0.01 * i * (-1) ** i for i in range(n)]
    interval = stats.mean_interval(values)
    half = T_975[n - 1] * np.std(values, ddof=1) / math.sqrt(n)
    assert interval.high - interval.low == pytest.approx(2 * half, rel=2e-4)


def test_real_only_where_the_interval_excludes_zero():
    # The two cases: a small gap every seed agrees on is real, a
    # larger mean with one seed against it (paired t about 2) is not.
    consistent = stats.paired_interval({1: 4.009, 2: 4.018, 3: 4.000},
                                       {1: 4.000, 2: 4.010, 3: 3.990})
    noisy = stats.paired_interval({1: 4.030, 2: 4.026, 3: 3.987},
                                  {1: 4.000, 2: 4.000, 3: 4.000})
    assert consistent.real and consistent.mean == pytest.approx(0.009)
    assert not noisy.real and noisy.mean == pytest.approx(0.0143, abs=1e-4)
    assert noisy.low < 0 < noisy.high


def test_missing_values_and_single_seeds_give_no_interval():
    missing = stats.mean_interval([0.8, None, 0.9])
    assert math.isnan(missing.mean) and math.isnan(missing.low)
    assert not missing.real and missing.n == 2
    single = stats.mean_interval([0.8])
    assert single.mean == 0.8 and math.isnan(single.high) and not single.real
    with pytest.raises(UserError, match=r"seeds \[1, 2\] against the "
                       r"baseline's \[1, 3\]"):
        stats.paired_interval({1: 1.0, 2: 1.0}, {1: 1.0, 3: 1.0})
    with pytest.raises(UserError, match="confidence=95"):
        stats.mean_interval([1.0, 2.0], confidence=95)


# A frontier: annealed losses at budgets spaced by a factor of about 1.5.
COMPUTE = [2.0e12, 3.0e12, 4.5e12, 6.0e12]
LOSSES = [5.10, 4.80, 4.55, 4.42]


def test_loss_at_is_linear_in_log_compute():
    points = list(zip(COMPUTE, LOSSES))[::-1]  # any order
    for x in (2.0e12, 2.4e12, 3.0e12, 5.1e12, 6.0e12):
        expected = np.interp(np.log(x), np.log(COMPUTE), LOSSES)
        assert stats.loss_at(points, x) == pytest.approx(expected, abs=1e-12)
    # Halfway in log-compute between 2e12 and 4.5e12 is 3e12, not 3.25e12.
    assert stats.loss_at([(2.0e12, 5.0), (4.5e12, 4.0)], 3.0e12) == \
        pytest.approx(4.5)
    # Never extrapolated; a run ending a hair short of the end is on it.
    assert stats.loss_at(points, 1.9e12) is None
    assert stats.loss_at(points, 6.1e12) is None
    assert stats.loss_at(points, 6.0e12 * (1 + 5e-4)) == pytest.approx(4.42)
    assert stats.loss_at(points, 2.0e12 * (1 - 5e-4)) == pytest.approx(5.10)
    with pytest.raises(UserError, match="two points at compute"):
        stats.loss_at([(1.0, 2.0), (1.0, 3.0)], 1.0)


def test_compute_to_reach_inverts_the_frontier():
    points = list(zip(COMPUTE, LOSSES))
    for target in (5.0, 4.8, 4.6, 4.42):
        expected = np.exp(np.interp(target, LOSSES[::-1],
                                    np.log(COMPUTE)[::-1]))
        assert stats.compute_to_reach(points, target) == \
            pytest.approx(expected, rel=1e-12)
        assert stats.loss_at(points, stats.compute_to_reach(
            points, target)) == pytest.approx(target, abs=1e-12)
    # Below the frontier's end: not reached; above its start: before it.
    assert stats.compute_to_reach(points, 4.3) is None
    assert stats.compute_to_reach(points, 5.2) is None
    assert stats.compute_to_reach(points, 5.10) is None  # equal: before it
    # The first crossing counts.
    assert stats.compute_to_reach([(1.0, 5.0), (2.0, 3.0), (4.0, 4.5)],
                                  4.0) == pytest.approx(math.sqrt(2))


def test_max_spacing():
    assert stats.max_spacing(list(zip(COMPUTE, LOSSES)), 6.0e12) == \
        pytest.approx(1.5 / 6.0)


def test_compare_frontiers_against_numpy():
    budgets = [2.0e12, 3.0e12, 4.0e12]
    bert = {1: [5.00, 4.70, 4.50], 2: [5.05, 4.72, 4.53],
            3: [4.98, 4.69, 4.49]}
    # Token dropping: its own points at 0.8x BERT's budgets, and a fourth
    # at BERT's largest budget.
    drop_compute = [0.8 * b for b in budgets] + [budgets[-1]]
    drop = {1: [5.10, 4.76, 4.52, 4.47], 2: [5.12, 4.80, 4.58, 4.51],
            3: [5.05, 4.74, 4.51, 4.46]}
    base = {s: list(zip(budgets, bert[s])) for s in bert}
    other = {s: list(zip(drop_compute, drop[s])) for s in drop}
    comparisons = stats.compare_frontiers(base, other)
    assert [c.budget for c in comparisons] == budgets
    log_x = np.log(drop_compute)
    for j, comparison in enumerate(comparisons):
        gaps = []
        for s in (1, 2, 3):
            at = np.interp(np.log(budgets[j]), log_x, drop[s])
            gaps.append(at - bert[s][j])
        assert [comparison.gap[s] for s in (1, 2, 3)] == pytest.approx(gaps)
        reference = scipy_stats.ttest_1samp(gaps, 0.0).confidence_interval()
        assert comparison.gap_interval.low == pytest.approx(reference.low)
        assert comparison.gap_interval.high == pytest.approx(reference.high)
    with pytest.raises(UserError, match="seeds"):
        stats.compare_frontiers(base, {1: other[1]})


def test_document_bootstrap_resamples_documents():
    # Document a: 3 sentences all right; b: 1 sentence wrong. Resampling 2
    # documents gives aa -> 1, ab or ba -> 3/4, bb -> 0 (1/4, 1/2, 1/4); a
    # sentence bootstrap would also give 1/4 and 1/2.
    accuracies = stats.bootstrap_accuracies([1, 1, 1, 0],
                                            ["a", "a", "a", "b"],
                                            samples=10000, seed=3)
    values, counts = np.unique(accuracies, return_counts=True)
    assert values.tolist() == [0.0, 0.75, 1.0]
    assert counts / 10000 == pytest.approx([0.25, 0.5, 0.25], abs=0.02)
    interval = stats.document_bootstrap([1, 1, 1, 0], ["a", "a", "a", "b"],
                                        samples=10000, seed=3)
    assert (interval.mean, interval.low, interval.high, interval.n) == \
        (0.75, 0.0, 1.0, 2)


def _clustered_dev(rng, documents=40):
    correct, docs = [], []
    for d in range(documents):
        size = int(rng.integers(1, 30))
        p = rng.uniform(0.3, 0.95)
        correct += (rng.random(size) < p).astype(int).tolist()
        docs += [f"doc{d}"] * size
    return np.array(correct), docs


def test_document_bootstrap_spread_matches_the_cluster_formula():
    correct, docs = _clustered_dev(np.random.default_rng(0))
    accuracies = stats.bootstrap_accuracies(correct, docs, samples=20000,
                                            seed=1)
    # The ratio estimator's linearised variance under resampling of the
    # D documents: var_pop(c_d - p n_d) / (D * mean(n_d)^2).
    names = sorted(set(docs))
    hits = np.array([correct[[d == n for d in docs]].sum() for n in names])
    sizes = np.array([docs.count(n) for n in names])
    p = hits.sum() / sizes.sum()
    expected = math.sqrt(np.var(hits - p * sizes) / (len(names)
                                                    * sizes.mean() ** 2))
    assert accuracies.std() == pytest.approx(expected, rel=0.1)
    assert accuracies.mean() == pytest.approx(p, abs=0.01)


def test_single_sentence_documents_equal_a_sentence_bootstrap():
    rng = np.random.default_rng(5)
    correct = (rng.random(400) < 0.7).astype(int)
    interval = stats.document_bootstrap(correct, list(range(400)),
                                        samples=20000, seed=2)
    reference = scipy_stats.bootstrap(
        (correct,), np.mean, n_resamples=20000, method="percentile",
        random_state=np.random.default_rng(9)).confidence_interval
    assert interval.low == pytest.approx(reference.low, abs=0.01)
    assert interval.high == pytest.approx(reference.high, abs=0.01)
    # Clustered: the same sentences grouped into documents give a wider one.
    clustered, docs = _clustered_dev(np.random.default_rng(0))
    by_document = stats.document_bootstrap(clustered, docs, seed=2)
    by_sentence = stats.document_bootstrap(clustered, range(len(clustered)),
                                           seed=2)
    assert (by_document.high - by_document.low
            > 1.5 * (by_sentence.high - by_sentence.low))


def test_document_bootstrap_is_seeded_and_checks_its_input():
    correct, docs = _clustered_dev(np.random.default_rng(0))
    first = stats.bootstrap_accuracies(correct, docs, samples=500, seed=4)
    again = stats.bootstrap_accuracies(correct, docs, samples=500, seed=4)
    other = stats.bootstrap_accuracies(correct, docs, samples=500, seed=5)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    with pytest.raises(UserError, match="3 predictions for 2 documents"):
        stats.bootstrap_accuracies([1, 0, 1], ["a", "b"])
    with pytest.raises(UserError, match="samples=0"):
        stats.bootstrap_accuracies([1], ["a"], samples=0)


def test_a_difference_of_two_models_is_bootstrapped_paired():
    rng = np.random.default_rng(7)
    model, docs = _clustered_dev(rng)
    baseline = np.where(rng.random(len(model)) < 0.8, model, 1 - model)
    gap = stats.bootstrap_accuracies(model - baseline, docs, samples=3000,
                                     seed=6)
    # The same documents drawn for both models: the gap of their
    # replicates, one by one.
    each = [stats.bootstrap_accuracies(c, docs, samples=3000, seed=6)
            for c in (model, baseline)]
    np.testing.assert_allclose(gap, each[0] - each[1], atol=1e-12)
    interval = stats.document_bootstrap(model - baseline, docs, seed=6)
    assert interval.mean == pytest.approx(model.mean() - baseline.mean())

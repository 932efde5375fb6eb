"""study/probe_stats.py and study/predictions.py against numpy on handmade
tables: the per-example file, a model's accuracy interval over its
fine-tunings, and the paired gap of two models."""

import numpy as np
import pytest

from token_dropping.common.errors import UserError
from token_dropping.study import predictions
from token_dropping.study import probe_stats

# A dev set of 10 examples in 4 documents of unequal size.
DOCS = ["d0", "d0", "d0", "d1", "d2", "d2", "d2", "d2", "d3", "d3"]
LABELS = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1]
# Per fine-tuning, which examples it got right.
MODEL = [[1, 1, 1, 0, 1, 1, 0, 1, 1, 0],
         [1, 0, 1, 1, 1, 1, 1, 1, 0, 0],
         [1, 1, 1, 1, 0, 1, 1, 1, 1, 0]]
BASELINE = [[0, 1, 0, 1, 1, 0, 0, 1, 1, 0],
            [1, 0, 0, 0, 1, 1, 0, 0, 1, 1]]


def runs_of(table, documents=DOCS, labels=LABELS):
    """DevPredictions whose correctness is `table`'s rows."""
    return [predictions.DevPredictions(
        index=range(len(labels)), documents=documents, labels=labels,
        predicted=[l if c else 1 - l for l, c in zip(labels, row)],
        probability=[0.5 + 0.05 * i for i in range(len(labels))])
        for row in table]


def numpy_bootstrap(share, documents, samples, seed):
    """The document bootstrap written out: draw D documents with
    replacement, score every example of each drawn document."""
    names = list(dict.fromkeys(documents))
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(names), size=(samples, len(names)))
    values = []
    for row in drawn:
        picked = [i for n in row for i, d in enumerate(documents)
                  if d == names[n]]
        values.append(np.sum(np.asarray(share)[picked]) / len(picked))
    return np.quantile(values, [0.025, 0.975])


def test_accuracy_interval_against_numpy():
    interval = probe_stats.accuracy_interval(runs_of(MODEL), samples=800,
                                             seed=3)
    model = np.array(MODEL, dtype=float)
    assert interval.mean == pytest.approx(model.mean(1).mean(), abs=1e-12)
    low, high = numpy_bootstrap(model.mean(0), DOCS, 800, 3)
    assert (interval.low, interval.high) == pytest.approx((low, high),
                                                          abs=1e-12)
    assert interval.n == 4


def test_resamples_past_the_first_thousand_continue_the_draws():
    """Drawn in chunks of 1,000 (bounded memory): 2,500 resamples are the
    written-out bootstrap's 2,500, not one thousand repeated."""
    share = np.array(MODEL, dtype=float).mean(0)
    from token_dropping.study import stats
    drawn = stats.bootstrap_accuracies(share, DOCS, samples=2500, seed=7)
    assert not np.allclose(drawn[:1000], drawn[1000:2000])
    interval = stats.document_bootstrap(share, DOCS, samples=2500, seed=7)
    assert (interval.low, interval.high) == pytest.approx(
        tuple(numpy_bootstrap(share, DOCS, 2500, 7)), abs=1e-12)


def test_paired_difference_against_numpy_and_same_resamples():
    model, baseline = runs_of(MODEL), runs_of(BASELINE)
    gap = probe_stats.paired_difference(model, baseline, samples=800, seed=5)
    share = np.mean(MODEL, 0) - np.mean(BASELINE, 0)
    assert gap.mean == pytest.approx(np.mean(MODEL) - np.mean(BASELINE),
                                     abs=1e-12)
    low, high = numpy_bootstrap(share, DOCS, 800, 5)
    assert (gap.low, gap.high) == pytest.approx((low, high), abs=1e-12)
    # Paired: each resample's gap is the gap of the two rows' resamples,
    # which every call with the same seed draws alike.
    from token_dropping.study import stats
    each = [stats.bootstrap_accuracies(probe_stats.share_correct(r), DOCS,
                                       samples=800, seed=5)
            for r in (model, baseline)]
    both = stats.bootstrap_accuracies(share, DOCS, samples=800, seed=5)
    np.testing.assert_allclose(both, each[0] - each[1], atol=1e-12)


def test_exact_bootstrap_of_two_documents():
    # Document a: 3 examples, model right on all, baseline on none;
    # document b: 1 example, both right. Resamples aa, ab|ba, bb give gaps
    # 1, 3/4, 0 with probabilities 1/4, 1/2, 1/4.
    docs, labels = ["a", "a", "a", "b"], [1, 1, 0, 0]
    model = runs_of([[1, 1, 1, 1]], docs, labels)
    baseline = runs_of([[0, 0, 0, 1]], docs, labels)
    gap = probe_stats.paired_difference(model, baseline, samples=10000,
                                        seed=0)
    assert (gap.mean, gap.low, gap.high, gap.n) == (0.75, 0.0, 1.0, 2)
    assert not gap.real  # the interval touches 0


def test_measures_pretraining_needs_every_gap_above_zero():
    rng = np.random.default_rng(0)
    docs = [f"d{i // 4}" for i in range(200)]
    labels = rng.integers(0, 2, 200).tolist()
    strong = runs_of((rng.random((2, 200)) < 0.9).astype(int), docs, labels)
    weak = runs_of((rng.random((2, 200)) < 0.6).astype(int), docs, labels)
    close = runs_of((rng.random((2, 200)) < 0.88).astype(int), docs, labels)
    verdict, gaps = probe_stats.measures_pretraining(
        strong, {"random encoder": weak,
                 "majority": [probe_stats.majority(strong)]})
    assert verdict and set(gaps) == {"random encoder", "majority"}
    assert gaps["random encoder"].mean == pytest.approx(
        np.mean([r.correct for r in strong])
        - np.mean([r.correct for r in weak]))
    verdict, gaps = probe_stats.measures_pretraining(
        strong, {"random encoder": weak, "bag of words": close})
    assert not verdict and gaps["bag of words"].low < 0


def test_majority_answers_the_most_frequent_label():
    (row,) = [probe_stats.majority(runs_of(MODEL))]
    assert set(row.predicted) == {1} and row.accuracy == 0.6


def test_runs_of_other_dev_sets_are_refused_in_one_line():
    other = runs_of(MODEL, documents=DOCS[::-1])
    with pytest.raises(UserError, match="different dev sets"):
        probe_stats.paired_difference(runs_of(MODEL), other)
    with pytest.raises(UserError, match="no fine-tunings"):
        probe_stats.accuracy_interval([])


def test_predictions_file_round_trip(tmp_path):
    (rows,) = runs_of(MODEL[:1])
    path = str(tmp_path / predictions.FILE)
    predictions.write(path, rows)
    assert predictions.read(path) == rows
    with open(path) as f:
        assert f.readline() == "index\tdocument\tlabel\tpredicted\t" \
            "probability\n"
    assert rows.accuracy == pytest.approx(np.mean(MODEL[0]))
    assert [p.name for p in tmp_path.iterdir()] == [predictions.FILE]
    (tmp_path / "bad.tsv").write_text("index\tlabel\n0\t1\n")
    with pytest.raises(UserError, match="not a dev predictions file"):
        predictions.read(str(tmp_path / "bad.tsv"))
    with pytest.raises(UserError, match="no such file"):
        predictions.read(str(tmp_path / "none.tsv"))
    with pytest.raises(UserError, match="lengths"):
        predictions.DevPredictions([0, 1], ["a"], [1], [1], [0.5])


def test_probe_table_rows_in_order_with_gaps_to_the_baseline():
    models = {"random encoder": runs_of(BASELINE), "bert": runs_of(MODEL)}
    models["majority"] = [probe_stats.majority(models["bert"])]
    table = probe_stats.probe_table(models, "bert", samples=800, seed=3)
    assert [row["model"] for row in table] == list(models)
    bert = table[1]
    assert bert["gap"] is None
    assert bert["accuracy"] == probe_stats.accuracy_interval(
        models["bert"], samples=800, seed=3)
    gap = table[0]["gap"]
    assert gap.mean == pytest.approx(np.mean(BASELINE) - np.mean(MODEL))
    low, high = numpy_bootstrap(np.mean(BASELINE, 0) - np.mean(MODEL, 0),
                                DOCS, 800, 3)
    assert (gap.low, gap.high) == pytest.approx((low, high), abs=1e-12)
    with pytest.raises(UserError, match="baseline='BERT' is not one of"):
        probe_stats.probe_table(models, "BERT")

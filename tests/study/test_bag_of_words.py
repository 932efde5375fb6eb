"""study/bag_of_words.py against scikit-learn on a handmade probe."""

import csv

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from token_dropping.common.errors import UserError
from token_dropping.study import bag_of_words

# Two sources with some shared words, so neither C nor the labels are
# trivial; a sentence's words come from its document's source mostly.
STDLIB = "module function returns the value of path file socket thread".split()
OTHER = "array returns the value of tensor matrix plot frame axis".split()


def _probe_rows(rng, documents, first_doc):
    rows = []
    for d in range(documents):
        label = int(rng.integers(0, 2))
        own, other = (STDLIB, OTHER) if label else (OTHER, STDLIB)
        for _ in range(int(rng.integers(1, 6))):
            words = [str(rng.choice(own if rng.random() < 0.7 else other))
                     for _ in range(int(rng.integers(4, 9)))]
            rows.append((f"doc{first_doc + d}", label,
                         " ".join(words).capitalize() + "."))
    return rows


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """A probe in CoLA's layout, as `probe_data` writes it."""
    folder = tmp_path_factory.mktemp("probe")
    rng = np.random.default_rng(0)
    splits = dict(train=_probe_rows(rng, 30, 0), dev=_probe_rows(rng, 12, 30))
    for name, rows in splits.items():
        with open(folder / f"{name}.tsv", "w") as f:
            f.writelines(f"{doc}\t{label}\t\t{text}\n"
                         for doc, label, text in rows)
    return str(folder), splits


def _tsv(path):
    with open(path) as f:
        return list(csv.reader(f, delimiter="\t", quotechar=None))


def test_fit_matches_scikit_learn(probe):
    _, splits = probe
    texts = [t for _, _, t in splits["train"]]
    labels = np.array([l for _, l, _ in splits["train"]])
    features = bag_of_words.counts(texts, bag_of_words.vocabulary(texts))
    for c in (0.1, 1.0, 10.0):
        weights, bias = bag_of_words.fit(features, labels, c)
        reference = LogisticRegression(
            C=c, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(
                features, labels)
        np.testing.assert_allclose(weights, reference.coef_[0], atol=1e-5)
        assert bias == pytest.approx(reference.intercept_[0], abs=1e-5)
        assert np.array_equal(bag_of_words.predict(features, weights, bias),
                              reference.predict(features))


def test_row_matches_scikit_learn_on_the_handmade_probe(probe):
    folder, _ = probe
    row = bag_of_words.bag_of_words_row(folder, "cola", seed=1,
                                        samples=2000)
    # The reference reads the TSVs with csv and counts with scikit-learn.
    train, dev = _tsv(f"{folder}/train.tsv"), _tsv(f"{folder}/dev.tsv")
    vectorizer = CountVectorizer(lowercase=True, token_pattern=r"(?u)\b\w+\b")
    x_train = vectorizer.fit_transform([r[3] for r in train])
    x_dev = vectorizer.transform([r[3] for r in dev])
    y_train = np.array([int(r[1]) for r in train])
    y_dev = np.array([int(r[1]) for r in dev])
    fold = bag_of_words.document_folds([r[0] for r in train], 5, 1)
    # Whole documents per fold.
    for doc in {r[0] for r in train}:
        assert len({f for r, f in zip(train, fold) if r[0] == doc}) == 1

    def sklearn_fit(x, y, c):
        return LogisticRegression(C=c, solver="newton-cholesky", tol=1e-12,
                                  max_iter=1000).fit(x, y)

    scores = [sum(sklearn_fit(x_train[fold != k], y_train[fold != k], c)
                  .score(x_train[fold == k], y_train[fold == k])
                  for k in range(5)) for c in bag_of_words.C_GRID]
    best = bag_of_words.C_GRID[int(np.argmax(scores))]
    reference = sklearn_fit(x_train, y_train, best)
    correct = (reference.predict(x_dev) == y_dev)
    assert row.c == best
    assert row.vocabulary_size == len(vectorizer.vocabulary_)
    assert (row.num_train, row.num_dev) == (len(train), len(dev))
    assert row.correct == correct.astype(int).tolist()
    # The dev predictions, to pair with the fine-tunings (probe_stats).
    assert row.predictions.documents == tuple(r[0] for r in dev)
    assert row.predictions.labels == tuple(y_dev.tolist())
    assert row.predictions.predicted == tuple(reference.predict(x_dev))
    np.testing.assert_allclose(row.predictions.probability,
                               reference.predict_proba(x_dev).max(1),
                               atol=1e-5)
    assert row.accuracy.mean == pytest.approx(correct.mean())
    assert row.accuracy.n == len({r[0] for r in dev}) == 12
    assert row.accuracy.low <= row.accuracy.mean <= row.accuracy.high
    # Better than the majority class on this easy probe.
    assert row.accuracy.mean > max(y_dev.mean(), 1 - y_dev.mean())


def test_sst2_layout_has_one_document_per_sentence(tmp_path, probe):
    _, splits = probe
    for name, rows in splits.items():
        with open(tmp_path / f"{name}.tsv", "w") as f:
            f.write("sentence\tlabel\n")
            f.writelines(f"{text}\t{label}\n" for _, label, text in rows)
    split = bag_of_words.read_split(str(tmp_path), "sst2", "dev")
    assert split.documents == [f"dev-{i}" for i in range(len(splits["dev"]))]
    assert split.labels.tolist() == [l for _, l, _ in splits["dev"]]
    row = bag_of_words.bag_of_words_row(str(tmp_path), "sst2", samples=500)
    assert row.accuracy.n == row.num_dev == len(splits["dev"])


def test_bad_input_is_one_line(tmp_path, probe):
    folder, _ = probe
    with pytest.raises(UserError, match="task='qqp' is not one of"):
        bag_of_words.read_split(folder, "qqp", "train")
    with pytest.raises(UserError, match="task='mnli' has 3 labels"):
        bag_of_words.read_split(folder, "mnli", "train")
    with pytest.raises(UserError, match="train.tsv'?: no such file"):
        bag_of_words.bag_of_words_row(str(tmp_path), "cola")
    (tmp_path / "train.tsv").write_text("doc0\t1\t\tOne document only.\n")
    (tmp_path / "dev.tsv").write_text("doc1\t0\t\tAnother one here.\n")
    with pytest.raises(UserError, match="has 1 document; choosing C needs"):
        bag_of_words.bag_of_words_row(str(tmp_path), "cola")

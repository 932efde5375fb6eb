"""The probe's bag-of-words row: logistic regression on word counts.

A probe measures pretraining only if a pretrained encoder beats what needs
no pretraining at all. This row is the cheapest such model: it reads the
probe's own training TSV (GLUE's layout, through `glue.PROCESSORS`, so it
sees exactly the examples the fine-tuning records hold), counts the words
of each sentence, fits an L2-regularised logistic regression and scores the
dev TSV, with a document-bootstrap interval (`stats.document_bootstrap`).

1. Words: lowercase runs of letters, digits and `_` (`WORD`), the training
   set's words as the vocabulary, counts as features (a word the training
   set lacks is ignored).
2. The fit (`fit`): scikit-learn's objective, `C * sum(log loss) +
   |w|^2 / 2` with an unpenalised bias, minimised by scipy's Newton-CG.
3. `C` from `C_GRID` by grouped cross-validation on the training set only:
   whole documents per fold (`document_folds`), the best summed fold
   accuracy, the smallest C on a tie. The dev set is scored once.
4. Documents: CoLA's first column (the probe's `doc<N>`, real CoLA's source
   paper); in layouts without one (SST-2) every sentence is its own.

Two-label tasks only (CoLA, SST-2 and the built probes).

Example:
>>> row = bag_of_words_row("runs/study/probe", "cola")
>>> row.accuracy.mean, row.accuracy.low, row.accuracy.high
(0.63, 0.57, 0.69)
"""

import dataclasses
import os
import re

import numpy as np
import tensorflow as tf
from scipy import optimize
from scipy import sparse
from scipy import special

from token_dropping.common.errors import UserError
from token_dropping.data import glue
from token_dropping.study import predictions
from token_dropping.study import stats

WORD = re.compile(r"\w+")
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)  # ascending
FOLDS = 5


@dataclasses.dataclass(frozen=True)
class Split:
    """One TSV split: texts, labels (0/1 by the task's label order) and
    each example's document."""
    texts: list
    labels: np.ndarray
    documents: list


@dataclasses.dataclass(frozen=True)
class BagOfWordsResult:
    """The row: dev accuracy (`stats.Interval`, a document bootstrap), the
    chosen C, the vocabulary size, the split sizes, per dev example
    whether the prediction was right, and the dev predictions
    (`predictions.DevPredictions`, to pair with other rows in
    `probe_stats`)."""
    accuracy: stats.Interval
    c: float
    vocabulary_size: int
    num_train: int
    num_dev: int
    correct: list
    predictions: predictions.DevPredictions


def read_split(glue_dir, task, split):
    """The `split` ("train" or "dev") of a GLUE-layout task as a `Split`."""
    if task not in glue.PROCESSORS:
        raise UserError(f"task={task!r} is not one of "
                        f"{', '.join(sorted(glue.PROCESSORS))}.")
    processor = glue.PROCESSORS[task]()
    names = processor.get_labels()
    if len(names) != 2:
        raise UserError(f"task={task!r} has {len(names)} labels; the "
                        "bag-of-words row is for two-label tasks (cola, "
                        "sst2).")
    columns = processor.columns[split]
    path = os.path.join(glue_dir, columns.file)
    if not tf.io.gfile.exists(path):
        raise UserError(f"{path!r}: no such file (glue_dir={glue_dir!r}, "
                        f"GLUE's {task} layout).")
    examples = getattr(processor, f"get_{split}_examples")(glue_dir)
    if not examples:
        raise UserError(f"{path!r} holds no examples.")
    documents = predictions.documents(glue_dir, task, split)
    texts = [e.text_a if e.text_b is None else f"{e.text_a} {e.text_b}"
             for e in examples]
    labels = np.array([names.index(e.label) for e in examples])
    return Split(texts, labels, documents)


def vocabulary(texts):
    """{word: column}, the words of `texts` in sorted order."""
    words = sorted({w for text in texts for w in WORD.findall(text.lower())})
    return {word: i for i, word in enumerate(words)}


def counts(texts, vocab):
    """[len(texts), len(vocab)] word counts (scipy CSR, float64)."""
    rows, cols = [], []
    for row, text in enumerate(texts):
        for word in WORD.findall(text.lower()):
            if word in vocab:
                rows.append(row)
                cols.append(vocab[word])
    return sparse.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(vocab)))


def fit(features, labels, c):
    """Logistic regression: (weights, bias) minimising
    `c * sum(log(1 + exp(-s * (x.w + b)))) + w.w / 2`, `s = 2 * label - 1`.
    """
    signs = 2.0 * np.asarray(labels, dtype=np.float64) - 1.0
    width = features.shape[1]

    def split(theta):
        return theta[:width], theta[width]

    def objective(theta):
        weights, bias = split(theta)
        margins = signs * (features @ weights + bias)
        loss = c * np.logaddexp(0.0, -margins).sum() + 0.5 * weights @ weights
        pull = -c * signs * special.expit(-margins)  # d loss / d logit
        return loss, np.append(features.T @ pull + weights, pull.sum())

    def hessian_times(theta, vector):
        weights, bias = split(theta)
        p = special.expit(features @ weights + bias)
        logits = c * p * (1 - p) * (features @ vector[:width] + vector[width])
        return np.append(features.T @ logits + vector[:width], logits.sum())

    # Newton-CG: sparse products only (L-BFGS-B's small BLAS calls crawl
    # when other processes hold the cores).
    result = optimize.minimize(
        objective, np.zeros(width + 1), jac=True, hessp=hessian_times,
        method="Newton-CG", options=dict(maxiter=1000, xtol=1e-10))
    return result.x[:width], float(result.x[width])


def predict(features, weights, bias):
    """Labels (0/1): 1 where the logit is positive."""
    return (features @ weights + bias > 0).astype(int)


def document_folds(documents, folds, seed):
    """Per example, its fold in [0, folds): whole documents, in a seeded
    order, dealt round-robin."""
    order = list(dict.fromkeys(documents))
    if len(order) < 2:
        raise UserError(f"the training set has {len(order)} document; "
                        "choosing C needs at least 2.")
    folds = min(folds, len(order))
    permuted = np.random.default_rng(seed).permutation(len(order))
    fold_of = {order[i]: rank % folds for rank, i in enumerate(permuted)}
    return np.array([fold_of[d] for d in documents])


def choose_c(features, labels, fold, c_grid=C_GRID):
    """The C of `c_grid` with the best summed held-out fold accuracy (the
    first, i.e. smallest of an ascending grid, on a tie)."""
    scores = []
    for c in c_grid:
        score = 0.0
        for k in np.unique(fold):
            train, held = fold != k, fold == k
            weights, bias = fit(features[train], labels[train], c)
            score += np.mean(predict(features[held], weights, bias)
                             == labels[held])
        scores.append(score)
    return c_grid[int(np.argmax(scores))]


def bag_of_words_row(glue_dir, task="cola", *, seed=0, c_grid=C_GRID,
                     folds=FOLDS, samples=10000):
    """Fits on `train`, scores `dev`: a `BagOfWordsResult`.

    Args:
        glue_dir: str. A GLUE-layout task directory (train.tsv, dev.tsv).
        task: str. "cola" (the built probes' layout) or "sst2".
        seed: int. The folds' order and the bootstrap's resampling.
        c_grid: ascending inverse regularisation strengths to choose from.
        folds: int. Cross-validation folds (at most one per document).
        samples: int. Bootstrap resamples.
    """
    train = read_split(glue_dir, task, "train")
    dev = read_split(glue_dir, task, "dev")
    vocab = vocabulary(train.texts)
    x_train, x_dev = counts(train.texts, vocab), counts(dev.texts, vocab)
    c = choose_c(x_train, train.labels,
                 document_folds(train.documents, folds, seed), c_grid)
    weights, bias = fit(x_train, train.labels, c)
    logits = x_dev @ weights + bias
    predicted = predict(x_dev, weights, bias)
    correct = (predicted == dev.labels).astype(int)
    return BagOfWordsResult(
        accuracy=stats.document_bootstrap(correct, dev.documents,
                                          samples=samples, seed=seed),
        c=c, vocabulary_size=len(vocab), num_train=len(train.texts),
        num_dev=len(dev.texts), correct=correct.tolist(),
        predictions=predictions.DevPredictions(
            index=range(len(dev.texts)), documents=dev.documents,
            labels=dev.labels.tolist(), predicted=predicted.tolist(),
            probability=special.expit(np.abs(logits)).tolist()))

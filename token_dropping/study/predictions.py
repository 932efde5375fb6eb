"""A fine-tuning's dev predictions, one row per dev example, as a file.

What `probe.finetune` leaves beside its run so that intervals and paired
comparisons (`probe_stats`) can be computed from the examples, not only from
one accuracy: per dev example (in the dev file's order, Model Garden's
`example_id`) its document, its label, the predicted label and the
probability the model gave that prediction.

The file is a TSV with a header (`COLUMNS`), written atomically
(`common.files.write_text`): a reader finds the whole file or none.

Example:
>>> rows = DevPredictions(index=[0, 1], documents=["doc3", "doc3"],
...                       labels=[1, 0], predicted=[1, 1],
...                       probability=[0.9, 0.6])
>>> write("runs/ft/dev_predictions.tsv", rows)
>>> read("runs/ft/dev_predictions.tsv").accuracy
0.5
"""

import csv
import dataclasses
import io
import os

import numpy as np
import tensorflow as tf

from token_dropping.common import files
from token_dropping.common.errors import UserError
from token_dropping.data import glue

FILE = "dev_predictions.tsv"
COLUMNS = ("index", "document", "label", "predicted", "probability")
DOCUMENT_COLUMN = {"cola": 0}  # tasks whose TSV names each line's document


def documents(glue_dir, task, split):
    """Per example of `split` ("train" or "dev") of a GLUE-layout task, its
    document: CoLA's first column (the built probes' `doc<N>`, real CoLA's
    source paper); in layouts without one (SST-2, MNLI) every example is its
    own (`"<split>-<i>"`)."""
    if task not in glue.PROCESSORS:
        raise UserError(f"task={task!r} is not one of "
                        f"{', '.join(sorted(glue.PROCESSORS))}.")
    processor = glue.PROCESSORS[task]()
    columns = processor.columns[split]
    path = os.path.join(glue_dir, columns.file)
    if not tf.io.gfile.exists(path):
        raise UserError(f"{path!r}: no such file (glue_dir={glue_dir!r}, "
                        f"GLUE's {task} layout).")
    examples = getattr(processor, f"get_{split}_examples")(glue_dir)
    if task not in DOCUMENT_COLUMN:
        return [f"{split}-{i}" for i in range(len(examples))]
    # Model Garden's reader, as the processor's examples use.
    lines = processor._read_tsv(  # pylint: disable=protected-access
        path, quotechar=None)
    return [line[DOCUMENT_COLUMN[task]]
            for line in lines[1 if columns.header else 0:]]


def dev_documents(glue_dir, task):
    """`documents(glue_dir, task, "dev")`: what `finetune_run` takes."""
    return documents(glue_dir, task, "dev")


@dataclasses.dataclass(frozen=True)
class DevPredictions:
    """Per dev example: `index` (its position in the dev file), `documents`
    (its document, a string), `labels`, `predicted` (label ids) and
    `probability` (of the predicted label). Sequences of equal length,
    sorted by `index`."""
    index: tuple
    documents: tuple
    labels: tuple
    predicted: tuple
    probability: tuple

    def __post_init__(self):
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name,
                               tuple(getattr(self, field.name)))
        sizes = {len(getattr(self, f.name)) for f in dataclasses.fields(self)}
        if len(sizes) != 1:
            raise UserError(f"dev predictions: columns of lengths "
                            f"{sorted(sizes)}; give one value per example.")
        if list(self.index) != sorted(self.index):
            raise UserError("dev predictions: give the examples sorted by "
                            "index.")

    @property
    def correct(self):
        """Per example, 1.0 if the prediction is the label, else 0.0."""
        return (np.asarray(self.predicted) == np.asarray(self.labels)).astype(
            np.float64)

    @property
    def accuracy(self):
        return float(self.correct.mean()) if self.index else float("nan")


def write(path, predictions):
    """Writes `predictions` (a `DevPredictions`) to `path` atomically."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in zip(predictions.index, predictions.documents,
                   predictions.labels, predictions.predicted,
                   predictions.probability):
        i, document, label, predicted, probability = row
        writer.writerow((int(i), document, int(label), int(predicted),
                         repr(float(probability))))
    files.write_text(path, out.getvalue())


def read(path):
    """The `DevPredictions` of a file `write` made.

    Raises:
        UserError: no such file, or a file in another layout.
    """
    if not tf.io.gfile.exists(path):
        raise UserError(f"{path!r}: no such file (dev predictions of a "
                        "fine-tuning).")
    with tf.io.gfile.GFile(path) as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows or tuple(rows[0]) != COLUMNS:
        raise UserError(f"{path!r}: its header is not "
                        f"{chr(9).join(COLUMNS)!r}; not a dev predictions "
                        "file.")
    try:
        index, documents, labels, predicted, probability = zip(
            *[(int(r[0]), r[1], int(r[2]), int(r[3]), float(r[4]))
              for r in rows[1:]]) if rows[1:] else ((),) * 5
    except (ValueError, IndexError):
        raise UserError(f"{path!r}: a row is not index, document, label, "
                        "predicted, probability.") from None
    return DevPredictions(index, documents, labels, predicted, probability)

"""The floor a context-blind model cannot beat: unigram cross-entropy.

A masked-LM that ignores context can at best predict every masked piece with
the pieces' frequencies. `unigram_cross_entropy` measures that floor on the
records a study trains and validates on: the piece frequencies are counted
over the training records' masked-LM targets (`masked_lm_ids` with weight
> 0, the very distribution the loss is taken over), add-one smoothed over the
vocabulary, and the cross-entropy is the mean negative log-probability of the
validation records' targets. A pretrained model's validation MLM loss below
it is what the model learned from context.

Example:
>>> floor = unigram_cross_entropy("data/train-*", "data/validation-*", 7810)
>>> round(floor.cross_entropy, 2)
6.45

Reads Model Garden's static pretraining records (`BertPretrainDataLoader`'s
features), with `tf.data` so globs may name Cloud Storage.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from token_dropping.common.errors import UserError


@dataclasses.dataclass(frozen=True)
class Unigram:
    """The unigram floor of a pair of record sets.

    Attributes:
        cross_entropy: nats per masked validation target.
        train_targets: masked targets counted in the training records.
        validation_targets: masked targets scored in the validation records.
    """
    cross_entropy: float
    train_targets: int
    validation_targets: int


def _files(pattern, what):
    files = sorted(f for p in str(pattern).split(",") if p
                   for f in tf.io.gfile.glob(p))
    if not files:
        raise UserError(f"{what}={pattern!r} matches no files.")
    return files


def masked_targets(pattern, what="input_path"):
    """The masked-LM target ids (weight > 0) of every record, in file order."""
    features = {
        "masked_lm_ids": tf.io.VarLenFeature(tf.int64),
        "masked_lm_weights": tf.io.VarLenFeature(tf.float32),
    }
    dataset = tf.data.TFRecordDataset(_files(pattern, what)).batch(1024).map(
        lambda records: tf.io.parse_example(records, features))
    ids = []
    for batch in dataset:
        targets = tf.sparse.to_dense(batch["masked_lm_ids"]).numpy()
        weights = tf.sparse.to_dense(batch["masked_lm_weights"]).numpy()
        ids.append(targets[weights > 0])
    return np.concatenate(ids) if ids else np.zeros([0], np.int64)


def unigram_cross_entropy(train_pattern, validation_pattern, vocab_size):
    """The validation targets' cross-entropy under the training frequencies.

    Args:
        train_pattern, validation_pattern: comma-separated globs of static
            pretraining records.
        vocab_size: int. Pieces the smoothing spreads one count over.

    Returns:
        A `Unigram`.

    Raises:
        UserError: no files, no targets, or an id outside the vocabulary.
    """
    train = masked_targets(train_pattern, "train_input_path")
    validation = masked_targets(validation_pattern, "validation_input_path")
    for name, ids in (("training", train), ("validation", validation)):
        if not ids.size:
            raise UserError(f"The {name} records have no masked targets.")
        if ids.min() < 0 or ids.max() >= vocab_size:
            raise UserError(
                f"The {name} records hold target id {int(ids.max())} outside "
                f"vocab_size={vocab_size}.")
    counts = np.bincount(train, minlength=vocab_size) + 1.0
    log_p = np.log(counts) - np.log(counts.sum())
    return Unigram(float(-log_p[validation].mean()), int(train.size),
                   int(validation.size))

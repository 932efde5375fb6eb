"""unigram.py: the context-blind floor, against numpy on handmade records."""

import numpy as np
import pytest
import tensorflow as tf

from token_dropping.study import unigram
from token_dropping.common.errors import UserError


def _write(path, targets):
    """Records whose masked targets are `targets` (a list of id lists);
    weight 0 pads each to 4 with a decoy id that must not be counted."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for ids in targets:
            padded = list(ids) + [7] * (4 - len(ids))
            weights = [1.0] * len(ids) + [0.0] * (4 - len(ids))
            feature = dict(
                masked_lm_ids=tf.train.Feature(
                    int64_list=tf.train.Int64List(value=padded)),
                masked_lm_weights=tf.train.Feature(
                    float_list=tf.train.FloatList(value=weights)),
                masked_lm_positions=tf.train.Feature(
                    int64_list=tf.train.Int64List(value=[1, 2, 3, 4])))
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature)).SerializeToString())
    return str(path)


def test_cross_entropy_matches_numpy(tmp_path):
    train = [[1, 1, 2], [3, 1], [2, 2, 2, 1]]
    validation = [[1, 2], [4], [3, 3, 1]]
    _write(tmp_path / "train-0", train[:2])
    _write(tmp_path / "train-1", train[2:])
    _write(tmp_path / "valid-0", validation)
    vocab_size = 9

    # By hand: counts of the weighted training targets, plus one each.
    counts = np.ones(vocab_size)
    for ids in train:
        for i in ids:
            counts[i] += 1
    probabilities = counts / counts.sum()
    expected = -np.mean([np.log(probabilities[i])
                         for ids in validation for i in ids])

    floor = unigram.unigram_cross_entropy(
        str(tmp_path / "train-*"), str(tmp_path / "valid-*"), vocab_size)
    assert floor.cross_entropy == pytest.approx(expected, rel=1e-12)
    assert floor.train_targets == 9
    assert floor.validation_targets == 6


def test_bad_inputs_are_one_line(tmp_path):
    _write(tmp_path / "t", [[1, 8]])
    with pytest.raises(UserError, match="matches no files"):
        unigram.unigram_cross_entropy(str(tmp_path / "nothing-*"),
                                      str(tmp_path / "t"), 9)
    with pytest.raises(UserError, match="target id 8 outside vocab_size=5"):
        unigram.unigram_cross_entropy(str(tmp_path / "t"),
                                      str(tmp_path / "t"), 5)

"""Writes tiny pretraining records in Model Garden's format, for tests.

The features are those `BertPretrainDataLoader` parses with
`use_v2_feature_names: true`: input_word_ids, input_mask, input_type_ids,
masked_lm_positions, masked_lm_ids, masked_lm_weights.
"""

import numpy as np
import tensorflow as tf

CLS, SEP, MASK = 101, 102, 103


def write_records(path, num_examples=16, seq_length=32, max_predictions=5,
                  vocab_size=200, seed=0):
    rng = np.random.RandomState(seed)
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(num_examples):
            length = rng.randint(seq_length // 2, seq_length + 1)
            ids = np.zeros(seq_length, np.int64)
            words = rng.randint(1, vocab_size, size=length)
            words[(words >= 100) & (words <= 103)] = 7  # no special ids
            ids[:length] = words
            ids[0], ids[length - 1] = CLS, SEP
            mask = (np.arange(seq_length) < length).astype(np.int64)
            count = min(max_predictions, length - 2)
            positions = np.zeros(max_predictions, np.int64)
            positions[:count] = np.sort(rng.choice(
                np.arange(1, length - 1), size=count, replace=False))
            labels = np.zeros(max_predictions, np.int64)
            labels[:count] = ids[positions[:count]]
            weights = (np.arange(max_predictions) < count).astype(np.float32)
            ids[positions[:count]] = MASK
            feature = dict(
                input_word_ids=_ints(ids), input_mask=_ints(mask),
                input_type_ids=_ints(np.zeros(seq_length, np.int64)),
                masked_lm_positions=_ints(positions),
                masked_lm_ids=_ints(labels),
                masked_lm_weights=tf.train.Feature(
                    float_list=tf.train.FloatList(value=weights)))
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature)).SerializeToString())
    return path


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

"""tf.Example bytes in the formats of Model Garden's pretraining loaders.

`static_example` writes the v2 features `BertPretrainDataLoader` reads
(`use_v2_feature_names=True`, no next-sentence label); `text_example` writes
the `text` feature `BertPretrainTextDataLoader` tokenizes and masks itself.
"""

import tensorflow as tf


def _int_feature(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def static_example(masked, positions, labels, seq_length,
                   max_predictions_per_seq, pad_id) -> bytes:
    """Model Garden's v2 pretraining features (see BertPretrainDataLoader)."""
    num_tokens, num_targets = len(masked), len(positions)
    token_padding = seq_length - num_tokens
    target_padding = max_predictions_per_seq - num_targets
    features = {
        "input_word_ids": _int_feature(
            masked.tolist() + [pad_id] * token_padding),
        "input_mask": _int_feature([1] * num_tokens + [0] * token_padding),
        "input_type_ids": _int_feature([0] * seq_length),
        "masked_lm_positions": _int_feature(
            positions.tolist() + [0] * target_padding),
        "masked_lm_ids": _int_feature(labels.tolist() + [0] * target_padding),
        "masked_lm_weights": tf.train.Feature(float_list=tf.train.FloatList(
            value=[1.0] * num_targets + [0.0] * target_padding)),
    }
    return serialize(features)


def text_example(text: str) -> bytes:
    return serialize({"text": tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))})


def serialize(features: dict) -> bytes:
    """A tf.Example's bytes, the same in every process.

    Protobuf writes map entries (the feature names) in an order that varies
    between processes unless asked to sort them.
    """
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString(deterministic=True)

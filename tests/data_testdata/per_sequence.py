"""The per-sequence masking and serialization the builder used before they
were vectorised (commit 84e6032), kept verbatim as the reference the batch
path must match byte for byte: one `MaskedLmMasker.mask` call and one
`tf.train.Example` per record. `write_static` puts them in a `SplitWriter`
(for `monkeypatch.setattr(SplitWriter, "_write_static", write_static)`)."""

import numpy as np
import tensorflow as tf


def mask(masker, token_ids, rng: np.random.Generator):
    """`MaskedLmMasker.mask` as it was, reading the masker's settings."""
    token_ids = np.asarray(token_ids, np.int64)
    num_to_predict = min(
        masker.max_predictions_per_seq,
        max(1, int(round(len(token_ids) * masker.masked_lm_prob))))
    candidates = np.flatnonzero(~np.isin(token_ids, masker.special_ids))
    if masker.continuation_ids is None:
        positions = rng.permutation(candidates)[:num_to_predict]
        word_lengths = np.ones_like(positions)
    else:
        words = _choose_words(masker, token_ids, candidates, num_to_predict,
                              rng)
        positions = (np.concatenate(words) if words
                     else np.zeros([0], np.int64))
        word_lengths = np.array([len(word) for word in words], np.int64)
    action = np.repeat(rng.random(len(word_lengths)), word_lengths)
    keep = np.repeat(rng.random(len(word_lengths)), word_lengths)
    random_ids = rng.choice(masker.replacement_ids, size=len(positions))
    masked = token_ids.copy()
    masked[positions[action < 0.8]] = masker.mask_id
    replace = (action >= 0.8) & (keep >= 0.5)
    masked[positions[replace]] = random_ids[replace]
    positions = np.sort(positions).astype(np.int64)
    return masked, positions, token_ids[positions]


def _choose_words(masker, token_ids, candidates, num_to_predict, rng):
    is_continuation = np.zeros(len(token_ids), bool)
    is_continuation[candidates] = np.isin(token_ids[candidates],
                                          masker.continuation_ids)
    words = []
    for start in candidates[~is_continuation[candidates]]:
        end = start + 1
        while end < len(token_ids) and is_continuation[end]:
            end += 1
        words.append(np.arange(start, end))
    chosen, total = [], 0
    for index in rng.permutation(len(words)):
        if total + len(words[index]) <= num_to_predict:
            chosen.append(words[index])
            total += len(words[index])
        if total == num_to_predict:
            break
    return chosen


def _int_feature(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def static_example(masked, positions, labels, seq_length,
                   max_predictions_per_seq, pad_id) -> bytes:
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
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString(deterministic=True)


def write_static(self):
    """`SplitWriter._write_static` as the builder did it before: for each
    pending sequence, `dupe_factor` times, a `mask` call and a tf.Example,
    each timed as its own profile stage."""
    sequences, self._pending = self._pending, []
    profile = self.profile
    for ids in sequences:
        for _ in range(self.dupe_factor):
            profile.push("mask")
            masked, positions, labels = mask(self.masker, ids, self.rng)
            profile.pop()
            profile.push("serialize")
            record = static_example(
                masked, positions, labels, self.config.seq_length,
                self.config.max_predictions_per_seq, self.special["pad_id"])
            profile.pop()
            self._write(record)

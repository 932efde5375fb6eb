"""The batch masking and serialization write today's records, byte for byte.

The reference is the per-sequence code the builder used before
(`data_testdata/per_sequence.py`: one `mask` call with its own generator draws
and one `tf.train.Example` per record), and the SHA-256 of records that code
wrote at commit 84e6032, so that the reference itself cannot drift.
"""

import hashlib
import os

import numpy as np
import pytest
import tensorflow as tf

from data_testdata import bert_format, per_sequence, tiny_documents, write_text
from token_dropping.data import PrepareDataConfig, build_pretraining_data
from token_dropping.data import examples
from token_dropping.data import masking
from token_dropping.data import split_writer

BUILDS = {
    "packed": dict(),
    "whole_word": dict(whole_word_masking=True, vocab_size=200),
    "unpacked": dict(packed=False),
    # Positions past 127 take two varint bytes.
    "long": dict(seq_length=160, max_predictions_per_seq=24,
                 masked_lm_prob=0.2, whole_word_masking=True, vocab_size=200),
}
# sha256sum of the records the per-sequence code wrote (commit 84e6032).
MAIN_SHA256 = {
    "packed": ("602e0aa3e9591c0860e80ad91cb5d40218ca6197ff1460be6376e83dd0902010",
               "5dd175a1181374936614db6e0ce7885e2a456d1133383055f3ba277d240471c2",
               "5cd2041c32f82801a2996943392e8247d2fdf8285ac290368db8911eaf38a6b6"),
    "whole_word": (
        "ff0dca7a5ada01f71e3d3ca22c69e9ef6f2d35975e60aa30dcae44ca2d6e822a",
        "9fba6e0f235edf8fa83453115b5a5eeb44c2fa803f3fdfcab578ce65a58f44fe",
        "768746d64c9dd3844aeb98ee4876ffc4c0dbb3bca3f4488d0dbd050af11205c9"),
    "unpacked": (
        "fb8d839a64c0302fad7657dea64ce6ee8b2ea8f9915c5d0a2fd748c3974cb2d9",
        "134906befb8f65c520b415350520162ca06c881b31488f1a654079492a7119f9",
        "a9d4528a2e26a0aa00f04885291fdf993667f936a7578580a57829b1b53637f0"),
    "long": ("773ee5f56371fb441fad18e32ad905568ef1a497f4a4e5e468c66c0443239a86",
             "9fbc72555ccb60f46d09007b7a6e898db1f9c3c460b2c07afab077c8fb95e114",
             "60b8c5d73c0ec3e7886425908d046f3d843b228457f27735ab7bc5c5f4cd7ef8"),
}
SHARDS = ("train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord",
          "validation-00000-of-00001.tfrecord")


def _random_masker(rng, whole_word):
    """Ids 1..59: 1 and 2 special, 3 [MASK], 40..59 continuations."""
    return masking.MaskedLmMasker(
        mask_id=3, special_ids=[1, 2], replacement_ids=np.arange(10, 60),
        max_predictions_per_seq=int(rng.integers(1, 12)),
        masked_lm_prob=float(rng.choice([0.15, 0.3, 0.5, 1.0])),
        continuation_ids=np.arange(40, 60) if whole_word else None)


@pytest.mark.parametrize("whole_word", [False, True], ids=["pieces", "words"])
def test_mask_batch_equals_one_mask_call_per_sequence(whole_word):
    # Specials and continuations anywhere, empty sequences, all-special ones.
    for trial in range(150):
        rng = np.random.default_rng(trial)
        masker = _random_masker(rng, whole_word)
        sequences = [rng.integers(1, 60, size=int(rng.integers(0, 40)))
                     for _ in range(int(rng.integers(1, 9)))] + [[1, 2]]
        repeats = int(rng.integers(1, 4))
        ours, theirs = (np.random.default_rng([trial, 1]) for _ in range(2))
        batch = masker.mask_batch(sequences, ours, repeats=repeats)
        row = 0
        for sequence in sequences:
            for _ in range(repeats):
                masked, positions, labels = per_sequence.mask(
                    masker, sequence, theirs)
                length, count = batch.lengths[row], batch.num_targets[row]
                np.testing.assert_array_equal(batch.masked[row, :length],
                                              masked)
                np.testing.assert_array_equal(
                    batch.positions[row], np.pad(
                        positions, (0, masker.max_predictions_per_seq - count)))
                np.testing.assert_array_equal(batch.labels[row, :count], labels)
                assert not batch.labels[row, count:].any()
                row += 1
        assert row == len(batch.lengths)
        # The next draw is the same: both consumed the same bits.
        assert ours.bit_generator.state == theirs.bit_generator.state


def test_number_of_targets_rounds_like_python_round():
    masker = masking.MaskedLmMasker(3, [1, 2], np.arange(10, 20), 10_000,
                                    masked_lm_prob=0.5)
    # Lengths 2k+1 at rate 0.5 land exactly on .5: half to even, both ways.
    for rate in (0.5, 0.15, 0.1, 0.3):
        masker.masked_lm_prob = rate
        lengths = np.arange(1, 400)
        batch = masker.mask_batch([np.full(n, 7) for n in lengths],
                                  np.random.default_rng(0))
        expected = [max(1, int(round(n * rate))) for n in lengths]
        np.testing.assert_array_equal(batch.num_targets, expected)


def test_static_examples_are_tf_example_bytes():
    for trial in range(60):
        rng = np.random.default_rng(trial)
        seq_length, width = int(rng.integers(1, 300)), int(rng.integers(1, 40))
        # Up to 2**40: varints of 1 to 6 bytes.
        top = int(rng.choice([50, 200, 20_000, 3_000_000, 2**40]))
        lengths = rng.integers(0, seq_length + 1, size=int(rng.integers(1, 9)))
        counts = np.minimum(rng.integers(0, width + 1, len(lengths)), lengths)
        rows = [(rng.integers(0, top, n),
                 np.sort(rng.choice(seq_length, k, replace=False)),
                 rng.integers(0, top, k)) for n, k in zip(lengths, counts)]
        batch = masking.MaskedBatch(
            np.stack([np.pad(m, (0, seq_length - len(m))) for m, _, _ in rows]),
            lengths,
            *(np.stack([np.pad(r[i], (0, width - len(r[i]))) for r in rows])
              for i in (1, 2)),
            counts)
        pad_id = int(rng.choice([0, 1, 999]))
        records = examples.static_examples(batch, seq_length, width, pad_id)
        for record, (masked, positions, labels) in zip(records, rows):
            assert record == per_sequence.static_example(
                masked, positions, labels, seq_length, width, pad_id)
    parsed = tf.train.Example.FromString(record).features.feature
    assert list(parsed["masked_lm_ids"].int64_list.value) == (
        labels.tolist() + [0] * (width - len(labels)))
    assert list(parsed["input_mask"].int64_list.value) == (
        [1] * len(masked) + [0] * (seq_length - len(masked)))


def test_static_examples_rejects_a_row_longer_than_seq_length():
    batch = masking.MaskedBatch(np.ones([1, 5], np.int64), np.array([5]),
                                np.zeros([1, 2], np.int64),
                                np.zeros([1, 2], np.int64), np.array([0]))
    with pytest.raises(ValueError, match="5 tokens does not fit seq_length=4"):
        examples.static_examples(batch, 4, 2, 0)


def _records(path):
    return [r.numpy() for r in tf.data.TFRecordDataset(path)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_text(tmp_path_factory.mktemp("corpus") / "docs.txt",
                      bert_format(tiny_documents(80, seed=11,
                                                 max_sentences=12)))


@pytest.mark.parametrize("name", list(BUILDS))
def test_builds_write_the_per_sequence_records(name, corpus, tmp_path,
                                               monkeypatch):
    config = PrepareDataConfig(**dict(
        dict(input_files=corpus, vocab_size=300, seq_length=32,
             max_predictions_per_seq=5, dupe_factor=3, validation_fraction=0.2,
             num_train_shards=2, shuffle_buffer_size=50), **BUILDS[name]))
    # Several batches per split, the last one partial.
    monkeypatch.setattr(split_writer, "_MASK_BATCH_SEQUENCES", 7)
    build_pretraining_data(config, str(tmp_path / "batch"))
    monkeypatch.setattr(split_writer.SplitWriter, "_write_static",
                        per_sequence.write_static)
    build_pretraining_data(config, str(tmp_path / "reference"))
    for shard, expected in zip(SHARDS, MAIN_SHA256[name]):
        ours, reference = (str(tmp_path / d / shard)
                           for d in ("batch", "reference"))
        assert _records(ours) == _records(reference), shard
        assert len(_records(ours)) > 7
        for path in (ours, reference):
            with open(path, "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == expected, path
    assert sorted(os.listdir(tmp_path / "batch")) == sorted(
        os.listdir(tmp_path / "reference"))

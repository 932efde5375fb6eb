"""WordPieceIds against tensorflow-text's BertTokenizer, the reference the
records have always used: the same ids, and byte-identical records."""

import os
import random

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text

from data_testdata import bert_format, tiny_documents, write_lines, write_text
from token_dropping.data import PrepareDataConfig, build_pretraining_data
from token_dropping.data import vocab
from token_dropping.data import wordpiece

# Every range of the fast path's safe set (see wordpiece._FAST_SAFE).
SAFE_RANGES = ((0x1, 0x9f), (0xa1, 0xfff), (0x2010, 0x2027),
               (0x2030, 0x205e), (0x20a0, 0x20cf))
SAFE = [c for lo, hi in SAFE_RANGES for c in range(lo, hi + 1)]
# Characters on which the two tokenizers differ, and some outside the set.
UNSAFE = "\u00a0\u1680\u2003\u2028\u2029\u202f\u3000\u1b4e \U0001f600\u65e5"
PROSE = [
    "Caf\u00e9 na\u00efve \u00dcber Stra\u00dfe r\u00e9sum\u00e9 "
    "d\u00e9j\u00e0 vu.",
    "\u00c9l\u00e8ve \u201cquoted\u201d \u2014 dash\u2026 \u00a35 \u20ac7.",
    "\u0391\u03b8\u03ae\u03bd\u03b1 \u041c\u043e\u0441\u043a\u0432\u0430 "
    "\u05e2\u05d1\u05e8\u05d9\u05ea "
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629.",
]


@pytest.fixture(scope="module", params=[True, False], ids=["uncased", "cased"])
def tokenizers(request, tmp_path_factory):
    """A vocab learned from mixed prose, and both tokenizers on it."""
    lower_case = request.param
    sentences = [s for d in tiny_documents(60, seed=4) for s in d] + PROSE * 5
    tokens = vocab.learn_vocab(iter(sentences), 500, lower_case=lower_case)
    path = write_lines(tmp_path_factory.mktemp("vocab") / "vocab.txt", tokens)
    reference = tf_text.BertTokenizer(path, lower_case=lower_case,
                                      token_out_type=tf.int64)
    return wordpiece.WordPieceIds(path, tokens, lower_case), reference


def _reference_ids(reference, sentences):
    ragged = reference.tokenize(tf.constant(sentences)).merge_dims(-2, -1)
    return ragged.flat_values.numpy(), ragged.row_splits.numpy()


def _assert_same_ids(ours, expected, sentences):
    (flat, splits), (ref_flat, ref_splits) = ours, expected
    rows = np.flatnonzero(np.diff(splits) != np.diff(ref_splits))
    assert not len(rows), [sentences[i] for i in rows[:5]]
    different = np.flatnonzero(flat != ref_flat)
    assert not len(different), sentences[np.searchsorted(
        ref_splits, different[0], side="right") - 1]


def test_every_safe_character_gives_the_reference_ids(tokenizers):
    ids, reference = tokenizers
    assert ids.fast is not None
    for context in ("{}", "a{}b", "the {} cat", "{}{}", "don{}t 1{}2"):
        sentences = [context.replace("{}", chr(c)) for c in SAFE]
        assert all(wordpiece._FAST_SAFE.fullmatch(s) for s in sentences)
        _assert_same_ids(ids._fast(sentences),
                         _reference_ids(reference, sentences), sentences)


def test_random_mixtures_of_safe_characters_give_the_reference_ids(
        tokenizers):
    ids, reference = tokenizers
    rng = random.Random(0)
    words = " ".join(PROSE).split() + ["e\u0301t\u00e9", "x" * 120, "A.B"]
    sentences = []
    for _ in range(4000):
        parts = [rng.choice(words) if rng.random() < 0.5 else "".join(
            chr(rng.choice(SAFE)) for _ in range(rng.randint(1, 4)))
            for _ in range(rng.randint(1, 12))]
        sentences.append(rng.choice(["", " ", "  "]).join(parts))
    _assert_same_ids(ids._fast(sentences),
                     _reference_ids(reference, sentences), sentences)


def test_mixed_batches_come_back_in_order_with_the_reference_ids(tokenizers):
    ids, reference = tokenizers
    rng = random.Random(1)
    sentences = PROSE + ["", "plain ascii words.", "nul\x00byte"] + [
        f"word {c} word" for c in UNSAFE] + [
        rng.choice(PROSE) + rng.choice(UNSAFE) for _ in range(200)]
    rng.shuffle(sentences)
    _assert_same_ids(ids.tokenize(sentences),
                     _reference_ids(reference, sentences), sentences)
    # The unsafe characters are unsafe: the fast tokenizer alone differs.
    unsafe = [f"a{c}b" for c in UNSAFE]
    fast_flat, fast_splits = ids._fast(unsafe)
    ref_flat, ref_splits = _reference_ids(reference, unsafe)
    assert not (np.array_equal(fast_splits, ref_splits) and
                np.array_equal(fast_flat, ref_flat))


@pytest.mark.parametrize("output_format", ["static", "text"])
def test_records_are_byte_identical_to_the_reference_path(
        tmp_path, monkeypatch, output_format):
    documents = tiny_documents(40, seed=5)
    # No spaces around the unsafe characters: a wrong path changes the ids.
    extra = PROSE + [f"Odd{c}spaced words." for c in UNSAFE]
    for i, sentence in enumerate(extra):
        documents[i % 40].append(sentence)
    files = write_text(tmp_path / "docs.txt", bert_format(documents))
    config = PrepareDataConfig(
        input_files=files, vocab_size=400, seq_length=32,
        max_predictions_per_seq=5, num_train_shards=2,
        output_format=output_format)
    routed = {"fast": 0, "reference": 0}
    for path, method in (("fast", "_fast"), ("reference", "_reference")):
        original = getattr(wordpiece.WordPieceIds, method)

        def counted(self, sentences, original=original, path=path):
            routed[path] += len(sentences)
            return original(self, sentences)
        monkeypatch.setattr(wordpiece.WordPieceIds, method, counted)
    build_pretraining_data(config, str(tmp_path / "fast"))
    assert routed["fast"] > routed["reference"] > 0
    monkeypatch.setattr(wordpiece, "USE_FAST", False)
    build_pretraining_data(config, str(tmp_path / "reference"))
    names = sorted(os.listdir(tmp_path / "fast"))
    assert names == sorted(os.listdir(tmp_path / "reference"))
    for name in names:
        assert (tmp_path / "fast" / name).read_bytes() == (
            tmp_path / "reference" / name).read_bytes(), name

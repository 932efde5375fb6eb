"""Vocabularies: BERT's layout when learned, ids looked up for any layout."""

import json

import pytest
import tensorflow as tf
import tensorflow_text as tf_text

from data_testdata import tiny_documents, write_lines
from token_dropping.common.errors import UserError
from token_dropping.data import vocab


@pytest.fixture(scope="module")
def learned():
    sentences = [s for d in tiny_documents(60) for s in d]
    return sentences, vocab.learn_vocab(sentences, vocab_size=300)


def test_learned_vocab_has_bert_special_ids_and_size(learned):
    _, tokens = learned
    assert len(tokens) <= 300
    assert len(tokens) == len(set(tokens))
    assert tokens[0] == "[PAD]"
    assert tokens[1:100] == [f"[unused{i}]" for i in range(99)]
    assert tokens[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert "the" in tokens and "##s" in tokens


def test_learned_vocab_tokenizes_its_corpus_without_unknowns(learned, tmp_path):
    sentences, tokens = learned
    path = write_lines(tmp_path / "vocab.txt", tokens)
    tokenizer = tf_text.BertTokenizer(path, lower_case=True,
                                      token_out_type=tf.int64)
    ids = tokenizer.tokenize(sentences).flat_values.numpy()
    assert ids.size > 0 and (ids != 100).all() and (ids >= 104).all()


def test_special_token_ids_for_bert_layout(learned, tmp_path):
    _, tokens = learned
    path = write_lines(tmp_path / "vocab.txt", tokens)
    assert vocab.special_token_ids(path) == {
        "vocab_size": len(tokens), "pad_id": 0, "unk_id": 100, "cls_id": 101,
        "sep_id": 102, "mask_id": 103, "token_allow_list": [100, 101, 102, 103],
        "token_deny_list": [0]}


def test_special_token_ids_follow_another_layout(tmp_path):
    # Like many converted vocabs: specials first, in another order.
    tokens = ["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "a", "b", "##c"]
    path = write_lines(tmp_path / "vocab.txt", tokens)
    out = tmp_path / "special_tokens.json"
    ids = vocab.write_special_tokens(path, str(out))
    assert ids == {"vocab_size": 8, "pad_id": 3, "unk_id": 4, "cls_id": 0,
                   "sep_id": 1, "mask_id": 2, "token_allow_list": [4, 0, 1, 2],
                   "token_deny_list": [3]}
    assert json.loads(out.read_text()) == ids


def test_vocab_without_special_tokens_is_rejected_by_name(tmp_path):
    path = write_lines(tmp_path / "vocab.txt", ["[PAD]", "[UNK]", "[CLS]", "a"])
    with pytest.raises(ValueError, match=r"has no \[SEP\], \[MASK\] token"):
        vocab.special_token_ids(path)
    with pytest.raises(ValueError, match="does not exist"):
        vocab.special_token_ids(str(tmp_path / "missing.txt"))


def test_a_vocab_of_special_tokens_only_is_rejected(tmp_path):
    """Masking's random replacements had no word piece to draw from (a
    numpy "high <= 0" from prepare_data)."""
    path = write_lines(tmp_path / "specials.txt",
                       ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]",
                        "[MASK]"])
    with pytest.raises(UserError) as error:
        vocab.read_vocab(str(path))
    assert str(error.value) == (
        f"vocab_file={str(path)!r} has only special tokens (6, all [...]); a "
        "WordPiece vocab needs word pieces too.")
    assert not vocab.is_special("##s") and vocab.is_special("[unused7]")


def test_too_small_vocab_size_is_rejected():
    with pytest.raises(ValueError, match="vocab_size=150 is too small"):
        vocab.learn_vocab(["some text here"], vocab_size=150)

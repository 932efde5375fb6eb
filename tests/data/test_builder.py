"""build_pretraining_data end to end on tiny text files, read back through
Model Garden's own data loaders."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text
from official.nlp.data import pretrain_dataloader
from official.nlp.data import pretrain_text_dataloader

from data_testdata import bert_format, tiny_documents, write_lines, write_text
from token_dropping.data import builder
from token_dropping.data import vocab
from token_dropping.data import PrepareDataConfig, build_pretraining_data

SEQ, PRED = 48, 8
FEATURES = {"input_word_ids": tf.int32, "input_mask": tf.int32,
            "input_type_ids": tf.int32, "masked_lm_positions": tf.int32,
            "masked_lm_ids": tf.int32, "masked_lm_weights": tf.float32}


def _config(input_files, **kwargs):
    defaults = dict(input_files=input_files, vocab_size=300, seq_length=SEQ,
                    max_predictions_per_seq=PRED, dupe_factor=1,
                    shuffle_buffer_size=1, num_train_shards=1,
                    validation_fraction=0.0)
    defaults.update(kwargs)
    return PrepareDataConfig(**defaults)


def _examples(info, split="train"):
    """Every example of a split through Model Garden's loader, in file order."""
    config = info.data_config(split, global_batch_size=1, is_training=False)
    if info.data_format == "bert_pretrain_text":
        loader = pretrain_text_dataloader.BertPretrainTextDataLoader(config)
    else:
        loader = pretrain_dataloader.BertPretrainDataLoader(config)
    dataset = loader.load()
    return dataset, [{k: v[0] for k, v in x.items()}
                     for x in dataset.as_numpy_iterator()]


def _unmasked_stream(examples):
    """The original ids of all examples, end to end, without specials."""
    stream = []
    for x in examples:
        ids = x["input_word_ids"].copy()
        real = x["masked_lm_weights"] > 0
        ids[x["masked_lm_positions"][real]] = x["masked_lm_ids"][real]
        stream.extend(ids[x["input_mask"] == 1].tolist())
    return stream


def _tokenize(vocab_file, sentences):
    tokenizer = tf_text.BertTokenizer(vocab_file, lower_case=True,
                                      token_out_type=tf.int64)
    return tokenizer.tokenize(sentences).merge_dims(-2, -1).flat_values.numpy()


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    """40 documents over three files: two plain, one gzipped, two globs."""
    root = tmp_path_factory.mktemp("corpus")
    documents = tiny_documents(40, seed=1)
    for i, part in enumerate((documents[:15], documents[15:30])):
        write_text(root / f"part{i}.txt", bert_format(part))
    write_text(root / "extra.txt.gz", bert_format(documents[30:]), gz=True)
    return f"{root}/part*.txt,{root}/*.gz", documents


@pytest.fixture(scope="module")
def static_info(corpus_files, tmp_path_factory):
    files, _ = corpus_files
    return build_pretraining_data(_config(files),
                                  str(tmp_path_factory.mktemp("static")))


def test_static_records_have_exactly_the_features_the_task_reads(static_info):
    dataset, examples = _examples(static_info)
    assert {k: (v.shape.as_list(), v.dtype)
            for k, v in dataset.element_spec.items()} == {
        k: ([1, PRED] if k.startswith("masked") else [1, SEQ], dtype)
        for k, dtype in FEATURES.items()}
    assert len(examples) == static_info.num_train_examples > 0
    for x in examples:
        num_tokens = int(x["input_mask"].sum())
        num_targets = min(PRED, max(1, int(round(num_tokens * 0.15))))
        np.testing.assert_array_equal(
            x["masked_lm_weights"],
            np.r_[np.ones(num_targets), np.zeros(PRED - num_targets)])
        assert (x["masked_lm_positions"][num_targets:] == 0).all()
        assert (x["masked_lm_ids"][num_targets:] == 0).all()
        assert (x["input_type_ids"] == 0).all()
        assert x["input_word_ids"][0] == 101
        assert x["input_word_ids"][num_tokens - 1] == 102
        assert (x["input_word_ids"][num_tokens:] == 0).all()


def test_static_records_hold_the_corpus_tokens_in_order(static_info,
                                                         corpus_files):
    _, documents = corpus_files
    _, examples = _examples(static_info)
    stream = [i for i in _unmasked_stream(examples) if i not in (101, 102)]
    expected = _tokenize(static_info.vocab_file,
                         [s for d in documents for s in d])
    np.testing.assert_array_equal(stream, expected)


def test_manifest_and_special_tokens_describe_the_records(static_info):
    manifest = json.load(open(static_info.manifest_path))
    assert manifest["format"] == "bert_pretrain_v2"
    assert manifest["feature_names"] == list(FEATURES)
    assert manifest["seq_length"] == SEQ
    assert manifest["source"]["name"] == "text_files"
    assert len(manifest["source"]["files"]) == 3
    assert manifest["splits"]["train"]["num_documents"] == 40
    with open(static_info.vocab_file) as f:
        assert static_info.vocab_size == len(f.read().splitlines())
    assert json.load(open(static_info.special_tokens_path))[
        "token_allow_list"] == [100, 101, 102, 103]
    assert static_info.token_allow_list == (100, 101, 102, 103)
    assert static_info.token_deny_list == (0,)


def test_masks_80_percent_of_targets_over_thousands_of_examples(corpus_files,
                                                                tmp_path):
    files, _ = corpus_files
    config = _config(files, dupe_factor=40, seq_length=32,
                     max_predictions_per_seq=5)
    info = build_pretraining_data(config, str(tmp_path))
    _, examples = _examples(info)
    assert len(examples) > 2000
    masked = kept = total = 0
    for x in examples:
        real = x["masked_lm_weights"] > 0
        inputs = x["input_word_ids"][x["masked_lm_positions"][real]]
        masked += (inputs == 103).sum()
        kept += (inputs == x["masked_lm_ids"][real]).sum()
        total += real.sum()
    for observed, p in ((masked / total, 0.8), (kept / total, 0.1)):
        # Random replacements may draw the original id: 1/196 of 10%.
        assert abs(observed - p) < 4 * np.sqrt(p * (1 - p) / total) + 0.001


def test_packed_output_has_little_padding(static_info):
    _, examples = _examples(static_info)
    mask = np.stack([x["input_mask"] for x in examples])
    assert mask.mean() >= 0.95


def _owned_documents(folder, count):
    """`count` documents, each written in 6 words of its own, and a vocab of
    those words: word w of document d is token id 104 + 6 * d + w."""
    words = [[f"d{d}w{w}" for w in range(6)] for d in range(count)]
    documents = tiny_documents(count, seed=3)
    documents = [
        [" ".join(words[d][(i + j) % 6] for j in range(len(s.split())))
         for i, s in enumerate(doc)]
        for d, doc in enumerate(documents)]
    tokens = (["[PAD]"] + [f"[unused{i}]" for i in range(99)] +
              ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sum(words, []))
    return documents, write_lines(folder / "vocab.txt", tokens)


def test_unpacked_output_keeps_documents_apart(tmp_path):
    documents, vocab_file = _owned_documents(tmp_path, 12)
    files = write_text(tmp_path / "docs.txt", bert_format(documents))
    for packed in (False, True):
        info = build_pretraining_data(
            _config(files, vocab_file=vocab_file, packed=packed, seq_length=24),
            str(tmp_path / f"packed_{packed}"))
        _, examples = _examples(info)
        owners = [{(i - 104) // 6 for i in x if i >= 104}
                  for x in _unmasked_streams(examples)]
        assert all(owners)
        if packed:
            assert max(len(o) for o in owners) > 1
        else:
            assert all(len(o) == 1 for o in owners)
            assert len(examples) >= len(documents)


def _unmasked_streams(examples):
    return [_unmasked_stream([x]) for x in examples]


def test_text_records_feed_the_text_loader_with_the_same_tokens(tmp_path):
    documents = tiny_documents(10, seed=4)
    documents[0][0] = "Café RÉSUMÉ naïve Über Straße words."
    files = write_text(tmp_path / "docs.txt", bert_format(documents))
    info = build_pretraining_data(_config(files, output_format="text"),
                                  str(tmp_path / "out"))
    assert info.data_format == "bert_pretrain_text"
    dataset, examples = _examples(info)
    assert set(dataset.element_spec) == set(FEATURES)
    stream = [i for i in _unmasked_stream(examples) if i not in (101, 102)]
    expected = _tokenize(info.vocab_file, [s for d in documents for s in d])
    np.testing.assert_array_equal(stream, expected)
    assert 100 not in expected[:6]  # Accents and case folded like BERT's.


def test_document_per_line_and_undecodable_bytes(tmp_path):
    lines = [" ".join(d) for d in tiny_documents(8, seed=5)]
    raw = (("\n".join(lines) + "\n").encode("utf-8") +
           b"Bad \xff\xfe bytes here.\n")
    files = write_text(tmp_path / "docs.txt", raw)
    info = build_pretraining_data(
        _config(files, input_format="document_per_line"), str(tmp_path / "out"))
    manifest = json.load(open(info.manifest_path))
    assert manifest["splits"]["train"]["num_documents"] == 9
    assert manifest["splits"]["train"]["num_sentences"] == sum(
        len(d) for d in tiny_documents(8, seed=5)) + 1
    assert manifest["undecodable_replacements"] == 2


def test_validation_split_is_held_out_by_document(tmp_path):
    # Each document has words of its own, so a token id names its document.
    documents, vocab_file = _owned_documents(tmp_path, 40)
    files = write_text(tmp_path / "docs.txt", bert_format(documents))
    info = build_pretraining_data(
        _config(files, vocab_file=vocab_file, validation_fraction=0.3,
                seq_length=24), str(tmp_path / "out"))
    manifest = json.load(open(info.manifest_path))
    splits = manifest["splits"]
    owners = {}
    for split in ("train", "validation"):
        _, examples = _examples(info, split)
        owners[split] = {(i - 104) // 6 for x in _unmasked_streams(examples)
                         for i in x if i >= 104}
        assert len(owners[split]) == splits[split]["num_documents"], split
    assert 0 < len(owners["validation"]) < len(documents)
    assert not owners["train"] & owners["validation"]  # held out
    assert owners["train"] | owners["validation"] == set(range(40))
    _, validation = _examples(info, "validation")
    assert len(validation) == info.num_validation_examples > 0


def test_rebuild_is_byte_identical_and_reuses_a_complete_directory(
        corpus_files, tmp_path):
    files, _ = corpus_files
    config = _config(files, dupe_factor=2, shuffle_buffer_size=50,
                     num_train_shards=2, validation_fraction=0.2)
    first = build_pretraining_data(config, str(tmp_path / "a"))
    second = build_pretraining_data(config, str(tmp_path / "b"))
    names = sorted(os.listdir(tmp_path / "a"))
    assert names == sorted(os.listdir(tmp_path / "b"))
    assert not [n for n in names if n.startswith(".")]
    for name in names:
        if name != "manifest.json":
            assert (tmp_path / "a" / name).read_bytes() == (
                tmp_path / "b" / name).read_bytes(), name
    # Bytes equal in one process are equal in any only if the feature map is
    # written in a fixed (sorted) order, not in protobuf's per-process one.
    record = next(iter(tf.data.TFRecordDataset(first.train_input_path.replace(
        "*", "00000")))).numpy()
    offsets = [record.index(name.encode()) for name in sorted(FEATURES)]
    assert offsets == sorted(offsets)
    stamps = {n: os.stat(tmp_path / "a" / n).st_mtime_ns for n in names}
    again = build_pretraining_data(config, str(tmp_path / "a"))
    assert again == first != second
    assert stamps == {n: os.stat(tmp_path / "a" / n).st_mtime_ns for n in names}


def test_interrupted_build_leaves_no_dataset_behind(corpus_files, tmp_path,
                                                    monkeypatch):
    files, _ = corpus_files

    def fail(*args):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(builder._Build, "_write_manifest", fail)
    with pytest.raises(RuntimeError):
        build_pretraining_data(_config(files), str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_a_vocab_in_another_layout_is_followed(corpus_files, tmp_path):
    files, documents = corpus_files
    words = sorted({w.strip(".!?").lower() for d in documents for s in d
                    for w in s.split()})
    tokens = words + ["!", ".", "?"] + ["[MASK]", "[SEP]", "[CLS]", "[UNK]",
                                        "[PAD]"]
    vocab_file = write_lines(tmp_path / "vocab.txt", tokens)
    info = build_pretraining_data(_config(files, vocab_file=vocab_file),
                                  str(tmp_path / "out"))
    n = len(words) + 3
    assert info.token_allow_list == (n + 3, n + 2, n + 1, n)
    assert info.token_deny_list == (n + 4,)
    _, examples = _examples(info)
    x = examples[-1]  # The last sequence is the short one: padded with [PAD].
    assert x["input_word_ids"][0] == n + 2
    assert (x["input_word_ids"][x["input_mask"] == 0] == n + 4).all()


@pytest.mark.parametrize("change, message", [
    (dict(input_files="/nonexistent/*.txt"),
     r"input_files pattern '/nonexistent/\*.txt' matches no files"),
    (dict(seq_length=2), r"seq_length=2 leaves no room for text"),
    (dict(output_format="text", seq_length=3), r"seq_length=3 leaves no room"),
    (dict(max_predictions_per_seq=47),
     r"max_predictions_per_seq=47 must be in \[1, 46\]"),
    (dict(tfds_name="wikipedia"), r"are both set"),
    (dict(input_format="csv"), r"input_format='csv' is not one of"),
    (dict(vocab_size=100), r"vocab_size=100 is too small"),
])
def test_bad_settings_name_the_value(corpus_files, tmp_path, change, message):
    files, _ = corpus_files
    with pytest.raises(ValueError, match=message):
        build_pretraining_data(_config(**{"input_files": files, **change}),
                               str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_bad_inputs_name_the_value(corpus_files, tmp_path):
    files, _ = corpus_files
    empty = write_text(tmp_path / "empty.txt", "\n\n")
    specials_only = write_lines(tmp_path / "v.txt", vocab.SPECIAL_TOKENS)
    with pytest.raises(ValueError, match="has only special tokens"):
        build_pretraining_data(_config(files, vocab_file=specials_only),
                               str(tmp_path / "out0"))
    one_piece = write_lines(tmp_path / "w.txt", [*vocab.SPECIAL_TOKENS, "a"])
    with pytest.raises(ValueError, match="holds no text"):
        build_pretraining_data(_config(empty, vocab_file=one_piece),
                               str(tmp_path / "out0"))
    bad_vocab = write_lines(tmp_path / "bad_vocab.txt", ["[PAD]", "a", "b"])
    with pytest.raises(ValueError, match=r"bad_vocab.txt' has no \[UNK\]"):
        build_pretraining_data(_config(files, vocab_file=bad_vocab),
                               str(tmp_path / "out1"))
    build_pretraining_data(_config(files), str(tmp_path / "out2"))
    with pytest.raises(ValueError, match="already holds a different dataset"):
        build_pretraining_data(_config(files, seq_length=SEQ + 8),
                               str(tmp_path / "out2"))

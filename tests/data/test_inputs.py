"""What build_pretraining_data reads: changed, binary, broken or too little
input is noticed before anything is written."""

import gzip
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from data_testdata import bert_format, small_config, tiny_documents, write_text
from token_dropping.data import build_pretraining_data
from token_dropping.data import text_files


def _config(input_files, **kwargs):
    settings = dict(dupe_factor=1, shuffle_buffer_size=1,
                    num_train_shards=1, validation_fraction=0.0)
    settings.update(kwargs)
    return small_config(input_files, **settings)


def _record_bytes(info):
    return [r.numpy() for r in tf.data.TFRecordDataset(
        sorted(tf.io.gfile.glob(info.train_input_path)))]


def test_an_input_rewritten_at_the_same_path_is_rebuilt_not_reused(tmp_path):
    path = tmp_path / "docs.txt"
    old_text = bert_format(tiny_documents(12, seed=6))
    write_text(path, old_text)
    out = str(tmp_path / "out")
    first = build_pretraining_data(_config(str(path)), out)
    old_records = _record_bytes(first)
    old_manifest = json.load(open(first.manifest_path))

    # Touching the file (same bytes, new time) keeps the dataset.
    os.utime(path, ns=(1, 1))
    assert build_pretraining_data(_config(str(path)), out) == first
    assert _record_bytes(first) == old_records

    # Other words, same length and same modification time: a new dataset.
    new_text = old_text.replace("model", "mode!").replace("word", "wor?")
    assert new_text != old_text and len(new_text) == len(old_text)
    stat = os.stat(path)
    write_text(path, new_text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = build_pretraining_data(_config(str(path)), out)
    manifest = json.load(open(second.manifest_path))
    assert manifest["fingerprint"] != old_manifest["fingerprint"]
    assert _record_bytes(second) != old_records
    # It equals a fresh build of the new text, and nothing else is left.
    fresh = build_pretraining_data(_config(str(path)), str(tmp_path / "fresh"))
    assert _record_bytes(second) == _record_bytes(fresh)
    assert sorted(os.listdir(out)) == sorted(os.listdir(tmp_path / "fresh"))


def test_a_vocab_file_rewritten_at_the_same_path_is_rebuilt(tmp_path):
    words = sorted({w.strip(".!?").lower() for d in tiny_documents(6)
                    for s in d for w in s.split()})
    reserved = (["[PAD]"] + [f"[unused{i}]" for i in range(99)] +
                ["[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    vocab_file = tmp_path / "vocab.txt"
    files = write_text(tmp_path / "docs.txt", bert_format(tiny_documents(6)))
    write_text(vocab_file, "\n".join(reserved + words + list(".!?")) + "\n")
    config = _config(files, vocab_file=str(vocab_file))
    first = _record_bytes(build_pretraining_data(config, str(tmp_path / "o")))
    write_text(vocab_file, "\n".join(reserved + words[::-1] + list(".!?")))
    second = _record_bytes(build_pretraining_data(config, str(tmp_path / "o")))
    assert first != second


def test_binary_input_is_refused_naming_the_file(tmp_path):
    good = write_text(tmp_path / "good.txt", bert_format(tiny_documents(6)))
    rng = np.random.default_rng(0)
    binary = write_text(tmp_path / "image.txt", rng.bytes(4000))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=(
            r"input file '.*image.txt' is not UTF-8 text: [\d,]+ of its 4,000 "
            r"bytes \(\d+\.\d%\) are not UTF-8 or are NUL, above the 1% "
            r"limit;.*--allow_undecodable")):
        build_pretraining_data(_config(f"{good},{binary}"), str(out))
    assert not out.exists()
    # UTF-16 decodes as UTF-8, but half of its bytes are NUL.
    utf16 = write_text(tmp_path / "utf16.txt",
                       bert_format(tiny_documents(3)).encode("utf-16-le"))
    with pytest.raises(ValueError, match=r"utf16.txt' is not UTF-8 text"):
        build_pretraining_data(_config(utf16), str(out))
    assert not out.exists()


def test_a_few_bad_bytes_pass_and_allow_undecodable_reads_any(tmp_path):
    text = bert_format(tiny_documents(12, seed=2)).encode("utf-8")
    assert len(text) > 300
    few = write_text(tmp_path / "few.txt", b"Caf\xe9 ok.\n" + text)  # < 1%
    info = build_pretraining_data(_config(few), str(tmp_path / "few"))
    assert json.load(open(info.manifest_path))[
        "undecodable_replacements"] == 1
    # The flag changes no byte of the records, so the dataset is reused.
    assert build_pretraining_data(_config(few, allow_undecodable=True),
                                  str(tmp_path / "few")) == info
    many = write_text(tmp_path / "many.txt", b"\xff" * 100 + b"\n" + text)
    with pytest.raises(ValueError, match=r"100 of its [\d,]+ bytes"):
        build_pretraining_data(_config(many), str(tmp_path / "many"))
    info = build_pretraining_data(_config(many, allow_undecodable=True),
                                  str(tmp_path / "many"))
    manifest = json.load(open(info.manifest_path))
    assert manifest["undecodable_replacements"] == 100


def test_scan_counts_bad_bytes_exactly_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(text_files, "_SCAN_CHUNK_BYTES", 7)
    raw = ("é\ufffd€" * 5).encode("utf-8") + b"\xff\xfe\x00" + "ok".encode()
    path = write_text(tmp_path / "a.txt.gz", raw, gz=True)
    scan = text_files.scan_file(path)
    assert scan.num_text_bytes == len(raw)
    assert scan.num_undecodable_bytes == 3  # \xff, \xfe, NUL; U+FFFD is text.
    assert scan.num_bytes == os.path.getsize(path)


def test_bad_gzip_is_one_clear_error_before_anything_is_written(tmp_path):
    text = bert_format(tiny_documents(30, seed=1))
    plain = write_text(tmp_path / "plain.txt.gz", text)
    whole = gzip.compress(text.encode("utf-8"), mtime=0)
    truncated = write_text(tmp_path / "cut.txt.gz", whole[:len(whole) // 2])
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=(
            r"input file '.*plain.txt.gz' ends in .gz but is not gzip")):
        build_pretraining_data(_config(plain), str(out))
    with pytest.raises(ValueError, match=(
            r"input file '.*cut.txt.gz' is a damaged or truncated gzip file")):
        build_pretraining_data(_config(truncated), str(out))
    assert not out.exists()


def test_a_directory_as_input_files_is_named(tmp_path):
    (tmp_path / "corpus").mkdir()
    write_text(tmp_path / "corpus" / "a.txt", bert_format(tiny_documents(3)))
    with pytest.raises(ValueError, match=(
            r"input_files pattern '.*corpus' matches the directory '.*corpus'; "
            r"name the files in it, e.g. '.*corpus/\*.txt'")):
        build_pretraining_data(_config(str(tmp_path / "corpus")),
                               str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_one_document_says_validation_took_it_and_writes_nothing(tmp_path):
    one = write_text(tmp_path / "one.txt", bert_format(tiny_documents(1)))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=(
            r"The source has 1 document\(s\) and validation takes them "
            r"\(validation_fraction=0.05 .*\); give at least 2 documents")):
        build_pretraining_data(_config(one, validation_fraction=0.05),
                               str(out))
    assert not out.exists()
    info = build_pretraining_data(_config(one), str(out))  # No validation.
    assert info.num_train_examples > 0


def test_plain_and_gzipped_copies_with_carriage_returns_make_equal_records(
        tmp_path):
    # Windows, old-Mac and mixed line ends, and a "\r" inside a line.
    documents = tiny_documents(12, seed=3)
    text = bert_format(documents)
    text = text.replace("\n", "\r\n", 40).replace("\n", "\r", 40)
    text = text.replace(" ", "\r", 5)
    plain = write_text(tmp_path / "mixed.txt", text)
    gzipped = write_text(tmp_path / "mixed.txt.gz", text, gz=True)
    from_plain = _record_bytes(build_pretraining_data(
        _config(plain), str(tmp_path / "plain")))
    from_gzip = _record_bytes(build_pretraining_data(
        _config(gzipped), str(tmp_path / "gzip")))
    assert from_plain and from_plain == from_gzip
    # The same documents as the file with "\n" line ends only.
    unix = write_text(tmp_path / "unix.txt",
                      text.replace("\r\n", "\n").replace("\r", "\n"))
    assert _record_bytes(build_pretraining_data(
        _config(unix), str(tmp_path / "unix"))) == from_plain

"""common.files on real files: globs, vocab files, atomic writes.

The references are plain Python (`open`, `os.listdir`) on files the tests
lay out by hand.
"""

import hashlib
import json
import os

import pytest
import tensorflow as tf

from token_dropping.common import files
from token_dropping.common.errors import UserError


def _touch(path, text="x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_split_patterns_strips_and_drops_empty_ones():
    assert files.split_patterns(" a/*.txt, b.txt,,") == ["a/*.txt", "b.txt"]
    assert files.split_patterns("") == []


def test_pattern_order_sorted_within_each_file_once(tmp_path):
    for name in ["b/2.txt", "b/1.txt", "a/9.txt", "a/10.txt"]:
        _touch(tmp_path / name)
    b, a = str(tmp_path / "b" / "*.txt"), str(tmp_path / "a" / "*.txt")
    found = files.match_files(f"{b}, {a},{tmp_path / 'b' / '1.txt'}")
    assert found == [str(tmp_path / n) for n in
                     ["b/1.txt", "b/2.txt", "a/10.txt", "a/9.txt"]]


def test_a_pattern_matching_nothing_is_named_with_the_hint(tmp_path):
    good = _touch(tmp_path / "a.txt")
    missing = str(tmp_path / "nothing-*")
    with pytest.raises(UserError) as error:
        files.match_files(f"{good},{missing}", "task.train_data.input_path",
                          hint="Build records with tools/prepare_data.py.")
    assert str(error.value) == (
        f"task.train_data.input_path pattern {missing!r} matches no files. "
        "Build records with tools/prepare_data.py.")


def test_no_patterns_is_an_error():
    with pytest.raises(UserError, match=r"input_files=' , ' names no file"):
        files.match_files(" , ")


def test_a_directory_is_named_with_the_files_to_give(tmp_path):
    _touch(tmp_path / "corpus" / "a.txt")
    corpus = str(tmp_path / "corpus")
    with pytest.raises(UserError) as error:
        files.match_files(corpus, file_glob="*.txt")
    assert str(error.value) == (
        f"input_files pattern {corpus!r} matches the directory {corpus!r}; "
        f"name the files in it, e.g. '{corpus}/*.txt'.")
    # Not looked for: the directory is returned as matched.
    assert files.match_files(corpus, file_glob=None) == [corpus]


def test_read_vocab_drops_line_ends_and_trailing_empty_lines(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[PAD]\r\n##a\n \nb\r\n\n\n")
    assert files.read_vocab(str(path)) == ["[PAD]", "##a", " ", "b"]
    path.write_bytes(b"")
    assert files.read_vocab(str(path)) == []


def test_read_vocab_of_a_missing_file_names_it(tmp_path):
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(UserError, match=(
            rf"^--vocab_file={missing!r} does not exist\.$")):
        files.read_vocab(missing, "--vocab_file")


def test_read_vocab_refuses_what_no_tokenizer_reads_right(tmp_path):
    """Not UTF-8 (a tokenizer's UnicodeDecodeError), or a piece twice
    (tensorflow-text's lookup table fails; BERT's FullTokenizer takes the
    later id without a word)."""
    binary, twice = tmp_path / "ckpt.index", tmp_path / "twice.txt"
    binary.write_bytes(b"[PAD]\n\xb6\xff\n")
    twice.write_text("[PAD]\n[UNK]\nmodel\n##s\nmodel\n")
    with pytest.raises(UserError) as error:
        files.read_vocab(str(binary))
    assert str(error.value) == (
        f"vocab_file={str(binary)!r} is not UTF-8 text (invalid start "
        "byte); give a WordPiece vocab, one piece a line.")
    with pytest.raises(UserError) as error:
        files.read_vocab(str(twice), flag="--vocab_file")
    assert str(error.value) == (
        f"--vocab_file={str(twice)!r} has 'model' twice (lines 3 and 5); "
        "each piece must have one id.")


def test_read_vocab_of_a_directory_says_so(tmp_path):
    """Read as a file, a local directory has no lines: it was taken for an
    empty vocab ("has no [PAD] ... token", "has 0 pieces")."""
    with pytest.raises(UserError, match=(
            rf"^--vocab_file={str(tmp_path)!r} is a directory; give the "
            r"vocab file in it")):
        files.read_vocab(str(tmp_path), "--vocab_file")


def test_write_text_and_json_create_and_replace(tmp_path):
    path = tmp_path / "out.json"
    files.write_text(str(path), "old\r\nline\n")
    assert path.read_bytes() == b"old\r\nline\n"  # as given, no translation
    files.write_json(str(path), {"b": 1, "a": [2]}, indent=1, sort_keys=True)
    assert path.read_text() == '{\n "a": [\n  2\n ],\n "b": 1\n}\n'
    assert json.loads(path.read_text()) == {"a": [2], "b": 1}
    assert os.listdir(tmp_path) == ["out.json"]  # no temporary left


def test_nothing_written_is_an_empty_file(tmp_path):
    path = tmp_path / "heldout.txt"
    path.write_text("old\n")
    for mode in ["w", "wb"]:
        with files.open_atomically(str(path), mode):
            pass
        assert path.read_bytes() == b""
    assert os.listdir(tmp_path) == ["heldout.txt"]


def test_a_failure_mid_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with files.open_atomically(str(path)) as f:
            f.write("new, half writ")
            f.flush()
            raise RuntimeError("disk on fire")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["result.json"]


def test_a_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):  # a set is not JSON
        files.write_json(str(tmp_path / "new.json"), {"x": {1}})
    assert os.listdir(tmp_path) == []


def test_replacing_gives_a_path_for_writers_that_take_one(tmp_path):
    path = str(tmp_path / "train.tf_record")
    with files.replacing(path) as temporary:
        assert os.path.dirname(temporary) == str(tmp_path)
        assert temporary != path and not os.path.exists(path)
        with tf.io.TFRecordWriter(temporary) as writer:
            writer.write(b"one")
    assert [r.numpy() for r in tf.data.TFRecordDataset(path)] == [b"one"]
    with pytest.raises(ValueError):
        with files.replacing(path) as temporary:
            with tf.io.TFRecordWriter(temporary) as writer:
                writer.write(b"two")
            raise ValueError("the eval split failed")
    assert [r.numpy() for r in tf.data.TFRecordDataset(path)] == [b"one"]
    assert os.listdir(tmp_path) == ["train.tf_record"]


def _tree(root):
    return {os.path.relpath(os.path.join(d, f), root): open(
        os.path.join(d, f)).read() for d, _, fs in os.walk(root) for f in fs}


def test_replacing_directory_swaps_in_the_new_one_whole(tmp_path):
    out = tmp_path / "export"
    with files.replacing_directory(str(out) + "/") as partial:
        assert os.path.isdir(partial) and not out.exists()
        _touch(tmp_path / partial / "a.txt", "1")
    assert _tree(out) == {"a.txt": "1"}
    with files.replacing_directory(str(out)) as partial:
        _touch(tmp_path / partial / "sub" / "b.txt", "2")
        assert _tree(out) == {"a.txt": "1"}  # the old one until the end
    assert _tree(out) == {os.path.join("sub", "b.txt"): "2"}
    assert os.listdir(tmp_path) == ["export"]


def test_replacing_a_linked_directory_replaces_its_target(tmp_path):
    # A link to an export elsewhere (a bigger disk): the new export goes
    # where the link points, the link stays, and nothing is left beside.
    real = tmp_path / "disk" / "export"
    _touch(real / "a.txt", "old")
    os.symlink(real, tmp_path / "link")
    with files.replacing_directory(str(tmp_path / "link")) as partial:
        _touch(tmp_path / partial / "b.txt", "new")
    assert os.path.islink(tmp_path / "link")
    assert _tree(real) == {"b.txt": "new"}
    assert _tree(tmp_path / "link") == {"b.txt": "new"}
    assert sorted(os.listdir(tmp_path)) == ["disk", "link"]
    assert os.listdir(tmp_path / "disk") == ["export"]


def test_a_failed_directory_leaves_the_old_one(tmp_path):
    out = tmp_path / "export"
    _touch(out / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with files.replacing_directory(str(out)) as partial:
            _touch(tmp_path / partial / "a.txt", "new")
            raise RuntimeError("the SavedModel failed")
    assert _tree(out) == {"a.txt": "old"}
    assert os.listdir(tmp_path) == ["export"]


def test_a_failed_move_in_puts_the_old_directory_back(tmp_path, monkeypatch):
    out = tmp_path / "export"
    _touch(out / "a.txt", "old")
    rename = tf.io.gfile.rename

    def failing_rename(source, target, overwrite=False):
        if target == str(out) and not source.endswith(".old"):  # the move in
            raise tf.errors.PermissionDeniedError(None, None, "denied")
        return rename(source, target, overwrite)

    monkeypatch.setattr(tf.io.gfile, "rename", failing_rename)
    with pytest.raises(tf.errors.PermissionDeniedError):
        with files.replacing_directory(str(out)) as partial:
            _touch(tmp_path / partial / "a.txt", "new")
    monkeypatch.undo()
    assert _tree(out) == {"a.txt": "old"}
    assert os.listdir(tmp_path) == ["export"]


def test_sha256_of_a_file_in_blocks_is_hashlib_of_its_bytes(tmp_path):
    data = bytes(range(256)) * 5000  # 1.28 MB: more than one 1 MiB block
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert files.sha256(str(path)) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert files.sha256(str(tmp_path / "empty")) == hashlib.sha256(
        b"").hexdigest()

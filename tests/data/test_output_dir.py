"""Where build_pretraining_data writes: refusals before anything is written,
nothing left by a failed or killed build, and the next build cleaning up."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from data_testdata import bert_format, tiny_documents, write_lines, write_text
from token_dropping.data import PrepareDataConfig, build_pretraining_data
from token_dropping.data import builder
from token_dropping.data import vocab

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# Runs tools/prepare_data.py, pausing once the training shards are written
# (so the process is surely mid-build) after touching the file $MARKER.
_PAUSED_TOOL = f"""
import os, runpy, signal, sys
from token_dropping.data import record_writer
close = record_writer.ShardedRecordWriter.close
def close_then_pause(self):
    close(self)
    open(os.environ["MARKER"], "w").close()
    signal.pause()
record_writer.ShardedRecordWriter.close = close_then_pause
runpy.run_path({os.path.join(REPO, "tools", "prepare_data.py")!r},
               run_name="__main__")
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    documents = tiny_documents(30, seed=8)
    words = sorted({w.strip(".!?").lower() for d in documents for s in d
                    for w in s.split()})
    vocab_file = write_lines(root / "vocab.txt", list(
        vocab.BERT_RESERVED_TOKENS) + words + list(".!?"))
    files = write_text(root / "docs.txt", bert_format(documents))
    return files, vocab_file


def _config(inputs, **kwargs):
    files, vocab_file = inputs
    defaults = dict(input_files=files, vocab_file=vocab_file, seq_length=32,
                    max_predictions_per_seq=5, dupe_factor=1,
                    num_train_shards=2, validation_fraction=0.1)
    defaults.update(kwargs)
    return PrepareDataConfig(**defaults)


def _hidden(path):
    return sorted(n for n in os.listdir(path) if n.startswith("."))


def _files(path):
    return {n: (path / n).read_bytes() for n in os.listdir(path)
            if n != "manifest.json"}


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    """A complete build of `_config(inputs)`, for comparison."""
    out = tmp_path_factory.mktemp("reference")
    build_pretraining_data(_config(inputs), str(out))
    return _files(out)


def test_an_output_dir_that_is_a_file_or_under_one(inputs, tmp_path):
    write_text(tmp_path / "file", "x")
    with pytest.raises(ValueError, match=(
            r"output_dir='.*/file' is a file; give a directory")):
        build_pretraining_data(_config(inputs), str(tmp_path / "file"))
    with pytest.raises(ValueError, match=(
            r"output_dir='.*/file/a/b' is under '.*/file', which is a file")):
        build_pretraining_data(_config(inputs), str(tmp_path / "file/a/b"))
    assert os.listdir(tmp_path) == ["file"]


def test_an_output_dir_that_cannot_be_written(inputs, tmp_path,
                                              monkeypatch):
    access = os.access  # Tests run as root, who may write anywhere.
    monkeypatch.setattr(os, "access", lambda path, mode: access(
        path, mode) and str(path) != str(tmp_path / "ro"))
    (tmp_path / "ro").mkdir()
    with pytest.raises(ValueError, match=(
            r"output_dir='.*/ro/out' cannot be written: '.*/ro' is not "
            r"writable by this user")):
        build_pretraining_data(_config(inputs), str(tmp_path / "ro" / "out"))
    assert os.listdir(tmp_path / "ro") == []


def test_a_directory_of_someone_elses_files_is_refused(inputs, tmp_path):
    write_text(tmp_path / "notes.txt", "mine")
    with pytest.raises(ValueError, match=(
            r"output_dir='.*' holds 1 entry \(e.g. 'notes.txt'\) but no "
            r"manifest.json, so it is not a dataset prepared here")):
        build_pretraining_data(_config(inputs), str(tmp_path))
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_a_failed_build_leaves_no_directory_it_made(inputs, tmp_path,
                                                    monkeypatch):
    def fail(*unused):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(builder._Build, "_write_manifest", fail)
    with pytest.raises(RuntimeError):
        build_pretraining_data(_config(inputs), str(tmp_path / "new" / "out"))
    assert os.listdir(tmp_path / "new") == []
    (tmp_path / "empty").mkdir()  # The user's own empty directory stays.
    with pytest.raises(RuntimeError):
        build_pretraining_data(_config(inputs), str(tmp_path / "empty"))
    assert os.listdir(tmp_path / "empty") == []


def test_stale_partials_are_removed_by_the_next_build(inputs, reference,
                                                      tmp_path):
    out = tmp_path / "out"
    (out / ".partial-0123").mkdir(parents=True)
    write_text(out / ".partial-0123" / "train-00000-of-00002.tfrecord", "x")
    write_text(out / ".lock", "")
    build_pretraining_data(_config(inputs), str(out))
    assert _hidden(out) == [] and _files(out) == reference
    # Beside a complete dataset, too (a killed rebuild), when it is reused.
    (out / ".partial-4567").mkdir()
    build_pretraining_data(_config(inputs), str(out))
    assert _hidden(out) == [] and _files(out) == reference


def test_a_publish_killed_before_its_manifest_is_cleaned_by_the_next_build(
        inputs, reference, tmp_path, monkeypatch):
    """A rebuild (an input rewritten at the same path) removes the old
    manifest, then moves the new files in: stopped half way (SIGKILL, or a
    SIGTERM's SystemExit there), the directory has dataset files and no
    manifest. The next build knows they are ours and prepares it whole."""
    files, vocab_file = inputs
    docs = tmp_path / "docs.txt"
    write_text(docs, bert_format(tiny_documents(30, seed=9)))
    out = tmp_path / "out"
    build_pretraining_data(_config((str(docs), vocab_file)), str(out))
    docs.write_bytes(open(files, "rb").read())  # the reference's text
    rename, moved = tf.io.gfile.rename, []

    def killed_after_two(source, target, overwrite=False):
        if len(moved) == 2:
            raise SystemExit(143)
        moved.append(target)
        rename(source, target, overwrite=overwrite)
    monkeypatch.setattr(tf.io.gfile, "rename", killed_after_two)
    with pytest.raises(SystemExit):
        build_pretraining_data(_config((str(docs), vocab_file)), str(out))
    monkeypatch.undo()
    assert not (out / "manifest.json").exists() and len(moved) == 2
    build_pretraining_data(_config((str(docs), vocab_file)), str(out))
    assert _hidden(out) == [] and _files(out) == reference


def test_another_number_of_workers_is_another_dataset(inputs, tmp_path):
    """Workers build each input file alone, one process builds one stream:
    other records, so the directory is refused, not prepared again."""
    out = tmp_path / "out"
    build_pretraining_data(_config(inputs), str(out))
    before = _files(out)
    with pytest.raises(ValueError, match=re.escape(
            "it was built as one stream (--num_workers=1, no --runner), this "
            "command builds per input file (--num_workers above 1 or "
            "--runner)); choose another output directory")):
        build_pretraining_data(_config(inputs, num_workers=2), str(out))
    assert _files(out) == before


def _start_paused_build(inputs, out, marker):
    files, vocab_file = inputs
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3",
               MARKER=str(marker))
    args = [f"--output_dir={out}", f"--input_files={files}",
            f"--vocab_file={vocab_file}", "--seq_length=32",
            "--max_predictions_per_seq=5", "--dupe_factor=1",
            "--num_train_shards=2", "--validation_fraction=0.1"]
    process = subprocess.Popen(
        [sys.executable, "-c", _PAUSED_TOOL, *args], env=env, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not marker.exists():  # No time limit: waits for the child.
        if process.poll() is not None:
            pytest.fail(f"the build ended early: {process.communicate()[1]}")
        time.sleep(0.05)
    assert [n for n in _hidden(out) if n.startswith(".partial-")]
    return process


@pytest.mark.slow  # A second TensorFlow start-up; SIGKILL's cleanup is below.
def test_sigterm_mid_build_removes_what_it_wrote(inputs, tmp_path):
    out = tmp_path / "out"
    process = _start_paused_build(inputs, out, tmp_path / "marker")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip().splitlines()[-1] == (
        "prepare_data.py: stopped by SIGTERM; removing the unfinished output.")
    assert not out.exists()


def test_sigkill_mid_build_is_cleaned_by_the_next_build(inputs, reference,
                                                        tmp_path):
    out = tmp_path / "out"
    process = _start_paused_build(inputs, out, tmp_path / "marker")
    process.kill()
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert any(n.startswith(".partial-") for n in _hidden(out))
    assert not (out / "manifest.json").exists()
    info = build_pretraining_data(_config(inputs), str(out))
    assert _hidden(out) == [] and _files(out) == reference
    assert info.num_train_examples == sum(
        1 for _ in tf.data.TFRecordDataset(
            tf.io.gfile.glob(info.train_input_path)))


def test_an_output_dir_on_the_inputs_is_refused_naming_them(inputs, tmp_path):
    files, vocab_file = inputs
    # The input files' own folder, and a link to it.
    folder = os.path.dirname(files)
    os.symlink(folder, tmp_path / "link")
    before = sorted(os.listdir(folder))
    for output_dir in (folder, str(tmp_path / "link")):
        with pytest.raises(ValueError, match=(
                rf"output_dir='{output_dir}' contains input file="
                rf"'{files}'")):
            build_pretraining_data(_config(inputs), output_dir)
    # A vocab file inside the output (a dataset's own vocab.txt).
    out = tmp_path / "out"
    build_pretraining_data(_config(inputs), str(out))
    with pytest.raises(ValueError, match=(
            rf"output_dir='{out}' contains vocab_file='{out}/vocab.txt'")):
        build_pretraining_data(_config(inputs, vocab_file=str(
            out / "vocab.txt")), str(out))
    assert sorted(os.listdir(folder)) == before

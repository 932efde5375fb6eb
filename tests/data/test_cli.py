"""tools/prepare_data.py, run as a user would: a subprocess."""

import os
import subprocess
import sys

import pytest

from in_process import tool_in_process
from data_testdata import bert_format, tiny_documents, write_lines, write_text
from token_dropping.data import DatasetInfo
from token_dropping.data import vocab

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _run(*args):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "prepare_data.py"), *args],
        capture_output=True, text=True, env=env, cwd=REPO, check=False)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    words = sorted({w.strip(".!?").lower() for d in tiny_documents(10)
                    for s in d for w in s.split()})
    tokens = list(vocab.BERT_RESERVED_TOKENS) + words + list(".!?")
    vocab_file = write_lines(root / "vocab.txt", tokens)
    text = write_text(root / "docs.txt", bert_format(tiny_documents(10)))
    return root, text, vocab_file


@pytest.mark.slow  # A second TensorFlow start-up; the library path is tested.
def test_cli_prepares_text_files_and_prints_where(inputs, tmp_path):
    _, text, vocab_file = inputs
    result = _run(f"--output_dir={tmp_path}/out", f"--input_files={text}",
                  f"--vocab_file={vocab_file}", "--seq_length=32",
                  "--max_predictions_per_seq=5", "--dupe_factor=1")
    assert result.returncode == 0, result.stderr
    printed = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    info = DatasetInfo.from_manifest(printed["manifest_path"])
    assert printed["train_input_path"] == info.train_input_path
    assert info.num_train_examples > 0 and info.seq_length == 32


def test_cli_bad_input_is_one_line_and_exit_code_2(inputs, tmp_path):
    # Every bad value raises ValueError in the library (tested there); the
    # CLI's part is printing it as one line and exiting with 2.
    _, text, _ = inputs
    result = _run(f"--output_dir={tmp_path}/out", f"--input_files={text}",
                  "--seq_length=2")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        "prepare_data.py: error: seq_length=2 leaves no room for text next to "
        "[CLS] and [SEP]; use seq_length >= 3.")
    assert not [l for l in lines[:-1] if l.startswith("prepare_data.py")]
    assert not os.path.exists(tmp_path / "out")


def test_a_vocab_size_beside_a_vocab_file_is_refused(inputs, tmp_path):
    """The file decides the size: --vocab_size was ignored without a word
    (and recorded in the manifest's config)."""
    _, text, vocab_file = inputs
    done = tool_in_process(
        "prepare_data.py", f"--output_dir={tmp_path}/out",
        f"--input_files={text}", f"--vocab_file={vocab_file}",
        "--vocab_size=30522")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "prepare_data.py: error: --vocab_size=30522 sizes a vocab to learn, "
        f"but --vocab_file={str(vocab_file)!r} is given (its pieces decide "
        "the size); give one of them.")
    assert not os.path.exists(tmp_path / "out")

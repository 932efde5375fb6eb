"""paths.check_apart: an output never is, contains or is inside an input.

The reference is the file system itself: each case builds the directories
and symlinks on disk, and the expected relation is written by hand.
"""

import os

import pytest

from token_dropping.common.errors import UserError
from token_dropping.common.paths import check_apart


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "runs" / "run" / "sub").mkdir(parents=True)
    (tmp_path / "runs" / "run" / "params.yaml").write_text("x")
    (tmp_path / "exports").mkdir()
    os.symlink(tmp_path / "runs" / "run", tmp_path / "exports" / "link")
    os.symlink(tmp_path / "runs", tmp_path / "runs_link")
    return tmp_path


@pytest.mark.parametrize("output,relation", [
    ("runs/run", "is"),
    ("exports/link", "is"),  # a symlink to the run itself
    ("runs_link/run", "is"),  # through a linked parent
    ("runs/run/../run", "is"),
    ("runs/run/sub", "is inside"),
    ("exports/link/new/export", "is inside"),  # need not exist
    ("runs", "contains"),
    ("runs_link", "contains"),
])
def test_an_output_on_the_input_is_one_line_naming_both(tree, monkeypatch,
                                                        output, relation):
    monkeypatch.chdir(tree)
    with pytest.raises(UserError) as e:
        check_apart(output, "--output_dir", [("--vocab_file", ""),
                                             ("--model_dir", "runs/run")])
    message = str(e.value)
    assert message.startswith(f"--output_dir={output!r} {relation} "
                              "--model_dir='runs/run'"), message
    assert "\n" not in message


def test_an_input_file_inside_the_output_is_refused(tree):
    with pytest.raises(UserError, match="contains vocab_file="):
        check_apart(str(tree / "runs" / "run"), "output_dir",
                    [("vocab_file", str(tree / "runs/run/params.yaml"))])


@pytest.mark.parametrize("output", ["exports/new", "runs/run2", "runs/ru",
                                    "exports"])
def test_outputs_apart_from_the_inputs_pass(tree, monkeypatch, output):
    monkeypatch.chdir(tree)
    check_apart(output, "--output_dir", [("--model_dir", "runs/run")])


def test_urls_are_compared_by_their_text():
    with pytest.raises(UserError, match="is inside"):
        check_apart("gs://b/runs/run/x/", "--output_dir",
                    [("--model_dir", "gs://b/runs/run")])
    check_apart("gs://b/runs/run2", "--output_dir",
                [("--model_dir", "gs://b/runs/run")])
    check_apart("/b/runs/run", "--output_dir",
                [("--model_dir", "gs://b/runs/run")])

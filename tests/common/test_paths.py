"""paths.check_apart: an output never is, contains or is inside an input.

The reference is the file system itself: each case builds the directories
and symlinks on disk, and the expected relation is written by hand.
"""

import os

import pytest

from in_process import tool_in_process
from token_dropping.common import paths
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


@pytest.mark.parametrize("tool,flag", [
    ("train.py", "--model_dir=~/runs/x"),
    ("prepare_data.py", "--output_dir=~/data/x"),
    ("export_bert.py", "--output_dir=~/exports/x"),
    ("finetuning_data.py", "--vocab_file=~/vocab.txt"),
    ("study.py", "--runs_dir=~/runs/study"),
    ("benchmark.py", "--output=~/bench.json"),
])
def test_a_home_the_shell_did_not_expand_is_refused_by_every_tool(
        tool, flag, tmp_path, monkeypatch):
    """`--flag=~/x` reaches the tool as '~/x' (bash expands '~' only at
    the start of a word): refused in one line before anything runs, instead
    of a folder named '~' in the working directory."""
    monkeypatch.chdir(tmp_path)
    done = tool_in_process(tool, flag)
    name, value = flag[2:].split("=", 1)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"{tool}: error: --{name}={value!r}: '~' is not expanded after '=' "
        "(the shell expands it only at the start of a word); write the full "
        f"path, e.g. {os.path.expanduser('~')}/...")
    assert os.listdir(tmp_path) == []


def test_a_home_inside_an_override_or_a_list_is_refused_too():
    from absl import flags as absl_flags
    values = absl_flags.FlagValues()
    absl_flags.DEFINE_string("params_override", "", "", flag_values=values)
    absl_flags.DEFINE_multi_string("config_file", [], "", flag_values=values)
    absl_flags.DEFINE_string("input_files", "", "", flag_values=values)
    absl_flags.DEFINE_string("output_dir", "", "", flag_values=values)
    values(["tool", "--output_dir=/tmp/a~b", "--input_files=a.txt,b~.txt"])
    assert paths.unexpanded_home(values) is None  # '~' inside a name
    for argv, name in (
            (["--params_override=task.train_data.input_path=~/d/train-*"],
             "params_override"),
            (["--config_file=a.yaml", "--config_file=~/b.yaml"],
             "config_file"),
            (["--input_files=a.txt,~/b.txt"], "input_files")):
        values.unparse_flags()
        values(["tool", *argv])
        assert paths.unexpanded_home(values).startswith(f"--{name}=")

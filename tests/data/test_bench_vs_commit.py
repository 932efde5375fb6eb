"""tools/bench_vs_commit.py refuses a bad baseline or round count in one line
before it extracts or builds anything (its measurement is not tested here)."""

import pytest

import bench_vs_commit

REQUIRED = ["--input_files=unused", "--vocab_file=unused"]


@pytest.mark.parametrize("flag,message", [
    ("--baseline=no-such-commit",
     "argument --baseline: 'no-such-commit' is not a commit of this "
     "repository"),
    ("--rounds=0",
     "argument --rounds: '0' is not a number of rounds (a whole number, at "
     "least 1)"),
])
def test_a_bad_argument_is_one_line_before_any_work(flag, message, capsys,
                                                    monkeypatch):
    monkeypatch.setattr(bench_vs_commit, "_extract", _never)
    with pytest.raises(SystemExit) as stopped:
        bench_vs_commit.main([flag] + REQUIRED)
    assert stopped.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.split(": error: ", 1)[1].startswith(message), last


def test_a_commit_of_the_repository_is_taken():
    assert bench_vs_commit._commit("HEAD") == "HEAD"  # pylint: disable=W0212


def _never(*unused):
    raise AssertionError("extracted a baseline despite a bad argument")

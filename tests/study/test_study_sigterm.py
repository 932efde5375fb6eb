"""SIGTERM to tools/study.py: it stops at the first signal, in any phase, with
one line and exit code 42, and the same command continues to the end."""

import csv
import json
import os
import re

import pytest

from token_dropping.train.preemption import EXIT_CODE
from helpers import run_and_sigterm

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STUDY = os.path.join(ROOT, "tools", "study.py")
TIMEOUT = 900  # seconds; a watchdog kills a study that hangs


def run_study(args, signal_at=None):
    """Runs tools/study.py; sends one SIGTERM when a stderr line matches
    `signal_at`. Returns (returncode, stderr, whether it was sent)."""
    code, lines, sent = run_and_sigterm(
        [STUDY, *args], signal_at and (lambda line: re.search(signal_at, line)),
        TIMEOUT)
    return code, "".join(lines), sent is not None


# Each a phase where a SIGTERM used to be lost: after the last training
# loop's check (the final evaluation), during an export, and during a
# fine-tuning (one loop: after its only check).
PHASES = [r"study: bert seed 1 decay to 20 step 20: validation",
          r"study: exporting token_drop, seed 1",
          r"study: fine-tuning bert seed 1/1"]


@pytest.mark.slow  # four tiny studies in turn, several minutes
def test_sigterm_stops_the_study_in_any_phase_and_the_rerun_continues(
        tmp_path):
    args = [f"--output_dir={tmp_path / 'out'}",
            f"--runs_dir={tmp_path / 'runs'}", "--quick",
            "--models=bert,token_drop", "--seeds=1", "--finetune_seeds=1",
            "--probe=source"]  # a fine-tuned probe: its phase is the longest
    for phase in PHASES:
        code, log, sent = run_study(args, signal_at=phase)
        assert sent, (phase, log[-3000:])
        assert code == EXIT_CODE, (phase, code, log[-3000:])
        last = log.strip().splitlines()[-1]
        assert re.fullmatch(r"study\.py: stopped by SIGTERM.*; rerun the "
                            r"same command to continue\.", last), (phase, last)
        assert "Traceback" not in log, phase
        assert not (tmp_path / "out" / "summary.md").exists()

    code, log, _ = run_study(args)
    assert code == 0, log[-3000:]
    with open(tmp_path / "out" / "evaluations.csv") as f:
        rows = list(csv.DictReader(f))
    steps = {}
    for row in rows:
        steps.setdefault((row["model"], row["phase"]), []).append(
            int(row["step"]))
    assert steps["bert", "decay"] == [10, 20]
    assert steps["bert", "stable"] == [4, 8, 12, 16, 18]
    assert len(steps["token_drop", "decay"]) == 2
    with open(tmp_path / "out" / "finetuning.csv") as f:
        finetunes = list(csv.DictReader(f))
    assert sorted(r["model"] for r in finetunes) == ["bert", "random_init",
                                                     "token_drop"]
    for name in ("bert", "token_drop"):
        run = tmp_path / "runs" / "pretrain" / f"{name}-seed1"
        with open(run / "study_done.json") as f:
            assert json.load(f)["steps"] == steps[name, "stable"][-1]
        for budget in steps[name, "decay"]:
            with open(run / f"decay-{budget}" / "study_done.json") as f:
                assert json.load(f)["steps"] == budget


@pytest.mark.slow  # a tiny study, stopped, then finished
def test_a_sigterm_in_a_pairs_last_run_keeps_the_pair_first(tmp_path):
    """--carry_dir: a SIGTERM during a (model, seed)'s last run is acted on
    once that pair's probe is read and its results are kept, so a machine
    that goes away right after loses none of it."""
    carry = tmp_path / "carry"
    args = [f"--output_dir={tmp_path / 'out'}",
            f"--runs_dir={tmp_path / 'runs'}", "--quick",
            "--models=bert,token_drop", "--seeds=1", f"--carry_dir={carry}"]
    code, log, sent = run_study(
        args, signal_at=r"study: bert seed 1 decay to 20 step 20: validation")
    assert sent and code == EXIT_CODE, (code, log[-3000:])
    assert "Traceback" not in log
    assert sorted(os.listdir(carry / "units")) == ["bert-seed1.json"]
    assert "pretraining token_drop seed 1" not in log

    code, log, _ = run_study(args)
    assert code == 0, log[-3000:]
    assert sorted(os.listdir(carry / "units")) == [
        "bert-seed1.json", "token_drop-seed1.json"]

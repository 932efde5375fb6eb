"""tools/paired_reading.py: models of a study paired with each other over
seeds, against shares, losses and steps worked out by hand."""

import csv
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

import paired_reading
from token_dropping.common.errors import UserError
from token_dropping.study import paired

COLUMNS = ["model", "seed", "phase", "budget", "step", "train_flops",
           "val_mlm_loss"]
# Per seed: BERT reaches 5.5 at 2e12 FLOPs (200 steps). Model "a" falls
# from 5.8 at 1e12 to 5.4 at 2e12 (100 and 200 steps) minus a per-seed
# offset d, so (linear in log-compute) it reaches 5.5 where
# log2(c / 1e12) = (0.3 - d) / 0.4. Model "b" is a with twice the offset.
OFFSETS = {1: 0.00, 2: 0.04, 3: 0.10}


def _write(path, models):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for seed in OFFSETS:
            writer.writerow(["bert", seed, "stable", "", 100, 1e12, 6.1])
            for step, flops, loss in ((100, 1e12, 6.0), (200, 2e12, 5.5)):
                writer.writerow(["bert", seed, "decay", step, step, flops,
                                 loss])
            for name, k in models:
                d = k * OFFSETS[seed]
                for step, flops, loss in ((100, 1e12, 5.8 - d),
                                          (200, 2e12, 5.4 - d)):
                    writer.writerow([name, seed, "decay", step, step, flops,
                                     loss])


def _t(values):
    half = scipy_stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / math.sqrt(3)
    return np.mean(values), np.mean(values) - half, np.mean(values) + half


def test_paired_readings_are_the_hand_worked_ones(tmp_path):
    path = tmp_path / "evaluations.csv"
    _write(path, [("a", 1), ("b", 2)])
    readings = paired.paired_readings(paired.read_rows(str(path)), "a")
    assert [r.model for r in readings] == ["a", "b"]

    def fraction(k, seed):  # where log-compute is crossed, 0..1
        return (0.3 - k * OFFSETS[seed]) / 0.4
    share = {k: [2 ** fraction(k, s) / 2 for s in OFFSETS] for k in (1, 2)}
    steps = {k: [(100 + 100 * fraction(k, s)) / 200 for s in OFFSETS]
             for k in (1, 2)}
    b = readings[1]
    expected = _t(np.subtract(share[2], share[1]))
    assert (b.share_minus_reference.mean, b.share_minus_reference.low,
            b.share_minus_reference.high) == pytest.approx(expected)
    # At BERT's largest compute (2e12): b - a = -d, per seed.
    expected = _t([-OFFSETS[s] for s in OFFSETS])
    assert (b.loss_minus_reference.mean, b.loss_minus_reference.low,
            b.loss_minus_reference.high) == pytest.approx(expected)
    assert (b.steps_per_bert_step.mean, b.steps_per_bert_step.low,
            b.steps_per_bert_step.high) == pytest.approx(_t(steps[2]))
    a = readings[0]
    assert a.share_minus_reference.mean == a.loss_minus_reference.mean == 0
    assert a.steps_per_bert_step.mean == pytest.approx(np.mean(steps[1]))


def test_bad_input_is_one_line(tmp_path, capsys):
    path = tmp_path / "evaluations.csv"
    _write(path, [("a", 1)])
    with pytest.raises(UserError, match=r"reference='c' is not a "
                       r"token-dropping model of this study \(a\)"):
        paired.paired_readings(paired.read_rows(str(path)), "c")
    other = tmp_path / "other.csv"
    other.write_text("model,seed\nbert,1\n")
    with pytest.raises(SystemExit) as stopped:
        paired_reading.main([f"--evaluations={other}", "--reference=a"])
    assert stopped.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"paired_reading.py: error: {str(other)!r} is not a study's "
        "evaluations.csv (it needs the columns budget, model, phase, seed, "
        "step, train_flops, val_mlm_loss)."]

"""study/report.py: the annealed study's table, checked against hand
arithmetic (numpy and scipy for the intervals)."""

import csv
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from token_dropping.study import probe_tasks
from token_dropping.study import report as study_report
from token_dropping.study import verdict
from token_dropping.study.stats import Interval
from token_dropping.study.runs import ModelSpec
from token_dropping.study.unigram import Unigram

SPECS = [ModelSpec("bert", "bert_mini", "BERT"),
         ModelSpec("drop", "token_drop_bert_mini", "drop")]


def _annealed(name, seed, budgets, losses, flops_per_step):
    """A decay branch's final row per budget (learning rate 0 there)."""
    return [dict(model=name, experiment=name, seed=seed, phase="decay",
                 budget=b, step=b, learning_rate=0.0,
                 train_flops=b * flops_per_step, wall_seconds=float(b),
                 val_mlm_loss=loss, val_mlm_accuracy=_accuracy(seed, b),
                 train_mlm_loss=loss - 0.1)
            for b, loss in zip(budgets, losses)]


def _accuracy(seed, budget):
    """Validation accuracy differing by seed and budget."""
    return 0.3 + 0.01 * seed ** 2 + budget / 10000


def _stable(name, seed, steps, losses, flops_per_step):
    return [dict(model=name, experiment=name, seed=seed, phase="stable",
                 budget=None, step=s, learning_rate=1e-3,
                 train_flops=s * flops_per_step, wall_seconds=float(s),
                 val_mlm_loss=loss, val_mlm_accuracy=0.2,
                 train_mlm_loss=loss)
            for s, loss in zip(steps, losses)]


# BERT (10 FLOPs a step) annealed at 100, 200 and 400 steps; token
# dropping (8 a step) at the same compute (125, 250, 500 steps) and at
# 0.9 of BERT's largest (450 steps).
BERT = {1: [6.0, 5.0, 4.0], 2: [6.1, 5.2, 4.2], 3: [6.0, 5.1, 4.1]}
DROP = {1: [6.1, 5.1, 4.05, 3.9], 2: [6.0, 5.4, 4.3, 4.0],
        3: [6.2, 5.0, 4.0, 3.95]}
DROP_BUDGETS = [125, 250, 450, 500]


def _study_rows():
    rows = []
    for seed in (1, 2, 3):
        rows += _stable("bert", seed, [100, 200, 320], [6.5, 5.5, 4.8], 10)
        rows += _annealed("bert", seed, [100, 200, 400], BERT[seed], 10)
        rows += _annealed("drop", seed, DROP_BUDGETS, DROP[seed], 8)
    return rows


PROBE_ROWS = [
    dict(model="bert", accuracy=Interval(0.75, 0.70, 0.80, 60), gap=None),
    dict(model="drop", accuracy=Interval(0.74, 0.69, 0.79, 60),
         gap=Interval(-0.01, -0.03, 0.01, 60)),
    dict(model="random_init", accuracy=Interval(0.5, 0.47, 0.53, 60),
         gap=Interval(-0.25, -0.3, -0.2, 60)),
    dict(model="bag_of_words", accuracy=Interval(0.51, 0.48, 0.54, 60),
         gap=Interval(-0.24, -0.29, -0.19, 60)),
    dict(model="majority", accuracy=Interval(0.5, 0.5, 0.5, 60),
         gap=Interval(-0.25, -0.3, -0.2, 60)),
]


def _t_interval(values):
    values = np.asarray(values, dtype=float)
    half = (scipy_stats.t.ppf(0.975, len(values) - 1)
            * values.std(ddof=1) / math.sqrt(len(values)))
    return values.mean(), values.mean() - half, values.mean() + half


def _log_interp(computes, losses, x):
    return float(np.interp(np.log(x), np.log(computes), losses))


def test_model_table_against_hand_arithmetic():
    table = study_report.model_table(SPECS, _study_rows(), PROBE_ROWS,
                                     [1, 2, 3], floor=6.5,
                                     flop_ratios={"bert": 1.0, "drop": 0.8})
    bert, drop = table
    mean, low, high = _t_interval([4.0, 4.2, 4.1])
    assert (bert["loss"].mean, bert["loss"].low, bert["loss"].high) == (
        pytest.approx(mean), pytest.approx(low), pytest.approx(high))
    assert bert["below_floor"] == pytest.approx(6.5 - 4.1)
    assert bert["budgets"] == [100, 200, 400]
    assert "comparisons" not in bert
    # At BERT's largest compute (4000 FLOPs) token dropping's run is its
    # 500-step one.
    assert drop["final_steps"] == 500
    assert drop["loss"].mean == pytest.approx(np.mean([3.9, 4.0, 3.95]))
    # Accuracy: the annealed runs' at that compute too, not the stable ones.
    for entry, steps in ((bert, 400), (drop, 500)):
        accuracy = entry["accuracy"]
        assert (accuracy.mean, accuracy.low, accuracy.high) == pytest.approx(
            _t_interval([_accuracy(s, steps) for s in (1, 2, 3)]))
    # Gaps at BERT's budgets' compute, along each seed's frontier (linear
    # in log-compute; here every BERT compute is a token-dropping point).
    computes = [b * 8 for b in DROP_BUDGETS]
    gap_cells = []
    for j, budget in enumerate([100, 200, 400]):
        gaps = [_log_interp(computes, DROP[s], budget * 10) - BERT[s][j]
                for s in (1, 2, 3)]
        interval = drop["comparisons"][j].gap_interval
        expected = _t_interval(gaps)
        assert (interval.mean, interval.low, interval.high) == pytest.approx(
            expected)
        mean, low, high = expected
        label = "real" if low > 0 or high < 0 else "not significant"
        gap_cells.append(f"| {mean:+.3f} [{low:+.3f}, {high:+.3f}] "
                         f"({label}) ")
    # Both labels occur: the last gap's interval is below 0, the others
    # straddle it.
    assert [c.endswith("(real) ") for c in gap_cells] == [False, False, True]
    # Reaching BERT's annealed loss at 400 steps (4000 FLOPs): seed 1
    # reaches 4.0 between 3600 (4.05) and 4000 (3.9) FLOPs; seed 3 already
    # at 3600 (4.0 <= 4.1) ... which is inside the frontier, between 2000
    # (5.0) and 3600 (4.0); seed 2 reaches 4.2 between 2000 and 3600.
    def reach(losses, target):
        for (c0, l0), (c1, l1) in zip(zip(computes, losses),
                                      zip(computes[1:], losses[1:])):
            if l1 <= target < l0:
                return c0 * math.exp((l0 - target) / (l0 - l1)
                                     * math.log(c1 / c0))
        return None
    shares = [reach(DROP[s], BERT[s][2]) / 4000 for s in (1, 2, 3)]
    assert (drop["reach"].mean, drop["reach"].low,
            drop["reach"].high) == pytest.approx(_t_interval(shares))
    text = study_report.markdown_table(table, PROBE_ROWS)
    line = text.splitlines()[3]
    assert "".join(gap_cells) + "| " in line
    assert f"{np.mean(shares):.2f} [" in line
    # The probe: the bootstrap interval and the paired gap to BERT.
    assert line.endswith("| 0.740 [0.690, 0.790]; vs BERT -0.010 [-0.030, "
                         "+0.010] (not significant) |")
    assert "| bag of words (logistic regression on the probe's training " \
        "set) |" in text
    assert text.splitlines()[-1].endswith(
        "| 0.500 [0.500, 0.500]; vs BERT -0.250 [-0.300, -0.200] (real) |")


def test_a_bound_instead_of_an_interpolated_share():
    # Seed 1 already beats BERT at its first point; seed 2 never does: the
    # cell says so per seed instead of an interval.
    rows = []
    for seed, drop in ((1, [3.0, 2.9, 2.8, 2.7]), (2, [6.5, 6.4, 6.3, 6.2])):
        rows += _annealed("bert", seed, [100, 200, 400], BERT[seed], 10)
        rows += _annealed("drop", seed, DROP_BUDGETS, drop, 8)
    table = study_report.model_table(SPECS, rows, PROBE_ROWS, [1, 2],
                                     floor=6.5,
                                     flop_ratios={"bert": 1.0, "drop": 0.8})
    text = study_report.markdown_table(table, PROBE_ROWS)
    assert "per seed: ≤ 0.25, not reached" in text.splitlines()[3]
    assert math.isnan(table[1]["reach"].mean)


def test_the_spacing_is_the_widest_over_seeds():
    # Seed 2 annealed at 300 in place of 250 steps: its widest gap is
    # 2400 -> 3600 FLOPs (0.30); seed 1's is 2000 -> 3600 (0.40).
    rows = []
    for seed, budgets in ((1, DROP_BUDGETS), (2, [125, 300, 450, 500])):
        rows += _annealed("bert", seed, [100, 200, 400], BERT[seed], 10)
        rows += _annealed("drop", seed, budgets, DROP[seed], 8)
    table = study_report.model_table(SPECS, rows, PROBE_ROWS, [1, 2],
                                     floor=6.5,
                                     flop_ratios={"bert": 1.0, "drop": 0.8})
    assert table[1]["spacing"] == pytest.approx(1600 / 4000)


def test_a_first_point_equal_to_berts_loss_is_a_bound():
    # Equal counts as reached: at the frontier's first point, a bound.
    assert study_report._reach([(1000, 4.0), (2000, 3.9)], 4.0, 4000) == (
        0.25, "bound")
    assert study_report._reach([(1000, 4.1), (2000, 3.9)], 4.0, 4000) == (
        pytest.approx(1000 * 2 ** 0.5 / 4000), "")


def test_a_bound_is_judged_unrounded():
    # Both seeds beat BERT at their first point, 0.804 of BERT's largest
    # compute (402 steps of 8 FLOPs against 400 of 10): shown rounded up,
    # "≤ 0.81", and a bound of 0.804 does not meet a bar of 0.80.
    rows = []
    for seed in (1, 2):
        rows += _annealed("bert", seed, [100, 200, 400], BERT[seed], 10)
        rows += _annealed("drop", seed, [402, 450, 500], [3.0, 2.9, 2.8], 8)
    table = study_report.model_table(SPECS, rows, PROBE_ROWS, [1, 2],
                                     floor=6.5,
                                     flop_ratios={"bert": 1.0, "drop": 0.8})
    text = study_report.markdown_table(table, PROBE_ROWS)
    assert "per seed: ≤ 0.81, ≤ 0.81" in text.splitlines()[3]
    judged = verdict.judge(table[1])
    assert (judged.how, judged.meets_bar) == ("bound", False)
    assert judged.upper == pytest.approx(402 * 8 / 4000)


def test_a_gap_outside_a_frontier_is_not_measured():
    # Token dropping's first run (at 1040 FLOPs) is past BERT's first
    # compute (1000): no gap there, and the cell says why.
    rows = []
    for seed in (1, 2):
        rows += _annealed("bert", seed, [100, 200, 400], BERT[seed], 10)
        rows += _annealed("drop", seed, [130, 250, 500], DROP[seed][:3], 8)
    table = study_report.model_table(SPECS, rows, PROBE_ROWS, [1, 2],
                                     floor=6.5,
                                     flop_ratios={"bert": 1.0, "drop": 0.8})
    text = study_report.markdown_table(table, PROBE_ROWS)
    assert "not measured (outside its frontier)" in text.splitlines()[3]
    assert table[1]["comparisons"][1].gap_interval.n == 2


class _Config:
    size, seeds = "mini", 3
    warmup_steps, learning_rate, decay_fraction = 10, 1e-3, 0.2
    reach_from = 0.9
    finetune_seeds, glue_task = 1, "cola"
    glue_dir, probe = "", "source"


def test_write_study_writes_every_file(tmp_path):
    finetunes = [dict(model=m, pretrain_seed=s, finetune_seed=1,
                      train_flops=4000.0, dev_accuracy=0.6)
                 for m in ("bert", "drop") for s in (1, 2, 3)]
    finetunes.append(dict(model="random_init", pretrain_seed=0,
                          finetune_seed=1, train_flops=0.0,
                          dev_accuracy=0.5))
    result = study_report.write_study(
        str(tmp_path), specs=SPECS, rows=_study_rows(), finetunes=finetunes,
        probe_rows=PROBE_ROWS, probe_counts=True,
        floor=Unigram(6.5, 10, 10), config=_Config,
        flop_ratios={"bert": 1.0, "drop": 0.8}, num_validation=7,
        probe_note="Probe: `probe`.", command="python tools/study.py --quick")
    for name in study_report.FILES:
        assert (tmp_path / name).stat().st_size > 0, name
    with open(tmp_path / "evaluations.csv") as f:
        reader = csv.reader(f)
        assert tuple(next(reader)) == study_report.EVAL_COLUMNS
        assert {row[3] for row in reader} == {"stable", "decay"}
    with open(tmp_path / "finetuning.csv") as f:
        assert tuple(next(csv.reader(f))) == study_report.FINETUNE_COLUMNS
    assert (tmp_path / "loss_vs_flops.png").read_bytes()[:4] == b"\x89PNG"
    assert "python tools/study.py --quick" in result.summary
    # The widest gap between neighbouring points of token dropping's
    # frontier (1000, 2000, 3600, 4000 FLOPs) over BERT's largest 4000:
    # 1600 / 4000 = 0.40 (the narrowest would be 0.10).
    assert " ".join(result.summary.split()).count(
        "neighbouring points at most 0.40 of BERT's largest compute "
        "apart") == 1
    assert "| randomly initialised encoder" in result.summary
    assert "The probe measures pretraining" in result.summary
    assert "Fine-tuned with Model Garden's `bert/sentence_prediction`" in (
        result.summary)
    # Each model but BERT against the bar (`verdict`), with its numbers.
    assert result.summary.rstrip().splitlines()[-1].startswith(
        "- **drop** ")


def test_a_zero_shot_probe_is_said_to_be_read_not_fine_tuned():
    cloze = type("_Cloze", (_Config,), dict(probe="cloze"))
    glue = type("_Glue", (_Config,), dict(probe="cloze", glue_dir="g"))
    assert probe_tasks.method(cloze).startswith(
        "Read from each pretrained model")
    # With --glue_dir the GLUE task is the probe, fine-tuned.
    assert probe_tasks.method(glue).startswith("Fine-tuned with")


@pytest.mark.parametrize("bert_loss,expected", [
    (4.0, "Annealed BERT ends 2.50 nats below the unigram floor (validation "
          "loss 4.000 against 6.500): that much of what it predicts comes "
          "from context."),
    (7.19, "Annealed BERT ends 0.69 nats above the unigram floor (validation "
           "loss 7.190 against 6.500): it has not yet learned to use "
           "context."),
])
def test_the_floor_sentence_is_true_for_either_sign(bert_loss, expected,
                                                    tmp_path):
    rows = []
    for seed in (1, 2, 3):
        rows += _annealed("bert", seed, [100, 200, 400],
                          [8.0, 7.5, bert_loss], 10)
        rows += _annealed("drop", seed, DROP_BUDGETS, [8.0, 7.5, 7.0, 6.0],
                          8)
    # The models in the other order: BERT is the baseline all the same.
    result = study_report.write_study(
        str(tmp_path), specs=SPECS[::-1], rows=rows, finetunes=[],
        probe_rows=PROBE_ROWS, probe_counts=False,
        floor=Unigram(6.5, 10, 10), config=_Config,
        flop_ratios={"bert": 1.0, "drop": 0.8}, num_validation=7,
        probe_note="Probe: `probe`.")
    assert expected in " ".join(result.summary.split())
    assert "The probe does NOT measure pretraining here" in result.summary


def test_the_loss_plot_draws_each_models_annealed_means_and_intervals(
        tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(study_report.probe_plot, "save_against_flops",
                        lambda figure, axis, *a, **k: drawn.update(axis=axis))
    study_report.loss_plot(str(tmp_path / "loss.png"), SPECS, _study_rows(),
                           [1, 2, 3], floor=6.5)
    bars = drawn["axis"].containers  # one errorbar per model, in order
    assert len(bars) == 2
    for bar, losses, steps, per_step in (
            (bars[0], BERT, [100, 200, 400], 10),
            (bars[1], DROP, DROP_BUDGETS, 8)):
        line, _, (ranges,) = bar.lines
        np.testing.assert_allclose(np.asarray(line.get_xdata(), float),
                                   [b * per_step for b in steps])
        expected = [_t_interval([losses[s][j] for s in (1, 2, 3)])
                    for j in range(len(steps))]
        np.testing.assert_allclose(np.asarray(line.get_ydata(), float),
                                   [m for m, _, _ in expected])
        np.testing.assert_allclose(
            [(segment[0][1], segment[1][1])
             for segment in ranges.get_segments()],
            [(low, high) for _, low, high in expected])
    # The thin lines: each stable run's mean loss at every step.
    stable = [l for l in drawn["axis"].lines if l.get_linewidth() == 0.8
              and l.get_linestyle() == "-"]
    np.testing.assert_allclose(np.asarray(stable[0].get_ydata(), float),
                               [6.5, 5.5, 4.8])

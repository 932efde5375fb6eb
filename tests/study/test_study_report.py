"""study_report.py: the study's table, checked against hand arithmetic."""

import csv
import math

import pytest

from token_dropping.study import report as study_report
from token_dropping.study.runs import ModelSpec
from token_dropping.study.unigram import Unigram


def _rows(name, seed, losses, flops_per_step, train_losses=None):
    return [dict(model=name, experiment=name, seed=seed, step=100 * (i + 1),
                 train_flops=100 * (i + 1) * flops_per_step,
                 wall_seconds=float(i + 1), val_mlm_loss=loss,
                 val_mlm_accuracy=0.1 * (i + 1),
                 train_mlm_loss=(train_losses or losses)[i] - 0.1)
            for i, loss in enumerate(losses)]


SPECS = [ModelSpec("bert", "bert_mini", "BERT"),
         ModelSpec("drop", "token_drop_bert_mini", "drop")]


def _study_rows():
    # BERT: 3 evaluations at 10 FLOPs a step; token dropping costs 0.8 of
    # that and runs 4 evaluations (400 steps = 320 x 10 FLOPs... one past
    # BERT's 3000 FLOPs, as equal_compute_steps rounds up).
    rows = []
    rows += _rows("bert", 1, [6.0, 5.0, 4.0], 10)
    rows += _rows("bert", 2, [6.0, 5.2, 4.2], 10)
    rows += _rows("drop", 1, [6.2, 5.4, 4.4, 3.8], 8)
    rows += _rows("drop", 2, [6.2, 5.6, 4.6, 4.4], 8)
    return rows


def test_model_table_against_hand_arithmetic():
    rows = _study_rows()
    finetunes = [dict(model="bert", pretrain_seed=1, finetune_seed=1,
                      dev_accuracy=0.8),
                 dict(model="bert", pretrain_seed=2, finetune_seed=1,
                      dev_accuracy=0.7),
                 dict(model="drop", pretrain_seed=1, finetune_seed=1,
                      dev_accuracy=0.75)]
    table = study_report.model_table(SPECS, rows, finetunes, [1, 2],
                                     train_steps=300, floor=6.5,
                                     flop_ratios={"bert": 1.0, "drop": 0.8})
    bert, drop = table
    assert bert["loss"] == pytest.approx((4.1, 0.1414213), rel=1e-5)
    assert bert["below_floor"] == pytest.approx(2.4)
    assert bert["probe"] == pytest.approx((0.75, 0.0707107), rel=1e-5)
    assert "gap_equal_steps" not in bert
    # Equal steps (300): 4.4 - 4.0 and 4.6 - 4.2: +0.4 both.
    assert drop["gap_equal_steps"] == pytest.approx((0.4, 0.0), abs=1e-9)
    assert drop["gap_equal_steps_real"]  # 0.4 > max(0.141, 0.141)
    # Equal compute: BERT's 3000 FLOPs is 3000 / 8 = step 375 of token
    # dropping: seed 1 at 4.4 + 0.75 * (3.8 - 4.4) = 3.95, gap -0.05; seed
    # 2 at 4.6 + 0.75 * (4.4 - 4.6) = 4.45, gap +0.25.
    gap, std = drop["gap_equal_compute"]
    assert gap == pytest.approx(0.1)
    assert std == pytest.approx(0.2121320, rel=1e-5)
    assert not drop["gap_equal_compute_real"]  # 0.1 < std 0.424 of drop
    # Reaching BERT's final loss: seed 1 reaches 4.0 between 2400 (4.4) and
    # 3200 (3.8) FLOPs at 2400 + 4/6 * 800 = 2933.3, a share of 0.978 of
    # BERT's 3000; seed 2 never reaches 4.2.
    assert drop["compute_to_reach"][0] == pytest.approx(2933.333 / 3000)
    assert drop["compute_to_reach"][1] is None
    text = study_report.markdown_table(table, (0.5, 0.01), 0.5)
    assert "0.98, not reached" in text
    assert "+0.100 ± 0.212 (within seed spread)" in text


def test_a_run_ending_a_rounding_short_of_bert_is_at_equal_compute():
    # BERT ends at 3000 FLOPs; token dropping's 4 evaluations at 7.4975 a
    # step end at 2999 (0.99967 of it, whole steps): its last loss is the
    # equal-compute point. 0.2% short is not equal compute.
    rows = _rows("bert", 1, [6.0, 5.0, 4.0], 10)
    rows += _rows("drop", 1, [6.2, 5.4, 4.4, 3.8], 7.4975)
    table = study_report.model_table(SPECS, rows, [], [1], train_steps=300,
                                     floor=6.5,
                                     flop_ratios={"bert": 1.0, "drop": 0.75})
    assert table[1]["gap_equal_compute"][0] == pytest.approx(-0.2)
    rows = rows[:3] + _rows("drop", 1, [6.2, 5.4, 4.4, 3.8], 7.485)
    table = study_report.model_table(SPECS, rows, [], [1], train_steps=300,
                                     floor=6.5,
                                     flop_ratios={"bert": 1.0, "drop": 0.75})
    assert math.isnan(table[1]["gap_equal_compute"][0])
    text = study_report.markdown_table(table, (0.5, 0.01), 0.5)
    assert "not measured (no seed's run got there)" in text


def test_write_study_writes_every_file(tmp_path):
    class Config:
        size, seeds, train_steps = "mini", 2, 300
        warmup_steps, learning_rate = 10, 1e-3
        finetune_seeds, glue_task = 1, "cola"

    finetunes = [dict(model=m, pretrain_seed=s, finetune_seed=1,
                      dev_accuracy=0.6) for m in ("bert", "drop")
                 for s in (1, 2)]
    finetunes.append(dict(model="random_init", pretrain_seed=0,
                          finetune_seed=1, dev_accuracy=0.5))
    result = study_report.write_study(
        str(tmp_path), specs=SPECS, rows=_study_rows(), finetunes=finetunes,
        majority=0.5, floor=Unigram(6.5, 10, 10), config=Config,
        flop_ratios={"bert": 1.0, "drop": 0.8}, num_validation=7,
        probe_note="Probe: `probe`.", command="python tools/study.py --quick")
    for name in study_report.FILES:
        assert (tmp_path / name).stat().st_size > 0, name
    with open(tmp_path / "evaluations.csv") as f:
        assert tuple(next(csv.reader(f))) == study_report.EVAL_COLUMNS
    with open(tmp_path / "finetuning.csv") as f:
        assert tuple(next(csv.reader(f))) == study_report.FINETUNE_COLUMNS
    assert (tmp_path / "loss_vs_flops.png").read_bytes()[:4] == b"\x89PNG"
    assert "python tools/study.py --quick" in result.summary
    assert "| randomly initialised encoder" in result.summary


def test_the_loss_plot_averages_seeds_step_by_step(tmp_path, monkeypatch):
    # Seed 2 lost its evaluation at step 100 (stopped during it, resumed):
    # the plot averages the steps both seeds have, not rows by position.
    from matplotlib.axes import Axes
    plotted = {}
    original = Axes.plot

    def record(axis, xs, ys, *args, label=None, **kwargs):
        plotted[label] = (list(xs), list(ys))
        return original(axis, xs, ys, *args, label=label, **kwargs)

    monkeypatch.setattr(Axes, "plot", record)
    rows = _rows("bert", 1, [6.0, 5.0, 4.0], 10)
    rows += _rows("bert", 2, [6.0, 5.2, 4.2], 10)[1:]
    rows += _rows("drop", 1, [6.2, 5.4, 4.4, 3.8], 8)
    rows += _rows("drop", 2, [6.2, 5.6, 4.6, 4.4], 8)
    study_report.loss_plot(str(tmp_path / "plot.png"), SPECS, rows, [1, 2],
                           6.5)
    xs, ys = plotted["BERT"]
    assert xs == [2000, 3000]
    assert ys == pytest.approx([5.1, 4.1])
    assert plotted["drop"][1] == pytest.approx([6.2, 5.5, 4.5, 4.1])


class _Config:
    size, seeds, train_steps = "mini", 2, 300
    warmup_steps, learning_rate = 10, 1e-3
    finetune_seeds, glue_task = 1, "cola"


@pytest.mark.parametrize("bert_loss,expected", [
    (4.0, "BERT ends 2.50 nats below the unigram floor (validation loss "
          "4.000 against 6.500): that much of what it predicts comes from "
          "context."),
    (7.19, "BERT ends 0.69 nats above the unigram floor (validation loss "
           "7.190 against 6.500): it has not yet learned to use context."),
])
def test_the_floor_sentence_is_true_for_either_sign(bert_loss, expected,
                                                    tmp_path):
    rows = _rows("bert", 1, [8.0, 7.5, bert_loss], 10)
    rows += _rows("bert", 2, [8.0, 7.5, bert_loss], 10)
    rows += _rows("drop", 1, [8.0, 7.5, 7.0, 6.0], 8)
    rows += _rows("drop", 2, [8.0, 7.5, 7.0, 6.0], 8)
    # The models in the other order: BERT is the baseline all the same.
    result = study_report.write_study(
        str(tmp_path), specs=SPECS[::-1], rows=rows, finetunes=[],
        majority=0.5, floor=Unigram(6.5, 10, 10), config=_Config,
        flop_ratios={"bert": 1.0, "drop": 0.8}, num_validation=7,
        probe_note="Probe: `probe`.")
    assert expected in " ".join(result.summary.split())
    bert = next(e for e in result.table if e["model"] == "bert")
    assert "gap_equal_steps" not in bert


def test_a_cell_says_how_many_seeds_it_holds():
    # Seed 2 of token dropping lost its evaluation at step 300 (equal
    # steps) and never measured its training loss at its last one.
    rows = _rows("bert", 1, [6.0, 5.0, 4.0], 10)
    rows += _rows("bert", 2, [6.0, 5.2, 4.2], 10)
    rows += _rows("drop", 1, [6.2, 5.4, 4.4, 3.8], 8)
    seed2 = _rows("drop", 2, [6.2, 5.6, 4.6, 4.4], 8)
    seed2[-1]["train_mlm_loss"] = float("nan")
    rows += seed2[:2] + seed2[3:]
    table = study_report.model_table(SPECS, rows, [], [1, 2],
                                     train_steps=300, floor=6.5,
                                     flop_ratios={"bert": 1.0, "drop": 0.8})
    text = study_report.markdown_table(table, (0.5, 0.01), 0.5)
    drop_line = text.splitlines()[3]
    # Equal steps: seed 1 only, 4.4 - 4.0.
    assert "+0.400 ± 0.000 (real) (1 of 2 seeds)" in drop_line
    assert drop_line.count("(1 of 2 seeds)") == 2  # and val - train loss
    assert "(1 of 2 seeds)" not in text.splitlines()[2]  # BERT: both

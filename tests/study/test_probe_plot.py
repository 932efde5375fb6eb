"""study/probe_plot.py: the probe-against-compute curve, checked against
numpy and scipy, and the plot written."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from token_dropping.study import probe_plot
from token_dropping.study.runs import ModelSpec
from token_dropping.study.stats import Interval


def _rows(name, flops, accuracies):
    """`accuracies[seed]`: per fine-tuning seed, at `flops`."""
    return [dict(model=name, pretrain_seed=seed, finetune_seed=ft,
                 train_flops=flops, dev_accuracy=a)
            for seed, values in accuracies.items()
            for ft, a in enumerate(values, 1)]


def test_seed_curve_averages_fine_tunings_then_seeds():
    rows = (_rows("bert", 4000.0, {1: [0.7, 0.8], 2: [0.6, 0.6],
                                   3: [0.9, 0.7]})
            + _rows("bert", 1000.0, {1: [0.5], 2: [0.55], 3: [0.6]})
            + _rows("drop", 4000.0, {1: [0.1], 2: [0.2], 3: [0.3]}))
    curve = probe_plot.seed_curve(rows, "bert")
    assert [flops for flops, _ in curve] == [1000.0, 4000.0]
    per_seed = np.array([0.75, 0.6, 0.8])  # each seed's fine-tunings' mean
    half = (scipy_stats.t.ppf(0.975, 2) * per_seed.std(ddof=1)
            / math.sqrt(3))
    interval = curve[1][1]
    assert (interval.mean, interval.low, interval.high) == pytest.approx(
        (per_seed.mean(), per_seed.mean() - half, per_seed.mean() + half))
    assert curve[0][1].mean == pytest.approx(0.55)
    assert probe_plot.seed_curve(rows, "other") == []


def test_probe_plot_writes_a_png(tmp_path):
    specs = [ModelSpec("bert", "bert_mini", "BERT"),
             ModelSpec("drop", "token_drop_bert_mini", "drop")]
    rows = (_rows("bert", 1000.0, {1: [0.6], 2: [0.62]})
            + _rows("bert", 4000.0, {1: [0.7], 2: [0.72]})
            # One point (a fine-tuned probe): drawn as a bar, not a band.
            + _rows("drop", 4000.0, {1: [0.71], 2: [0.69]}))
    controls = [dict(model=name, accuracy=Interval(0.5, 0.48, 0.52, 9))
                for name in ("bag_of_words", "random_init", "majority")]
    path = tmp_path / "probe_accuracy.png"
    probe_plot.probe_plot(str(path), specs, rows, controls)
    assert path.read_bytes()[:4] == b"\x89PNG"

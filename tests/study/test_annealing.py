"""study/annealing.py: which annealed runs a model gets, and the forks."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf

from token_dropping.common.errors import UserError
from token_dropping.study import annealing
from token_dropping.train.warmup_stable_decay import WarmupStableDecay

SCHEDULE = WarmupStableDecay(learning_rate=1e-3, warmup_steps=100, align=10)


def test_bert_is_annealed_at_the_study_budgets():
    plan = annealing.model_plan((400, 700, 1200), ratio=1.0, reach_from=0.7,
                                schedule=SCHEDULE)
    assert plan.budgets == (400, 700, 1200)
    # 20% of each budget, the start rounded down to the 10-step loop.
    assert plan.starts == (320, 560, 960)
    assert plan.stable_steps == 960 and plan.final_budget == 1200


def test_another_model_gets_bert_s_compute_points_and_the_reach_grid():
    ratio = 0.767
    plan = annealing.model_plan((400, 700, 1200), ratio=ratio,
                                reach_from=0.7, schedule=SCHEDULE)
    shares = [400 / 1200, 700 / 1200, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95, 1.0]
    assert plan.shares == pytest.approx(shares)
    # The first point at or below its compute, the others at or above.
    expected = [math.floor(shares[0] * 1200 / ratio)] + [
        math.ceil(s * 1200 / ratio) for s in shares[1:]]
    assert list(plan.budgets) == expected
    for budget, share in zip(plan.budgets, plan.shares):
        compute = budget * ratio / 1200  # in BERT's largest budget's units
        assert abs(compute - share) <= ratio / 1200 + 1e-12
    assert plan.final_budget == math.ceil(1200 / ratio)
    # Neighbouring points at most 0.05 of BERT's largest compute apart from
    # 0.7 on.
    computes = np.array(plan.budgets[2:]) * ratio / 1200
    assert np.diff(computes).max() <= 0.05 + 2 * ratio / 1200
    assert all(s % 10 == 0 for s in plan.starts)


def test_a_budget_whose_decay_starts_in_the_warmup_is_one_line():
    with pytest.raises(UserError, match=r"--budgets: total_steps=110: its "
                       r"decay would start at step 80, inside the warmup"):
        annealing.model_plan((110, 400), ratio=1.0, reach_from=1.0,
                             schedule=SCHEDULE)


def test_a_fork_becomes_a_branch_s_latest_checkpoint(tmp_path):
    weights = tf.Variable([1.0, 2.0])
    checkpoint = tf.train.Checkpoint(w=weights)
    stable, branch = str(tmp_path / "stable"), str(tmp_path / "branch")
    assert not annealing.has_fork(stable, 30)
    annealing.save_fork(checkpoint, stable, 30, wall_seconds=12.5)
    assert annealing.has_fork(stable, 30)
    assert annealing.fork_seconds(stable, 30) == 12.5
    weights.assign([5.0, 6.0])  # the stable run trains on
    latest, fork = annealing.start_branch(stable, 30, branch)
    assert fork == 30
    assert tf.train.latest_checkpoint(branch) == latest
    restored = tf.Variable([0.0, 0.0])
    # `write` keeps no save counter: only the model's values.
    tf.train.Checkpoint(w=restored).read(latest).assert_consumed()
    assert restored.numpy().tolist() == [1.0, 2.0]


def test_a_branch_without_its_fork_starts_from_the_last_one_before(
        tmp_path):
    checkpoint = tf.train.Checkpoint(w=tf.Variable([1.0]))
    stable, branch = str(tmp_path / "stable"), str(tmp_path / "branch")
    for step, value in ((30, 1.0), (120, 2.0), (60, 3.0)):
        checkpoint.w.assign([value])
        annealing.save_fork(checkpoint, stable, step, wall_seconds=step)
    assert annealing.latest_fork(stable, 100) == 60
    assert annealing.latest_fork(stable, 120) == 120
    with pytest.raises(UserError, match="no checkpoint at or before step 29"):
        annealing.latest_fork(stable, 29)
    latest, fork = annealing.start_branch(stable, 100, branch)
    assert (fork, os.path.basename(latest)) == (60, "ckpt-60")
    assert tf.train.latest_checkpoint(branch) == latest
    restored = tf.train.Checkpoint(w=tf.Variable([0.0]))
    restored.read(latest).assert_consumed()
    assert restored.w.numpy().tolist() == [3.0]


def test_a_missing_fork_is_one_line(tmp_path):
    stable = str(tmp_path / "stable")
    checkpoint = tf.train.Checkpoint(w=tf.Variable([1.0]))
    annealing.save_fork(checkpoint, stable, 50, wall_seconds=1.0)
    with pytest.raises(UserError, match=r"has no checkpoint at or before "
                       r"step 40, where a decay starts; use another "
                       r"--runs_dir"):
        annealing.start_branch(stable, 40, str(tmp_path / "branch"))

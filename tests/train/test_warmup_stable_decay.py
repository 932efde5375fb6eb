"""train/warmup_stable_decay.py: Model Garden's schedule against numpy."""

import numpy as np
import pytest
import tensorflow as tf
from official.core import exp_factory
from official.modeling.optimization import optimizer_factory

import token_dropping  # noqa: F401  (registers bert_mini)
from token_dropping.common.errors import UserError
from token_dropping.train.warmup_stable_decay import WarmupStableDecay

PEAK, WARMUP, TOTAL = 1e-3, 10, 60


def reference(steps, *, peak, warmup, total=None, decay=None):
    """The WSD formula: linear warmup (Model Garden counts step 0 as step
    1), the peak, and (with `total`) a line to 0 over the last `decay`."""
    steps = np.asarray(steps, dtype=np.float64)
    warm = peak * np.maximum(steps, 1) / max(warmup, 1)
    after = np.full_like(steps, peak)
    if total is not None:
        after = peak * np.clip((total - steps) / decay, 0.0, 1.0)
    return np.where(steps < warmup, warm, after)


def _built(optimizer_config):
    """The schedule Model Garden builds from `bert_mini` overridden."""
    params = exp_factory.get_exp_config("bert_mini")
    params.override({"trainer": {"optimizer_config": optimizer_config}},
                    is_strict=True)
    factory = optimizer_factory.OptimizerFactory(
        params.trainer.optimizer_config)
    return factory, factory.build_learning_rate()


def _values(schedule, steps):
    return np.array([float(schedule(step)) for step in steps])


def test_branch_and_stable_rates_match_the_formula():
    wsd = WarmupStableDecay(learning_rate=PEAK, warmup_steps=WARMUP)
    assert (wsd.decay_steps(TOTAL), wsd.decay_start(TOTAL)) == (12, 48)
    steps = np.arange(TOTAL + 5)
    _, branch = _built(wsd.branch(TOTAL))
    _, stable = _built(wsd.stable())
    expected = reference(steps, peak=PEAK, warmup=WARMUP, total=TOTAL,
                         decay=12)
    np.testing.assert_allclose(_values(branch, steps), expected, rtol=1e-6,
                               atol=1e-12)
    np.testing.assert_allclose(_values(stable, steps),
                               reference(steps, peak=PEAK, warmup=WARMUP),
                               rtol=1e-6)
    # Identical (float32) rates until the branch point, then the decay.
    start = wsd.decay_start(TOTAL)
    assert np.array_equal(_values(branch, range(start + 1)),
                          _values(stable, range(start + 1)))
    assert float(branch(start + 1)) < PEAK
    # Annealed: 0 at the budget; the last update's rate is peak / 12.
    assert float(branch(TOTAL)) == 0.0 <= 0.01 * PEAK
    assert float(branch(TOTAL - 1)) == pytest.approx(PEAK / 12, rel=1e-6)


def test_a_long_decay_ends_every_update_under_one_percent():
    wsd = WarmupStableDecay(learning_rate=PEAK, warmup_steps=100,
                            decay_fraction=0.1)
    _, branch = _built(wsd.branch(1000))
    assert wsd.decay_steps(1000) == 100
    assert float(branch(999)) <= 0.01 * PEAK + 1e-12
    assert float(branch(1000)) == 0.0
    assert float(branch(899)) == pytest.approx(PEAK)


def test_a_branch_from_the_stable_checkpoint_equals_straight_through(
        tmp_path):
    """Model Garden's AdamW (bert_mini's) on a toy loss: the stable run to
    the branch point, checkpointed, restored and decayed, against one run
    with the branch's schedule throughout."""
    wsd = WarmupStableDecay(learning_rate=0.05, warmup_steps=4)
    total = 20
    start = wsd.decay_start(total)
    targets = tf.constant(np.random.default_rng(0).normal(size=(total, 3)),
                          tf.float32)

    def make(optimizer_config):
        factory, schedule = _built(optimizer_config)
        return tf.Variable(tf.ones(3)), factory.build_optimizer(schedule)

    def train(weights, optimizer, steps):
        for step in steps:
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum((weights - targets[step]) ** 2)
            optimizer.apply_gradients([(tape.gradient(loss, weights),
                                        weights)])

    straight = make(wsd.branch(total))
    train(*straight, range(total))
    stable = make(wsd.stable())
    train(*stable, range(start))
    path = tf.train.Checkpoint(w=stable[0], o=stable[1]).save(
        str(tmp_path / "stable"))
    branch = make(wsd.branch(total))
    # The optimizer's slots restore when its first step creates them.
    tf.train.Checkpoint(w=branch[0], o=branch[1]).restore(path)
    train(*branch, range(start, total))
    assert int(branch[1].iterations) == total  # resumed at `start`
    assert np.array_equal(branch[0].numpy(), straight[0].numpy())
    # The stable run continued instead is another model.
    train(*stable, range(start, total))
    assert not np.allclose(stable[0].numpy(), straight[0].numpy())


@pytest.mark.parametrize("kwargs, message", [
    (dict(learning_rate=0.0, warmup_steps=1), "learning_rate=0.0"),
    (dict(learning_rate=1e-3, warmup_steps=-1), "warmup_steps=-1"),
    (dict(learning_rate=1e-3, warmup_steps=1, decay_fraction=1.5),
     "decay_fraction=1.5"),
])
def test_bad_settings_are_one_line(kwargs, message):
    with pytest.raises(UserError, match=message):
        WarmupStableDecay(**kwargs)


def test_a_decay_inside_the_warmup_is_refused():
    wsd = WarmupStableDecay(learning_rate=1e-3, warmup_steps=100)
    with pytest.raises(UserError, match=r"total_steps=110: its decay would "
                       r"start at step 88, inside the warmup of 100 steps; "
                       r"give a budget of at least 125 steps"):
        wsd.branch(110)
    with pytest.raises(UserError, match="total_steps=0"):
        wsd.decay_start(0)


def test_aligned_starts_fall_on_the_loop_and_still_end_at_zero():
    wsd = WarmupStableDecay(learning_rate=PEAK, warmup_steps=WARMUP,
                            align=10)
    for total in (60, 67, 133):
        start = wsd.decay_start(total)
        assert start % 10 == 0
        assert start <= total - round(0.2 * total) < start + 10
        steps = np.arange(total + 3)
        _, branch = _built(wsd.branch(total))
        np.testing.assert_allclose(
            _values(branch, steps),
            reference(steps, peak=PEAK, warmup=WARMUP, total=total,
                      decay=total - start), rtol=1e-6, atol=1e-12)


def test_rate_is_the_schedule_model_garden_builds():
    wsd = WarmupStableDecay(learning_rate=PEAK, warmup_steps=WARMUP,
                            align=4)
    steps = np.arange(TOTAL + 3)
    for total, config in ((None, wsd.stable()), (TOTAL, wsd.branch(TOTAL))):
        _, built = _built(config)
        np.testing.assert_allclose(
            [wsd.rate(int(s), total) for s in steps], _values(built, steps),
            rtol=1e-6, atol=1e-12)


def test_bad_align_is_one_line():
    with pytest.raises(UserError, match="align=0"):
        WarmupStableDecay(learning_rate=1e-3, warmup_steps=1, align=0)

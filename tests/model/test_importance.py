"""TokenImportance (model/importance.py): exact moving-average arithmetic
against numpy, non-finite steps, replicas, arguments and config."""

import numpy as np
import pytest
import tensorflow as tf

from token_dropping import TokenImportance


def numpy_update(table, ids, losses, weights, beta):
    """The documented rule, written independently: per-id weighted mean;
    nothing at all in a step with a non-finite loss at weight > 0."""
    table = table.copy()
    ids, losses, weights = (np.ravel(a) for a in (ids, losses, weights))
    counted = (weights > 0) & (ids >= 0) & (ids < len(table))
    if not np.isfinite(losses[counted]).all():
        return table
    for token in np.unique(ids[counted]):
        use = (ids == token) & counted
        if weights[use].sum() > 0:
            mean = (losses[use] * weights[use]).sum() / weights[use].sum()
            table[token] = beta * table[token] + (1 - beta) * mean
    return table


def test_one_update_of_ten_with_loss_zero_gives_9_95():
    table = TokenImportance(vocab_size=4, init_value=10.0, beta=0.995)
    table.update([[2]], [[0.0]], [[1.0]])
    assert table.table.numpy()[2] == pytest.approx(9.95, abs=1e-6)
    np.testing.assert_array_equal(table.table.numpy()[[0, 1, 3]], 10.0)


def test_duplicate_ids_use_the_weighted_mean():
    table = TokenImportance(vocab_size=6, init_value=10.0, beta=0.9)
    ids = np.array([[3, 3, 5], [3, 1, 5]])
    losses = np.array([[1.0, 2.0, 4.0], [6.0, 8.0, 0.5]], np.float32)
    weights = np.array([[1.0, 0.5, 1.0], [2.0, 1.0, 1.0]], np.float32)
    table.update(ids, losses, weights)
    # Id 3: (1*1 + 2*0.5 + 6*2) / 3.5 = 4.0; 0.9*10 + 0.1*4 = 9.4.
    assert table.table.numpy()[3] == pytest.approx(9.4, abs=1e-5)
    np.testing.assert_allclose(
        table.table.numpy(),
        numpy_update(np.full(6, 10.0), ids, losses, weights, 0.9), rtol=1e-6)


def test_weight_zero_slots_and_non_finite_losses_leave_the_table_unchanged():
    table = TokenImportance(vocab_size=5, init_value=10.0, beta=0.5)
    ids = [[0, 0, 4, 2]]
    losses = [[3.0, 7.0, np.nan, np.inf]]
    weights = [[0.0, 0.0, 1.0, 1.0]]
    table.update(ids, losses, weights)
    np.testing.assert_array_equal(table.table.numpy(), np.full(5, 10.0))


def test_ids_outside_the_vocabulary_are_ignored():
    table = TokenImportance(vocab_size=5, init_value=10.0, beta=0.5)
    table.update([[7, -1, 1]], [[0.0, 0.0, 2.0]], [[1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(table.table.numpy(), [10, 6, 10, 10, 10])


def test_many_random_updates_match_numpy():
    rng = np.random.RandomState(0)
    table = TokenImportance(vocab_size=30, init_value=10.0, beta=0.995)
    expected = np.full(30, 10.0)
    update = tf.function(table.update)
    for _ in range(50):
        ids = rng.randint(0, 30, size=(4, 6))
        losses = rng.uniform(0, 12, size=(4, 6)).astype(np.float32)
        weights = (rng.uniform(size=(4, 6)) > 0.3).astype(np.float32)
        update(ids, losses, weights)
        expected = numpy_update(expected, ids, losses, weights, 0.995)
    np.testing.assert_allclose(table.table.numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_one_non_finite_loss_leaves_the_whole_table_alone(bad):
    table = TokenImportance(vocab_size=5, init_value=10.0, beta=0.5)
    table.update([[1, 2, 3]], [[1.0, bad, 2.0]], [[1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(table.table.numpy(), np.full(5, 10.0))


def test_a_non_finite_loss_in_a_padded_slot_does_not_block_the_step():
    table = TokenImportance(vocab_size=5, init_value=10.0, beta=0.5)
    table.update([[1, 0]], [[2.0, np.nan]], [[1.0, 0.0]])
    np.testing.assert_array_equal(table.table.numpy(), [10, 6, 10, 10, 10])


def two_replicas():
    """MirroredStrategy on conftest's two logical CPUs (reduction through
    one device: collective ops keyed per process clash across tests)."""
    devices = [d.name for d in tf.config.list_logical_devices("CPU")[:2]]
    assert len(devices) == 2, "conftest makes two logical CPU devices"
    return tf.distribute.MirroredStrategy(
        devices, cross_device_ops=tf.distribute.ReductionToOneDevice())


def update_per_replica(strategy, table, ids, losses, weights=None):
    """Replica r updates `table` with `ids[r]`, `losses[r]`, `weights[r]`."""
    @tf.function
    def step():
        def replica_fn():
            r = tf.distribute.get_replica_context().replica_id_in_sync_group
            pick = lambda a: tf.gather(tf.constant(a), r)
            return table.update(pick(ids), pick(losses),
                                None if weights is None else pick(weights))
        strategy.run(replica_fn)

    step()
    return [v.numpy() for v in strategy.experimental_local_results(
        table.table)]


def test_a_non_finite_loss_on_one_replica_stops_the_update_on_all():
    strategy = two_replicas()
    with strategy.scope():
        table = TokenImportance(vocab_size=5, init_value=10.0, beta=0.5)
    losses = np.array([[[1.0, 2.0]], [[3.0, np.nan]]], np.float32)
    ids = np.array([[[1, 2]], [[1, 2]]])
    for value in update_per_replica(strategy, table, ids, losses):
        np.testing.assert_array_equal(value, np.full(5, 10.0))


def test_replicas_apply_one_update_of_their_whole_batch():
    """Id 3 is on both replicas with other losses: each replica applies the
    weighted mean over both, as one update of the global batch would."""
    strategy = two_replicas()
    with strategy.scope():
        table = TokenImportance(vocab_size=6, init_value=10.0, beta=0.9)
    ids = np.array([[[3, 1]], [[3, 5]]])  # [replica, batch, predictions]
    losses = np.array([[[1.0, 2.0]], [[4.0, 0.5]]], np.float32)
    weights = np.array([[[1.0, 1.0]], [[3.0, 0.0]]], np.float32)
    tables = update_per_replica(strategy, table, ids, losses, weights)
    # Id 3: (1*1 + 4*3) / 4 = 3.25; 0.9*10 + 0.1*3.25 = 9.325 (replica 0
    # alone would give 9.1). Id 5 only at weight 0: unchanged.
    expected = numpy_update(np.full(6, 10.0), ids, losses, weights, 0.9)
    assert expected[3] == pytest.approx(9.325) and expected[5] == 10.0
    for value in tables:
        np.testing.assert_allclose(value, expected, rtol=1e-6)


def test_no_gradient_flows_into_the_update():
    table = TokenImportance(vocab_size=5)
    losses = tf.Variable([[1.0, 2.0]])
    with tf.GradientTape() as tape:
        table.update([[1, 2]], losses * 3.0)
        y = tf.reduce_sum(table.table)
    assert tape.gradient(y, losses) is None


@pytest.mark.parametrize("kwargs,message", [
    (dict(vocab_size=0), "vocab_size=0"),
    (dict(vocab_size=5, beta=1.0), "token_loss_beta=1.0"),
    (dict(vocab_size=5, init_value=float("nan")), "token_loss_init_value=nan"),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TokenImportance(**kwargs)


def test_config_round_trip():
    table = TokenImportance(vocab_size=7, init_value=3.0, beta=0.9)
    again = TokenImportance.from_config(table.get_config())
    assert again.get_config() == table.get_config()
    np.testing.assert_array_equal(again.table.numpy(), np.full(7, 3.0))

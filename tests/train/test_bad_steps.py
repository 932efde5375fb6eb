"""A step whose loss is NaN or infinite: the table is left alone, the run
stops with one line."""

import numpy as np
import pytest
import tensorflow as tf

from token_dropping import TokenImportance
from helpers import importance_in, overrides, train_py
from helpers import write_records


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_one_non_finite_loss_leaves_the_whole_table_alone(bad):
    table = TokenImportance(vocab_size=5, init_value=10.0, beta=0.5)
    table.update([[1, 2, 3]], [[1.0, bad, 2.0]], [[1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(table.table.numpy(), np.full(5, 10.0))


def test_a_non_finite_loss_in_a_padded_slot_does_not_block_the_step():
    table = TokenImportance(vocab_size=5, init_value=10.0, beta=0.5)
    table.update([[1, 0]], [[2.0, np.nan]], [[1.0, 0.0]])
    np.testing.assert_array_equal(table.table.numpy(), [10, 6, 10, 10, 10])


def test_a_non_finite_loss_on_one_replica_stops_the_update_on_all():
    devices = [d.name for d in tf.config.list_logical_devices("CPU")[:2]]
    strategy = tf.distribute.MirroredStrategy(
        devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    with strategy.scope():
        table = TokenImportance(vocab_size=5, init_value=10.0, beta=0.5)
    losses = [tf.constant([[1.0, 2.0]]), tf.constant([[3.0, np.nan]])]
    ids = tf.constant([[1, 2]])

    @tf.function
    def step():
        def replica_fn():
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            return table.update(ids, tf.gather(tf.stack(losses), replica))
        strategy.run(replica_fn)

    step()
    for value in strategy.experimental_local_results(table.table):
        np.testing.assert_array_equal(value.numpy(), np.full(5, 10.0))


def test_a_diverging_run_stops_with_one_line(tmp_path):
    train = write_records(str(tmp_path / "train.tfrecord"), seed=0)
    valid = write_records(str(tmp_path / "valid.tfrecord"), seed=1)
    model_dir = tmp_path / "run"
    # A learning rate of 1e12 sends the loss to NaN or beyond Model
    # Garden's bound (trainer.loss_upper_bound) within the first loops.
    result = train_py(
        "--experiment=token_drop_bert_tiny", "--mode=train",
        f"--model_dir={model_dir}", "--params_override=" + overrides(
            (train, valid), 20,
            "trainer.optimizer_config.learning_rate.polynomial."
            "initial_learning_rate=1e12,"
            "trainer.optimizer_config.optimizer.type=sgd"))
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert last.startswith("train.py: error: training stopped at step "), last
    assert "trainer.recovery_max_trials" in last, last
    latest = tf.train.latest_checkpoint(str(model_dir))
    assert latest is None or np.isfinite(importance_in(latest)).all()

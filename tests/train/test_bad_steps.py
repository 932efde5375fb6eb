"""A run whose loss goes NaN: it stops with one line and keeps the last
finite table (the table's own rule for a non-finite step is tested in
tests/model/test_importance.py)."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf
from official.core import base_trainer
from official.core import exp_factory
from official.modeling.hyperparams import params_dict

from token_dropping.common.errors import UserError
from token_dropping.train import driver as training
from helpers import importance_in, overrides, train_py
from helpers import write_records


# Sends the loss to NaN in the second step: step 1's loss is computed before
# any update, step 2's after an SGD step at a learning rate of 1e30. One step
# per loop and a checkpoint after each, so the stop leaves a checkpoint of the
# last finite step behind (the branch checked below, not an "if any").
DIVERGE = ("trainer.optimizer_config.learning_rate.polynomial."
           "initial_learning_rate=1e30,"
           "trainer.optimizer_config.optimizer.type=sgd,"
           "trainer.steps_per_loop=1,trainer.summary_interval=1,"
           "trainer.checkpoint_interval=1,trainer.validation_interval=1")
STOPPED = re.compile(r"training stopped at step (\d+): The loss value is NaN")


def _records(tmp_path):
    return (write_records(str(tmp_path / "train.tfrecord"), seed=0),
            write_records(str(tmp_path / "valid.tfrecord"), seed=1))


def test_a_diverging_run_stops_with_one_line(tmp_path):
    model_dir = tmp_path / "run"
    result = train_py(
        "--experiment=token_drop_bert_tiny", "--mode=train",
        f"--model_dir={model_dir}", "--params_override=" + overrides(
            _records(tmp_path), 20, DIVERGE))
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert last.startswith("train.py: error: training stopped at step "), last
    assert "trainer.recovery_max_trials" in last, last
    # The claim "stopped at step N" holds: the last checkpoint is the last
    # loop that ended within the bound, step N - 1, and its table is finite
    # and trained (moved off the initial 10.0 for the ids it saw).
    stopped_at = int(STOPPED.search(last).group(1))
    latest = tf.train.latest_checkpoint(str(model_dir))
    assert latest is not None and latest.endswith(f"ckpt-{stopped_at - 1}"), (
        latest, stopped_at)
    table = importance_in(latest)
    assert np.isfinite(table).all() and (table != 10.0).any()


def test_a_diverging_run_keeps_the_last_finite_table(tmp_path):
    """The stop's claim "the importance table kept its last finite values",
    checked on the table in memory when the run stops."""
    params = params_dict.override_params_dict(
        exp_factory.get_exp_config("token_drop_bert_tiny"),
        overrides(_records(tmp_path), 20, DIVERGE), is_strict=True)
    trainers = []

    class KeptTrainer(base_trainer.Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    model_dir = str(tmp_path / "run")
    with pytest.raises(UserError) as error:
        training.run(params, mode="train", model_dir=model_dir,
                     trainer_cls=KeptTrainer)
    stopped_at = int(STOPPED.search(str(error.value)).group(1))
    trainer, = trainers
    assert int(trainer.global_step.numpy()) == stopped_at
    at_stop = importance_in(trainer.checkpoint.write(
        str(tmp_path / "at_stop" / "ckpt")))
    before = importance_in(os.path.join(model_dir, f"ckpt-{stopped_at - 1}"))
    np.testing.assert_array_equal(at_stop, before)
    assert (before != 10.0).any()

"""runtime.mixed_precision_dtype=bfloat16 / float16: the table stays float32,
the selection is float32's, the step compiles with XLA, validation runs."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.core import task_factory
from official.core import train_utils
from official.modeling import performance

from helpers import importance_in, overrides, shrunk_tiny_config
from helpers import train_py

DTYPES = ["bfloat16", "float16"]


@pytest.fixture
def policy():
    """Sets Model Garden's mixed policy for one test, then float32 again."""
    def set_policy(dtype):
        performance.set_mixed_precision_policy(dtype)
    yield set_policy
    tf_keras.mixed_precision.set_global_policy("float32")


def build(records, dtype=None):
    """The shrunk task, model (variables built), optimizer and one batch."""
    config = shrunk_tiny_config(records[0])
    if dtype:
        config.runtime.mixed_precision_dtype = dtype
    task = task_factory.get_task(config.task)
    model = task.build_model()
    batch = next(iter(task.build_inputs(config.task.train_data)))
    model(batch)
    return task, model, train_utils.create_optimizer(task, config), batch


@pytest.mark.parametrize("dtype", DTYPES)
def test_table_stays_float32_and_selection_equals_float32s(records, policy,
                                                           dtype):
    _, reference, _, batch = build(records)
    policy(dtype)
    _, model, _, _ = build(records, dtype)
    encoder = model.encoder_network
    layer = encoder.transformer_layers[0]
    assert layer.compute_dtype == dtype  # the policy reached the encoder
    assert encoder.importance.dtype == tf.float32
    table = np.random.RandomState(0).uniform(0, 10, 200).astype(np.float32)
    encoder.importance.assign(table)
    reference.encoder_network.importance.assign(table)
    np.testing.assert_array_equal(
        encoder.kept_positions(batch).numpy(),
        reference.encoder_network.kept_positions(batch).numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_mixed_step_compiles_with_xla(records, policy, dtype):
    policy(dtype)
    task, model, optimizer, batch = build(records, dtype)
    metrics = task.build_metrics(training=True)
    step = tf.function(task.train_step, jit_compile=True)
    logs = step(batch, model, optimizer, metrics)
    assert np.isfinite(float(logs["loss"]))
    table = model.encoder_network.importance
    assert table.dtype == tf.float32 and (table.numpy() != 10.0).any()


def test_float16_step_scales_the_loss(records, policy):
    """Model Garden wraps the optimizer in a LossScaleOptimizer for float16;
    the step must scale the loss and unscale the gradients through it."""
    policy("float16")
    task, model, optimizer, batch = build(records, "float16")
    assert isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
    calls = []
    scale, unscale = optimizer.get_scaled_loss, optimizer.get_unscaled_gradients
    optimizer.get_scaled_loss = lambda x: calls.append("scale") or scale(x)
    optimizer.get_unscaled_gradients = lambda g: (
        calls.append("unscale") or unscale(g))
    task.train_step(batch, model, optimizer, task.build_metrics(training=True))
    assert calls == ["scale", "unscale"]


@pytest.mark.parametrize("dtype", [
    "bfloat16", pytest.param("float16", marks=pytest.mark.slow)])
def test_train_py_with_mixed_precision(records, tmp_path, dtype):
    model_dir = tmp_path / "run"
    result = train_py("--experiment=token_drop_bert_tiny",
                      "--mode=train_and_eval", f"--model_dir={model_dir}",
                      "--params_override=" + overrides(
                          records, 4, f"runtime.mixed_precision_dtype={dtype}"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(full sequences, no dropping): MLM loss" in result.stdout
    table = importance_in(tf.train.latest_checkpoint(str(model_dir)))
    assert table.dtype == np.float32 and (table != 10.0).any()
    assert np.isfinite(table).all()

"""runtime.mixed_precision_dtype=bfloat16 / float16: the table stays float32,
the selection is float32's, the step compiles with XLA, validation runs, and
a float16 ScTD consistency step computes float32's loss and update."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.core import task_factory
from official.core import train_utils
from official.modeling import performance

import token_dropping  # noqa: F401  (registers the experiments)

from helpers import importance_in, overrides, shrunk_tiny_config
from helpers import sctd_loss_and_grads
from in_process import tool_in_process

DTYPES = ["bfloat16", "float16"]


@pytest.fixture
def policy():
    """Sets Model Garden's mixed policy for one test, then float32 again."""
    def set_policy(dtype):
        performance.set_mixed_precision_policy(dtype)
    yield set_policy
    tf_keras.mixed_precision.set_global_policy("float32")


def build(records, dtype=None, task_fields=None):
    """The shrunk task, model (variables built), optimizer and one batch;
    `task_fields` overrides the task config."""
    config = shrunk_tiny_config(records[0])
    if dtype:
        config.runtime.mixed_precision_dtype = dtype
    if task_fields:
        config.override({"task": task_fields})
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


def test_float16_consistency_step_equals_float32s(records, policy):
    """float16 with a consistency step on every step: the step's loss and
    the update it applies (loss scaling included) against float32 autodiff
    of 0.5 MLM(dropped) + 0.5 MLM(full) + w KL(full || dropped) on the same
    weights and batch; then a few more steps stay finite and train.

    The weight w is 1.0, not ScTD's 0.05, so a KL gradient lost or left
    scaled in float16 shows above float16's rounding."""
    fields = {"consistency_interval": 1, "consistency_weight": 1.0}
    # Seeded, in tf_keras's default random mode (conftest restores it after
    # a test that trains): the full and dropped passes' MLM losses then
    # differ by 0.10. With the generator-backed mode a training run had
    # left on, they came within 0.005 and the check below failed in CI.
    tf_keras.utils.set_random_seed(0)
    _, reference, _, batch = build(records, task_fields=fields)
    policy("float16")
    task, model, optimizer, _ = build(records, "float16", fields)
    rng = np.random.RandomState(1)
    for v, r in zip(model.trainable_variables,
                    reference.trainable_variables):
        assert v.dtype == r.dtype == tf.float32 and v.shape == r.shape
        v.assign(r + rng.normal(0, 0.3, v.shape).astype(np.float32))
        r.assign(v)  # far from init, so full and dropped passes differ

    # The float32 reference (dropout is 0 in the shrunk config).
    expected_loss, expected, (dropped_mlm, full_mlm, kl) = (
        sctd_loss_and_grads(reference, batch, weight=1.0))
    assert kl > 1e-2 and abs(full_mlm - dropped_mlm) > 1e-2

    step = tf.function(task.train_step)
    sgd = tf_keras.mixed_precision.LossScaleOptimizer(
        tf_keras.optimizers.SGD(learning_rate=1.0))
    assert int(sgd.iterations) == 0  # its step variable made outside step
    before = [v.numpy() for v in model.trainable_variables]
    metrics = task.build_metrics(training=True)
    logs = step(batch, model, sgd, metrics)
    assert float(logs["loss"]) == pytest.approx(expected_loss, rel=1e-2)
    results = {m.name: float(m.result()) for m in metrics}
    assert results["consistency_kl"] == pytest.approx(kl, rel=2e-2)
    assert float(sgd.loss_scale) == 2.0 ** 15  # no overflow, no skip
    moved = 0
    for v, b, g in zip(model.trainable_variables, before, expected):
        if g is None:  # the pooler: no next-sentence head
            np.testing.assert_array_equal(v.numpy(), b, err_msg=v.name)
            continue
        g, d = tf.convert_to_tensor(g).numpy(), b - v.numpy()
        if np.linalg.norm(g) < 1e-6:  # key biases: softmax ignores them
            assert np.abs(d).max() < 1e-3, v.name
            continue
        # float16 rounding measured at 0.2-0.7% of each gradient's norm.
        assert np.linalg.norm(d - g) < 0.02 * np.linalg.norm(g), v.name
        moved += 1
    assert moved == len(expected) - 4

    scale = float(optimizer.loss_scale)
    step = tf.function(task.train_step)  # a new optimizer: a new function
    for _ in range(2):  # Model Garden's optimizer, dynamic loss scale
        embeddings = model.trainable_variables[0].numpy()
        logs = step(batch, model, optimizer, metrics)
        assert np.isfinite(float(logs["loss"]))
        assert not np.array_equal(model.trainable_variables[0].numpy(),
                                  embeddings)  # applied, not skipped
    assert float(optimizer.loss_scale) == scale  # no step skipped


@pytest.mark.parametrize("dtype", [
    "bfloat16", pytest.param("float16", marks=pytest.mark.slow)])
def test_train_py_with_mixed_precision(records, tmp_path, dtype):
    model_dir = tmp_path / "run"
    # train.py's main in this process (which restores the global dtype
    # policy the run sets); test_training runs its command line.
    result = tool_in_process(
        "train.py", "--experiment=token_drop_bert_tiny",
        "--mode=train_and_eval", f"--model_dir={model_dir}",
        "--params_override=" + overrides(
            records, 4, f"runtime.mixed_precision_dtype={dtype}"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(full sequences, no dropping): MLM loss" in result.stdout
    table = importance_in(tf.train.latest_checkpoint(str(model_dir)))
    assert table.dtype == np.float32 and (table != 10.0).any()
    assert np.isfinite(table).all()

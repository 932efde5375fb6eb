"""The task's keep_k schedule and ScTD consistency steps, against references.

The consistency loss is checked against a numpy KL; the consistency step's
loss against the dropped and full passes computed independently (dropout is
off in the shrunk config, so the full training pass is the model's
`training=False` output); the schedule against the keep_k it must pick at
chosen steps, also after a restore from a checkpoint.
"""

import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.core import task_factory
from official.core import train_utils

import token_dropping  # noqa: F401  (registers the experiments)
from token_dropping.train.consistency import cls_consistency_loss
from token_dropping.train.task import per_prediction_losses
from helpers import event_tags, mirrored_task, overrides, sctd_loss_and_grads
from helpers import shrunk_tiny_config
from in_process import tool_in_process

SCHEDULE = [dict(start_fraction=0.0, token_keep_k=32),  # steps 0-1: all
            dict(start_fraction=0.25, token_keep_k=8),  # steps 2-5
            dict(start_fraction=0.75, token_keep_k=16)]  # steps 6-7


def numpy_kl(full, dropped):
    """KL(softmax(full) || softmax(dropped)) summed over rows."""
    def log_softmax(x):
        x = x - x.max(axis=-1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    log_p, log_q = log_softmax(full), log_softmax(dropped)
    return float((np.exp(log_p) * (log_p - log_q)).sum())


def test_consistency_loss_is_the_kl_of_the_cls_softmax():
    rng = np.random.RandomState(0)
    full = [rng.normal(size=(2, 3, 4)).astype(np.float32) for _ in range(3)]
    dropped = [f + rng.normal(scale=0.5, size=f.shape).astype(np.float32)
               for f in full]
    dropped[-1][:, 1:] += 100.0  # only [CLS] (position 0) counts
    expected = (numpy_kl(full[1][:, 0], dropped[1][:, 0])
                + numpy_kl(full[2][:, 0], dropped[2][:, 0]))
    got = cls_consistency_loss([tf.constant(f) for f in full],
                               [tf.constant(d) for d in dropped])
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert expected > 0

    # The full pass as a fixed target: no gradient reaches it.
    full_vars = [tf.Variable(f) for f in full]
    for stop, reaches in ((False, True), (True, False)):
        with tf.GradientTape() as tape:
            loss = cls_consistency_loss(full_vars, dropped,
                                        stop_full_gradient=stop)
        grad = tape.gradient(loss, full_vars[-1])
        assert (grad is not None and np.abs(grad.numpy()).sum() > 0) == (
            reaches)


def build(records, task_fields):
    """`(task, model, optimizer, metrics, batch)` of the shrunk tiny config
    with `task_fields` overridden; the model built."""
    config = shrunk_tiny_config(records[0])
    config.override({"task": task_fields})
    task = task_factory.get_task(config.task)
    model = task.build_model()
    optimizer = train_utils.create_optimizer(task, config)
    metrics = task.build_metrics(training=True)
    batch = next(iter(task.build_inputs(config.task.train_data)))
    model(batch)
    return task, model, optimizer, metrics, batch


def make(records, **task_fields):
    """`build`, keep 8, weights moved far from init, importance random."""
    task_fields = dict(task_fields)
    model_fields = task_fields.pop("model", {"encoder": {"any": {}}})
    model_fields["encoder"]["any"]["token_keep_k"] = 8
    task, model, optimizer, metrics, batch = build(
        records, dict(task_fields, model=model_fields))
    rng = np.random.RandomState(1)
    for v in model.trainable_variables:  # far from init: context matters
        v.assign_add(rng.normal(0, 0.3, v.shape).astype(np.float32))
    encoder = model.encoder_network
    encoder.importance.assign(np.random.RandomState(0).uniform(
        0.0, 10.0, encoder.importance.shape[0]).astype(np.float32))
    return task, model, optimizer, metrics, batch


def expected_losses(model, batch):
    """(dropped MLM, full MLM, KL) of one batch, computed outside the task."""
    dropped = model(batch, training=True)
    full = model(batch, training=False)  # dropout is 0: the full pass
    weights = batch["masked_lm_weights"].numpy()
    mean = lambda out: float((per_prediction_losses(batch, out).numpy()
                              * weights).sum() / weights.sum())
    kl = sum(numpy_kl(f.numpy()[:, 0], d.numpy()[:, 0]) for f, d in zip(
        full["encoder_outputs"][-2:], dropped["encoder_outputs"][-2:]))
    return mean(dropped), mean(full), kl


def test_consistency_step_mixes_the_full_pass_mlm(records):
    task, model, optimizer, metrics, batch = make(
        records, consistency_interval=2, consistency_weight=0.05)
    dropped_mlm, full_mlm, kl = expected_losses(model, batch)
    assert abs(full_mlm - dropped_mlm) > 1e-3 and kl > 0  # they differ
    step = tf.function(task.train_step)
    # Step 1 (iterations 0) is an ordinary step, step 2 a consistency step.
    logs = step(batch, model, optimizer, metrics)
    assert float(logs["loss"]) == pytest.approx(dropped_mlm, rel=1e-5)
    # (The first call traces twice: it creates the optimizer's slots.)
    traces = step.experimental_get_tracing_count()
    dropped_mlm, full_mlm, kl = expected_losses(model, batch)  # new weights
    logs = step(batch, model, optimizer, metrics)
    assert float(logs["loss"]) == pytest.approx(
        0.5 * dropped_mlm + 0.5 * full_mlm + 0.05 * kl, rel=1e-5)
    results = {m.name: float(m.result()) for m in metrics}
    assert results["consistency_kl"] == pytest.approx(kl, rel=1e-4)
    assert results["full_pass_mlm_loss"] == pytest.approx(full_mlm, rel=1e-5)
    assert step.experimental_get_tracing_count() == traces  # no retrace


def test_routing_metrics_of_a_consistency_step_describe_the_dropped_pass(
        records):
    """The full second pass keeps every token; the metrics must still show
    the forward pass's selection (the encoder's `kept_share` output)."""
    task, model, _, metrics, batch = make(records, consistency_interval=1)
    optimizer = tf_keras.optimizers.SGD(learning_rate=0.0)
    encoder = model.encoder_network
    kept = encoder.kept_positions(batch).numpy()  # [batch, 8]
    table = encoder.importance.numpy().copy()  # before the step's update
    task.train_step(batch, model, optimizer, metrics)
    real = batch["input_mask"].numpy()
    is_kept = np.zeros_like(real)
    np.put_along_axis(is_kept, kept, 1, axis=1)
    results = {m.name: float(m.result()) for m in metrics}
    assert results["full_pass_mlm_loss"] > 0  # the full pass ran
    assert results["dropped_token_fraction"] == pytest.approx(
        1.0 - (is_kept * real).sum() / real.sum())
    assert results["dropped_token_fraction"] >= 0.5  # 8 kept of >= 16 real
    # The table's mean over the real ordinary (not allowed, not denied)
    # tokens the pass kept, and over those it dropped.
    ids = batch["input_word_ids"].numpy()
    special = np.isin(ids, list(encoder.token_allow_list)
                      + list(encoder.token_deny_list))
    ordinary = (real > 0) & ~special
    for name, where in (("kept_token_importance", ordinary & (is_kept > 0)),
                        ("dropped_token_importance",
                         ordinary & (is_kept == 0))):
        assert where.any()
        assert results[name] == pytest.approx(table[ids[where]].mean(),
                                              rel=1e-5), name


@pytest.mark.parametrize("stop_gradient,share", [(False, 0.5),
                                                 (True, 0.5), (False, 0.3)])
def test_consistency_step_gradients_are_those_of_the_mixed_loss(
        records, stop_gradient, share):
    """What the optimizer applies (SGD, rate 1: the weights move by minus
    the gradients) against plain autodiff of (1 - share) MLM(dropped) +
    share MLM(full) + 0.05 KL(full || dropped); 0.3 tells the share from
    its complement."""
    task, model, _, metrics, batch = make(
        records, consistency_interval=1,
        consistency_stop_gradient=stop_gradient,
        consistency_full_mlm_share=share)
    tvars = model.trainable_variables
    loss, expected, _ = sctd_loss_and_grads(model, batch, 0.05, stop_gradient,
                                            share)
    before = [v.numpy() for v in tvars]
    optimizer = tf_keras.optimizers.SGD(learning_rate=1.0)
    logs = tf.function(task.train_step)(batch, model, optimizer, metrics)
    assert float(logs["loss"]) == pytest.approx(loss, rel=1e-5)
    moved = 0
    for v, b, g in zip(tvars, before, expected):
        if g is None:  # the pooler: no next-sentence head
            np.testing.assert_array_equal(v.numpy(), b, err_msg=v.name)
            continue
        np.testing.assert_allclose(b - v.numpy(), tf.convert_to_tensor(g),
                                   atol=2e-5, err_msg=v.name)
        moved += 1
    assert moved == len(tvars) - 2


def dropped_fraction(batch, keep_k):
    """Padding is dropped first: a row keeps min(keep_k, real) real tokens."""
    real = batch["input_mask"].numpy().sum(axis=1)
    return 1.0 - np.minimum(keep_k, real).sum() / real.sum()


def test_schedule_picks_keep_k_by_step_and_resumes_at_its_stage(
        records, tmp_path):
    fields = dict(keep_k_schedule_steps=8, model={"encoder": {"any": {
        "keep_k_schedule": SCHEDULE}}})
    task, model, optimizer, metrics, batch = make(records, **fields)
    step = tf.function(task.train_step)
    # Every row has at least 16 real tokens: keep_k tokens of each are kept.
    assert batch["input_mask"].numpy().sum(axis=1).min() >= 16
    traces = 0
    for iterations, keep_k in ((0, 32), (1, 32), (2, 8), (5, 8), (6, 16)):
        optimizer.iterations.assign(iterations)
        for m in metrics:
            m.reset_state()
        step(batch, model, optimizer, metrics)
        traces = traces or step.experimental_get_tracing_count()
        results = {m.name: float(m.result()) for m in metrics}
        assert results["token_keep_k"] == keep_k, iterations
        assert results["dropped_token_fraction"] == pytest.approx(
            dropped_fraction(batch, keep_k)), iterations
    assert step.experimental_get_tracing_count() == traces  # no retrace

    # Saved after step 4 (iterations 4: stage 2 of 3), restored fresh.
    optimizer.iterations.assign(4)
    path = tf.train.Checkpoint(model=model, optimizer=optimizer).save(
        str(tmp_path / "ckpt"))
    task, model, optimizer, metrics, batch = make(records, **fields)
    optimizer.iterations.assign(0)
    tf.train.Checkpoint(model=model, optimizer=optimizer).read(
        path).assert_existing_objects_matched()
    assert int(optimizer.iterations) == 4
    task.train_step(batch, model, optimizer, metrics)
    results = {m.name: float(m.result()) for m in metrics}
    assert results["token_keep_k"] == 8
    assert results["dropped_token_fraction"] == pytest.approx(
        dropped_fraction(batch, 8))


def test_schedule_without_its_step_count_is_one_clear_line(records):
    task, model, optimizer, metrics, batch = build(records, {
        "model": {"encoder": {"any": {"keep_k_schedule": SCHEDULE}}}})
    with pytest.raises(ValueError, match="task.keep_k_schedule_steps=0"):
        task.train_step(batch, model, optimizer, metrics)


def test_every_variant_at_once_through_tools_train(records, tmp_path):
    """tools/train.py builds the model inside its first traced step (a
    first call that saw only part of the variables failed here once)."""
    config = tmp_path / "variants.yaml"
    config.write_text(
        "task:\n  consistency_interval: 2\n  model:\n    encoder:\n"
        "      any:\n        selection: random_per_layer\n"
        "        keep_k_schedule: [{start_fraction: 0.0, token_keep_k: 8}, "
        "{start_fraction: 0.5, token_keep_k: 32}]\n")
    model_dir = str(tmp_path / "run")
    # train.py's main in this process: the same flags and run, without a
    # process start (test_training runs its command line).
    result = tool_in_process(
        "train.py", "--experiment=token_drop_bert_tiny_sctd", "--mode=train",
        f"--model_dir={model_dir}", f"--config_file={config}",
        f"--params_override={overrides(records, 4)}")
    assert result.returncode == 0, result.stderr[-3000:]
    tags = event_tags(os.path.join(model_dir, "train"))
    assert {"consistency_kl", "full_pass_mlm_loss", "token_keep_k",
            "token_dropping/train_flops_per_step"} <= tags
    params = open(os.path.join(model_dir, "params.yaml")).read()
    assert "keep_k_schedule_steps: 4" in params  # from trainer.train_steps


@pytest.mark.slow  # minutes on 2 shared cores: XLA compiles every branch
def test_every_variant_at_once_compiles_with_xla(records):
    """random_per_layer + a keep_k schedule + consistency steps: the
    task's train step, jit-compiled as Model Garden does on GPU and TPU."""
    task, model, optimizer, metrics, batch = build(records, {
        "keep_k_schedule_steps": 4, "consistency_interval": 2,
        "model": {"encoder": {"any": {
            "selection": "random_per_layer", "keep_k_schedule": [
                dict(start_fraction=0.0, token_keep_k=8),
                dict(start_fraction=0.5, token_keep_k=32)]}}}})
    step = tf.function(task.train_step, jit_compile=True)
    traces = []
    for _ in range(4):  # both stages, both kinds of step
        logs = step(batch, model, optimizer, metrics)
        assert np.isfinite(float(logs["loss"]))
        traces.append(step.experimental_get_tracing_count())
    assert traces[1:] == traces[:1] * 3  # no retrace after the first step
    results = {m.name: float(m.result()) for m in metrics}
    assert results["token_keep_k"] == pytest.approx((8 + 8 + 32 + 32) / 4)
    assert results["consistency_kl"] > 0


def test_consistency_step_on_two_replicas_applies_their_mean_gradient(
        records):
    """scale_loss: each replica divides its objective by the 2 replicas and
    the gradients add up across them, so SGD at rate 1 moves the weights by
    minus the mean of the replicas' mixed-loss gradients, each by plain
    autodiff on its own half of the batch (`sctd_loss_and_grads` on a
    single-device copy of the model). A large KL weight, so that the KL's
    gradient through the dropped pass shows beside the tolerance."""
    config = shrunk_tiny_config(records[0])
    config.override({"task": {"consistency_interval": 1, "scale_loss": True,
                              "consistency_full_mlm_share": 0.3,
                              "consistency_weight": 2.0}})
    strategy, task, model, _, metrics, batch = mirrored_task(config)
    halves = strategy.experimental_local_results(batch)
    assert len(halves) == 2
    with strategy.scope():
        model(halves[0])  # build
        rng = np.random.RandomState(1)
        for v in model.trainable_variables:  # far from init: KL matters
            v.assign_add(rng.normal(0, 0.3, v.shape).astype(np.float32))
        optimizer = tf_keras.optimizers.SGD(learning_rate=1.0)
        optimizer.build(model.trainable_variables)
    reference = task_factory.get_task(config.task).build_model()
    reference(halves[0])
    reference.set_weights(model.get_weights())
    per_replica = [sctd_loss_and_grads(reference, half, 2.0, share=0.3)[1]
                   for half in halves]
    before = [v.numpy() for v in model.trainable_variables]
    tf.function(lambda batch: strategy.run(
        task.train_step, args=(batch, model, optimizer, metrics)))(batch)
    moved = 0
    for v, b, *grads in zip(model.trainable_variables, before, *per_replica):
        if grads[0] is None:  # the pooler: no next-sentence head
            continue
        mean = np.mean([tf.convert_to_tensor(g).numpy() for g in grads], 0)
        np.testing.assert_allclose(b - v.numpy(), mean, atol=2e-5,
                                   err_msg=v.name)
        moved += 1
    assert moved == len(before) - 2


def test_every_variant_at_once_under_mirrored_strategy(records):
    """Two replicas: the consistency tf.cond and the keep_k switch run per
    replica, both stages and both kinds of step (the gradient arithmetic
    across replicas is checked above)."""
    config = shrunk_tiny_config(records[0])
    config.override({"task": {
        "keep_k_schedule_steps": 2, "consistency_interval": 2,
        "model": {"encoder": {"any": {
            "selection": "random_per_layer", "keep_k_schedule": [
                dict(start_fraction=0.0, token_keep_k=8),
                dict(start_fraction=0.5, token_keep_k=16)]}}}}})
    strategy, task, model, optimizer, metrics, batch = mirrored_task(config)

    @tf.function
    def step(batch):
        return strategy.run(task.train_step,
                            args=(batch, model, optimizer, metrics))

    for _ in range(2):  # keep 8 on an ordinary step, 16 on a consistency one
        step(batch)
    results = {m.name: float(m.result()) for m in metrics}
    assert results["token_keep_k"] == 12.0
    assert results["consistency_kl"] > 0
    assert np.isfinite(results["lm_example_loss"])

"""MLMLossTracking: the importance table learns under Keras `model.fit`."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.nlp.modeling import models

import token_dropping
from helpers import BERT_KWARGS, VOCAB, batch
from token_dropping.train.callbacks import MLMLossTracking


def pretraining_data():
    features = batch(batch_size=4, pad_from=(None, 9))
    features.update(
        masked_lm_positions=tf.constant([[2, 3, 4]] * 4, tf.int32),
        masked_lm_ids=tf.constant([[5, 6, 5], [7, 8, 0], [9, 9, 9],
                                   [10, 0, 0]], tf.int32),
        masked_lm_weights=tf.constant([[1, 1, 1], [1, 1, 0], [1, 1, 1],
                                       [1, 0, 0]], tf.float32))
    return features


def build(features, learning_rate=0.0):
    encoder = token_dropping.TokenDropBertEncoder(**BERT_KWARGS,
                                                  token_keep_k=6)
    pretrainer = models.BertPretrainerV2(encoder_network=encoder)
    inputs = {k: tf_keras.Input(v.shape[1:], dtype=v.dtype, name=k)
              for k, v in features.items()}
    model = tf_keras.Model(inputs, pretrainer(inputs)["mlm_logits"])
    model.compile(
        optimizer=tf_keras.optimizers.SGD(learning_rate=learning_rate),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    dataset = tf.data.Dataset.from_tensors(
        (features, features["masked_lm_ids"], features["masked_lm_weights"]))
    return encoder, model, dataset


def expected_table(model, features, steps, beta=0.995):
    """numpy: the same losses each step (learning rate 0), EMA per id."""
    logits = model(features, training=True).numpy()
    logits -= logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ids = features["masked_lm_ids"].numpy()
    weights = features["masked_lm_weights"].numpy()
    losses = -np.take_along_axis(log_probs, ids[..., None], -1)[..., 0]
    table = np.full(VOCAB, 10.0)
    for _ in range(steps):
        for token in np.unique(ids[weights > 0]):
            use = (ids == token) & (weights > 0)
            mean = (losses[use] * weights[use]).sum() / weights[use].sum()
            table[token] = beta * table[token] + (1 - beta) * mean
    return table


def test_fit_updates_the_table_as_the_task_would():
    features = pretraining_data()
    encoder, model, dataset = build(features)
    expected = expected_table(model, features, steps=3)
    history = model.fit(dataset.repeat(3), epochs=1, verbose=0,
                             callbacks=[MLMLossTracking(encoder)])
    assert np.isfinite(history.history["loss"]).all()
    table = encoder.importance.numpy()
    np.testing.assert_allclose(table, expected, rtol=1e-5)
    assert sorted(np.flatnonzero(table != 10.0)) == [5, 6, 7, 8, 9, 10]


def test_a_model_with_dict_outputs_is_read_by_logits_key():
    """Outputs as a dict (several heads): the callback reads `logits_key`."""
    features = pretraining_data()
    encoder, single, _ = build(features)
    model = tf_keras.Model(single.inputs, {"mlm_logits": single.outputs[0]})
    model.compile(
        optimizer=tf_keras.optimizers.SGD(learning_rate=0.0),
        loss={"mlm_logits": tf_keras.losses.SparseCategoricalCrossentropy(
            from_logits=True)})
    dataset = tf.data.Dataset.from_tensors((
        features, {"mlm_logits": features["masked_lm_ids"]},
        {"mlm_logits": features["masked_lm_weights"]}))
    expected = expected_table(single, features, steps=2)
    model.fit(dataset.repeat(2), verbose=0,
              callbacks=[MLMLossTracking(encoder)])
    np.testing.assert_allclose(encoder.importance.numpy(), expected,
                               rtol=1e-5)


def test_fit_with_the_callback_trains_as_keras_own_step():
    """The callback's step still trains: one step of fit with it moves the
    weights exactly as Keras' own step does on a twin of the model (the
    same weights; its table is not updated, which only changes later
    steps' selections)."""
    features = pretraining_data()
    encoder, model, dataset = build(features, learning_rate=0.5)
    _, twin, _ = build(features, learning_rate=0.5)
    twin.set_weights(model.get_weights())
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(dataset, verbose=0, callbacks=[MLMLossTracking(encoder)])
    twin.fit(dataset, verbose=0)
    moved = 0
    for start, trained, reference in zip(before, model.trainable_weights,
                                         twin.trainable_weights):
        np.testing.assert_allclose(trained.numpy(), reference.numpy(),
                                   rtol=1e-5, atol=1e-6)
        moved += not np.allclose(trained.numpy(), start)
    assert moved > len(before) // 2


def test_evaluate_and_later_fits_without_the_callback_leave_it_alone():
    features = pretraining_data()
    encoder, model, dataset = build(features)
    model.fit(dataset, verbose=0, callbacks=[MLMLossTracking(encoder)])
    after_fit = encoder.importance.numpy().copy()
    assert (after_fit != 10.0).any()
    model.evaluate(dataset, verbose=0)
    model.fit(dataset, verbose=0)  # the model's own step again
    np.testing.assert_array_equal(encoder.importance.numpy(), after_fit)
    assert "train_step" not in vars(model)


class _Interrupt(tf_keras.callbacks.Callback):
    """Raises at the end of the first batch, as a user's Ctrl-C would."""

    def on_train_batch_end(self, batch, logs=None):
        raise KeyboardInterrupt


def test_a_fit_that_raises_leaves_later_fits_alone():
    features = pretraining_data()
    encoder, model, dataset = build(features)
    with pytest.raises(KeyboardInterrupt):
        model.fit(dataset, verbose=0,
                  callbacks=[MLMLossTracking(encoder), _Interrupt()])
    after_fit = encoder.importance.numpy().copy()
    assert (after_fit != 10.0).any()  # the interrupted fit did track
    model.fit(dataset, verbose=0)  # no callback: the table must not move
    np.testing.assert_array_equal(encoder.importance.numpy(), after_fit)
    assert "train_step" not in vars(model)
    model.train_on_batch(*next(iter(dataset)))
    np.testing.assert_array_equal(encoder.importance.numpy(), after_fit)


def test_missing_keys_and_wrong_encoder_are_named():
    features = pretraining_data()
    encoder, model, dataset = build(features)
    with pytest.raises(ValueError, match="'mlm_ids'"):
        model.fit(dataset, verbose=0, callbacks=[
            MLMLossTracking(encoder, ids_key="mlm_ids")])
    with pytest.raises(ValueError, match="needs a TokenDropBertEncoder"):
        MLMLossTracking(tf_keras.layers.Dense(2))

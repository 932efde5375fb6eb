"""The standard Keras checks every layer of ours passes, in one helper.

`run_layer_checks` does, for a layer class and its arguments: a config JSON
round trip that rebuilds an equal layer, a symbolic (functional) call and an
eager call with the expected output shape, one training step that changes
every trainable weight, and exact counts of trainable and non-trainable
weights. Each layer's own test is then a few lines on top.
"""

import json

import numpy as np
import tensorflow as tf
import tf_keras


def _first_output(outputs):
    return outputs["sequence_output"] if isinstance(outputs, dict) else outputs


def run_layer_checks(layer_cls, init_kwargs, inputs, expected_output_shape,
                     expected_num_trainable_weights,
                     expected_num_non_trainable_weights, call_kwargs=None):
    call_kwargs = call_kwargs or {}

    # Config: plain JSON, and it rebuilds a layer with the same config.
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    restored = layer_cls.from_config(json.loads(json.dumps(config)))
    assert restored.get_config() == config

    # Eager call.
    outputs = _first_output(layer(inputs, **call_kwargs))
    assert tuple(outputs.shape) == tuple(expected_output_shape)
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert len(layer.non_trainable_weights) == (
        expected_num_non_trainable_weights)

    # Symbolic call inside a functional model.
    symbolic_inputs = tf.nest.map_structure(
        lambda t: tf_keras.Input(shape=t.shape[1:], dtype=t.dtype), inputs)
    symbolic = _first_output(layer_cls(**init_kwargs)(symbolic_inputs,
                                                      **call_kwargs))
    assert tuple(symbolic.shape[1:]) == tuple(expected_output_shape[1:])

    # One training step moves every trainable weight.
    before = [w.numpy().copy() for w in layer.trainable_weights]
    optimizer = tf_keras.optimizers.SGD(learning_rate=0.1)
    with tf.GradientTape() as tape:
        # A fixed random projection of every output reaches every weight
        # (a mean square would not: layer norm makes it nearly constant).
        outputs = [t for t in tf.nest.flatten(layer(inputs, training=True))
                   if t.dtype.is_floating]
        loss = tf.add_n([
            tf.reduce_sum(t * tf.random.stateless_normal(tf.shape(t), [0, i]))
            for i, t in enumerate(outputs)])
    grads = tape.gradient(loss, layer.trainable_weights)
    optimizer.apply_gradients(zip(grads, layer.trainable_weights))
    unchanged = [w.name for w, b in zip(layer.trainable_weights, before)
                 if np.array_equal(w.numpy(), b)]
    assert not unchanged, f"not trained by one step: {unchanged}"
    return layer

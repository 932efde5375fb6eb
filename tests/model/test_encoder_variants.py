"""Layer-wise random dropping and per-call keep_k, against BertEncoderV2.

References are Model Garden's `BertEncoderV2` restored from the same
checkpoint, and its own transformer blocks run by hand on numpy-indexed
subsets of the tokens.
"""

import json
import random

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.nlp.modeling import models

import token_dropping
from helpers import BERT_KWARGS, CLS, MASK, SEP, SEQ, VOCAB, batch
from helpers import bert_with_same_weights

SPEC = tf.TensorSpec([None, None], tf.int32)


def encoder(**overrides):
    return token_dropping.TokenDropBertEncoder(
        **dict(BERT_KWARGS, **dict(dict(token_keep_k=6), **overrides)))


def dynamic_length_call(enc):
    """`enc` in training, traced with an unknown sequence length, so no
    route can tell statically that keep_k covers every token."""
    return tf.function(lambda ids, mask, types: enc(
        dict(input_word_ids=ids, input_mask=mask, input_type_ids=types),
        training=True), input_signature=[SPEC, SPEC, SPEC])


@pytest.mark.parametrize("selection", ["random_per_layer", "mlm_loss"])
def test_keep_every_token_through_the_gather_path_equals_bert(
        tmp_path, selection):
    inputs = batch()
    enc = encoder(token_keep_k=SEQ, selection=selection, drop_start_layer=1,
                  drop_end_layer=3)
    enc.importance.assign(np.random.RandomState(1).uniform(
        0, 10, VOCAB).astype(np.float32))
    bert = bert_with_same_weights(enc, inputs, tmp_path)
    theirs = bert(inputs)
    for ours in (dynamic_length_call(enc)(inputs["input_word_ids"],
                                          inputs["input_mask"],
                                          inputs["input_type_ids"]),
                 enc(inputs, training=True)):  # static: the full route
        np.testing.assert_allclose(ours["sequence_output"],
                                   theirs["sequence_output"], atol=1e-5)
        np.testing.assert_allclose(ours["pooled_output"],
                                   theirs["pooled_output"], atol=1e-5)


OPTIONS = [dict(embedding_width=8), dict(norm_first=True),
           dict(output_range=1)]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: next(iter(o)))
def test_bert_options_through_the_gather_path_equal_bert(tmp_path, options):
    """BertEncoderV2's embedding projection, pre-norm layers and output
    range, on the training route with every token kept."""
    inputs = batch()
    enc = encoder(token_keep_k=SEQ, drop_start_layer=1, drop_end_layer=3,
                  **options)
    bert = bert_with_same_weights(enc, inputs, tmp_path, **options)
    theirs = bert(inputs)
    ours = dynamic_length_call(enc)(inputs["input_word_ids"],
                                    inputs["input_mask"],
                                    inputs["input_type_ids"])
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(ours[key], theirs[key], atol=1e-5)


@pytest.mark.parametrize("options", OPTIONS[:2], ids=lambda o: next(iter(o)))
def test_bert_options_change_the_dropping_route_as_they_change_bert(
        tmp_path, options):
    """With tokens dropped from layer 2 on: the layers before the drop are
    BERT's with the option, the last is not (dropping did happen)."""
    inputs = batch()
    enc = encoder(drop_start_layer=2, drop_end_layer=4, **options)
    enc.importance.assign(np.random.RandomState(1).uniform(
        0, 10, VOCAB).astype(np.float32))
    bert = bert_with_same_weights(enc, inputs, tmp_path, **options)
    ours = enc(inputs, training=True)["encoder_outputs"]
    theirs = bert(inputs)["encoder_outputs"]
    for layer in (0, 1):
        np.testing.assert_allclose(ours[layer], theirs[layer], atol=1e-5)
    assert not np.allclose(ours[3], theirs[3], atol=1e-3)


def test_output_range_on_a_route_dropping_to_the_last_layer(tmp_path):
    """Dropping through the last layer with output_range=1: the first
    position of the same encoder without an output range."""
    inputs = batch()
    ranged = encoder(drop_start_layer=1, drop_end_layer=4, output_range=1)
    ranged.importance.assign(np.random.RandomState(1).uniform(
        0, 10, VOCAB).astype(np.float32))
    ranged(inputs)
    path = tf.train.Checkpoint(encoder=ranged).save(str(tmp_path / "ckpt"))
    full = encoder(drop_start_layer=1, drop_end_layer=4)
    full(inputs)
    tf.train.Checkpoint(encoder=full).restore(path).assert_consumed()
    ours = ranged(inputs, training=True)["sequence_output"]
    assert ours.shape[1] == 1
    np.testing.assert_allclose(
        ours, full(inputs, training=True)["sequence_output"][:, :1],
        atol=1e-5)


def test_each_dropped_layer_draws_its_own_subset_and_matches_reference(
        tmp_path):
    inputs = batch(pad_from=(None, 9, 5))
    start, end, keep_k = 1, 4, 6  # layers 1, 2, 3 drop; layer 0 sees all
    random.seed(3)  # the encoder's selection generator is seeded from it
    enc = encoder(selection="random_per_layer", drop_start_layer=start,
                  drop_end_layer=end, token_keep_k=keep_k)
    bert = bert_with_same_weights(enc, inputs, tmp_path)
    outputs = enc(inputs, training=True)
    states = [o.numpy() for o in outputs["encoder_outputs"]]
    mask = inputs["input_mask"].numpy()
    word_ids = inputs["input_word_ids"].numpy()
    layers = bert.transformer_layers

    # Layer 0 sees every token: BertEncoderV2's own first layer.
    x = bert._embedding_norm_layer(bert._get_embeddings(
        word_ids, inputs["input_type_ids"].numpy(), None, None, None))
    full_mask = np.repeat(mask[:, None, :].astype(np.float32), SEQ, axis=1)
    np.testing.assert_allclose(states[0], layers[0]([x, full_mask]),
                               atol=1e-5)

    draws = {}
    for i in range(start, end):
        for b in range(3):
            # A token this layer dropped passes it unchanged (bit for bit).
            unchanged = (states[i][b] == states[i - 1][b]).all(axis=-1)
            kept = np.flatnonzero(~unchanged)
            assert len(kept) == keep_k, (i, b, kept)
            draws[i, b] = tuple(kept)
            special = np.isin(word_ids[b], [CLS, SEP, MASK]) & (mask[b] == 1)
            assert set(np.flatnonzero(special)) <= set(kept)
            real = int(mask[b].sum())
            if real >= keep_k:  # padding only fills a short row
                assert (mask[b, kept] == 1).all()
            # Reference: BertEncoderV2's layer i on the kept tokens alone.
            sub_mask = np.repeat(mask[b:b + 1, None, kept].astype(np.float32),
                                 keep_k, axis=1)  # [1, k, k]
            expected = layers[i]([states[i - 1][b:b + 1, kept], sub_mask])
            np.testing.assert_allclose(states[i][b, kept], expected[0],
                                       atol=1e-5)
    # Different layers drew different subsets (row 0: 12 real tokens).
    assert len({draws[i, 0] for i in range(start, end)}) > 1
    # The routing share: each real position's share of the 3 draws.
    share = outputs["kept_share"].numpy()
    for b in range(3):
        counts = sum(np.isin(np.arange(SEQ), draws[i, b])
                     for i in range(start, end))
        np.testing.assert_allclose(share[b], counts / 3.0)


def test_keep_k_input_picks_a_compiled_branch(tmp_path):
    inputs = batch()
    enc = encoder(keep_k_schedule=((0.0, SEQ), (0.5, 4)))
    assert enc.keep_k_values == (4, 6, SEQ)
    enc.importance.assign(np.random.RandomState(2).uniform(
        0, 10, VOCAB).astype(np.float32))
    bert = bert_with_same_weights(enc, inputs, tmp_path)
    call = tf.function(lambda keep_k: enc(
        dict(inputs, token_keep_k=keep_k), training=True)["sequence_output"])
    for keep_k in (4, 6):  # the switch's branch = the static call
        switched = call(tf.constant(keep_k))
        expected = enc(dict(inputs, token_keep_k=keep_k), training=True)
        np.testing.assert_allclose(switched, expected["sequence_output"],
                                   atol=1e-5)
        assert expected["kept_share"].numpy()[0].sum() == keep_k
    np.testing.assert_allclose(call(tf.constant(SEQ)),
                               bert(inputs)["sequence_output"], atol=1e-5)
    assert call.experimental_get_tracing_count() == 1  # one trace, 3 values
    # Without the input: token_keep_k; a value that is not a branch: refused.
    assert enc(inputs, training=True)["sequence_output"].shape == (3, SEQ, 16)
    with pytest.raises(ValueError, match="token_keep_k=13 exceeds"):
        enc(dict(inputs, token_keep_k=SEQ + 1), training=True)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"token_keep_k input .* one of \(4, 6, 12\)"):
        call(tf.constant(5))


@pytest.mark.slow  # minutes on 2 shared cores: XLA compiles every branch
@pytest.mark.parametrize("selection", ["random_per_layer", "mlm_loss"])
def test_step_with_a_keep_k_tensor_compiles_with_xla(selection):
    enc = encoder(selection=selection, keep_k_schedule=((0.0, 4), (0.5, SEQ)))
    pretrainer = models.BertPretrainerV2(encoder_network=enc)
    inputs = batch()
    inputs.update(masked_lm_positions=tf.constant([[2, 3, 4]] * 3),
                  masked_lm_ids=tf.constant([[5, 6, 5]] * 3),
                  masked_lm_weights=tf.ones([3, 3]))
    pretrainer(inputs)
    optimizer = tf_keras.optimizers.Adam(1e-3)
    optimizer.build(pretrainer.trainable_variables)

    @tf.function(jit_compile=True)
    def step(inputs, keep_k):
        with tf.GradientTape() as tape:
            outputs = pretrainer(dict(inputs, token_keep_k=keep_k),
                                 training=True)
            loss = tf.reduce_mean(
                tf_keras.losses.sparse_categorical_crossentropy(
                    inputs["masked_lm_ids"], outputs["mlm_logits"],
                    from_logits=True))
        grads = tape.gradient(loss, pretrainer.trainable_variables)
        optimizer.apply_gradients(zip(grads, pretrainer.trainable_variables))
        return loss, grads

    for keep_k in (4, SEQ):
        loss, grads = step(inputs, tf.constant(keep_k))
        assert np.isfinite(loss.numpy())
        # Every weight but the pooler's (no next-sentence head here).
        for v, g in zip(pretrainer.trainable_variables, grads):
            assert ("pooler" in v.name) == (g is None), v.name
            assert g is None or np.isfinite(g.numpy()).all(), v.name
    # jit_compile=True raises if an op cannot be compiled; one trace for
    # both values (the switch picks the branch at run time).
    assert step.experimental_get_tracing_count() == 1


def test_config_round_trip_keeps_the_variant():
    enc = encoder(selection="random_per_layer",
                  keep_k_schedule=((0.0, SEQ), (0.25, 4)))
    config = json.loads(json.dumps(enc.get_config()))
    assert config["keep_k_schedule"] == [[0.0, SEQ], [0.25, 4]]
    restored = token_dropping.TokenDropBertEncoder.from_config(config)
    assert restored.get_config() == enc.get_config()
    assert restored.keep_k_values == (4, 6, SEQ)
    with pytest.raises(ValueError, match="keep_k_schedule starts at 0.25"):
        encoder(keep_k_schedule=((0.25, 4),))
    with pytest.raises(ValueError, match="keep_k_schedule token_keep_k=13 "
                       "exceeds max_sequence_length=12"):
        encoder(keep_k_schedule=((0.0, SEQ + 1),))

"""TokenDropBertEncoder against Model Garden's BertEncoderV2 and references."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.nlp.modeling import models

import token_dropping
from helpers import bert_with_same_weights, run_layer_checks
from helpers import BERT_KWARGS, CLS, MASK, PAD, SEP, SEQ, UNK, VOCAB, batch

TOKEN_DROP_KWARGS = dict(BERT_KWARGS, token_keep_k=6)


def encoder(**overrides):
    return token_dropping.TokenDropBertEncoder(
        **dict(TOKEN_DROP_KWARGS, **overrides))


def randomize_importance(enc, seed=1):
    values = np.random.RandomState(seed).uniform(0.0, 10.0, size=VOCAB)
    enc.importance.assign(values.astype(np.float32))


def test_standard_keras_checks():
    # 3 embeddings + embedding norm (2) + 4 layers x 16 + pooler (2).
    run_layer_checks(
        token_dropping.TokenDropBertEncoder, TOKEN_DROP_KWARGS, batch(),
        expected_output_shape=(3, SEQ, 16),
        expected_num_trainable_weights=3 + 2 + 4 * 16 + 2,
        expected_num_non_trainable_weights=1,
        call_kwargs=dict(training=True))


def test_keep_all_tokens_equals_bert(tmp_path):
    inputs = batch()
    enc = encoder(token_keep_k=SEQ)
    randomize_importance(enc)
    bert = bert_with_same_weights(enc, inputs, tmp_path)
    ours = enc(inputs, training=True)
    theirs = bert(inputs)
    np.testing.assert_allclose(ours["sequence_output"],
                               theirs["sequence_output"], atol=1e-5)
    np.testing.assert_allclose(ours["pooled_output"], theirs["pooled_output"],
                               atol=1e-5)


def test_inference_runs_full_model_and_equals_bert(tmp_path):
    inputs = batch()
    enc = encoder()
    randomize_importance(enc)
    bert = bert_with_same_weights(enc, inputs, tmp_path)
    np.testing.assert_allclose(enc(inputs, training=False)["sequence_output"],
                               bert(inputs)["sequence_output"], atol=1e-5)
    # And training really does drop: the outputs differ.
    assert not np.allclose(enc(inputs, training=True)["sequence_output"],
                           bert(inputs)["sequence_output"], atol=1e-3)


def test_drop_at_inference_keeps_dropping_in_evaluation():
    inputs = batch()
    enc = encoder(drop_at_inference=True)
    randomize_importance(enc)
    np.testing.assert_allclose(enc(inputs, training=False)["sequence_output"],
                               enc(inputs, training=True)["sequence_output"],
                               atol=1e-6)


def test_checkpoint_restores_every_bert_variable(tmp_path):
    inputs = batch()
    enc = encoder()
    bert = bert_with_same_weights(enc, inputs, tmp_path)
    strip = lambda v: v.name.split("/", 1)[1]
    ours = {strip(v): v for v in enc.weights if v is not enc.importance}
    theirs = {strip(v): v for v in bert.weights}
    assert sorted(ours) == sorted(theirs)
    for name, variable in theirs.items():
        np.testing.assert_array_equal(variable.numpy(), ours[name].numpy(),
                                      err_msg=name)
    # The checkpoint holds exactly BERT's variables plus the importance table.
    ours_keys = {k for k, _ in tf.train.list_variables(
        tf.train.Checkpoint(encoder=enc).save(str(tmp_path / "ours")))}
    bert_keys = {k for k, _ in tf.train.list_variables(
        tf.train.Checkpoint(encoder=bert).save(str(tmp_path / "bert")))}
    extra = ours_keys - bert_keys
    assert bert_keys <= ours_keys
    assert extra == {"encoder/_token_importance/importance/.ATTRIBUTES/"
                     "VARIABLE_VALUE"}


def reference_forward(bert, inputs, kept, start, end):
    """Token dropping written out one sequence at a time with numpy indexing.

    Built only from BertEncoderV2's own sub-layers (its embeddings and
    transformer blocks), with attention masks made by hand.
    """
    word_ids = inputs["input_word_ids"].numpy()
    mask = inputs["input_mask"].numpy()
    type_ids = inputs["input_type_ids"].numpy()
    layers = bert.transformer_layers
    rows = []
    for b in range(word_ids.shape[0]):
        m = mask[b:b + 1].astype(np.float32)  # [1, seq]
        full_mask = np.repeat(m[:, None, :], SEQ, axis=1)  # [1, seq, seq]
        x = bert._embedding_norm_layer(bert._get_embeddings(
            word_ids[b:b + 1], type_ids[b:b + 1], None, None, None))
        for layer in layers[:start]:
            x = layer([x, full_mask])
        idx = kept[b]
        k = len(idx)
        x_kept = x.numpy()[:, idx]  # [1, k, hidden]
        x_kept = layers[start]([x_kept, x, np.repeat(m[:, None, :], k,
                                                     axis=1)])
        kept_mask = np.repeat(m[:, None, idx], k, axis=1)  # [1, k, k]
        for layer in layers[start + 1:end]:
            x_kept = layer([x_kept, kept_mask])
        y = x.numpy().copy()
        y[:, idx] = x_kept.numpy()
        for layer in layers[end:]:
            y = layer([y, full_mask])
        rows.append(np.asarray(y))
    return np.concatenate(rows)


@pytest.mark.parametrize("start,end", [(1, 3), (0, 4), (2, 3), (1, 2)])
def test_drop_and_restore_match_reference(tmp_path, start, end):
    inputs = batch()
    enc = encoder(drop_start_layer=start, drop_end_layer=end)
    randomize_importance(enc)
    bert = bert_with_same_weights(enc, inputs, tmp_path)
    kept = enc.kept_positions(inputs).numpy()
    assert kept.shape == (3, 6)
    assert (np.diff(kept, axis=1) > 0).all(), "ascending, no repeats"

    outputs = enc(inputs, training=True)
    np.testing.assert_allclose(
        outputs["sequence_output"],
        reference_forward(bert, inputs, kept, start, end), atol=1e-5)

    # Each dropped position enters layer `end` with its pre-`start` state.
    if start > 0:
        before = outputs["encoder_outputs"][start - 1].numpy()
        entering = outputs["encoder_outputs"][end - 1].numpy()
        for b in range(3):
            dropped = np.setdiff1d(np.arange(SEQ), kept[b])
            np.testing.assert_array_equal(entering[b, dropped],
                                          before[b, dropped])
            assert not np.allclose(entering[b, kept[b]], before[b, kept[b]])


def test_special_tokens_and_padding_survive_thousands_of_updates():
    enc = encoder(token_keep_k=6)
    inputs = batch(pad_from=(None, 9, 5))
    ids = tf.constant([[CLS, SEP, MASK, UNK, PAD, 7]])
    # Allow-listed ids look easy (loss 0), [PAD] looks hard (loss 50).
    losses = tf.constant([[0.0, 0.0, 0.0, 0.0, 50.0, 3.0]])
    update = tf.function(lambda: enc.record_mlm_loss(ids, losses))
    for _ in range(2000):
        update()
    table = enc.importance.numpy()
    assert table[CLS] < 1e-3 and table[PAD] > 49.0  # the table did learn
    kept = enc.kept_positions(inputs).numpy()
    word_ids = inputs["input_word_ids"].numpy()
    mask = inputs["input_mask"].numpy()
    for b in range(3):
        special = np.flatnonzero(np.isin(word_ids[b], [CLS, SEP, MASK, UNK])
                                 & (mask[b] == 1))
        assert set(special) <= set(kept[b])
        real = int(mask[b].sum())
        if real >= 6:  # enough real tokens: no padding kept
            assert (mask[b, kept[b]] == 1).all()
        else:  # every real token kept, padding only fills the rest
            assert set(np.flatnonzero(mask[b])) <= set(kept[b])


def test_deny_list_dropped_first():
    enc = encoder(token_keep_k=4, token_deny_list=(PAD, 7))
    enc.importance.assign(tf.fill([VOCAB], 1.0))
    enc.importance.assign(tf.tensor_scatter_nd_update(
        enc.importance, [[7]], [100.0]))  # 7 looks hardest, but is denied
    word_ids = tf.constant([[CLS, 7, 8, 7, 9, 10, 11, SEP] + [PAD] * 4])
    inputs = dict(input_word_ids=word_ids,
                  input_mask=tf.cast(word_ids != PAD, tf.int32),
                  input_type_ids=tf.zeros_like(word_ids))
    # CLS and SEP, then the earliest ordinary tokens (equal importance).
    np.testing.assert_array_equal(enc.kept_positions(inputs), [[0, 2, 4, 7]])


def make_pretrainer(enc):
    pretrainer = models.BertPretrainerV2(encoder_network=enc)
    next_sentence = tf_keras.layers.Dense(2, name="next_sentence")
    return pretrainer, next_sentence


def pretraining_batch():
    inputs = batch()
    inputs.update(
        masked_lm_positions=tf.constant([[2, 3, 4]] * 3, tf.int32),
        masked_lm_ids=tf.constant([[5, 6, 5], [7, 7, 0], [8, 9, 0]], tf.int32),
        masked_lm_weights=tf.constant([[1, 1, 1], [1, 1, 0], [1, 1, 0]],
                                      tf.float32),
        next_sentence_labels=tf.constant([0, 1, 0], tf.int32))
    return inputs


def test_training_step_compiles_with_xla():
    enc = encoder()
    pretrainer, next_sentence = make_pretrainer(enc)
    optimizer = tf_keras.optimizers.Adam(learning_rate=1e-3)
    inputs = pretraining_batch()
    pretrainer(inputs)
    next_sentence(tf.zeros([1, 16]))
    variables = pretrainer.trainable_variables + next_sentence.trainable_variables
    optimizer.build(variables)

    @tf.function(jit_compile=True)
    def step(inputs):
        with tf.GradientTape() as tape:
            outputs = pretrainer(inputs, training=True)
            mlm_losses = tf_keras.losses.sparse_categorical_crossentropy(
                inputs["masked_lm_ids"], outputs["mlm_logits"],
                from_logits=True)  # [batch, predictions]
            weights = inputs["masked_lm_weights"]
            loss = tf.reduce_sum(mlm_losses * weights) / tf.reduce_sum(weights)
            loss += tf.reduce_mean(
                tf_keras.losses.sparse_categorical_crossentropy(
                    inputs["next_sentence_labels"],
                    next_sentence(outputs["pooled_output"]), from_logits=True))
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        enc.record_mlm_loss(inputs["masked_lm_ids"], mlm_losses, weights)
        return loss, grads

    before = enc.importance.numpy().copy()
    loss, grads = step(inputs)
    # The whole step lowers to one XLA program.
    assert "HloModule" in step.experimental_get_compiler_ir(inputs)("hlo")
    assert np.isfinite(loss.numpy())
    missing = [v.name for v, g in zip(variables, grads) if g is None]
    assert not missing, f"no gradient for {missing}"
    for v, g in zip(variables, grads):
        assert np.isfinite(g.numpy()).all(), v.name
    changed = np.flatnonzero(enc.importance.numpy() != before)
    np.testing.assert_array_equal(changed, [5, 6, 7, 8, 9])


def test_mirrored_strategy_updates_every_replica_identically():
    devices = [d.name for d in tf.config.list_logical_devices("CPU")[:2]]
    assert len(devices) == 2, "conftest makes two logical CPU devices"
    # Reduction through one device: collective ops keyed per process clash
    # when several tests each make a MirroredStrategy.
    strategy = tf.distribute.MirroredStrategy(
        devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    inputs = pretraining_batch()
    inputs = {k: tf.concat([v, v[:1]], axis=0) for k, v in inputs.items()}
    with strategy.scope():
        enc = encoder()
        pretrainer, _ = make_pretrainer(enc)
        pretrainer(inputs)

    def step(inputs):
        outputs = pretrainer(inputs, training=True)
        losses = tf_keras.losses.sparse_categorical_crossentropy(
            inputs["masked_lm_ids"], outputs["mlm_logits"], from_logits=True)
        enc.record_mlm_loss(inputs["masked_lm_ids"], losses,
                            inputs["masked_lm_weights"])
        return losses

    dataset = tf.data.Dataset.from_tensors(inputs)  # global batch of 4
    dist_inputs = next(iter(strategy.experimental_distribute_dataset(dataset)))
    per_replica = strategy.run(tf.function(step), args=(dist_inputs,))
    losses = np.concatenate(
        [t.numpy() for t in strategy.experimental_local_results(per_replica)])
    tables = [t.numpy() for t in
              strategy.experimental_local_results(enc.importance)]
    assert len(tables) == 2
    np.testing.assert_array_equal(tables[0], tables[1])

    # Equal to one update with the whole batch on a single device.
    single = token_dropping.TokenImportance(VOCAB, 10.0, 0.995)
    single.update(inputs["masked_lm_ids"], losses, inputs["masked_lm_weights"])
    np.testing.assert_allclose(tables[0], single.table.numpy(), rtol=1e-6)
    assert (tables[0] != 10.0).sum() == 5  # ids 5..9 seen, 0 only at weight 0


@pytest.mark.parametrize("overrides,message", [
    (dict(token_keep_k=0), "token_keep_k=0"),
    (dict(token_keep_k=SEQ + 1), f"token_keep_k={SEQ + 1}"),
    (dict(drop_start_layer=3, drop_end_layer=3), "drop_start_layer=3"),
    (dict(drop_start_layer=-1), "drop_start_layer=-1"),
    (dict(drop_end_layer=5), "drop_end_layer=5"),
    (dict(token_allow_list=(VOCAB,)), f"[{VOCAB}]"),
    (dict(token_deny_list=(-1,)), "[-1]"),
    (dict(token_allow_list=(101, 0)), "[0]"),
    (dict(selection="frequency"), "selection='frequency'"),
    (dict(token_loss_beta=1.5), "token_loss_beta=1.5"),
])
def test_invalid_arguments_name_the_value(overrides, message):
    with pytest.raises(ValueError) as error:
        encoder(**overrides)
    assert message in str(error.value)


def test_batch_shorter_than_keep_k_is_rejected():
    enc = encoder(token_keep_k=8)
    with pytest.raises(ValueError, match="token_keep_k=8 exceeds"):
        enc(batch(seq_length=6, pad_from=(None,)), training=True)


def test_dynamic_length_shorter_than_keep_k_is_the_same_clear_error():
    enc = encoder(token_keep_k=8)
    spec = tf.TensorSpec([None, None], tf.int32)
    call = tf.function(lambda ids, mask, types: enc(
        dict(input_word_ids=ids, input_mask=mask, input_type_ids=types),
        training=True)["sequence_output"],
        input_signature=[spec, spec, spec])
    inputs = batch(seq_length=6, pad_from=(None,))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="token_keep_k=8 exceeds the sequence length of "
                       "the batch"):
        call(inputs["input_word_ids"], inputs["input_mask"],
             inputs["input_type_ids"])
    long_enough = batch(seq_length=SEQ)
    assert call(long_enough["input_word_ids"], long_enough["input_mask"],
                long_enough["input_type_ids"]).shape == (3, SEQ, 16)


def test_numpy_integer_arguments_are_accepted():
    kwargs = {k: np.int64(v) if isinstance(v, int) else v
              for k, v in BERT_KWARGS.items()}
    enc = token_dropping.TokenDropBertEncoder(
        **kwargs, token_keep_k=np.int32(6), drop_start_layer=np.int64(1),
        token_allow_list=np.array([CLS, SEP]))
    config = json.loads(json.dumps(enc.get_config()))  # plain Python values
    assert config["token_keep_k"] == 6 and config["hidden_size"] == 16
    assert enc(batch(), training=True)["sequence_output"].shape == (3, SEQ, 16)


def test_default_layer_range_is_the_papers():
    assert token_dropping.default_drop_layers(12) == (5, 11)
    assert token_dropping.default_drop_layers(24) == (11, 23)
    assert token_dropping.default_drop_layers(2) == (0, 1)
    assert token_dropping.default_drop_layers(1) == (0, 1)

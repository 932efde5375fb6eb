"""The two training steps `benchmark` times, on synthetic batches.

Plain BERT (Model Garden's `BertEncoderV2` under `BertPretrainerV2`'s MLM
head) and `TokenDropBertEncoder` under the same head, with identical sizes;
one full training step each (forward with dropout, MLM loss, backward, AdamW,
and for token dropping the importance update), plus a step with only what
token dropping adds. Batches are synthetic: step cost does not depend on the
values, and all shapes are static.
"""

import numpy as np
import tensorflow as tf
import tf_keras
from official.nlp.modeling import models
from official.nlp.modeling.networks import bert_encoder

from token_dropping.model.encoder import TokenDropBertEncoder

# BERT's special ids (as in the uncased vocab) for the synthetic batches.
_CLS, _SEP, _MASK = 101, 102, 103
FIRST_WORD_ID = 1000  # ids below are [unused] and special tokens


def synthetic_batch(sizes, seed=0):
    """A pretraining batch: [CLS] words [SEP], masked slots set to [MASK]."""
    rng = np.random.RandomState(seed)
    batch, seq = sizes["batch_size"], sizes["seq_length"]
    predictions = sizes["max_predictions_per_seq"]
    word_ids = rng.randint(FIRST_WORD_ID, sizes["vocab_size"],
                           size=(batch, seq))
    word_ids[:, 0], word_ids[:, -1] = _CLS, _SEP
    positions = np.sort(np.stack([
        rng.choice(np.arange(1, seq - 1), predictions, replace=False)
        for _ in range(batch)]), axis=1)  # [batch, predictions]
    masked_ids = np.take_along_axis(word_ids, positions, axis=1)
    np.put_along_axis(word_ids, positions, _MASK, axis=1)
    type_ids = np.zeros_like(word_ids)
    type_ids[:, seq // 2:] = 1
    return dict(
        input_word_ids=tf.constant(word_ids, tf.int32),
        input_mask=tf.ones((batch, seq), tf.int32),
        input_type_ids=tf.constant(type_ids, tf.int32),
        masked_lm_positions=tf.constant(positions, tf.int32),
        masked_lm_ids=tf.constant(masked_ids, tf.int32),
        masked_lm_weights=tf.ones((batch, predictions), tf.float32))


def _encoder_kwargs(sizes):
    return dict(
        vocab_size=sizes["vocab_size"], hidden_size=sizes["hidden_size"],
        num_layers=sizes["num_layers"],
        num_attention_heads=sizes["num_attention_heads"],
        inner_dim=sizes["inner_dim"],
        max_sequence_length=sizes["seq_length"], type_vocab_size=2)


def build_encoder(model, sizes):
    """`model` "baseline" (BertEncoderV2) or "token_drop", same sizes."""
    if model == "baseline":
        return bert_encoder.BertEncoderV2(**_encoder_kwargs(sizes))
    if model == "token_drop":
        encoder = TokenDropBertEncoder(
            **_encoder_kwargs(sizes), token_keep_k=sizes["token_keep_k"],
            drop_start_layer=sizes["drop_start_layer"],
            drop_end_layer=sizes["drop_end_layer"])
        # A learned-looking table, so selection has real work to do.
        rng = np.random.RandomState(1)
        encoder.importance.assign(rng.uniform(
            0.0, 10.0, size=sizes["vocab_size"]).astype(np.float32))
        return encoder
    raise ValueError(f"model={model!r} is not 'baseline' or 'token_drop'.")


def make_train_step(encoder, inputs, xla=True):
    """Builds `BertPretrainerV2` on `encoder` and returns its compiled step.

    The step runs forward, MLM loss, backward, AdamW and (for token dropping)
    the importance update, and returns the loss.
    """
    pretrainer = models.BertPretrainerV2(encoder_network=encoder)
    pretrainer(inputs, training=True)  # build
    optimizer = tf_keras.optimizers.AdamW(
        learning_rate=1e-4, weight_decay=0.01, jit_compile=xla)
    optimizer.exclude_from_weight_decay(
        var_names=["LayerNorm", "layer_norm", "bias"])
    variables = pretrainer.trainable_variables
    optimizer.build(variables)
    record = getattr(encoder, "record_mlm_loss", None)

    @tf.function(jit_compile=xla)
    def step(inputs):
        with tf.GradientTape() as tape:
            outputs = pretrainer(inputs, training=True)
            losses = tf_keras.losses.sparse_categorical_crossentropy(
                inputs["masked_lm_ids"], outputs["mlm_logits"],
                from_logits=True)  # [batch, predictions]
            weights = inputs["masked_lm_weights"]
            loss = tf.reduce_sum(losses * weights) / tf.reduce_sum(weights)
        grads = tape.gradient(loss, variables)
        # The pooler is not in the MLM loss; both models skip it alike.
        optimizer.apply_gradients(
            [(g, v) for g, v in zip(grads, variables) if g is not None])
        if record is not None:
            record(inputs["masked_lm_ids"], losses, weights)
        return loss

    return step


def make_added_ops_step(encoder, inputs, sizes, xla=True):
    """A compiled function of only what token dropping adds to a step.

    On the step's shapes: importance lookup and selection, the gather of the
    kept rows and their mask, the restoring scatter, the gradients of gather
    and scatter, and the importance update. The dropped layers in between are
    left out; their cost is the layers', already in the FLOP count.
    """
    shape = (sizes["batch_size"], sizes["seq_length"], sizes["hidden_size"])
    hidden = tf.random.stateless_normal(shape, seed=(1, 2))  # [batch, seq, hidden]
    upstream = tf.random.stateless_normal(shape, seed=(3, 4))
    losses = tf.random.stateless_uniform(
        inputs["masked_lm_ids"].shape, seed=(5, 6), maxval=10.0)

    @tf.function(jit_compile=xla)
    def added_ops(inputs, hidden, upstream, losses):
        with tf.GradientTape() as tape:
            tape.watch(hidden)
            kept = encoder.kept_positions(inputs)  # [batch, keep_k]
            x_kept = tf.gather(hidden, kept, batch_dims=1)  # [batch, keep_k, hidden]
            mask_kept = tf.gather(inputs["input_mask"], kept,
                                  batch_dims=1)  # [batch, keep_k]
            rows = tf.broadcast_to(tf.range(tf.shape(kept)[0])[:, None],
                                   tf.shape(kept))  # [batch, keep_k]
            index = tf.stack([rows, kept], axis=-1)  # [batch, keep_k, 2]
            # Stand-in for the dropped layers: any function of the kept rows.
            restored = tf.tensor_scatter_nd_update(
                hidden, index, x_kept * 0.5)  # [batch, seq, hidden]
        grad = tape.gradient(restored, hidden, output_gradients=upstream)
        encoder.record_mlm_loss(inputs["masked_lm_ids"], losses,
                                inputs["masked_lm_weights"])
        return tf.reduce_sum(grad[:, 0, 0]) + tf.cast(
            tf.reduce_sum(mask_kept), tf.float32)

    return lambda inputs: added_ops(inputs, hidden, upstream, losses)

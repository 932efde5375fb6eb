"""The body of `tools/demo.py`: a small, printed tour of token dropping."""

import numpy as np
import tensorflow as tf

from token_dropping.encoder import TokenDropBertEncoder

_WORDS = ["[PAD]", "the", "cat", "sat", "on", "mat", "quietly", "zebra"]


def run(seq_length=16, keep_k=8):
    """Prints kept positions before and after the table learns, one step."""
    vocab = {w: i for i, w in enumerate(_WORDS)}
    vocab.update({"[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103})
    names = {i: w for w, i in vocab.items()}
    words = ("[CLS] the cat sat on the mat [MASK] the zebra sat quietly "
             "[SEP] [PAD] [PAD] [PAD]").split()
    ids = tf.constant([[vocab[w] for w in words]], tf.int32)
    inputs = dict(input_word_ids=ids,
                  input_mask=tf.cast(ids != 0, tf.int32),
                  input_type_ids=tf.zeros_like(ids))
    encoder = TokenDropBertEncoder(
        vocab_size=128, hidden_size=32, num_layers=4, num_attention_heads=2,
        inner_dim=64, max_sequence_length=seq_length, token_keep_k=keep_k)

    def show(title):
        kept = set(encoder.kept_positions(inputs).numpy()[0])
        print(title)
        print("  " + " ".join(
            w if i in kept else f"({w})" for i, w in enumerate(words)))

    show(f"Kept (others in parentheses), {keep_k} of {seq_length}, "
         "nothing learned yet:")
    # "zebra" and "quietly" were hard to predict, "the" and "on" easy.
    hard = {"zebra": 9.0, "quietly": 8.0, "cat": 6.0, "mat": 5.0,
            "sat": 3.0, "on": 0.5, "the": 0.2}
    mlm_ids = tf.constant([[vocab[w] for w in hard]])
    losses = tf.constant([list(hard.values())], tf.float32)
    for _ in range(500):
        encoder.record_mlm_loss(mlm_ids, losses)
    show("After 500 updates of the MLM-loss table:")

    with tf.GradientTape() as tape:
        out = encoder(inputs, training=True)["sequence_output"]
        loss = tf.reduce_mean(tf.square(out))
    grads = tape.gradient(loss, encoder.trainable_variables)
    finite = all(np.isfinite(tf.convert_to_tensor(g).numpy()).all()
                 for g in grads if g is not None)
    print(f"One training forward/backward: output {out.shape}, "
          f"gradients finite: {finite}")
    print("Table:", {names[i]: round(float(encoder.importance[i]), 2)
                     for i in mlm_ids.numpy()[0]})

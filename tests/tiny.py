"""Tiny shapes and batches shared by the tests (BERT's special-token ids)."""

import numpy as np
import tensorflow as tf

PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103
VOCAB = 120
SEQ = 12

# A 4-layer BERT small enough to run in milliseconds; dropout off so outputs
# can be compared exactly.
BERT_KWARGS = dict(
    vocab_size=VOCAB, hidden_size=16, num_layers=4, num_attention_heads=2,
    inner_dim=32, max_sequence_length=SEQ, type_vocab_size=2,
    output_dropout=0.0, attention_dropout=0.0)


def batch(batch_size=3, seq_length=SEQ, seed=0, pad_from=(None, 9, 5)):
    """A batch of [CLS] words [SEP] [PAD]..., with a [MASK] in each row.

    `pad_from[i]` is where row i's padding starts (None: no padding).
    """
    rng = np.random.RandomState(seed)
    word_ids = rng.randint(1, UNK, size=(batch_size, seq_length))
    mask = np.ones((batch_size, seq_length), np.int32)
    for row in range(batch_size):
        end = pad_from[row % len(pad_from)] or seq_length
        word_ids[row, 0] = CLS
        word_ids[row, 2] = MASK
        word_ids[row, end - 1] = SEP
        word_ids[row, end:] = PAD
        mask[row, end:] = 0
    type_ids = np.zeros_like(mask)
    type_ids[:, seq_length // 2:] = 1
    return dict(input_word_ids=tf.constant(word_ids, tf.int32),
                input_mask=tf.constant(mask * (word_ids != PAD), tf.int32),
                input_type_ids=tf.constant(type_ids * mask, tf.int32))

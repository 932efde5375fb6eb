"""train/sample_routing.py: the selection re-run on sample batches, against
a numpy top-k (the cards built on it are tested in test_summaries.py)."""

import random

import numpy as np
import tensorflow as tf

import token_dropping
from helpers import BERT_KWARGS, CLS, MASK, PAD, SEP, UNK, VOCAB, batch
from token_dropping.train.sample_routing import SampleRouting

SPECIAL = [PAD, UNK, CLS, SEP, MASK]


def encoder(**kwargs):
    enc = token_dropping.TokenDropBertEncoder(**BERT_KWARGS, **kwargs)
    enc(batch())
    # Distinct values: which tokens rank highest is unambiguous by value.
    enc.importance.assign(np.random.RandomState(0).permutation(VOCAB)
                          .astype(np.float32))
    return enc


def test_the_highest_importance_ordinary_tokens_are_kept():
    enc = encoder(token_keep_k=6)
    batches = [batch(), batch(seed=1, pad_from=(4, None, 7))]
    routing = SampleRouting(enc, batches)
    assert routing.draws == 1 and routing.sequences == 6
    ids, is_kept = routing(keep_k=6)
    assert is_kept.shape == (1, len(ids))
    table = enc.importance.numpy()
    start = 0
    for inputs in batches:
        for word_ids, mask in zip(inputs["input_word_ids"].numpy(),
                                  inputs["input_mask"].numpy()):
            real = word_ids[mask > 0]
            ordinary = real[~np.isin(real, SPECIAL)]
            n = len(ordinary)
            np.testing.assert_array_equal(ids[start:start + n], ordinary)
            # Special tokens take their slots first; the rest go to the
            # most important ordinary tokens (all of them if they fit).
            slots = min(6 - np.isin(real, SPECIAL).sum(), n)
            kept = ordinary[is_kept[0, start:start + n]]
            np.testing.assert_array_equal(
                np.sort(table[kept]), np.sort(table[ordinary])[n - slots:])
            start += n
    assert start == len(ids)


def test_random_ltd_draws_once_per_dropped_layer_and_counts_add_up():
    random.seed(0)  # the draws: the encoder seeds its generator from it
    enc = encoder(token_keep_k=6, selection="random_per_layer")
    routing = SampleRouting(enc, [batch()])
    assert routing.draws == 2  # layers 1 and 2 of 4
    ids, is_kept = routing(keep_k=6)
    assert is_kept.shape == (2, len(ids))
    kept, dropped = routing.counts(ids, is_kept, VOCAB)
    # Every occurrence once per draw, kept or dropped.
    np.testing.assert_array_equal(kept + dropped,
                                  2 * np.bincount(ids, minlength=VOCAB))
    assert kept.sum() == is_kept.sum()


def test_no_sample_batches():
    routing = SampleRouting(encoder(token_keep_k=6), [])
    ids, is_kept = routing()
    assert ids.shape == (0,) and is_kept.shape == (1, 0)
    assert routing.sequences == 0

"""Selection strategies: mlm_loss, random and mixed."""

import numpy as np
import pytest
import tensorflow as tf

from helpers import CLS, MASK, PAD, SEP
from token_dropping import select_kept_positions

ALLOW, DENY = (100, CLS, SEP, MASK), (PAD,)


def sequences():
    """Two rows: [CLS] 1..13 [MASK] ... [SEP] [PAD]x4, and a short one."""
    row0 = [CLS] + list(range(1, 14)) + [MASK, SEP] + [PAD] * 4
    row1 = [CLS, 40, MASK, 41, 42, SEP] + [PAD] * 14
    word_ids = tf.constant([row0, row1], tf.int32)
    return word_ids, tf.cast(word_ids != PAD, tf.int32)


def importance_of(word_ids):
    # Importance rises with the id, so the top ones are the largest ids.
    return tf.cast(word_ids, tf.float32)


def select(strategy, keep_k=8):
    word_ids, mask = sequences()
    return select_kept_positions(importance_of(word_ids), word_ids, mask,
                                 keep_k, ALLOW, DENY, strategy).numpy()


def check_rules(kept, keep_k):
    word_ids, mask = (t.numpy() for t in sequences())
    assert kept.shape == (2, keep_k)
    assert (np.diff(kept, axis=1) > 0).all()
    for b in range(2):
        special = np.flatnonzero(np.isin(word_ids[b], [CLS, SEP, MASK]))
        assert set(special) <= set(kept[b])
        real = int(mask[b].sum())
        if real >= keep_k:
            assert (mask[b, kept[b]] == 1).all()
        else:
            assert set(np.flatnonzero(mask[b])) <= set(kept[b])


def test_mlm_loss_keeps_the_most_important():
    kept = select("mlm_loss")
    check_rules(kept, 8)
    # [CLS] [MASK] [SEP], then the five largest ids 9..13 at positions 9..13.
    np.testing.assert_array_equal(kept[0], [0, 9, 10, 11, 12, 13, 14, 15])


def test_random_differs_between_calls_and_honours_the_rules():
    draws = [select("random") for _ in range(6)]
    for kept in draws:
        check_rules(kept, 8)
    assert len({kept[0].tobytes() for kept in draws}) > 1


def test_mixed_keeps_the_top_half_plus_random_ones():
    top = set(select("mlm_loss", keep_k=4)[0])  # [CLS] [MASK] [SEP] 13
    draws = [select("mixed", keep_k=8) for _ in range(6)]
    for kept in draws:
        check_rules(kept, 8)
        assert top <= set(kept[0])
    assert len({kept[0].tobytes() for kept in draws}) > 1


def test_unknown_strategy_is_rejected():
    with pytest.raises(ValueError, match="selection='loss'"):
        select("loss")


def test_compiles_with_xla():
    word_ids, mask = sequences()
    fn = tf.function(jit_compile=True)(
        lambda w, m: select_kept_positions(importance_of(w), w, m, 8, ALLOW,
                                           DENY, "mixed"))
    check_rules(fn(word_ids, mask).numpy(), 8)

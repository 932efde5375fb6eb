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


def test_padding_is_dropped_first_whatever_its_id():
    """Padding goes by `input_mask`, not by the deny list: with no deny list
    and padded positions holding large ordinary ids (which mlm_loss would
    rank first), a row with at least keep_k real tokens keeps only real
    ones, and a short row keeps all of its real ones first."""
    word_ids, mask = sequences()
    word_ids = tf.where(mask > 0, word_ids, 90)  # padding: id 90, not [PAD]
    for strategy in ("mlm_loss", "random", "mixed"):
        kept = select_kept_positions(importance_of(word_ids), word_ids, mask,
                                     8, ALLOW, (), strategy).numpy()
        mask_np = mask.numpy()
        assert (mask_np[0, kept[0]] == 1).all(), strategy  # 16 real >= 8
        assert set(np.flatnonzero(mask_np[1])) <= set(kept[1]), strategy


def test_allowed_tokens_outrank_any_importance():
    """The table's values are clipped below the always-kept tier: an
    importance of 1e6 on ordinary ids (a huge MLM loss, or
    token_loss_init_value) still leaves [CLS], [MASK] and [SEP] kept."""
    word_ids, mask = sequences()
    importance = tf.where(tf.math.logical_or(word_ids < 100, word_ids > 103),
                          1e6, 0.0)
    kept = select_kept_positions(importance, word_ids, mask, 4, ALLOW, DENY,
                                 "mlm_loss").numpy()
    check_rules(kept, 4)

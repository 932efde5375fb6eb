"""Choosing which positions of each sequence the middle layers keep.

One function, `select_kept_positions`, with static shapes so it compiles under
XLA: one `top_k` over `[batch, seq_length]` priorities (two for "mixed").

Priorities come in three tiers, so the special-token rules hold whatever the
importance table holds:

1. allow-listed ids ([UNK], [CLS], [SEP], [MASK]): always kept;
2. ordinary tokens: ranked by importance ("mlm_loss") or at random ("random",
   and "random_per_layer", whose encoder draws once per layer);
3. deny-listed ids ([PAD]) and padding (`input_mask == 0`): dropped first, kept
   only when a sequence has fewer than `keep_k` other tokens (the kept set has a
   static size, and padding never attends or is attended to anyway).

Ties go to the earlier position (`tf.math.top_k` is stable), and the result is
sorted ascending, so with `keep_k == seq_length` the drop is the identity.

Beside it, the small pieces every route shares: `row_index` (the one
(row, position) index for gathers and scatters of kept rows),
`positions_mask`, `checked_word_ids` (keep_k fits the batch),
`branch_index` (a keep_k's compiled branch) and `check_selection` (the id
lists and the strategy, checked before building).
"""

import tensorflow as tf

from token_dropping.model.layout import check_keep_k_fits

SELECTION_STRATEGIES = ("mlm_loss", "random", "mixed", "random_per_layer")

# Importance values are MLM losses (cross-entropy, >= 0, typically < 20); the
# tier sentinels sit far outside the range ordinary tokens are clipped into.
_SCORE_LIMIT = 1.0e4
_KEEP_ALWAYS = 3.0e4
_DROP_FIRST = -3.0e4
_ALREADY_KEPT = -9.0e4


def as_id_tuple(name, values):
    """`values` as a tuple of Python ints; ValueError naming `name`."""
    try:
        return tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}={values!r} must be a list of integer token ids.") from None


def check_selection(vocab_size, allow_list, deny_list, strategy):
    """Raises ValueError, naming the values, unless the id lists lie in
    `[0, vocab_size)` and are disjoint and `strategy` is known."""
    allow_list = as_id_tuple("token_allow_list", allow_list)
    deny_list = as_id_tuple("token_deny_list", deny_list)
    for name, ids in (("token_allow_list", allow_list),
                      ("token_deny_list", deny_list)):
        outside = [i for i in ids if not 0 <= i < vocab_size]
        if outside:
            raise ValueError(
                f"{name} has ids {outside} outside the vocabulary "
                f"[0, vocab_size={vocab_size}).")
    both = sorted(set(allow_list) & set(deny_list))
    if both:
        raise ValueError(
            f"Token ids {both} are in both token_allow_list and "
            "token_deny_list; an id can be always kept or always dropped, "
            "not both.")
    if strategy not in SELECTION_STRATEGIES:
        raise ValueError(
            f"selection={strategy!r} is not one of "
            f"{', '.join(repr(s) for s in SELECTION_STRATEGIES)}.")


def _tiered(scores, word_ids, input_mask, allow_list, deny_list):
    """Applies the three tiers to `scores` `[batch, seq]`."""
    scores = tf.clip_by_value(tf.cast(scores, tf.float32),
                              -_SCORE_LIMIT, _SCORE_LIMIT)
    allowed = is_in(word_ids, allow_list)  # [batch, seq]
    dropped = is_in(word_ids, deny_list) | tf.equal(input_mask, 0)
    scores = tf.where(allowed, _KEEP_ALWAYS, scores)
    return tf.where(dropped, _DROP_FIRST, scores)  # [batch, seq]


def is_in(word_ids, id_list):
    """Bool tensor shaped like `word_ids`: which ids are in `id_list`."""
    if not id_list:
        return tf.zeros_like(word_ids, dtype=tf.bool)
    ids = tf.constant(list(id_list), dtype=word_ids.dtype)  # [n]
    return tf.reduce_any(tf.equal(word_ids[..., None], ids), axis=-1)


def row_index(positions):
    """`[batch, k, 2]` (row, position) pairs of `positions` `[batch, k]`, the
    index `tf.gather_nd` / `tf.scatter_nd` / `tf.tensor_scatter_nd_*` take."""
    rows = tf.broadcast_to(tf.range(tf.shape(positions)[0])[:, None],
                           tf.shape(positions))  # [batch, k]
    return tf.stack([rows, positions], axis=-1)  # [batch, k, 2]


def positions_mask(positions, shape):
    """Bool `shape` (`[batch, seq]`): True at each row's `positions`."""
    return tf.scatter_nd(row_index(positions), tf.ones_like(positions),
                         shape) > 0


def checked_word_ids(word_ids, keep_k):
    """`word_ids` `[batch, seq]`, checked to have at least `keep_k` positions.

    A static length is checked now (UserError); a dynamic one by an
    assertion that runs before the selection (XLA compiles it away: shapes
    are static there).
    """
    what = "the sequence length of the batch"
    if word_ids.shape[1] is not None:
        check_keep_k_fits(keep_k, what, word_ids.shape[1])
        return word_ids
    check = tf.debugging.assert_greater_equal(
        tf.shape(word_ids)[1], keep_k,
        message=f"token_keep_k={keep_k} exceeds {what}; "
        f"choose token_keep_k <= {what}")
    with tf.control_dependencies([check]):
        return tf.identity(word_ids)


def branch_index(values, keep_k):
    """int32 index of the scalar `keep_k` in the Python tuple `values`, for
    `tf.switch_case`; an assertion names a value that is not one of them."""
    matches = tf.equal(tf.constant(values, tf.int32),
                       tf.cast(keep_k, tf.int32))  # [values]
    known = tf.debugging.assert_equal(
        tf.reduce_any(matches), True, message=(
            f"the token_keep_k input must be one of {values} (the "
            "encoder's keep_k_values)"))
    with tf.control_dependencies([known]):
        return tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int32)


def _top_positions(priority, k):
    """The `k` highest-priority positions `[batch, k]`, earlier first on ties."""
    return tf.math.top_k(priority, k=k, sorted=True).indices


def select_kept_positions(importance, word_ids, input_mask, keep_k,
                          allow_list=(), deny_list=(), strategy="mlm_loss",
                          rng=None):
    """Returns the positions each sequence keeps in the dropped layers.

    Args:
        importance: float tensor `[batch, seq_length]`: each token's importance
            (the table looked up at `word_ids`).
        word_ids: int tensor `[batch, seq_length]`.
        input_mask: int tensor `[batch, seq_length]`, 0 on padding.
        keep_k: Python int, `1 <= keep_k <= seq_length`.
        allow_list: ids always kept.
        deny_list: ids always dropped first.
        strategy: "mlm_loss" (top `keep_k` by importance), "random" (uniformly
            at random), "mixed" (the top `keep_k - keep_k // 2` by importance
            plus `keep_k // 2` at random from the rest), or
            "random_per_layer" (the encoder draws one "random" selection per
            layer; here, one such draw).
        rng: the `tf.random.Generator` the random strategies draw from (the
            encoder's, which its checkpoint carries, so a resumed run draws
            what the uninterrupted run would); None: TensorFlow's global
            random ops, which restart with the process.

    Returns:
        int32 tensor `[batch, keep_k]`, ascending along the last axis.
    """
    if strategy not in SELECTION_STRATEGIES:
        raise ValueError(f"selection={strategy!r} is not one of "
                         f"{', '.join(SELECTION_STRATEGIES)}.")
    uniform = tf.random.uniform if rng is None else rng.uniform
    random_scores = lambda: uniform(tf.shape(importance))
    if strategy in ("random", "random_per_layer"):
        importance = random_scores()
    priority = _tiered(importance, word_ids, input_mask, allow_list, deny_list)

    if strategy == "mixed" and keep_k // 2 > 0:
        top_k = keep_k - keep_k // 2
        top = _top_positions(priority, top_k)  # [batch, top_k]
        already = positions_mask(top, tf.shape(priority))  # [batch, seq]
        random_priority = _tiered(random_scores(), word_ids, input_mask,
                                  allow_list, deny_list)
        random_priority = tf.where(already, _ALREADY_KEPT, random_priority)
        rest = _top_positions(random_priority, keep_k // 2)  # [batch, k // 2]
        kept = tf.concat([top, rest], axis=1)  # [batch, keep_k]
    else:
        kept = _top_positions(priority, keep_k)  # [batch, keep_k]
    return tf.sort(tf.cast(kept, tf.int32), axis=-1)

"""TokenImportance: the moving average of each vocabulary id's MLM loss."""

import math

import tensorflow as tf
import tf_keras


@tf_keras.utils.register_keras_serializable(package="TokenDropping")
class TokenImportance(tf_keras.layers.Layer):
    """A non-trainable `[vocab_size]` table: how hard each token is to predict.

    Token dropping keeps the tokens whose masked-LM loss has been high (hard
    tokens) and drops the easy ones in the middle layers. The table holds, per
    vocabulary id, an exponential moving average of the MLM loss that id had
    when it was masked and predicted. Ids never predicted keep `init_value`.

    Upstream (Model Garden's `TokenImportanceWithMovingAvg`) scatters one EMA
    update per prediction, so with an id twice in a batch one write wins,
    padded prediction slots (id 0, weight 0) are counted, and the special-token
    sentinels stored in the table erode over time. Here one update:

    1. reduces this step's predictions per id: the sum of `loss * weight` and
       the sum of `weight` (segment sums), ignoring weight-0 slots and ids
       outside the vocabulary, and counts the NaN or infinite losses;
    2. sums those across replicas under a distribution strategy, so every
       replica applies the same update to the same table;
    3. sets `new = beta * old + (1 - beta) * weighted_mean` only for ids seen
       with a total weight above zero, and leaves the whole table alone in a
       step with a non-finite loss on any replica.

    Special-token overrides (always keep [CLS], always drop [PAD]) are applied
    at selection time, never stored here, so nothing can erode them.

    Args:
        vocab_size: int. Number of rows in the table.
        init_value: float. Importance of an id that was never predicted. The
            paper's 10.0 is above a typical MLM loss, so unseen ids are kept
            until they have been measured.
        beta: float in `[0, 1)`. Moving-average factor; 0.995 forgets with a
            half-life of about 140 updates of an id.
        **kwargs: passed to `tf_keras.layers.Layer`.

    Example:
    >>> table = TokenImportance(vocab_size=5, init_value=10.0, beta=0.995)
    >>> table.update(tf.constant([[3]]), tf.constant([[0.0]]),
    ...              tf.constant([[1.0]]))
    >>> float(table.table[3])  # 0.995 * 10.0 + 0.005 * 0.0
    9.95

    Reference: Hou et al., "Token Dropping for Efficient BERT Pretraining",
    ACL 2022, arXiv 2203.13240, Section 3.2.
    """

    def __init__(self, vocab_size, init_value=10.0, beta=0.995, **kwargs):
        kwargs.setdefault("dtype", "float32")  # a loss table, never float16
        super().__init__(**kwargs)
        if not isinstance(vocab_size, int) or vocab_size < 1:
            raise ValueError(
                f"vocab_size={vocab_size!r} must be a positive integer.")
        if not math.isfinite(float(init_value)):
            raise ValueError(
                f"token_loss_init_value={init_value!r} must be a finite number.")
        if not 0.0 <= float(beta) < 1.0:
            raise ValueError(
                f"token_loss_beta={beta!r} must be in [0, 1) (0.995 in the "
                "paper).")
        self.vocab_size = vocab_size
        self.init_value = float(init_value)
        self.beta = float(beta)
        # Replicas apply identical updates (the per-id sums are all-reduced
        # first), so the first replica's write is every replica's write.
        self.table = self.add_weight(
            name="importance",
            shape=(vocab_size,),
            dtype=tf.float32,
            initializer=tf_keras.initializers.Constant(self.init_value),
            trainable=False,
            synchronization=tf.VariableSynchronization.ON_WRITE,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )

    def call(self, token_ids):
        """Returns the importance of each id in `token_ids`, same shape."""
        return tf.gather(self.table, token_ids)

    def update(self, token_ids, losses, weights=None):
        """Folds one step's per-prediction MLM losses into the table.

        Args:
            token_ids: int tensor `[batch, predictions]`, the masked ids.
            losses: float tensor, same shape: each prediction's loss.
            weights: float tensor, same shape, or None for all ones: 0 marks a
                padded prediction slot that must not count.

        Returns:
            The assign op (the new table) for use in graph code.
        """
        token_ids = tf.reshape(tf.cast(token_ids, tf.int32), [-1])  # [N]
        losses = tf.reshape(tf.cast(tf.stop_gradient(losses), tf.float32), [-1])
        if weights is None:
            weights = tf.ones_like(losses)
        weights = tf.reshape(tf.cast(weights, tf.float32), [-1])  # [N]

        # Step 1: per-id sums of loss*weight and weight over valid slots only,
        # and how many counted slots have a NaN or infinite loss.
        counted = ((weights > 0.0) & (token_ids >= 0)
                   & (token_ids < self.vocab_size))
        valid = counted & tf.math.is_finite(losses)
        non_finite = tf.reduce_sum(
            tf.cast(counted & ~valid, tf.float32), keepdims=True)  # [1]
        weights = tf.where(valid, weights, 0.0)
        losses = tf.where(valid, losses, 0.0)
        token_ids = tf.where(valid, token_ids, 0)
        loss_sum = tf.math.unsorted_segment_sum(
            losses * weights, token_ids, self.vocab_size)  # [vocab]
        weight_sum = tf.math.unsorted_segment_sum(
            weights, token_ids, self.vocab_size)  # [vocab]

        # Step 2: the same sums on every replica.
        replica_ctx = tf.distribute.get_replica_context()
        if replica_ctx is not None and replica_ctx.num_replicas_in_sync > 1:
            loss_sum, weight_sum, non_finite = replica_ctx.all_reduce(
                tf.distribute.ReduceOp.SUM, [loss_sum, weight_sum, non_finite])

        # Step 3: EMA only where an id was seen, and not at all in a step with
        # a non-finite loss on any replica (the model has gone bad).
        seen = (weight_sum > 0.0) & (non_finite == 0.0)
        mean = tf.math.divide_no_nan(loss_sum, weight_sum)  # [vocab]
        old = tf.convert_to_tensor(self.table)
        new = tf.where(seen, self.beta * old + (1.0 - self.beta) * mean, old)
        return self.table.assign(new)

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocab_size": self.vocab_size,
            "init_value": self.init_value,
            "beta": self.beta,
        })
        return config

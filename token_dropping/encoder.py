"""TokenDropBertEncoder: BERT that runs only the important tokens mid-stack."""

import threading

import tensorflow as tf
import tf_keras
from official.modeling import tf_utils
from official.nlp.modeling.networks import bert_encoder

from token_dropping.layout import DropLayout
from token_dropping.layout import as_positive_int
from token_dropping.layout import check_keep_k_fits
from token_dropping.token_importance import TokenImportance
from token_dropping.token_selection import SELECTION_STRATEGIES
from token_dropping.token_selection import select_kept_positions


def _step_state(owner):
    """A thread-local scratch space on `owner`, not tracked by Keras or
    checkpoints: one step's tensors for another part of the same step."""
    state = owner.__dict__.get("_step_state")
    if state is None:
        state = threading.local()
        object.__setattr__(owner, "_step_state", state)
    return state


def _get_activation(identifier):
    """Model Garden's names ("gelu": approximate gelu) and registered ones."""
    if isinstance(identifier, str) and ">" in identifier:  # e.g. "Text>gelu"
        return tf_keras.activations.get(identifier)
    return tf_utils.get_activation(identifier)


def _as_int_tuple(name, values):
    try:
        return tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}={values!r} must be a list of integer token ids.") from None


@tf_keras.utils.register_keras_serializable(package="TokenDropping")
class TokenDropBertEncoder(bert_encoder.BertEncoderV2):
    """A BERT encoder that drops unimportant tokens in its middle layers.

    In training, the layers in `[drop_start_layer, drop_end_layer)` process
    only the `token_keep_k` most important tokens of each sequence; the others
    skip those layers and rejoin, with the state they had before
    `drop_start_layer`, for the last layers. The output is full length, so the
    MLM head sees every position. Importance is a moving average of each
    vocabulary id's MLM loss, fed by `record_mlm_loss` after each step's loss.
    With 12 layers, seq 512, keep 256 and the default layer range, a forward
    pass costs about 0.75 of BERT's.

    It is Model Garden's `BertEncoderV2` (same sub-layers, same attribute and
    variable names) plus the importance table, so a checkpoint of it restores
    into `BertEncoderV2` for fine-tuning, and with dropping off (evaluation,
    export) both compute the same outputs.

    Routing of one training call:

    1. embeddings, then layers `[0, drop_start_layer)` on all tokens;
    2. pick the kept positions per sequence (`kept_positions`);
    3. layer `drop_start_layer`: kept tokens are the queries, all tokens the
       keys and values;
    4. layers `(drop_start_layer, drop_end_layer)` on kept tokens only;
    5. restore: scatter the kept tokens back over the step-1 state, so each
       dropped token carries its state from before `drop_start_layer`;
    6. layers `[drop_end_layer, num_layers)` on all tokens.

    Args:
        vocab_size: int. Size of the token vocabulary.
        hidden_size: int. Width of the transformer layers.
        num_layers: int. Number of transformer layers.
        num_attention_heads: int. Attention heads per layer.
        max_sequence_length: int. Rows of the position embedding.
        type_vocab_size: int. Number of segment (type) ids.
        inner_dim: int. Width of the feed-forward layer.
        inner_activation: str or callable. Feed-forward activation; "gelu" is
            Model Garden's approximate gelu, `BertEncoderV2`'s default.
        output_dropout: float. Dropout after attention and feed-forward.
        attention_dropout: float. Dropout on attention probabilities.
        initializer: initializer (or its name / config) for all kernels.
        output_range: int or None. As in `BertEncoderV2`: only the first
            `output_range` positions of the last layer's output.
        embedding_width: int or None. Factorised embedding width.
        norm_first: bool. Pre-layer-norm transformer blocks.
        token_keep_k: int. Tokens kept in the dropped layers, at most the
            sequence length (256 of 512 in the paper).
        drop_start_layer: int or None. The transition layer where kept tokens
            attend to all tokens; default `num_layers // 2 - 1`.
        drop_end_layer: int or None. First layer that sees all tokens again;
            default `num_layers - 1`. `0 <= start < end <= num_layers`.
        token_loss_init_value: float. Importance of a never-predicted id.
        token_loss_beta: float in `[0, 1)`. Moving-average factor.
        token_allow_list: ids always kept (BERT: [UNK] [CLS] [SEP] [MASK]).
        token_deny_list: ids always dropped first (BERT: [PAD]).
        selection: "mlm_loss" (the paper), "random", or "mixed" (half by
            importance, half at random).
        drop_at_inference: bool. Also drop when `training=False`, to study
            dropping at evaluation; off by default, so evaluation and export
            run the full model.
        **kwargs: passed to `tf_keras.layers.Layer`.

    Example:
    >>> encoder = TokenDropBertEncoder(
    ...     vocab_size=200, hidden_size=16, num_layers=4, num_attention_heads=2,
    ...     inner_dim=32, max_sequence_length=8, token_keep_k=4,
    ...     token_allow_list=(101, 102), token_deny_list=(0,))
    >>> inputs = dict(input_word_ids=tf.ones((2, 8), tf.int32),
    ...               input_mask=tf.ones((2, 8), tf.int32),
    ...               input_type_ids=tf.zeros((2, 8), tf.int32))
    >>> encoder(inputs, training=True)["sequence_output"].shape
    TensorShape([2, 8, 16])

    Reference: Hou et al., "Token Dropping for Efficient BERT Pretraining",
    ACL 2022, arXiv 2203.13240.
    """

    def __init__(
            self,
            vocab_size,
            hidden_size=768,
            num_layers=12,
            num_attention_heads=12,
            max_sequence_length=512,
            type_vocab_size=16,
            inner_dim=3072,
            inner_activation="gelu",
            output_dropout=0.1,
            attention_dropout=0.1,
            initializer=None,
            output_range=None,
            embedding_width=None,
            norm_first=False,
            token_keep_k=256,
            drop_start_layer=None,
            drop_end_layer=None,
            token_loss_init_value=10.0,
            token_loss_beta=0.995,
            token_allow_list=(100, 101, 102, 103),
            token_deny_list=(0,),
            selection="mlm_loss",
            drop_at_inference=False,
            **kwargs):
        if initializer is None:
            initializer = tf_keras.initializers.TruncatedNormal(stddev=0.02)
        layout = self.check_arguments(
            vocab_size=vocab_size, num_layers=num_layers,
            max_sequence_length=max_sequence_length, token_keep_k=token_keep_k,
            drop_start_layer=drop_start_layer, drop_end_layer=drop_end_layer,
            token_allow_list=token_allow_list,
            token_deny_list=token_deny_list, selection=selection)
        # Python ints (numpy integers are welcome), so get_config is JSON.
        sizes = {name: as_positive_int(name, value) for name, value in (
            ("vocab_size", vocab_size), ("hidden_size", hidden_size),
            ("num_attention_heads", num_attention_heads),
            ("max_sequence_length", max_sequence_length),
            ("type_vocab_size", type_vocab_size), ("inner_dim", inner_dim))}
        optional = {name: None if value is None else as_positive_int(
            name, value) for name, value in (("output_range", output_range),
                                             ("embedding_width",
                                              embedding_width))}
        super().__init__(
            num_layers=layout.num_layers,
            **sizes,
            inner_activation=_get_activation(inner_activation),
            output_dropout=output_dropout,
            attention_dropout=attention_dropout,
            initializer=initializer,
            norm_first=norm_first,
            **optional,
            **kwargs)
        self.token_keep_k = layout.token_keep_k
        self.drop_start_layer = layout.drop_start_layer
        self.drop_end_layer = layout.drop_end_layer
        self.token_loss_init_value = float(token_loss_init_value)
        self.token_loss_beta = float(token_loss_beta)
        self.token_allow_list = _as_int_tuple("token_allow_list",
                                              token_allow_list)
        self.token_deny_list = _as_int_tuple("token_deny_list", token_deny_list)
        self.selection = selection
        self.drop_at_inference = bool(drop_at_inference)
        # The one object a BertEncoderV2 checkpoint does not have.
        self._token_importance = TokenImportance(
            vocab_size=sizes["vocab_size"], init_value=token_loss_init_value,
            beta=token_loss_beta, name="token_importance")

    @staticmethod
    def check_arguments(vocab_size, num_layers, max_sequence_length,
                         token_keep_k, drop_start_layer, drop_end_layer,
                         token_allow_list, token_deny_list, selection):
        """Checks the token-dropping arguments (also before building, from
        a config); returns the resolved `DropLayout`.

        Raises:
            ValueError: naming the offending value.
        """
        vocab_size = as_positive_int("vocab_size", vocab_size)
        layout = DropLayout.resolve(
            num_layers=num_layers, token_keep_k=token_keep_k,
            drop_start_layer=drop_start_layer, drop_end_layer=drop_end_layer,
            seq_length=max_sequence_length,
            seq_length_name="max_sequence_length")
        token_allow_list = _as_int_tuple("token_allow_list", token_allow_list)
        token_deny_list = _as_int_tuple("token_deny_list", token_deny_list)
        for name, ids in (("token_allow_list", token_allow_list),
                          ("token_deny_list", token_deny_list)):
            outside = [i for i in ids if not 0 <= i < vocab_size]
            if outside:
                raise ValueError(
                    f"{name} has ids {outside} outside the vocabulary "
                    f"[0, vocab_size={vocab_size}).")
        both = sorted(set(token_allow_list) & set(token_deny_list))
        if both:
            raise ValueError(
                f"Token ids {both} are in both token_allow_list and "
                "token_deny_list; an id can be always kept or always dropped, "
                "not both.")
        if selection not in SELECTION_STRATEGIES:
            raise ValueError(
                f"selection={selection!r} is not one of "
                f"{', '.join(repr(s) for s in SELECTION_STRATEGIES)}.")
        return layout

    @property
    def importance(self):
        """The `[vocab_size]` float32 moving-average MLM loss per id."""
        return self._token_importance.table

    @property
    def last_kept_positions(self):
        """`[batch, token_keep_k]` positions the last training call kept.

        Read it in the same step (the same traced function) as that call:
        the task's routing metrics describe the selection the forward pass
        used, including a `random` draw. None before any dropping call.
        """
        return getattr(_step_state(self), "kept_positions", None)

    def record_mlm_loss(self, mlm_ids, mlm_losses, mlm_weights=None):
        """Folds one step's per-prediction MLM losses into the importance.

        Call it after the loss, every training step (no gradient flows).

        Args:
            mlm_ids: int `[batch, predictions]`: `masked_lm_ids`.
            mlm_losses: float `[batch, predictions]`: each prediction's loss.
            mlm_weights: float `[batch, predictions]`: `masked_lm_weights`;
                0 marks a padded prediction slot. None counts every slot.
        """
        return self._token_importance.update(mlm_ids, mlm_losses, mlm_weights)

    def kept_positions(self, inputs):
        """`[batch, token_keep_k]` int32 positions kept now, ascending."""
        word_ids = self._check_sequence_length(inputs["input_word_ids"])
        return select_kept_positions(
            importance=self._token_importance(word_ids),
            word_ids=word_ids,
            input_mask=inputs["input_mask"],
            keep_k=self.token_keep_k,
            allow_list=self.token_allow_list,
            deny_list=self.token_deny_list,
            strategy=self.selection)

    def _check_sequence_length(self, word_ids):
        """`word_ids`, checked to have at least `token_keep_k` positions.

        A static length is checked now; a dynamic one by an assertion that
        runs before the selection (XLA compiles it away: shapes are static
        there).
        """
        what = "the sequence length of the batch"
        seq_length = word_ids.shape[1]
        if seq_length is not None:
            check_keep_k_fits(self.token_keep_k, what, seq_length)
            return word_ids
        check = tf.debugging.assert_greater_equal(
            tf.shape(word_ids)[1], self.token_keep_k,
            message=f"token_keep_k={self.token_keep_k} exceeds {what}; "
            f"choose token_keep_k <= {what}")
        with tf.control_dependencies([check]):
            return tf.identity(word_ids)

    def call(self, inputs, training=None):
        """BertEncoderV2's outputs (same keys whether dropping or not)."""
        if not isinstance(inputs, dict):
            raise ValueError(
                "TokenDropBertEncoder takes a dict with input_word_ids, "
                f"input_mask and input_type_ids, not {type(inputs).__name__}.")
        if not (training or self.drop_at_inference):
            return super().call(inputs)
        word_ids = self._check_sequence_length(inputs["input_word_ids"])
        mask = inputs["input_mask"]

        # Step 1: embeddings and the full-length layers before the drop.
        x = self._get_embeddings(word_ids, inputs["input_type_ids"], None,
                                 None, None)
        x = self._embedding_dropout(self._embedding_norm_layer(x))
        if self._embedding_projection is not None:
            x = self._embedding_projection(x)
        attention_mask = self._attention_mask_layer(x, mask)  # [batch, seq, seq]
        encoder_outputs = []
        for layer in self._transformer_layers[:self.drop_start_layer]:
            x = layer([x, attention_mask])  # [batch, seq, hidden]
            encoder_outputs.append(x)

        # Step 2: the kept positions, and their rows of the state.
        kept = self.kept_positions(inputs)  # [batch, keep_k]
        # For the task's routing metrics in the same step: per thread, as
        # MirroredStrategy traces each replica in its own thread.
        _step_state(self).kept_positions = kept
        x_kept = tf.gather(x, kept, batch_dims=1)  # [batch, keep_k, hidden]
        mask_kept = tf.gather(mask, kept, batch_dims=1)  # [batch, keep_k]
        rows = tf.broadcast_to(tf.range(tf.shape(kept)[0])[:, None],
                               tf.shape(kept))  # [batch, keep_k]
        scatter_index = tf.stack([rows, kept], axis=-1)  # [batch, keep_k, 2]
        restore = lambda kept_state: tf.tensor_scatter_nd_update(
            x, scatter_index, tf.cast(kept_state, x.dtype))  # [batch, seq, hidden]

        # Step 3: transition layer, kept queries over all keys and values.
        cross_mask = self._attention_mask_layer(x_kept, mask)  # [batch, keep_k, seq]
        x_kept = self._transformer_layers[self.drop_start_layer](
            [x_kept, x, cross_mask])  # [batch, keep_k, hidden]
        encoder_outputs.append(restore(x_kept))

        # Step 4: the dropped layers, kept tokens only.
        kept_mask = self._attention_mask_layer(x_kept, mask_kept)  # [batch, keep_k, keep_k]
        for layer in self._transformer_layers[self.drop_start_layer + 1:
                                              self.drop_end_layer]:
            x_kept = layer([x_kept, kept_mask])  # [batch, keep_k, hidden]
            encoder_outputs.append(restore(x_kept))

        # Step 5: restore; dropped tokens carry their pre-drop state.
        x = encoder_outputs[-1]  # [batch, seq, hidden]

        # Step 6: the full-length layers after the drop.
        last = self._num_layers - 1
        for i in range(self.drop_end_layer, self._num_layers):
            x = self._transformer_layers[i](
                [x, attention_mask],
                output_range=self._output_range if i == last else None)
            encoder_outputs.append(x)  # [batch, seq, hidden]
        if self.drop_end_layer == self._num_layers and self._output_range:
            encoder_outputs[-1] = x[:, :self._output_range]

        sequence_output = encoder_outputs[-1]
        return dict(
            sequence_output=sequence_output,
            pooled_output=self._pooler_layer(sequence_output[:, 0, :]),
            encoder_outputs=encoder_outputs)

    def get_config(self):
        bert = super().get_config()
        config = tf_keras.layers.Layer.get_config(self)
        for key in ("vocab_size", "hidden_size", "num_layers",
                    "num_attention_heads", "max_sequence_length",
                    "type_vocab_size", "inner_dim", "inner_activation",
                    "output_dropout", "attention_dropout", "output_range",
                    "embedding_width", "norm_first"):
            config[key] = bert[key]
        config["initializer"] = tf_keras.initializers.serialize(
            tf_keras.initializers.get(bert["initializer"]))
        config.update({
            "token_keep_k": self.token_keep_k,
            "drop_start_layer": self.drop_start_layer,
            "drop_end_layer": self.drop_end_layer,
            "token_loss_init_value": self.token_loss_init_value,
            "token_loss_beta": self.token_loss_beta,
            "token_allow_list": list(self.token_allow_list),
            "token_deny_list": list(self.token_deny_list),
            "selection": self.selection,
            "drop_at_inference": self.drop_at_inference,
        })
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


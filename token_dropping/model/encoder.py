"""TokenDropBertEncoder: BERT that runs only the important tokens mid-stack."""

import functools
import threading

import tensorflow as tf
import tf_keras
from official.modeling import tf_utils
from official.nlp.modeling.networks import bert_encoder

from token_dropping.model.layout import DropLayout
from token_dropping.model.layout import as_positive_int
from token_dropping.model.schedule import KeepKSchedule
from token_dropping.model.layout import check_keep_k_fits
from token_dropping.model.routing import LayerRouting
from token_dropping.model.routing import branch_index
from token_dropping.model.importance import TokenImportance
from token_dropping.model.selection import SELECTION_STRATEGIES
from token_dropping.model.selection import select_kept_positions

# The optional input naming this call's keep_k: a scalar int, one of the
# encoder's `keep_k_values` (the task sets it from the keep_k schedule).
KEEP_K_INPUT = "token_keep_k"


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
class TokenDropBertEncoder(LayerRouting, bert_encoder.BertEncoderV2):
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

    Routing of one training call (`routing.LayerRouting._route_between`):

    1. embeddings, then layers `[0, drop_start_layer)` on all tokens;
    2. pick the kept positions per sequence (`kept_positions`);
    3. layer `drop_start_layer`: kept tokens are the queries, all tokens the
       keys and values;
    4. layers `(drop_start_layer, drop_end_layer)` on kept tokens only;
    5. restore: scatter the kept tokens back over the step-1 state, so each
       dropped token carries its state from before `drop_start_layer`;
    6. layers `[drop_end_layer, num_layers)` on all tokens.

    With `selection="random_per_layer"` (random-LTD) each layer of the range
    draws its own random subset instead (`_route_per_layer`). A keep_k equal
    to the batch's sequence length runs every layer on every token. The
    input `token_keep_k` (a scalar, one of `keep_k_values`) picks this call's
    keep_k; without it, `token_keep_k`. Each distinct value is one branch of a
    `tf.switch_case`, so a keep_k schedule compiles once.

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
        selection: "mlm_loss" (the paper), "random", "mixed" (half by
            importance, half at random), or "random_per_layer" (each layer
            of the range draws its own random subset; random-LTD).
        keep_k_schedule: `(start_fraction, keep_k)` pairs (see
            `keep_k_schedule.KeepKSchedule`); their keep_k values, with
            `token_keep_k`, are the values the `token_keep_k` input may take.
            The task picks the stage from the training step.
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
            keep_k_schedule=(),
            **kwargs):
        if initializer is None:
            initializer = tf_keras.initializers.TruncatedNormal(stddev=0.02)
        layout = self.check_arguments(
            vocab_size=vocab_size, num_layers=num_layers,
            max_sequence_length=max_sequence_length, token_keep_k=token_keep_k,
            drop_start_layer=drop_start_layer, drop_end_layer=drop_end_layer,
            token_allow_list=token_allow_list,
            token_deny_list=token_deny_list, selection=selection)
        schedule = KeepKSchedule.resolve(
            keep_k_schedule, max_sequence_length, "max_sequence_length")
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
        self.keep_k_schedule = schedule
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
    def last_kept_share(self):
        """`[batch, seq]` float32: the share of the dropped layers that ran
        each position in the last training call (1 kept, 0 dropped).

        Read it in the same step (the same traced function) as that call:
        the task's routing metrics describe the selection the forward pass
        used, including a random draw. None before any dropping call.
        """
        return getattr(_step_state(self), "kept_share", None)

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

    @property
    def keep_k_values(self):
        """The keep_k values a training call may use, ascending."""
        return tuple(sorted(set(self.keep_k_schedule.values)
                            | {self.token_keep_k}))

    def kept_positions(self, inputs, keep_k=None):
        """`[batch, keep_k]` int32 positions kept now, ascending (one draw
        for the random selections); `keep_k` defaults to `token_keep_k`."""
        keep_k = self.token_keep_k if keep_k is None else keep_k
        word_ids = self._check_sequence_length(inputs["input_word_ids"],
                                               keep_k)
        return select_kept_positions(
            importance=self._token_importance(word_ids),
            word_ids=word_ids,
            input_mask=inputs["input_mask"],
            keep_k=keep_k,
            allow_list=self.token_allow_list,
            deny_list=self.token_deny_list,
            strategy=self.selection)

    def _check_sequence_length(self, word_ids, keep_k):
        """`word_ids`, checked to have at least `keep_k` positions.

        A static length is checked now; a dynamic one by an assertion that
        runs before the selection (XLA compiles it away: shapes are static
        there).
        """
        what = "the sequence length of the batch"
        seq_length = word_ids.shape[1]
        if seq_length is not None:
            check_keep_k_fits(keep_k, what, seq_length)
            return word_ids
        check = tf.debugging.assert_greater_equal(
            tf.shape(word_ids)[1], keep_k,
            message=f"token_keep_k={keep_k} exceeds {what}; "
            f"choose token_keep_k <= {what}")
        with tf.control_dependencies([check]):
            return tf.identity(word_ids)

    def call(self, inputs, training=None):
        """BertEncoderV2's outputs (same keys whether dropping or not)."""
        if not isinstance(inputs, dict):
            raise ValueError(
                "TokenDropBertEncoder takes a dict with input_word_ids, "
                f"input_mask and input_type_ids, not {type(inputs).__name__}.")
        keep_k = inputs.get(KEEP_K_INPUT, self.token_keep_k)
        inputs = {k: v for k, v in inputs.items() if k != KEEP_K_INPUT}
        if not (training or self.drop_at_inference):
            return super().call(inputs)

        # Embeddings (BertEncoderV2.call's), shared by every route.
        x = self._get_embeddings(inputs["input_word_ids"],
                                 inputs["input_type_ids"], None, None, None)
        x = self._embedding_dropout(self._embedding_norm_layer(x))
        if self._embedding_projection is not None:
            x = self._embedding_projection(x)
        attention_mask = self._attention_mask_layer(
            x, inputs["input_mask"])  # [batch, seq, seq]
        route = functools.partial(self._route, x, attention_mask, inputs)
        static_keep_k = (keep_k if isinstance(keep_k, int)
                         else tf.get_static_value(keep_k))
        if static_keep_k is not None:
            encoder_outputs, kept_share = route(int(static_keep_k))
        else:  # one compiled branch per value; the step picks one
            values = self.keep_k_values
            encoder_outputs, kept_share = tf.switch_case(
                branch_index(values, keep_k),
                [functools.partial(route, value) for value in values])
        # For the task's routing metrics in the same step: per thread, as
        # MirroredStrategy traces each replica in its own thread.
        _step_state(self).kept_share = kept_share

        sequence_output = encoder_outputs[-1]
        return dict(
            sequence_output=sequence_output,
            pooled_output=self._pooler_layer(sequence_output[:, 0, :]),
            encoder_outputs=encoder_outputs)

    def _route(self, x, attention_mask, inputs, keep_k):
        """`(encoder_outputs, kept_share)` of the layers at this keep_k."""
        word_ids = self._check_sequence_length(inputs["input_word_ids"],
                                               keep_k)
        inputs = dict(inputs, input_word_ids=word_ids)
        if keep_k == word_ids.shape[1]:  # nothing to drop
            return self._route_full(x, attention_mask, inputs["input_mask"])
        if self.selection == "random_per_layer":
            return self._route_per_layer(x, attention_mask, inputs, keep_k)
        return self._route_between(x, attention_mask, inputs, keep_k)

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
            "keep_k_schedule": self.keep_k_schedule.as_list(),
        })
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


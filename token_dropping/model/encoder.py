"""TokenDropBertEncoder: BERT that runs only the important tokens mid-stack."""

import functools
import random

import tensorflow as tf
import tf_keras
from official.modeling import tf_utils
from official.nlp.modeling.networks import bert_encoder

from token_dropping.model.schedule import KeepKSchedule
from token_dropping.model.layout import DropLayout
from token_dropping.model.layout import as_positive_int
from token_dropping.model.importance import TokenImportance
from token_dropping.model.selection import as_id_tuple
from token_dropping.model.selection import branch_index
from token_dropping.model.selection import check_selection
from token_dropping.model.selection import checked_word_ids
from token_dropping.model.selection import positions_mask
from token_dropping.model.selection import row_index
from token_dropping.model.selection import select_kept_positions

# The optional input naming this call's keep_k: a scalar int, one of the
# encoder's `keep_k_values` (the task sets it from the keep_k schedule).
KEEP_K_INPUT = "token_keep_k"


def _get_activation(identifier):
    """Model Garden's names ("gelu": approximate gelu) and registered ones."""
    if isinstance(identifier, str) and ">" in identifier:  # e.g. "Text>gelu"
        return tf_keras.activations.get(identifier)
    return tf_utils.get_activation(identifier)


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

    Routing of one training call, marked `# Step N` in `call`:

    1. embeddings, then layers `[0, drop_start_layer)` on all tokens;
    2. drop: pick the kept positions per sequence (`kept_positions`) and
       gather their rows;
    3. layer `drop_start_layer` (transition): kept tokens are the queries,
       all tokens the keys and values;
    4. layers `(drop_start_layer, drop_end_layer)` on kept tokens only;
    5. restore: scatter the kept tokens back over the step-1 state, so each
       dropped token carries its state from before `drop_start_layer`;
    6. layers `[drop_end_layer, num_layers)` on all tokens.

    With `selection="random_per_layer"` (random-LTD, arXiv 2211.11586) each
    layer of the range draws its own random subset (step 2), runs on it
    alone (step 4) and scatters it back (step 5). A keep_k equal to the
    batch's sequence length runs every layer on every token. The input
    `token_keep_k` (a scalar, one of `keep_k_values`) picks this call's
    keep_k; without it, `token_keep_k`. Each distinct value is one branch of
    a `tf.switch_case`, so a keep_k schedule compiles once.

    Outputs: `BertEncoderV2`'s dict plus `kept_share`, `[batch, seq]`
    float32: the share of the dropped layers that ran each position (1 kept,
    0 dropped; all ones when nothing is dropped). The key is there in every
    call, so functional models built on the encoder see one structure; the
    task's routing metrics read it.

    Args:
        vocab_size, hidden_size, num_layers, num_attention_heads,
        max_sequence_length, type_vocab_size, inner_dim, output_dropout,
        attention_dropout, initializer, output_range, embedding_width,
        norm_first: as in `BertEncoderV2`.
        inner_activation: str or callable. "gelu" is Model Garden's
            approximate gelu, `BertEncoderV2`'s default.
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
        self.token_allow_list = as_id_tuple("token_allow_list",
                                            token_allow_list)
        self.token_deny_list = as_id_tuple("token_deny_list", token_deny_list)
        self.selection = selection
        self.drop_at_inference = bool(drop_at_inference)
        self.keep_k_schedule = schedule
        # The one object a BertEncoderV2 checkpoint does not have.
        self._token_importance = TokenImportance(
            vocab_size=sizes["vocab_size"], init_value=token_loss_init_value,
            beta=token_loss_beta, name="token_importance")
        self._set_selection_rng()

    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def _set_selection_rng(self):
        """`selection_rng`, seeded from Python's `random`; out of the
        encoder's checkpoint, as tf_keras's random layers' (see
        `train.random_state`)."""
        self.selection_rng = None if self.selection == "mlm_loss" else (
            tf.random.Generator.from_seed(random.getrandbits(63)))

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
        check_selection(vocab_size, token_allow_list, token_deny_list,
                        selection)
        return layout

    @property
    def importance(self):
        """The `[vocab_size]` float32 moving-average MLM loss per id."""
        return self._token_importance.table

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

    def kept_positions(self, inputs, keep_k=None, rng=None):
        """`[batch, keep_k]` int32 positions kept now, ascending (one draw
        for the random selections, from `rng` or else the encoder's own
        generator, the one training draws from); `keep_k` defaults to
        `token_keep_k`."""
        keep_k = self.token_keep_k if keep_k is None else keep_k
        word_ids = checked_word_ids(inputs["input_word_ids"], keep_k)
        return select_kept_positions(
            importance=self._token_importance(word_ids),
            word_ids=word_ids,
            input_mask=inputs["input_mask"],
            keep_k=keep_k,
            allow_list=self.token_allow_list,
            deny_list=self.token_deny_list,
            strategy=self.selection,
            rng=self.selection_rng if rng is None else rng)

    # === What the route uses of BertEncoderV2 ===
    # Its sub-layers are private attributes (their names are the
    # checkpoint's), read only in these two methods and, for
    # `_output_range`, once at the top of `call`; `transformer_layers` and
    # `pooler_layer` are public.

    def _embed(self, inputs):
        """BertEncoderV2.call's embeddings: `[batch, seq, hidden]`."""
        x = self._get_embeddings(inputs["input_word_ids"],
                                 inputs["input_type_ids"], None, None, None)
        x = self._embedding_dropout(self._embedding_norm_layer(x))
        if self._embedding_projection is not None:
            x = self._embedding_projection(x)
        return x

    def _attention_mask(self, queries, key_mask):
        """`[batch, queries, keys]`: which keys each query may attend to."""
        return self._attention_mask_layer(queries, key_mask)

    # === The route ===

    def call(self, inputs, training=None):
        """BertEncoderV2's outputs plus `kept_share` (see the class doc)."""
        if not isinstance(inputs, dict):
            raise ValueError(
                "TokenDropBertEncoder takes a dict with input_word_ids, "
                f"input_mask and input_type_ids, not {type(inputs).__name__}.")
        keep_k = inputs.get(KEEP_K_INPUT, self.token_keep_k)
        inputs = {k: v for k, v in inputs.items() if k != KEEP_K_INPUT}
        mask = inputs["input_mask"]  # [batch, seq]
        if not (training or self.drop_at_inference):
            return dict(super().call(inputs),
                        kept_share=tf.ones(tf.shape(mask), tf.float32))

        # Step 1: embeddings (shared by every keep_k's branch), then below
        # the full-length layers before the drop.
        x = self._embed(inputs)  # [batch, seq, hidden]
        attention_mask = self._attention_mask(x, mask)  # [batch, seq, seq]
        layers, output_range = self.transformer_layers, self._output_range
        last = len(layers) - 1
        start, end = self.drop_start_layer, self.drop_end_layer

        def route(keep_k):
            """`(encoder_outputs, kept_share)` of the layers at `keep_k`."""
            word_ids = checked_word_ids(inputs["input_word_ids"], keep_k)
            full = keep_k == word_ids.shape[1]  # nothing to drop
            per_layer = self.selection == "random_per_layer"
            encoder_outputs, draws = [], []
            for i, layer in enumerate(layers):
                x_all = encoder_outputs[-1] if encoder_outputs else x  # [batch, seq, hidden]
                if full or not start <= i < end:
                    # Steps 1 and 6: a layer on every token.
                    encoder_outputs.append(layer(
                        [x_all, attention_mask],
                        output_range=output_range if i == last else None))  # [batch, seq, hidden]
                    continue
                if i == start or per_layer:
                    # Step 2: drop; keep the rows of the kept positions.
                    kept = self.kept_positions(
                        dict(inputs, input_word_ids=word_ids),
                        keep_k)  # [batch, keep_k]
                    draws.append(kept)
                    index = row_index(kept)  # [batch, keep_k, 2]
                    x_kept = tf.gather(x_all, kept, batch_dims=1)  # [batch, keep_k, hidden]
                    mask_kept = tf.gather(mask, kept, batch_dims=1)  # [batch, keep_k]
                    kept_mask = self._attention_mask(
                        x_kept, mask_kept)  # [batch, keep_k, keep_k]
                if i == start and not per_layer:
                    # Step 3: transition; kept queries, all keys and values.
                    cross_mask = self._attention_mask(x_kept, mask)  # [batch, keep_k, seq]
                    x_kept = layer([x_kept, x_all, cross_mask])  # [batch, keep_k, hidden]
                else:
                    # Step 4: kept tokens attend to kept tokens only.
                    x_kept = layer([x_kept, kept_mask])  # [batch, keep_k, hidden]
                # Step 5: restore; the dropped rows keep their state from
                # before the drop (each layer's full-length output).
                encoder_outputs.append(tf.tensor_scatter_nd_update(
                    x_all, index, tf.cast(x_kept, x_all.dtype)))  # [batch, seq, hidden]
            if draws and end == len(layers) and output_range:
                encoder_outputs[-1] = encoder_outputs[-1][
                    :, :output_range]  # [batch, output_range, hidden]
            if not draws:
                return encoder_outputs, tf.ones(tf.shape(mask), tf.float32)
            kept_share = tf.add_n([tf.cast(positions_mask(
                kept, tf.shape(mask)), tf.float32)
                for kept in draws]) / len(draws)  # [batch, seq]
            return encoder_outputs, kept_share

        static_keep_k = (keep_k if isinstance(keep_k, int)
                         else tf.get_static_value(keep_k))
        if static_keep_k is not None:
            encoder_outputs, kept_share = route(int(static_keep_k))
        else:  # one compiled branch per value; the step picks one
            values = self.keep_k_values
            encoder_outputs, kept_share = tf.switch_case(
                branch_index(values, keep_k),
                [functools.partial(route, value) for value in values])
        sequence_output = encoder_outputs[-1]  # [batch, seq, hidden]
        return dict(
            sequence_output=sequence_output,
            pooled_output=self.pooler_layer(sequence_output[:, 0, :]),
            encoder_outputs=encoder_outputs,
            kept_share=kept_share)

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


"""TokenDropBertEncoderConfig: Model Garden's BERT config plus token dropping.

Used as `encoders.EncoderConfig(type="any", any=TokenDropBertEncoderConfig())`,
exactly as upstream's `official/projects/token_dropping` does, so its YAMLs
(`task.model.encoder.any.token_keep_k: 256`, ...) load unchanged.
"""

import dataclasses
from typing import List, Optional, Tuple

import tf_keras
from official.modeling.hyperparams import base_config
from official.nlp.configs import encoders

from token_dropping.model.encoder import TokenDropBertEncoder
from token_dropping.common.errors import UserError


@dataclasses.dataclass
class KeepKStage(base_config.Config):
    """One stage of a keep_k schedule (`keep_k_schedule.KeepKSchedule`)."""
    # Where the stage starts: a fraction of training, 0.0 for the first.
    start_fraction: float = 0.0
    # Tokens kept from then on; the training seq_length drops nothing.
    token_keep_k: int = 256


@dataclasses.dataclass
class TokenDropBertEncoderConfig(encoders.BertEncoderConfig):
    """BertEncoderConfig plus the token-dropping fields only."""
    # Tokens kept in the dropped layers, per sequence (256 of 512 in the paper).
    token_keep_k: int = 256
    # Transition layer (kept tokens attend to all); None: num_layers // 2 - 1.
    drop_start_layer: Optional[int] = None
    # First layer that sees every token again; None: num_layers - 1.
    drop_end_layer: Optional[int] = None
    # Importance (MLM loss, nats) of an id never yet predicted.
    token_loss_init_value: float = 10.0
    # Moving-average factor per update of an id.
    token_loss_beta: float = 0.995
    # Always kept: [UNK] [CLS] [SEP] [MASK] in BERT's vocab.
    token_allow_list: Tuple[int, ...] = (100, 101, 102, 103)
    # Always dropped first: [PAD].
    token_deny_list: Tuple[int, ...] = (0,)
    # "mlm_loss" (the paper), "random", "mixed", or "random_per_layer"
    # (random-LTD: each layer of the range draws its own random subset).
    selection: str = "mlm_loss"
    # Keep dropping in evaluation (for study); export never drops.
    drop_at_inference: bool = False
    # keep_k over training (empty: token_keep_k all along); stages by
    # fraction of task.keep_k_schedule_steps, e.g. no dropping for the first
    # 10%: [{start_fraction: 0.0, token_keep_k: 512},
    #       {start_fraction: 0.1, token_keep_k: 256}].
    keep_k_schedule: List[KeepKStage] = dataclasses.field(
        default_factory=list)


@base_config.bind(TokenDropBertEncoderConfig)
def build_token_drop_bert_encoder(config: TokenDropBertEncoderConfig):
    """Builds the encoder a `TokenDropBertEncoderConfig` describes."""
    if config.return_attention_scores or config.return_word_embeddings:
        raise UserError(
            "return_attention_scores and return_word_embeddings are not "
            "supported with token dropping; set both to false.")
    return TokenDropBertEncoder(**encoder_kwargs(config))


def encoder_kwargs(config):
    """The encoder's keyword arguments a Model Garden encoder config gives.

    The one mapping of config fields to layer arguments (`intermediate_size`
    -> `inner_dim`, `max_position_embeddings` -> `max_sequence_length`, ...):
    `TokenDropBertEncoder`'s for a `TokenDropBertEncoderConfig`, and
    `BertEncoderV2`'s (as Model Garden's `encoders.build_encoder` passes
    them) for a plain `BertEncoderConfig`. The builder, the run checks, the
    FLOP model and the benchmark read the sizes from here.
    """
    kwargs = dict(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        num_attention_heads=config.num_attention_heads,
        max_sequence_length=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        inner_dim=config.intermediate_size,
        inner_activation=config.hidden_activation,
        output_dropout=config.dropout_rate,
        attention_dropout=config.attention_dropout_rate,
        initializer=tf_keras.initializers.TruncatedNormal(
            stddev=config.initializer_range),
        output_range=config.output_range,
        embedding_width=config.embedding_size,
        norm_first=config.norm_first)
    if isinstance(config, TokenDropBertEncoderConfig):
        kwargs.update(
            token_keep_k=config.token_keep_k,
            drop_start_layer=config.drop_start_layer,
            drop_end_layer=config.drop_end_layer,
            token_loss_init_value=config.token_loss_init_value,
            token_loss_beta=config.token_loss_beta,
            token_allow_list=tuple(config.token_allow_list),
            token_deny_list=tuple(config.token_deny_list),
            selection=config.selection,
            drop_at_inference=config.drop_at_inference,
            keep_k_schedule=schedule_pairs(config))
    return kwargs


def schedule_pairs(config):
    """The config's keep_k schedule as `(start_fraction, keep_k)` pairs."""
    return tuple((stage.start_fraction, stage.token_keep_k)
                 for stage in config.keep_k_schedule)

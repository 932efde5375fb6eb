"""encoder_config.encoder_kwargs: config fields to layer arguments, once."""

from official.nlp.configs import encoders

from token_dropping.model.encoder import TokenDropBertEncoder
from token_dropping.model.encoder_config import TokenDropBertEncoderConfig
from token_dropping.model.encoder_config import encoder_kwargs

# Every BERT field off its default, so a field read into the wrong argument
# (or not read) shows.
BERT = dict(vocab_size=97, hidden_size=12, num_layers=3, num_attention_heads=3,
            intermediate_size=20, hidden_activation="relu", dropout_rate=0.2,
            attention_dropout_rate=0.3, max_position_embeddings=24,
            type_vocab_size=3, initializer_range=0.05, embedding_size=8,
            norm_first=True)


def _comparable(config):
    config = dict(config)
    config.pop("name", None)
    config.pop("trainable", None)
    return config


def test_plain_bert_kwargs_are_model_gardens():
    # Model Garden's own builder is the reference for the BERT fields.
    config = encoders.BertEncoderConfig(**BERT)
    reference = encoders.build_encoder(
        encoders.EncoderConfig(type="bert_v2", bert_v2=config))
    ours = type(reference)(**encoder_kwargs(config))
    assert _comparable(ours.get_config()) == _comparable(
        reference.get_config())


def test_token_drop_kwargs_carry_every_field():
    config = TokenDropBertEncoderConfig(
        **BERT, token_keep_k=10, drop_start_layer=0, drop_end_layer=2,
        token_loss_init_value=7.0, token_loss_beta=0.9,
        token_allow_list=[5, 6], token_deny_list=[0], selection="random",
        drop_at_inference=True,
        keep_k_schedule=[dict(start_fraction=0.0, token_keep_k=24),
                         dict(start_fraction=0.5, token_keep_k=10)])
    kwargs = encoder_kwargs(config)
    plain = encoder_kwargs(encoders.BertEncoderConfig(**BERT))
    assert {k: v for k, v in kwargs.items() if k in plain and
            k != "initializer"} == {k: v for k, v in plain.items()
                                    if k != "initializer"}
    assert {k: v for k, v in kwargs.items() if k not in plain} == dict(
        token_keep_k=10, drop_start_layer=0, drop_end_layer=2,
        token_loss_init_value=7.0, token_loss_beta=0.9,
        token_allow_list=(5, 6), token_deny_list=(0,), selection="random",
        drop_at_inference=True, keep_k_schedule=((0.0, 24), (0.5, 10)))
    encoder = TokenDropBertEncoder(**kwargs)
    assert encoder.get_config()["token_keep_k"] == 10

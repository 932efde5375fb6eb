"""Registered experiments: token-dropping BERT and plain-BERT baselines.

Every experiment shares one pretraining recipe (the paper's: AdamW, lr 1e-4
with polynomial decay and warmup, weight decay 0.01 except LayerNorm and
biases, no next-sentence prediction). `token_drop_bert_*` use our encoder;
`bert_*` use Model Garden's own `BertEncoderV2` through its `MaskedLMTask`
with identical sizes and hyperparameters, for apples-to-apples comparisons.

    python tools/train.py --experiment=token_drop_bert_base --mode=train_and_eval
"""

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import optimization
from official.nlp.configs import bert
from official.nlp.configs import encoders
from official.nlp.data import pretrain_dataloader
from official.nlp.tasks import masked_lm

from token_dropping.model.encoder_config import TokenDropBertEncoderConfig
from token_dropping.model.schedule import KeepKSchedule
from token_dropping.train.task import TokenDropMaskedLMConfig
from token_dropping.common.errors import UserError

# name: (encoder sizes, data shape, trainer schedule)
_SIZES = {
    "base": dict(
        encoder=dict(num_layers=12, hidden_size=768, num_attention_heads=12,
                     intermediate_size=3072, max_position_embeddings=512),
        token_keep_k=256,  # of seq_length 512
        data=dict(seq_length=512, max_predictions_per_seq=76,
                  global_batch_size=512),
        trainer=dict(train_steps=1_000_000, warmup_steps=10_000,
                     steps_per_loop=1000, checkpoint_interval=20_000,
                     validation_interval=1000, validation_steps=64)),
    # CPU-sized: `make demo` trains it on the embedded corpus in minutes.
    "tiny": dict(
        encoder=dict(num_layers=4, hidden_size=128, num_attention_heads=2,
                     intermediate_size=512, max_position_embeddings=128,
                     vocab_size=8000, dropout_rate=0.0,
                     attention_dropout_rate=0.0),
        token_keep_k=64,  # of seq_length 128
        data=dict(seq_length=128, max_predictions_per_seq=20,
                  global_batch_size=32),
        # About 3 minutes of training on 2 idle CPU cores (4-5 steps/s).
        trainer=dict(train_steps=800, warmup_steps=80, steps_per_loop=100,
                     checkpoint_interval=400, validation_interval=400,
                     validation_steps=10, learning_rate=1e-3)),
}

# The study's size (tools/study.py, docs/study): tiny's data shapes and
# vocabulary, 8 layers of 96, every validation sequence evaluated. Its costs
# are shaped like BERT-base's: a token-dropping train step (MLM head
# included, 64 of 128 tokens kept) costs 0.767 of BERT's (BERT-base at 512:
# 0.755; tiny's 4 x 128: 0.795, where the head is a larger share), at 1.11x
# tiny's step. At tiny's shape (constant rate after warmup) 1e-3 learned
# fastest of 1e-3, 2e-3 and 3e-3.
_SIZES["mini"] = dict(_SIZES["tiny"], encoder=dict(
    _SIZES["tiny"]["encoder"], num_layers=8, hidden_size=96,
    num_attention_heads=2, intermediate_size=384), trainer=dict(
    train_steps=1000, warmup_steps=100, steps_per_loop=200,
    checkpoint_interval=200, validation_interval=200, validation_steps=-1,
    learning_rate=1e-3))

# BERT-large: the base recipe with the larger encoder.
_SIZES["large"] = dict(_SIZES["base"], encoder=dict(
    num_layers=24, hidden_size=1024, num_attention_heads=16,
    intermediate_size=4096, max_position_embeddings=512))


# The registered sizes, smallest first: token_drop_bert_<size>, bert_<size>.
SIZES = tuple(sorted(_SIZES, key=lambda s: (
    _SIZES[s]["encoder"]["num_layers"]
    * _SIZES[s]["encoder"]["hidden_size"] ** 2)))  # layer weights


def _optimizer(train_steps, warmup_steps, learning_rate=1e-4):
    return optimization.OptimizationConfig({
        "optimizer": {
            "type": "adamw",
            "adamw": {
                "weight_decay_rate": 0.01,
                "exclude_from_weight_decay": ["LayerNorm", "layer_norm",
                                              "bias"],
            },
        },
        "learning_rate": {
            "type": "polynomial",
            "polynomial": {"initial_learning_rate": learning_rate,
                           "decay_steps": train_steps,
                           "end_learning_rate": 0.0, "power": 1.0},
        },
        "warmup": {"type": "polynomial",
                   "polynomial": {"warmup_steps": warmup_steps, "power": 1}},
    })


def _data(is_training, seq_length, max_predictions_per_seq, global_batch_size):
    # input_path "" means: the embedded default corpus (tools/train.py).
    return pretrain_dataloader.BertPretrainDataConfig(
        input_path="", is_training=is_training, seq_length=seq_length,
        max_predictions_per_seq=max_predictions_per_seq,
        global_batch_size=global_batch_size, drop_remainder=is_training,
        use_next_sentence_label=False, use_v2_feature_names=True,
        use_position_id=False)


def pretraining_experiment(size, token_dropping=True):
    """The recipe at one size, with our encoder or Model Garden's BERT."""
    spec = _SIZES[size]
    schedule = dict(spec["trainer"])
    optimizer = _optimizer(schedule.pop("train_steps"),
                           schedule.pop("warmup_steps"),
                           schedule.pop("learning_rate", 1e-4))
    train_steps = spec["trainer"]["train_steps"]
    if token_dropping:
        encoder = encoders.EncoderConfig(
            type="any", any=TokenDropBertEncoderConfig(
                token_keep_k=spec["token_keep_k"], **spec["encoder"]))
        task_cls = TokenDropMaskedLMConfig
    else:
        encoder = encoders.EncoderConfig(
            type="bert_v2",
            bert_v2=encoders.BertEncoderConfig(**spec["encoder"]))
        task_cls = masked_lm.MaskedLMConfig
    return cfg.ExperimentConfig(
        runtime=cfg.RuntimeConfig(enable_xla=True),
        task=task_cls(
            model=bert.PretrainerConfig(encoder=encoder, cls_heads=[]),
            train_data=_data(True, **spec["data"]),
            validation_data=_data(False, **spec["data"])),
        trainer=cfg.TrainerConfig(
            train_steps=train_steps, optimizer_config=optimizer,
            summary_interval=schedule["steps_per_loop"], max_to_keep=5,
            **schedule),
        restrictions=[
            "task.train_data.is_training != None",
            "task.validation_data.is_training != None",
        ])


# Issue 12's remedies, each token_drop_bert_<size>_<variant>:
# random_ltd: layer-wise random dropping in layers 1..L-2 (random-LTD), the
#   kept length ramping from token_keep_k to seq_length in 8 equal stages;
# full_ends: no dropping for the first and last 10% of training (ScTD's
#   code), token_keep_k in between;
# sctd: ScTD's semantic consistency, every 10th step, weight 0.05.
VARIANTS = ("random_ltd", "full_ends", "sctd")


def variant_experiment(size, variant):
    """token_drop_bert_<size> with one of `VARIANTS` switched on."""
    params = pretraining_experiment(size)
    encoder = params.task.model.encoder.any
    seq, keep = params.task.train_data.seq_length, encoder.token_keep_k
    schedule = KeepKSchedule()
    if variant == "random_ltd":
        encoder.selection = "random_per_layer"
        encoder.drop_start_layer = 1
        encoder.drop_end_layer = encoder.num_layers - 1
        schedule = KeepKSchedule.ramp(seq_length=seq, start_keep_k=keep,
                                      end_keep_k=seq, num_stages=8)
    elif variant == "full_ends":
        schedule = KeepKSchedule.resolve([(0.0, seq), (0.1, keep),
                                          (0.9, seq)])
    elif variant == "sctd":
        params.task.consistency_interval = 10
        params.task.consistency_weight = 0.05
    else:
        raise UserError(f"variant={variant!r} is not one of {VARIANTS}.")
    params.override({"task": {"model": {"encoder": {"any": {
        "keep_k_schedule": [dict(start_fraction=start, token_keep_k=k)
                            for start, k in schedule.stages]}}}}})
    return params


def is_registered(name):
    """Whether Model Garden's experiment registry knows `name` (ours, or its
    fine-tuning experiments once `train.finetuning_experiments` is
    imported), asked through its public lookup."""
    try:
        exp_factory.get_exp_config(name)
    except LookupError:
        return False
    return True


def _registered_here():
    """Registers our experiments; returns their names (Model Garden's
    registry has no public listing, so we keep ours as we register)."""
    factories = {}
    for size in _SIZES:
        factories[f"token_drop_bert_{size}"] = (
            lambda size=size: pretraining_experiment(size))
        for variant in VARIANTS:
            factories[f"token_drop_bert_{size}_{variant}"] = (
                lambda size=size, v=variant: variant_experiment(size, v))
        factories[f"bert_{size}"] = (
            lambda size=size: pretraining_experiment(size,
                                                     token_dropping=False))
    # Upstream's name for the base experiment.
    factories["token_drop_bert/pretraining"] = (
        lambda: pretraining_experiment("base"))
    for name, factory in factories.items():
        exp_factory.register_config_factory(name)(factory)
    return tuple(sorted(factories))


# Every experiment this module registers, sorted.
NAMES = _registered_here()

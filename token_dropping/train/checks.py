"""Checks a training run's configuration before anything is written.

Model Garden's config system accepts any value for any field (`token_keep_k=
abc`), any strategy name, and an encoder that does not fit the task; each of
those fails later, deep inside TensorFlow, or worse, trains the wrong thing.
`check_params` turns them into one `UserError` line naming the value and
what would be valid; `check_model_dir`, `check_resumable` (a checkpoint cut
short) and `check_checkpoint_fits` do the same for the run directory, before
`params.yaml` is (over)written.
"""

import dataclasses
import inspect
import os
import typing

import tensorflow as tf
from absl import logging
from official.core import config_definitions as cfg
from official.modeling.hyperparams import base_config

from token_dropping.common import checkpoint_graph
from token_dropping.model.encoder_config import TokenDropBertEncoderConfig
from token_dropping.model.encoder_config import encoder_kwargs
from token_dropping.model.encoder_config import schedule_pairs
from token_dropping.model.encoder import TokenDropBertEncoder
from token_dropping.common.errors import UserError
from token_dropping.model.schedule import KeepKSchedule
from token_dropping.model.layout import check_keep_k_fits
from token_dropping.train.task import TokenDropMaskedLMConfig
from token_dropping.common.paths import check_output_path
from token_dropping.train.params import encoder_config
from token_dropping.train.params import uses

# Model Garden's `distribute_utils.get_distribution_strategy` names.
STRATEGIES = ("mirrored", "one_device", "multi_worker_mirrored", "tpu",
              "parameter_server", "off")
_KINDS = {int: "an integer", float: "a number", bool: "true or false",
          str: "a string"}


def check_params(params, mode):
    """Raises UserError for settings that would fail later, deep in TF."""
    for name in ("task", "trainer", "runtime"):
        check_types(getattr(params, name), name)
    strategy_name(params.runtime)
    _check_positive(params, mode)
    encoder = encoder_config(params)
    _check_encoder_fits_task(params, encoder)
    check_variants(params.task)
    for name in uses(mode):
        data = getattr(params.task, name)
        if data.seq_length > getattr(encoder, "max_position_embeddings",
                                     data.seq_length):
            raise UserError(
                f"task.{name}.seq_length={data.seq_length} exceeds the "
                f"encoder's max_position_embeddings="
                f"{encoder.max_position_embeddings}.")
        drops = name == "train_data" or getattr(encoder, "drop_at_inference",
                                                False)
        if isinstance(encoder, TokenDropBertEncoderConfig) and drops:
            check_keep_k_fits(encoder.token_keep_k, f"task.{name}.seq_length",
                              data.seq_length)
            try:
                KeepKSchedule.resolve(schedule_pairs(encoder), data.seq_length,
                                      f"task.{name}.seq_length")
            except UserError as e:
                raise UserError(f"task.model.encoder.any.{e}") from None
        if getattr(data, "max_predictions_per_seq", 0) > data.seq_length:
            raise UserError(
                f"task.{name}.max_predictions_per_seq="
                f"{data.max_predictions_per_seq} exceeds seq_length="
                f"{data.seq_length}.")


def _check_positive(params, mode):
    """Counts that must be at least 1, and learning rates that must not be
    negative (Model Garden trains to step -1 or with a negative rate)."""
    counts = [(f"task.{name}.{field}", getattr(getattr(params.task, name),
                                               field, 1))
              for name in uses(mode)
              for field in ("global_batch_size", "seq_length")]
    trainer = params.trainer
    if "train" in mode:
        # A checkpoint_interval of 0 trains without ever saving (nothing to
        # resume or export).
        counts += [("trainer.train_steps", trainer.train_steps),
                   ("trainer.steps_per_loop", trainer.steps_per_loop),
                   ("trainer.checkpoint_interval",
                    trainer.checkpoint_interval),
                   ("trainer.summary_interval", trainer.summary_interval)]
    for key, value in counts:
        if value < 1:
            raise UserError(f"{key}={value!r} must be at least 1.")
    if "train" in mode and trainer.summary_interval % trainer.steps_per_loop:
        raise UserError(  # orbit's Controller refuses it mid-start
            f"trainer.summary_interval={trainer.summary_interval} must be a "
            f"multiple of trainer.steps_per_loop={trainer.steps_per_loop}.")
    if "eval" in mode and not (trainer.validation_steps == -1
                               or trainer.validation_steps >= 1):
        raise UserError(  # orbit refuses it after training
            f"trainer.validation_steps={trainer.validation_steps!r} must be "
            "-1 (the whole validation set) or at least 1.")
    optimizer = params.trainer.optimizer_config
    for part in ("learning_rate", "warmup"):
        choice = getattr(optimizer, part)
        schedule = (getattr(choice, str(choice.type), None) if choice.type
                    else None)
        for field in dataclasses.fields(schedule) if schedule else ():
            # Rates: fields named so and the stepwise schedule's `values`;
            # and the factors that turn a rate negative (cosine's `alpha`,
            # the exponential and inverse-time decays' `decay_rate`).
            if ("learning_rate" not in field.name
                    and field.name not in ("values", "alpha", "decay_rate")):
                continue
            value = getattr(schedule, field.name)
            for rate in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(rate, (int, float)) and rate < 0:
                    raise UserError(
                        f"trainer.optimizer_config.{part}.{choice.type}."
                        f"{field.name}={value!r} must be 0 or more"
                        + (" in each entry." if value is not rate else "."))


def check_variants(task):
    """The task's keep_k schedule and consistency options are in range."""
    if not isinstance(task, TokenDropMaskedLMConfig):
        return
    for name, low, high, valid in (
            ("keep_k_schedule_steps", 0, None,
             "0 (trainer.train_steps) or a number of steps"),
            ("consistency_interval", 0, None,
             "0 (off) or a number of steps, e.g. 10 as in ScTD"),
            ("consistency_weight", 0.0, None, "a weight >= 0, e.g. 0.05"),
            ("consistency_full_mlm_share", 0.0, 1.0, "a share in [0, 1]")):
        value = getattr(task, name)
        if value < low or (high is not None and value > high):
            raise UserError(f"task.{name}={value!r} must be {valid}.")


def check_encoder(params):
    """The token-dropping encoder's own rules, without building it (after
    the data step, which may fill the allow/deny lists)."""
    encoder = encoder_config(params)
    if isinstance(encoder, TokenDropBertEncoderConfig):
        try:  # the encoder's own rules, without building it
            kwargs = encoder_kwargs(encoder)
            TokenDropBertEncoder.check_arguments(**{
                name: kwargs[name] for name in inspect.signature(
                    TokenDropBertEncoder.check_arguments).parameters})
            KeepKSchedule.resolve(schedule_pairs(encoder),
                                  encoder.max_position_embeddings,
                                  "max_position_embeddings")
        except ValueError as e:
            raise UserError(f"task.model.encoder: {e}") from None
    check_vocab_fits(params)


def check_vocab_fits(params):
    """The run's vocab (`task.vocab_file`; the records' own when their
    manifest filled it) against the encoder's vocab_size: more pieces than
    embedding rows cannot fit (and export would refuse the vocab), fewer
    leave rows no token uses, which is said once at the start."""
    vocab_file = getattr(params.task, "vocab_file", "") or ""
    if not vocab_file or not tf.io.gfile.exists(vocab_file):
        return
    with tf.io.gfile.GFile(vocab_file) as f:
        pieces = sum(1 for _ in f)  # lines, as export counts them
    encoder = params.task.model.encoder
    vocab_size = encoder_config(params).vocab_size
    field = f"task.model.encoder.{encoder.type}.vocab_size"
    if pieces > vocab_size:
        raise UserError(
            f"task.vocab_file={vocab_file!r} has {pieces} pieces but "
            f"{field}={vocab_size}: ids up to {pieces - 1} cannot fit; set "
            f"{field}={pieces}.")
    if pieces < vocab_size:
        logging.warning(
            "task.vocab_file=%s has %d pieces but %s=%d: the ids fit, and "
            "the other %d embedding rows are never a token's; set %s=%d "
            "unless that is meant.", vocab_file, pieces, field, vocab_size,
            vocab_size - pieces, field, pieces)


def check_types(config, prefix):
    """Every int/float/bool/str field of a Model Garden config holds one."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        where = f"{prefix}.{field.name}"
        if isinstance(value, base_config.Config):
            check_types(value, where)
            continue
        kind = hints.get(field.name)
        args = typing.get_args(kind)
        if typing.get_origin(kind) is typing.Union and type(None) in args:
            if value is None:
                continue
            kind = next((a for a in args if a is not type(None)), None)
        if kind not in _KINDS:
            continue
        fits = (isinstance(value, bool) if kind is bool else
                isinstance(value, (int, float)) and not isinstance(value, bool)
                if kind is float else
                isinstance(value, kind) and not isinstance(value, bool))
        if not fits:
            raise UserError(f"{where}={value!r} must be {_KINDS[kind]}.")


def strategy_name(runtime):
    """The strategy `runtime` asks for, checked: a known name; `--tpu` implies
    `tpu`, which needs an address. Changes nothing (the driver sets it)."""
    name = str(runtime.distribution_strategy or "").lower()
    if name not in STRATEGIES:
        raise UserError(
            f"runtime.distribution_strategy={runtime.distribution_strategy!r}"
            f" is not one of {', '.join(STRATEGIES)}.")
    if runtime.tpu and name != "tpu":
        if name != cfg.RuntimeConfig().distribution_strategy:
            raise UserError(
                f"--tpu={runtime.tpu!r} asks for a TPU but runtime."
                f"distribution_strategy={name!r}; drop one of them (a TPU "
                "run uses distribution_strategy=tpu).")
        logging.info("--tpu=%s: distribution_strategy=tpu (TPUStrategy).",
                     runtime.tpu)
        name = "tpu"
    if name == "tpu" and not runtime.tpu:
        raise UserError(
            "runtime.distribution_strategy=tpu needs --tpu: the TPU's name, "
            "grpc://host:port, or 'local' on a TPU VM.")
    return name


def _check_encoder_fits_task(params, encoder):
    type_name = params.task.model.encoder.type
    ours_task = isinstance(params.task, TokenDropMaskedLMConfig)
    ours_encoder = isinstance(encoder, TokenDropBertEncoderConfig)
    if ours_task and not ours_encoder:
        raise UserError(
            f"task.model.encoder.type={type_name!r} is a plain encoder, but "
            "this experiment's task drops tokens and needs the token-dropping "
            "encoder (task.model.encoder.type=any); for plain BERT use "
            "--experiment=bert_tiny, bert_base or bert_large.")
    if type_name == "any" and not ours_task:
        # Model Garden's own tasks hold `any` as an empty config, which
        # their encoder factory cannot build (a TypeError mid-run).
        raise UserError(
            "task.model.encoder.type='any' is the token-dropping encoder, "
            f"which this experiment's task ({type(params.task).__name__}) "
            "does not build: it needs the token-dropping task (its "
            "importance table learns from each step's MLM loss); use "
            "--experiment=token_drop_bert_tiny, token_drop_bert_base or "
            "token_drop_bert_large.")


def check_model_dir(model_dir):
    """`model_dir` is a directory, or can become one."""
    check_output_path(model_dir, "--model_dir", directory=True)


def check_resumable(latest, model_dir):
    """Raises UserError if the checkpoint a run resumes from (`latest`; None:
    a new run) does not read whole, naming the earlier ones that do."""
    def remedy(earlier):
        state = os.path.join(model_dir, "checkpoint")
        if earlier:
            return (f"To resume from {os.path.basename(earlier[0])}, move "
                    f"{latest}.* aside and set model_checkpoint_path in "
                    f"{state} to {os.path.basename(earlier[0])!r}.")
        return (f"Move {latest}.* aside to train from the start, or use a "
                "new --model_dir.")
    checkpoint_graph.check_readable(latest, remedy)


_GLOBAL_STEP = "global_step/.ATTRIBUTES/VARIABLE_VALUE"


def check_trainer_checkpoint(latest, model_dir):
    """Raises UserError if `model_dir`'s latest checkpoint is not a trainer's
    (Model Garden's trainer reads its `global_step`; an export's
    `bert_model.ckpt` holds the encoder alone)."""
    try:
        found = tf.train.load_checkpoint(latest).has_tensor(_GLOBAL_STEP)
    except (tf.errors.OpError, ValueError):
        found = False
    if not found:
        raise UserError(
            f"--model_dir={model_dir} holds {os.path.basename(latest)}, which "
            "is not a training checkpoint of tools/train.py (no global_step; "
            "an export of export_bert.py, say); use a new --model_dir, and "
            f"task.init_checkpoint={model_dir} to start from it.")


def check_init_checkpoint(task):
    """Raises UserError if `task.init_checkpoint` is set but names no
    checkpoint: Model Garden's task reads it (a folder's latest, or a
    prefix) only after params.yaml is written, with a NotFoundError."""
    path = getattr(task, "init_checkpoint", "") or ""
    if not path:
        return
    if tf.io.gfile.isdir(path):
        if tf.train.latest_checkpoint(path):
            return
    elif tf.io.gfile.exists(path + ".index"):
        return
    raise UserError(
        f"task.init_checkpoint={path!r}: no checkpoint there; give a folder "
        "holding one (an export of export_bert.py, a run's --model_dir) or "
        "a checkpoint prefix (PATH.index exists).")


def check_checkpoint_fits(checkpoint, root):
    """Raises UserError if a variable of `root` (the trainer's checkpoint
    object) has another shape in `checkpoint`, naming it and both shapes."""
    reader = tf.train.load_checkpoint(checkpoint)
    graph = checkpoint_graph.object_graph(reader, checkpoint)
    mismatch = checkpoint_graph.first_shape_mismatch(
        graph, reader, checkpoint_graph.ROOT, root)
    if mismatch:
        path, saved, wanted = mismatch
        raise UserError(
            f"The checkpoint {checkpoint} does not fit this configuration: "
            f"{'/'.join(path)} has shape {saved} there but {wanted} here. "
            "Use a new --model_dir for a different architecture, or the "
            "run's own params.yaml (--config_file) to resume it.")

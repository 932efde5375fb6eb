"""Finds a training run's data once and fits the config to it.

`resolve_data(params, mode)` is the one data step of `training.run`:

1. if no split names data, point every split the mode reads at the embedded
   default corpus (built once, then cached); if one split names data and a
   split the mode needs is empty, that is an error naming the empty one;
2. glob each split's `input_path` once; no match is an error;
3. read the dataset's `manifest.json` (written by `tools/prepare_data.py`)
   once: its sequence shape must match the data config, its vocabulary must
   fit the encoder, and it fills the allow/deny ids and the vocab file where
   the user left the defaults (explicit lists win; the log says which source
   each came from);
4. records without a manifest: read the first record and check its format
   and shape against the data config (Model Garden's loaders would fail deep
   inside TensorFlow, or train on the wrong thing).
"""

import os

import numpy as np
import tensorflow as tf
from absl import logging
from google.protobuf import message as protobuf_message
from official.nlp.data import pretrain_dataloader

from token_dropping import data as token_data
from token_dropping.model.encoder_config import TokenDropBertEncoderConfig
from token_dropping.data.dataset_info import MANIFEST_FILENAME
from token_dropping.data.dataset_info import STATIC_FEATURE_NAMES
from token_dropping.data.dataset_info import TEXT_FEATURE_NAMES
from token_dropping.data.dataset_info import TEXT_FORMAT
from token_dropping.common.errors import UserError
from token_dropping.common.errors import first_line
from token_dropping.train.params import DUMMY
from token_dropping.train.params import SPLITS
from token_dropping.train.params import encoder_config
from token_dropping.train.params import is_pretraining
from token_dropping.train.params import uses

_SPECIAL_LISTS = ("token_allow_list", "token_deny_list")
# Where fine-tuning records come from (Model Garden's script reads GLUE only
# from TFDS, so GLUE's TSV files go through our tool).
_FINETUNING_RECORDS = (
    "records with tools/finetuning_data.py for GLUE, or Model Garden's "
    "official/nlp/data/create_finetuning_data.py for SQuAD (docs/export.md, "
    "\"Fine-tuning on GLUE and SQuAD\")")


def resolve_data(params, mode, cache_dir=None):
    """Fills and checks the data of `params` for `mode` (steps 1-4)."""
    infos = _use_default_corpus(params, mode, cache_dir)
    for name in uses(mode):
        data = getattr(params.task, name)
        if data.input_path == DUMMY:
            continue
        files = _glob(params, name, data)
        info = infos.get(name) or read_manifest_beside(files[0])
        if info is not None:
            _apply_manifest(params, name, data, info)
        elif is_pretraining(params):
            _check_first_record(params, name, data, files[0])
        else:
            _check_finetuning_length(name, data, files[0])


def _use_default_corpus(params, mode, cache_dir):
    """Step 1. Returns `{split: DatasetInfo}` of the splits it filled."""
    empty = [n for n in uses(mode) if not getattr(params.task, n).input_path]
    if not empty:
        return {}
    named = [n for n in SPLITS if getattr(params.task, n).input_path]
    if named:
        raise UserError(
            f"task.{empty[0]}.input_path is empty but task.{named[0]}."
            f"input_path={getattr(params.task, named[0]).input_path!r} is "
            f"set, and --mode={mode} reads both; set task.{empty[0]}."
            "input_path too (tools/prepare_data.py writes both splits), or "
            "leave both empty for the embedded default corpus.")
    if not is_pretraining(params):
        raise UserError(
            f"task.{empty[0]}.input_path is empty; fine-tuning needs its "
            f"data: make {_FINETUNING_RECORDS} and pass "
            f"--params_override=task.{empty[0]}.input_path=...")
    shape = getattr(params.task, empty[0])
    encoder = encoder_config(params)
    logging.info(
        "No input_path configured: using the embedded default corpus "
        "(English documentation shipped with Python; built once, then "
        "cached). For real data, build records with tools/prepare_data.py "
        "and pass --params_override=task.train_data.input_path=...,"
        "task.validation_data.input_path=...")
    info = token_data.ensure_default_dataset(
        seq_length=shape.seq_length,
        max_predictions_per_seq=shape.max_predictions_per_seq,
        vocab_size=encoder.vocab_size, cache_dir=cache_dir)
    for name in empty:
        getattr(params.task, name).input_path = {
            "train_data": info.train_input_path,
            "validation_data": info.validation_input_path}[name]
    if encoder.vocab_size != info.vocab_size:
        logging.info("The default corpus's vocabulary has %d pieces; the "
                     "encoder's vocab_size follows it (was %d).",
                     info.vocab_size, encoder.vocab_size)
        encoder.vocab_size = info.vocab_size
    return {name: info for name in empty}


def _glob(params, name, data):
    """Step 2: the files of every pattern in `input_path`, sorted."""
    files = []
    for pattern in (p for p in str(data.input_path).split(",") if p):
        matches = tf.io.gfile.glob(pattern)
        if not matches:
            raise UserError(
                f"task.{name}.input_path: no file matches {pattern!r}. "
                + ("Build records with tools/prepare_data.py, or leave "
                   "input_path empty for the embedded default corpus."
                   if is_pretraining(params) else
                   f"Make {_FINETUNING_RECORDS}."))
        folders = [m for m in matches if tf.io.gfile.isdir(m)]
        if folders:  # tf.data's "Is a directory" mid-run otherwise
            raise UserError(
                f"task.{name}.input_path: {pattern!r} matches the directory "
                f"{folders[0]!r}; name the record files in it, e.g. "
                f"{folders[0].rstrip('/')}/{_split_files(name)}.")
        files += sorted(matches)
    return files


def _split_files(name):
    """The record files' pattern prepare_data gives a split, for hints."""
    return "train-*" if name == "train_data" else "validation-*"


def read_manifest_beside(first_file):
    """The `DatasetInfo` of the manifest beside a dataset's first record
    file, or None when there is none (records made elsewhere)."""
    manifest = os.path.join(os.path.dirname(first_file), MANIFEST_FILENAME)
    if not tf.io.gfile.exists(manifest):
        return None
    return token_data.DatasetInfo.from_manifest(manifest)


def _apply_manifest(params, name, data, info):
    """Step 3."""
    encoder = encoder_config(params)
    _check_format(name, data, info.data_format == TEXT_FORMAT,
                  info.output_dir)
    for field in ("seq_length", "max_predictions_per_seq"):
        if (hasattr(data, field)
                and getattr(data, field) != getattr(info, field)):
            raise UserError(
                f"task.{name}.{field}={getattr(data, field)} but the "
                f"records in {info.output_dir} were made with {field}="
                f"{getattr(info, field)}; set them equal.")
    if info.vocab_size > encoder.vocab_size:
        raise UserError(
            f"The records in {info.output_dir} use a vocabulary of "
            f"{info.vocab_size} pieces but the encoder's vocab_size="
            f"{encoder.vocab_size}; set task.model.encoder."
            f"{params.task.model.encoder.type}.vocab_size="
            f"{info.vocab_size}.")
    if isinstance(encoder, TokenDropBertEncoderConfig):
        _special_ids(encoder, info)
    if hasattr(params.task, "vocab_file") and not params.task.vocab_file:
        params.task.vocab_file = info.vocab_file


def _special_ids(encoder, info):
    """Explicit allow/deny lists win; the manifest fills the defaults."""
    defaults = TokenDropBertEncoderConfig()
    for field in _SPECIAL_LISTS:
        current = tuple(getattr(encoder, field))
        from_vocab = tuple(getattr(info, field))
        if current != tuple(getattr(defaults, field)):
            logging.info("%s=%s: from your configuration.", field, current)
            if set(current) != set(from_vocab):
                logging.warning(
                    "%s=%s differs from the special tokens of the records' "
                    "vocabulary %s (%s); keeping yours.", field, current,
                    info.vocab_file, from_vocab)
            continue
        setattr(encoder, field, from_vocab)
        logging.info("%s=%s: from the records' vocabulary (%s).", field,
                     from_vocab, info.special_tokens_path)


def _check_format(name, data, is_text, where):
    static_loader = isinstance(data, pretrain_dataloader.BertPretrainDataConfig)
    if is_text and static_loader:
        raise UserError(
            f"task.{name}.input_path: the records in {where} are raw text "
            "(tools/prepare_data.py --output_format=text, for dynamic "
            "masking) but this experiment reads masked records; rebuild "
            "them with --output_format=static (the default).")


def _check_first_record(params, name, data, path):
    """Step 4: one record of a dataset without a manifest."""
    try:
        features = _first_features(path)
    except (tf.errors.OpError, ValueError) as e:
        raise UserError(f"task.{name}.input_path: cannot read a record from "
                        f"{path}: {first_line(e)}") from None
    if features is None:
        raise UserError(f"task.{name}.input_path: {path} has no records.")
    _check_format(name, data, set(features) == set(TEXT_FEATURE_NAMES), path)
    if not isinstance(data, pretrain_dataloader.BertPretrainDataConfig):
        return
    expected = dict(zip(STATIC_FEATURE_NAMES[:3], ["seq_length"] * 3))
    expected.update(dict.fromkeys(STATIC_FEATURE_NAMES[3:],
                                  "max_predictions_per_seq"))
    if not data.use_v2_feature_names:
        expected["input_ids"] = expected.pop("input_word_ids")
        expected["segment_ids"] = expected.pop("input_type_ids")
    missing = sorted(set(expected) - set(features))
    if missing:
        raise UserError(
            f"task.{name}.input_path: the records in {path} lack the "
            f"features {missing} this experiment reads (they have "
            f"{sorted(features)}).")
    for feature, field in expected.items():
        values = _values(features[feature])
        if len(values) != getattr(data, field):
            raise UserError(
                f"task.{name}.{field}={getattr(data, field)} but the records "
                f"in {path} have {len(values)} values of {feature}; set "
                f"task.{name}.{field}={len(values)}.")
    vocab_size = encoder_config(params).vocab_size
    ids = np.concatenate([_values(features[f]) for f in expected
                          if f.endswith("ids") and "type" not in f])
    if ids.size and int(ids.max()) >= vocab_size:
        raise UserError(
            f"The records in {path} hold token id {int(ids.max())} but the "
            f"encoder's vocab_size={vocab_size}; set task.model.encoder."
            f"{params.task.model.encoder.type}.vocab_size to the records' "
            "vocabulary size.")


def _check_finetuning_length(name, data, path):
    """Fine-tuning records (tools/finetuning_data.py, Model Garden's script)
    hold `input_ids` of their max_seq_length; another seq_length failed
    mid-run in Model Garden's parser. A file that does not read as records
    (SQuAD's dev JSON) is the loader's."""
    seq_length = getattr(data, "seq_length", None)
    try:
        features = _first_features(path) or {}
    except (tf.errors.OpError, protobuf_message.DecodeError):
        return  # not records
    ids = features.get("input_ids", features.get("input_word_ids"))
    length = None if ids is None else len(_values(ids))
    if seq_length and length is not None and length != seq_length:
        raise UserError(
            f"task.{name}.seq_length={seq_length} but the records in {path} "
            f"were made with max_seq_length={length}; set task.{name}."
            f"seq_length={length} (or remake the records).")


def _first_features(path):
    """The features of the first `tf.train.Example` in the records at
    `path`; None when there is none."""
    raw = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
    if raw is None:
        return None
    return tf.train.Example.FromString(raw.numpy()).features.feature


def _values(feature):
    kind = feature.WhichOneof("kind")
    return np.asarray(getattr(feature, kind).value if kind else [])

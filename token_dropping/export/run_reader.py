"""What a finished `tools/train.py` run left behind, read and checked.

The run's `params.yaml` onto the registered experiment it came from, the
BERT encoder config it describes, its checkpoint, and its vocabulary (size
and special-token ids checked against the run). Each problem is one
`UserError` naming the file and what would be valid.
"""

import dataclasses
import os

import tensorflow as tf
import yaml
from absl import logging
from official.core import exp_factory
from official.modeling import hyperparams
from official.nlp.configs import encoders

from token_dropping.common import checkpoint_graph
from token_dropping.data import dataset_info
from token_dropping.data import vocab as vocab_lib
from token_dropping.common import files
from token_dropping.common.errors import UserError
from token_dropping.common.errors import first_line

# The registered experiment each pretraining encoder type was trained with;
# params.yaml overrides every field, so the size variant does not matter.
_EXPERIMENT_OF_ENCODER = {"any": "token_drop_bert/pretraining",
                          "bert": "bert_base", "bert_v2": "bert_base"}


def read_run_params(model_dir):
    """The run's `ExperimentConfig` from params.yaml, and the experiment name.

    The YAML goes onto the registered experiment of its encoder type (every
    field is in the YAML, so which size variant does not matter), strictly:
    a field the experiment does not know is an error.
    """
    path = os.path.join(model_dir, "params.yaml")
    if not tf.io.gfile.exists(path):
        raise UserError(
            f"{path} not found: --model_dir must be a run directory written "
            "by tools/train.py.")
    try:
        values = hyperparams.read_yaml_to_params_dict(path).as_dict()
    except yaml.YAMLError as e:
        raise UserError(f"{path} is not valid YAML: {first_line(e)}"
                          ) from None
    encoder_type = (((values.get("task") or {}).get("model") or {}).get(
        "encoder") or {}).get("type")
    if encoder_type not in _EXPERIMENT_OF_ENCODER:
        raise UserError(
            f"{path} has task.model.encoder.type={encoder_type!r}; "
            "export_bert exports pretraining runs of a token-dropping "
            "('any') or BERT ('bert', 'bert_v2') encoder.")
    experiment = _EXPERIMENT_OF_ENCODER[encoder_type]
    params = exp_factory.get_exp_config(experiment)
    try:
        params.override(values, is_strict=True)
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise UserError(
            f"{path} does not describe a {experiment} pretraining run: "
            f"{first_line(e)}") from None
    return params, experiment


def bert_encoder_config(params):
    """The `EncoderConfig(type="bert_v2")` of the run's encoder, no dropping.

    `TokenDropBertEncoderConfig` is a `BertEncoderConfig` plus dropping
    fields, so the BERT part carries over field by field.
    """
    encoder = params.task.model.encoder.get()
    fields = [f.name for f in dataclasses.fields(encoders.BertEncoderConfig)]
    bert = encoders.BertEncoderConfig(
        **{name: getattr(encoder, name) for name in fields})
    return encoders.EncoderConfig(type="bert_v2", bert_v2=bert)


def find_checkpoint(model_dir, checkpoint):
    """The checkpoint to export (`checkpoint`, else the run's latest),
    checked to read whole."""
    found = _find_checkpoint(model_dir, checkpoint)
    checkpoint_graph.check_readable(found, lambda earlier: (
        f"Pass --checkpoint={earlier[0]} to export it." if earlier else
        "Pass --checkpoint=... to export another one."))
    return found


def _find_checkpoint(model_dir, checkpoint):
    if checkpoint:
        if tf.io.gfile.isdir(checkpoint):
            found = tf.train.latest_checkpoint(checkpoint)
            if not found:
                raise UserError(f"--checkpoint={checkpoint!r}: no "
                                "checkpoint in that directory.")
            return found
        if not tf.io.gfile.exists(checkpoint + ".index"):
            raise UserError(
                f"--checkpoint={checkpoint!r}: no such checkpoint (expected "
                f"{checkpoint}.index).")
        return checkpoint
    found = (tf.train.latest_checkpoint(model_dir)
             if tf.io.gfile.isdir(model_dir) else None)
    if not found:
        raise UserError(
            f"{model_dir} has no checkpoint (ckpt-N): train first, or pass "
            "--checkpoint.")
    return found


def check_checkpoint_run(model_dir, source, params, vocab_file):
    """Refuses `source` when it is a checkpoint of another tools/train.py
    run (its folder has a params.yaml) whose BERT the export would describe
    wrongly with `model_dir`'s params.yaml: another encoder setting of the
    same shapes (an activation, a norm epsilon, the MLM head's activation),
    or, without `vocab_file`, another vocabulary. An export's own
    `bert_model.ckpt` and checkpoints outside any run folder are taken as
    the user says."""
    run_dir = os.path.dirname(source)
    if (_same_folder(run_dir, model_dir)
            or not tf.io.gfile.exists(os.path.join(run_dir, "params.yaml"))):
        return
    other, _ = read_run_params(run_dir)
    mine, theirs = _described(params), _described(other)
    differing = [key for key in mine if mine[key] != theirs.get(key)]
    mine_vocab, their_vocab = params.task.vocab_file, other.task.vocab_file
    if not differing and not vocab_file and mine_vocab != their_vocab:
        # Unknown when either cannot be read (`find_vocab` says why).
        contents = [_contents(mine_vocab), _contents(their_vocab)]
        if None not in contents and contents[0] != contents[1]:
            differing, mine, theirs = ["task.vocab_file"], {
                "task.vocab_file": mine_vocab}, {
                    "task.vocab_file": their_vocab}
    if differing:
        key = differing[0]
        raise UserError(
            f"--checkpoint={source} is from the run in {run_dir}, trained "
            f"with {key}={theirs.get(key)!r}, but --model_dir={model_dir} "
            f"records {key}={mine[key]!r}; export it with --model_dir="
            f"{run_dir}.")


def _described(params):
    """What the export writes about the weights, as dotted keys."""
    bert = bert_encoder_config(params).bert_v2.as_dict()
    described = {f"the encoder's {name}": value
                 for name, value in sorted(bert.items())}
    described["task.model.mlm_activation"] = params.task.model.mlm_activation
    return described


def _same_folder(a, b):
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    return os.path.realpath(a) == os.path.realpath(b)


def _contents(path):
    """A file's bytes, or None when it cannot be read."""
    if not path:
        return None
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    except tf.errors.OpError:
        return None


def find_vocab(vocab_file, params, vocab_size):
    """The vocab file to export and its pieces, checked against the encoder."""
    run_vocab = getattr(params.task, "vocab_file", "")
    vocab_file = vocab_file or run_vocab
    if not vocab_file:
        raise UserError(
            "No vocabulary: the run's params.yaml has no task.vocab_file; "
            "pass --vocab_file=... (the vocab the records were made with).")
    if not tf.io.gfile.exists(vocab_file):
        raise UserError(f"vocab file {vocab_file!r} not found; pass "
                        "--vocab_file=...")
    try:
        pieces = files.read_vocab(vocab_file)
    except (UnicodeDecodeError, tf.errors.OpError) as e:
        raise UserError(f"vocab file {vocab_file!r} cannot be read as UTF-8 "
                        f"text ({first_line(e)}): not a WordPiece vocab."
                        ) from None
    if len(pieces) < vocab_size and vocab_file == run_vocab:
        # What training accepted (train/checks.py warned): the ids fit, the
        # rows past the vocab were never a token's.
        logging.warning(
            "The run's vocab file %s has %d pieces, fewer than the encoder's "
            "vocab_size=%d: the export keeps all %d embedding rows.",
            vocab_file, len(pieces), vocab_size, vocab_size)
    elif len(pieces) != vocab_size:
        raise UserError(
            f"vocab file {vocab_file!r} has {len(pieces)} pieces but the "
            f"encoder's embedding has vocab_size={vocab_size}: not this "
            "model's vocab.")
    check_special_tokens(vocab_file, params.task.model.encoder.get())
    return vocab_file, pieces


def check_special_tokens(vocab_file, encoder):
    """The vocab has BERT's special tokens, at the ids the run kept
    (token_allow_list) and dropped (token_deny_list); params.yaml holds the
    lists the run used, taken from the records' manifest when it had one."""
    try:
        ids = vocab_lib.special_token_ids(vocab_file)
    except ValueError as e:
        raise UserError(first_line(e)) from None
    for tokens, name in ((vocab_lib.ALLOW_LIST_TOKENS, "token_allow_list"),
                         (vocab_lib.DENY_LIST_TOKENS, "token_deny_list")):
        run_ids = getattr(encoder, name, None)
        if run_ids is None:  # a plain BERT run has no lists
            continue
        for token in tokens:
            token_id = ids[f"{token.strip('[]').lower()}_id"]
            if token_id not in run_ids:
                raise UserError(
                    f"vocab file {vocab_file!r} has {token} at id {token_id}"
                    f", but the run's {name} is {list(run_ids)}: not the "
                    "vocab the run was trained with.")


def recorded_lower_case(params):
    """`(do_lower_case, manifest path)` as the run's dataset records it (the
    `config.do_lower_case` of `manifest.json` beside its training records,
    else its validation records, as tools/prepare_data.py writes it), or
    `(None, None)` when no manifest records it."""
    task = params.task
    for data in (getattr(task, "train_data", None),
                 getattr(task, "validation_data", None)):
        pattern = getattr(data, "input_path", "") or ""
        for part in files.split_patterns(pattern):
            try:
                matched = sorted(tf.io.gfile.glob(part))
            except tf.errors.OpError:
                matched = []
            if not matched:
                continue
            manifest = os.path.join(os.path.dirname(matched[0]),
                                    dataset_info.MANIFEST_FILENAME)
            if not tf.io.gfile.exists(manifest):
                continue
            try:
                value = dataset_info.read_manifest(manifest).get(
                    "config", {}).get("do_lower_case")
            except (ValueError, AttributeError, tf.errors.OpError):
                continue
            if isinstance(value, bool):
                return value, manifest
    return None, None

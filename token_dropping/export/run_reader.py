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
from token_dropping.common import paths
from token_dropping.common.errors import UserError
from token_dropping.common.errors import first_line
from token_dropping.train import recorded_run

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
        if checkpoint.endswith(".index") or ".data-" in checkpoint:
            prefix = checkpoint.split(".data-")[0].removesuffix(".index")
            raise UserError(
                f"--checkpoint={checkpoint!r} is one of a checkpoint's files; "
                f"give its prefix, --checkpoint={prefix}.")
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


# What params.yaml says about the weights that the shapes do not: the
# encoder fields `BertEncoderV2` computes differently with, and the MLM
# head's activation (sizes are the shape check's: it names both shapes).
_DESCRIBING = ("hidden_activation", "norm_first", "embedding_size",
               "output_range")


def check_checkpoint_run(model_dir, source, vocab_file):
    """Refuses `source` when it is a checkpoint of another tools/train.py
    run (its folder has a params.yaml) that `model_dir`'s params.yaml would
    describe wrongly: another activation or layer-norm placement for the
    same shapes, another MLM head activation, or, without `vocab_file`,
    another vocabulary (file contents). An export's own `bert_model.ckpt`,
    checkpoints outside any run folder, and a run folder whose params.yaml
    cannot be read (another version's, say) are taken as the user says."""
    run_dir = os.path.dirname(source)
    if paths.same_path(run_dir, model_dir):
        return
    theirs, mine = _described(run_dir), _described(model_dir)
    if theirs is None or mine is None:
        return
    vocab = "task.vocab_file"  # compared by contents, below
    differing = [key for key in mine if key != vocab and key in theirs
                 and mine[key] != theirs[key]]
    if (not differing and not vocab_file and mine.get(vocab)
            and theirs.get(vocab) and mine[vocab] != theirs[vocab]):
        # Unknown when either cannot be read (`find_vocab` says why).
        digests = [_digest(mine[vocab]), _digest(theirs[vocab])]
        if None not in digests and digests[0] != digests[1]:
            differing = [vocab]
    if differing:
        key = differing[0]
        way_out = (" or give the vocab with --vocab_file" if key == vocab
                   else "")
        raise UserError(
            f"--checkpoint={source} is from the run in {run_dir}, trained "
            f"with {key}={theirs[key]!r}, but --model_dir={model_dir} "
            f"records {key}={mine[key]!r}; export it with --model_dir="
            f"{run_dir}{way_out}.")


def _described(run_dir):
    """The `_DESCRIBING` fields of the encoder, the MLM head's activation
    and the vocab file that `run_dir/params.yaml` records, by dotted key
    (those it has); None without a readable params.yaml."""
    path = os.path.join(run_dir, "params.yaml")
    try:
        if not tf.io.gfile.exists(path):
            return None
        values = recorded_run.flatten(
            hyperparams.read_yaml_to_params_dict(path).as_dict())
    except (yaml.YAMLError, tf.errors.OpError, ValueError, KeyError,
            TypeError, AttributeError):
        return None
    encoder = f"task.model.encoder.{values.get('task.model.encoder.type')}"
    keys = [f"{encoder}.{name}" for name in _DESCRIBING] + [
        "task.model.mlm_activation", "task.vocab_file"]
    return {key: values[key] for key in keys if key in values}


def _digest(path):
    """A file's SHA-256 (`files.sha256`), or None when it cannot be read."""
    try:
        return files.sha256(path)
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
        pieces = files.read_vocab(vocab_file)  # UTF-8, one id a piece
    except tf.errors.OpError as e:
        raise UserError(f"vocab file {vocab_file!r} cannot be read "
                        f"({first_line(e)}).") from None
    if (len(pieces) < vocab_size and run_vocab
            and paths.same_path(vocab_file, run_vocab)):
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

"""`--config_file` and `--params_override`, read as Model Garden reads them
(`params_dict.override_params_dict`), with errors a user can act on.

Model Garden's own errors for these name neither the file nor the line of
bad YAML, end an unknown key with advice for its Python API ("use
`override` with `is_strict` = False"), take a `--params_override` without
`=` for a file name (a NotFoundError traceback), and report an unknown
`type:` of a one-of config only as "is not a valid key". Here each is one
line naming the flag, the file and line, or the full dotted key and the
keys that are there.

Example:
>>> check_config_file("experiments/wiki_books_pretrain.yaml")
>>> params = apply(params, "trainer.train_steps=100", "--params_override")
"""

import dataclasses

import tensorflow as tf
import yaml
from official.modeling.hyperparams import base_config
from official.modeling.hyperparams import oneof
from official.modeling.hyperparams import params_dict

from token_dropping.common.errors import UserError
from token_dropping.common.errors import first_line
from token_dropping.train import recorded_run

# Model Garden's advice after an unknown key, meant for its Python API.
_API_HINT = " To extend the existing keys, use `override` with `is_strict` = False."


def check_config_file(path):
    """Raises UserError unless `path` is a YAML file of settings."""
    if not tf.io.gfile.exists(path):
        raise UserError(f"--config_file={path!r}: no such file.")
    if tf.io.gfile.isdir(path):
        raise UserError(f"--config_file={path!r} is a directory; give a "
                        "YAML file, e.g. its params.yaml.")
    with tf.io.gfile.GFile(path) as f:
        text = f.read()
    values = _yaml(text, f"--config_file={path!r}")
    if values is not None and not isinstance(values, dict):
        raise UserError(f"--config_file={path!r} holds a YAML "
                        f"{type(values).__name__}, not settings "
                        "(`task:`, `trainer:`, ...).")


def read(text, what="--params_override"):
    """The nested dict `text` stands for (comma-separated KEY=VALUE pairs,
    YAML, or a YAML file's path), as `params_dict.override_params_dict`
    reads it; {} for an empty one. Raises UserError, naming `what`."""
    if not text:
        return {}
    try:
        parsed = params_dict.nested_csv_str_to_json_str(text)
    except ValueError:
        parsed = text
    values = _yaml(parsed, f"{what}={text!r}")
    if isinstance(values, dict):
        return values
    if not tf.io.gfile.exists(text) or tf.io.gfile.isdir(text):
        raise UserError(
            f"{what}={text!r} is neither comma-separated KEY=VALUE pairs "
            "(e.g. trainer.train_steps=100,task.model.encoder.any."
            "token_keep_k=64) nor a YAML file.")
    check_config_file(text)
    with tf.io.gfile.GFile(text) as f:
        return _yaml(f.read(), f"{what}={text!r}") or {}


def _yaml(text, what):
    try:
        return yaml.load(text, Loader=params_dict._LOADER)  # pylint: disable=protected-access
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if (
            mark is not None) else ""
        problem = getattr(e, "problem", None) or first_line(e)
        raise UserError(f"{what} is not valid YAML: {problem}{where}."
                        ) from None


def dotted_keys(text, what="--params_override"):
    """The sorted dotted keys (`task.train_data.seq_length`) `text` sets."""
    return sorted(recorded_run.flatten(read(text, what)))


def apply(params, text, what="--params_override"):
    """`params` overridden by `text` (strictly: every key must exist)."""
    values = read(text, what)
    if values:
        try:
            params.override(values, is_strict=True)
        except (KeyError, ValueError, TypeError, AttributeError) as e:
            raise UserError(f"{what}={text!r}: "
                            f"{explain(e, params, values)}") from None
    return params


def explain(error, params, values):
    """What is wrong with overriding `params` by `values`, in one line: the
    first unknown dotted key and the keys there, else `error`'s message."""
    return (unknown_setting(params, values)
            or first_line(error).replace(_API_HINT, ""))


def unknown_setting(config, values, experiment=None):
    """"KEY is not a setting of the experiment ...; there are ..." for the
    first key of `values` `config` has no field for (`first_unknown`); None
    if every key exists. `experiment`: its name, else "this experiment"."""
    unknown = first_unknown(config, values)
    if not unknown:
        return None
    key, there = unknown
    which = (f"the experiment {experiment!r}" if experiment
             else "this experiment")
    return f"{key} is not a setting of {which}; there are {', '.join(there)}."


def first_unknown(config, values, prefix=""):
    """(dotted key, sorted keys at its level) of the first key of `values`
    (nested dicts) that `config` (a Model Garden config) has no field for;
    None if every key exists."""
    if not dataclasses.is_dataclass(config):
        return None
    names = sorted(f.name for f in dataclasses.fields(config))
    for key, value in values.items():
        if key not in names:
            return f"{prefix}{key}", names
        child = getattr(config, key, None)
        if isinstance(value, dict) and isinstance(child, base_config.Config):
            found = first_unknown(child, value, f"{prefix}{key}.")
            if found:
                return found
    return None


def check_one_ofs(config, prefix):
    """Raises UserError if a one-of config (an encoder's, an optimizer's or
    a learning rate's `type:`) names a type it does not have."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, base_config.Config):
            check_one_ofs(value, f"{prefix}.{field.name}")
    if isinstance(config, oneof.OneOfConfig) and config.type is not None:
        types = sorted(f.name for f in dataclasses.fields(config)
                       if f.name != "type")
        if config.type not in types:
            raise UserError(f"{prefix}.type={config.type!r} is not one of "
                            f"{', '.join(types)}.")


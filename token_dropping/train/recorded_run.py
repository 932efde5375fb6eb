"""The run a `--model_dir` holds, as its `params.yaml` records it, and
whether a rerun may resume it.

Model Garden's trainer resumes from the latest checkpoint of `model_dir`
whatever the config says now, and `train_utils.serialize_config` then
writes the new config over `params.yaml`: a rerun with another
`token_keep_k`, batch size or learning rate would go on training the old
run's weights under the new settings, and its `params.yaml` would no longer
say how the checkpoint was made. Here a rerun that would resume a checkpoint
must ask for the settings `params.yaml` records, except those that change
where the run executes or how often it reports (`MAY_CHANGE`: the strategy,
the data's location, intervals, `trainer.train_steps` to train further,
validation). Anything else is one `UserError` line naming the first setting
that differs, before anything is written.

Example:
>>> recorded = read(model_dir)  # None: no params.yaml
>>> check_same_run(params, recorded, model_dir)
"""

import json
import os

import tensorflow as tf
import yaml
from official.modeling.hyperparams import params_dict

from token_dropping.common.errors import UserError
from token_dropping.common.errors import first_line

PARAMS_FILE = "params.yaml"

# Settings a resumed run may change: where it runs, where its data lives,
# how often it loops, reports, checkpoints and evaluates, how long it
# trains, and its validation (which never feeds training). A key matches an
# entry equal to it or under it (an entry ending in ".").
MAY_CHANGE = (
    "runtime.",
    "task.validation_data.",
    "task.init_checkpoint",  # read by a fresh run only
    "task.vocab_file",  # checked against the encoder; the records hold ids
    "task.train_data.input_path",
    "task.train_data.tfds_data_dir",
    "task.train_data.tf_data_service_address",
    "task.train_data.tf_data_service_job_name",
    "task.train_data.prefetch_buffer_size",
    "trainer.train_steps",
    "trainer.steps_per_loop",
    "trainer.summary_interval",
    "trainer.checkpoint_interval",
    "trainer.max_to_keep",
    "trainer.validation_steps",
    "trainer.validation_interval",
    "trainer.validation_summary_subdir",
    "trainer.continuous_eval_timeout",
    "trainer.best_checkpoint_",
    "trainer.preemption_on_demand_checkpoint",
    "trainer.loss_upper_bound",
    "trainer.recovery_",
    "trainer.train_tf_while_loop",
    "trainer.train_tf_function",
    "trainer.eval_tf_",
    "trainer.allow_tpu_summary",
)


# The steps a keep_k schedule's fractions refer to change nothing without
# a schedule (the study sets them for every token-dropping run; its records
# leave them out too).
SCHEDULE_STEPS = "task.keep_k_schedule_steps"
SCHEDULE = "task.model.encoder.any.keep_k_schedule"


def flatten(tree, prefix=""):
    """A nested dict as one dict of dotted keys; values as JSON reads them."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = json.loads(json.dumps(value))
    return flat


def read(model_dir):
    """The config `model_dir/params.yaml` records, flattened (`flatten`);
    None when there is none. Read with Model Garden's own reader of the file
    its `serialize_config` wrote."""
    path = os.path.join(model_dir, PARAMS_FILE)
    if not tf.io.gfile.exists(path):
        return None
    try:
        return flatten(params_dict.read_yaml_to_params_dict(path).as_dict())
    except (yaml.YAMLError, tf.errors.OpError, ValueError, KeyError,
            TypeError, AttributeError) as e:
        raise UserError(
            f"{path} cannot be read ({first_line(e)}); it records the run "
            "this --model_dir holds: restore it, or use a new "
            "--model_dir.") from None


def covers(entry, key):
    """Whether a list's `entry` names the dotted `key`: equal to it, or a
    prefix of it ending in "." or "_" (a section, a family of fields)."""
    return key == entry or (entry.endswith((".", "_"))
                            and key.startswith(entry))


def may_change(key):
    return any(covers(entry, key) for entry in MAY_CHANGE)


def differences(params, recorded):
    """Keys (sorted) whose value `params` (an experiment config) asks for
    differs from `recorded`'s (`read`), leaving out `MAY_CHANGE`, keys only
    one side has (a field another version added; but a section one side
    leaves unset and the other sets is a key: `_emptied`), a training data seed
    left unset (the recorded one is used: `resume_data.fix_data_seed`), and
    the keep_k schedule steps of a run without a schedule."""
    return _differing(flatten(params.as_dict()), recorded)


def _emptied(key, other):
    """The section above `key` that `other` records as unset (None or {}),
    or None: a section switched on or off (`trainer.optimizer_config.ema`
    flattens to its fields on one side, to itself on the other)."""
    parts = key.split(".")
    for end in range(1, len(parts)):
        section = ".".join(parts[:end])
        if section in other and other[section] in (None, {}):
            return section
    return None


def _section(flat, key):
    """`key`'s value in the flattened config `flat`: the value, or the
    section's fields."""
    if key in flat:
        return flat[key]
    return {k[len(key) + 1:]: v for k, v in flat.items()
            if k.startswith(key + ".")}


def _differing(current, recorded):
    """`differences` of the flattened config `current`."""
    switched = {_emptied(key, other) for one, other in (
        (current, recorded), (recorded, current)) for key in set(one) - set(
            other)} - {None}
    keys = sorted(key for key in switched
                  if not (may_change(key) or may_change(key + ".")))
    for key in sorted(set(current) & set(recorded)):
        if may_change(key) or current[key] == recorded[key]:
            continue
        if key == "task.train_data.seed" and current[key] is None:
            continue
        if key == SCHEDULE_STEPS and not (current.get(SCHEDULE)
                                          or recorded.get(SCHEDULE)):
            continue  # no keep_k schedule: steps it would refer to
        keys.append(key)
    return sorted(keys)


def check_same_run(params, recorded, model_dir):
    """Raises UserError if resuming `model_dir`'s checkpoint with `params`
    would train its run under other settings than `recorded` (`read`; None:
    nothing recorded, nothing to compare)."""
    if recorded is None:
        return
    current = flatten(params.as_dict())
    keys = _differing(current, recorded)
    if not keys:
        return
    key = keys[0]
    old, value = _section(recorded, key), _section(current, key)
    more = f" (and {len(keys) - 1} more settings)" if len(keys) > 1 else ""
    path = os.path.join(model_dir, PARAMS_FILE)
    raise UserError(
        f"--model_dir={model_dir} holds a run trained with {key}="
        f"{old!r} ({path}), but this command asks for {key}="
        f"{value!r}{more}; to continue that run give it its own settings "
        f"(--config_file={path}), to train these use a new --model_dir, and "
        f"to change that run's settings on purpose edit {path} first.")


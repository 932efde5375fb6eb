"""What made each result of a study, and whether it may be reused.

Every pretraining run, export and fine-tuning of a study keeps
`study_settings.json` beside its results: the settings that decide its
numbers (never paths), written atomically (`common.files.write_json`). A rerun reuses a result only when
its record equals what the study asks for now:

- a pretraining run whose record differs, or that has none (made before
  records), stops the study in one line naming the first setting that
  differs, its old and new value, and what to do. A run is the expensive
  result the user may still want, so it is never retrained over;
- an export or fine-tuning is redone when its record differs or is missing:
  it is a cheap function of its run, and a run retrained (deleted, then
  trained again) has a new `run_id`, so what was made from the old one is
  not reused.

A pretraining run's settings are its experiment config flattened to dotted
keys (`trainer.optimizer_config.learning_rate.constant.learning_rate`), minus
paths and execution details (`NOT_SETTINGS`), with the experiment name, the
seed and the records' fingerprint (the manifest's hash of everything that
decides the records' bytes).

Example:
>>> settings = pretraining_settings(spec, seed, params, info.manifest_path)
>>> check_pretraining("bert (seed 1)", model_dir, settings, reused=True)
>>> write(model_dir, dict(settings=settings, run_id=new_run_id()))
"""

import hashlib
import json
import os
import uuid

import tensorflow as tf

from token_dropping.common import files
from token_dropping.data import dataset_info
from token_dropping.common.errors import UserError
from token_dropping.train.recorded_run import SCHEDULE
from token_dropping.train.recorded_run import SCHEDULE_STEPS
from token_dropping.train.recorded_run import flatten

SETTINGS = "study_settings.json"
# Config keys that do not change a run's numbers: data paths (the records'
# fingerprint stands for them), checkpoint retention and execution details.
NOT_SETTINGS = frozenset({
    "task.train_data.input_path", "task.validation_data.input_path",
    "task.train_data.tfds_data_dir", "task.validation_data.tfds_data_dir",
    "task.train_data.tf_data_service_address",
    "task.validation_data.tf_data_service_address", "task.vocab_file",
    "trainer.max_to_keep", "trainer.continuous_eval_timeout",
    "trainer.preemption_on_demand_checkpoint",
    "trainer.best_checkpoint_export_subdir",
    "trainer.validation_summary_subdir",
    # Resumes are exact, so where loops, summaries, checkpoints and
    # evaluations fall changes no number.
    "trainer.steps_per_loop", "trainer.summary_interval",
    "trainer.checkpoint_interval", "trainer.validation_interval",
})
# Of `runtime`, only what changes the arithmetic.
RUNTIME_SETTINGS = frozenset({"runtime.mixed_precision_dtype",
                              "runtime.loss_scale"})


def data_fingerprint(manifest_path):
    """The records' identity: the manifest's `fingerprint` (a hash of
    everything that decides their bytes), else the manifest's own hash."""
    manifest = dataset_info.read_manifest(manifest_path)
    if manifest.get("fingerprint"):
        return manifest["fingerprint"]
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()
                          ).hexdigest()


def pretraining_settings(spec, seed, params, manifest_path):
    """What decides a pretraining run's numbers (see the module docstring).
    `params` after `study_runs.resolve` (schedule steps filled)."""
    settings = {key: value for key, value in flatten(params.as_dict()).items()
                if key not in NOT_SETTINGS
                and (not key.startswith("runtime.")
                     or key in RUNTIME_SETTINGS)}
    return dict(experiment=spec.experiment, encoder_overrides=dict(
        spec.encoder), seed=seed,
        data_fingerprint=data_fingerprint(manifest_path), **settings)


def new_run_id():
    """A fresh run's identity: what its exports and fine-tunings name."""
    return uuid.uuid4().hex


def read(directory):
    """The record in `directory`, or None."""
    path = os.path.join(directory, SETTINGS)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def write(directory, record):
    """Writes `record` atomically (`common.files.write_json`)."""
    tf.io.gfile.makedirs(directory)
    files.write_json(os.path.join(directory, SETTINGS), record, indent=1,
                     sort_keys=True)


def _numbers_only(settings):
    """`settings` without what cannot change the numbers: the steps a
    keep_k schedule's fractions refer to, when there is no schedule (the
    study sets them for every token-dropping run, to its largest budget)."""
    if settings.get(SCHEDULE):
        return settings
    return {k: v for k, v in settings.items() if k != SCHEDULE_STEPS}


def first_difference(old, new):
    """(key, old value, new value) of the first differing setting, the
    number of differing settings; (None, 0) if equal. Absent is None.
    Settings that cannot change the numbers are not compared
    (`_numbers_only`)."""
    old, new = _numbers_only(old), _numbers_only(json.loads(json.dumps(new)))
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if not keys:
        return None, 0
    return (keys[0], old.get(keys[0]), new.get(keys[0])), len(keys)


def check_pretraining(what, model_dir, settings, reused, remedy=None):
    """Refuses, in one line, to reuse a run made with other settings.

    Args:
        what: how to name the run, e.g. "bert (seed 1)".
        model_dir: its directory.
        settings: `pretraining_settings` of what the study asks for now.
        reused: whether anything of the run would be reused (a checkpoint
            or a finished run); a run with nothing to reuse starts afresh.
        remedy: what the error tells the user to do, if not to use another
            --runs_dir or delete the run.

    Returns:
        The run's record when it may be reused, else None.

    Raises:
        UserError: the run has no record, or another setting.
    """
    if not reused:
        return None
    record = read(model_dir)
    delete = remedy or (
        f"use another --runs_dir, or delete {model_dir} to retrain it "
        "(its export and fine-tunings are then redone)")
    if record is None:
        raise UserError(
            f"{what}: {model_dir} has a checkpoint but no {SETTINGS} (made by"
            f" an older study), so what trained it is unknown; {delete}.")
    difference, count = first_difference(record["settings"], settings)
    if difference:
        key, old, new = difference
        more = f" (and {count - 1} more settings)" if count > 1 else ""
        raise UserError(
            f"{what}: {model_dir} was trained with {key}={old!r}, this study "
            f"asks for {key}={new!r}{more}; {delete}.")
    return record


def is_current(directory, settings):
    """Whether `directory`'s record holds exactly `settings` (an export or
    a fine-tuning: redone when not)."""
    record = read(directory)
    return (record is not None
            and first_difference(record["settings"], settings)[0] is None)

"""A study's finished results without their checkpoints: `--carry_dir`.

A study's `runs_dir` holds checkpoints, hundreds of megabytes per model and
seed. What the report needs of a finished (model, seed) is small: each of
its runs' settings record, evaluations and done marker (which names the
run's last checkpoint, `runs.final_checkpoint`), and the zero-shot probe's
readings with their per-example predictions. Where a `runs_dir` does not
outlive its machine (a preemptible VM's local disk, a CI runner, a machine
reset between sittings), `--carry_dir` keeps those files for every finished
(model, seed) as it finishes, in a directory small enough to commit or
copy. The same command on a fresh machine copies them into the new
`runs_dir` before anything is planned, and trains only what is missing.

Layout: `results/` mirrors `runs_dir` (not `runs/`, which projects
ignore); `units/<model>-seed<k>.json` lists a (model, seed)'s files and is
written after them, so a unit without its list (a copy interrupted) is not
restored. A unit is restored only where the new `runs_dir` has no run of it
(never mixed with runs made there), all its files or none: a listed file
missing from the carry stops the study in one line before anything is
copied, and a restore interrupted half way is finished by the next one.
A restored file never replaces one already there; the carried timings of
the restored units' steps are added where the new `runs_dir` has none.

A carried (model, seed) has no checkpoints: the study reads it and never
trains from it. A larger `--budgets`, a new decay branch (a lower
`--reach_from`) or a fine-tuned probe needs them, and the plan refuses it
in one line before anything trains (`jobs.py`).
"""

import json
import os
import re

import tensorflow as tf
from absl import logging

from token_dropping.common import files
from token_dropping.common.errors import UserError
from token_dropping.study import finetune as study_finetune
from token_dropping.study import predictions as study_predictions
from token_dropping.study import records as study_records
from token_dropping.study import runs as study_runs

UNITS = "units"
RESULTS = "results"
# In runs_dir while a unit is being restored (removed when it is whole).
RESTORING = ".restoring-{unit}"
TIMINGS = "timings.json"
# A run's files in the order they are restored: its marker of being done
# (or finished, for a reading) last.
RUN_FILES = (study_records.SETTINGS, study_runs.EVALUATIONS, study_runs.DONE)
READING_FILES = (study_records.SETTINGS, study_predictions.FILE,
                 study_finetune.RESULT)


def unit_name(model, seed):
    return f"{model}-seed{seed}"


def unit_path(carry_dir, model, seed):
    """The file listing a carried (model, seed)'s files."""
    return os.path.join(carry_dir, UNITS, unit_name(model, seed) + ".json")


def keep(carry_dir, runs_dir, model, seed, run_dirs, reading_dirs):
    """Copies a finished (model, seed)'s results into `carry_dir`: the
    files of `run_dirs` (its stable run and branches) and `reading_dirs`
    (its probe readings), then the study's timings, then its list."""
    # A unit being replaced (a run of it made again here) is not listed
    # until all its new files are in.
    listed = unit_path(carry_dir, model, seed)
    if tf.io.gfile.exists(listed):
        tf.io.gfile.remove(listed)
    names = []
    for directory, kinds in ([(d, RUN_FILES) for d in run_dirs]
                             + [(d, READING_FILES) for d in reading_dirs]):
        for kind in kinds:
            source = os.path.join(directory, kind)
            if not tf.io.gfile.exists(source):
                continue  # e.g. a run's evaluations, if it made none
            name = os.path.relpath(source, runs_dir)
            _copy(source, os.path.join(carry_dir, RESULTS, name))
            names.append(name)
    timings = os.path.join(runs_dir, TIMINGS)
    if tf.io.gfile.exists(timings):
        _copy(timings, os.path.join(carry_dir, RESULTS, TIMINGS))
    tf.io.gfile.makedirs(os.path.join(carry_dir, UNITS))
    files.write_json(unit_path(carry_dir, model, seed), dict(files=names),
                     indent=1)


def restore(carry_dir, runs_dir, units):
    """Copies into `runs_dir` each carried unit of `units` ((model, seed)
    pairs) that has no stable run there (or whose restore was interrupted);
    returns the pairs restored.

    Raises:
        UserError: a listed file is missing from `carry_dir` (nothing of
            that unit is copied).
    """
    restored = []
    for model, seed in units:
        unit = unit_name(model, seed)
        path = unit_path(carry_dir, model, seed)
        marker = os.path.join(runs_dir, RESTORING.format(unit=unit))
        if not tf.io.gfile.exists(path):
            if tf.io.gfile.exists(marker):  # its list was deleted since
                logging.warning("study: %s was restored in part from a "
                                "carry dir that no longer lists it.", unit)
                tf.io.gfile.remove(marker)
            continue
        stable_dir = os.path.join(runs_dir, "pretrain", unit)
        if (tf.io.gfile.exists(stable_dir)
                and not tf.io.gfile.exists(marker)):
            _warn_if_another_run(carry_dir, stable_dir, unit)
            continue
        with tf.io.gfile.GFile(path) as f:
            names = json.load(f)["files"]
        missing = [name for name in names if not tf.io.gfile.exists(
            os.path.join(carry_dir, RESULTS, name))]
        if missing:
            raise UserError(
                f"--carry_dir={carry_dir!r}: {unit} lists "
                f"{os.path.join(RESULTS, missing[0])}, which is missing "
                f"(so are {len(missing) - 1} more of the {len(names)} files "
                f"it lists); restore the carry dir whole, or delete {path} "
                f"to train {unit} again.")
        tf.io.gfile.makedirs(runs_dir)
        files.write_text(marker, "")
        for name in names:  # in `keep`'s order: each run's marker last
            target = os.path.join(runs_dir, name)
            if not tf.io.gfile.exists(target):
                _copy(os.path.join(carry_dir, RESULTS, name), target)
        tf.io.gfile.remove(marker)
        restored.append((model, seed))
    if restored:
        _merge_timings(os.path.join(carry_dir, RESULTS, TIMINGS),
                       os.path.join(runs_dir, TIMINGS), restored)
    return restored


def _warn_if_another_run(carry_dir, stable_dir, unit):
    """Logs when `runs_dir` has its own run of a carried unit: the carried
    one is replaced by it when it finishes (`keep`)."""
    carried = study_records.read(os.path.join(carry_dir, RESULTS,
                                              "pretrain", unit))
    own = study_records.read(stable_dir)
    if carried is None or own is None:
        return
    if carried.get("run_id") != own.get("run_id"):
        logging.warning(
            "study: %s has its own run of %s, not the one in --carry_dir=%s; "
            "the carried one is replaced by it when it finishes.",
            stable_dir, unit, carry_dir)


def _merge_timings(carried, timings, units):
    """Adds the carried seconds of `units`' steps (`timing.StudyProgress`
    names each "... MODEL seed SEED ...") that `timings` has none for."""
    if not tf.io.gfile.exists(carried):
        return
    with tf.io.gfile.GFile(carried) as f:
        seconds = json.load(f)
    merged = {}
    if tf.io.gfile.exists(timings):
        with tf.io.gfile.GFile(timings) as f:
            merged = json.load(f)
    ours = [re.compile(rf"(^| ){re.escape(model)},? seed {seed}( |$)")
            for model, seed in units]
    for what, value in seconds.items():
        if what not in merged and any(p.search(what) for p in ours):
            merged[what] = value
    files.write_json(timings, merged, indent=1)


def _copy(source, target):
    """Copies a small file so that `target` is the whole of it or absent."""
    with tf.io.gfile.GFile(source, "rb") as f:
        data = f.read()
    tf.io.gfile.makedirs(os.path.dirname(target))
    with files.open_atomically(target, "wb") as f:
        f.write(data)

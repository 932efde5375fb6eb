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

Layout: `runs/` mirrors `runs_dir`; `units/<model>-seed<k>.json` lists a
(model, seed)'s files and is written after them, so a unit without its list
(a copy interrupted) is not restored. A unit is restored only where the new
`runs_dir` has no run of it (never mixed with runs made there), and a
restored file never replaces one already there.

A carried (model, seed) has no checkpoints: the study reads it and never
trains from it. A larger `--budgets` or lower `--reach_from` needs its
stable run's checkpoints, and stops in one line (`annealing.latest_fork`).
"""

import json
import os

import tensorflow as tf

from token_dropping.common import files
from token_dropping.study import finetune as study_finetune
from token_dropping.study import predictions as study_predictions
from token_dropping.study import records as study_records
from token_dropping.study import runs as study_runs

UNITS = "units"
RUNS = "runs"
TIMINGS = "timings.json"
# A run's files in the order they are restored: its marker of being done
# (or finished, for a reading) last.
RUN_FILES = (study_records.SETTINGS, study_runs.EVALUATIONS, study_runs.DONE)
READING_FILES = (study_records.SETTINGS, study_predictions.FILE,
                 study_finetune.RESULT)


def unit_name(model, seed):
    return f"{model}-seed{seed}"


def keep(carry_dir, runs_dir, model, seed, run_dirs, reading_dirs):
    """Copies a finished (model, seed)'s results into `carry_dir`: the
    files of `run_dirs` (its stable run and branches) and `reading_dirs`
    (its probe readings), then the study's timings, then its list."""
    names = []
    for directory, kinds in ([(d, RUN_FILES) for d in run_dirs]
                             + [(d, READING_FILES) for d in reading_dirs]):
        for kind in kinds:
            source = os.path.join(directory, kind)
            if not tf.io.gfile.exists(source):
                continue  # e.g. a run's evaluations, if it made none
            name = os.path.relpath(source, runs_dir)
            _copy(source, os.path.join(carry_dir, RUNS, name))
            names.append(name)
    timings = os.path.join(runs_dir, TIMINGS)
    if tf.io.gfile.exists(timings):
        _copy(timings, os.path.join(carry_dir, RUNS, TIMINGS))
    tf.io.gfile.makedirs(os.path.join(carry_dir, UNITS))
    files.write_json(
        os.path.join(carry_dir, UNITS, unit_name(model, seed) + ".json"),
        dict(files=names), indent=1)


def restore(carry_dir, runs_dir, units):
    """Copies into `runs_dir` each carried unit of `units` ((model, seed)
    pairs) that has no stable run there; returns the pairs restored."""
    restored = []
    for model, seed in units:
        path = os.path.join(carry_dir, UNITS, unit_name(model, seed) + ".json")
        stable_dir = os.path.join(runs_dir, "pretrain", unit_name(model, seed))
        if not tf.io.gfile.exists(path) or tf.io.gfile.exists(stable_dir):
            continue
        with tf.io.gfile.GFile(path) as f:
            names = json.load(f)["files"]
        for name in names:  # in `keep`'s order: each run's marker last
            target = os.path.join(runs_dir, name)
            if not tf.io.gfile.exists(target):
                _copy(os.path.join(carry_dir, RUNS, name), target)
        restored.append((model, seed))
    timings = os.path.join(runs_dir, TIMINGS)
    carried = os.path.join(carry_dir, RUNS, TIMINGS)
    if (restored and tf.io.gfile.exists(carried)
            and not tf.io.gfile.exists(timings)):
        _copy(carried, timings)
    return restored


def _copy(source, target):
    """Copies a small file so that `target` is the whole of it or absent."""
    tf.io.gfile.makedirs(os.path.dirname(target))
    with tf.io.gfile.GFile(source, "rb") as f:
        data = f.read()
    with files.open_atomically(target, "wb") as f:
        f.write(data)

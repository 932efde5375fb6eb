"""The vocabulary a run was trained with, kept in its `model_dir`.

A resumed run may find its records and vocab elsewhere
(`recorded_run.MAY_CHANGE`: `task.train_data.input_path`,
`task.vocab_file`), but its records must hold the ids its checkpoint
learned. A dataset rebuilt in place from changed text gets a new vocab, and
the same ids then name other pieces: the run would train on, and
`export_bert.py` would pair its weights with the new `vocab.txt`. So a fresh
training run records its vocab's SHA-256 in `model_dir/training_vocab.json`
(`record`), and a resume and an export compare the vocab they are given
with it (`check`). Runs made before this file have none: nothing is
compared.

The vocab is the one the training records' manifest names (`input_path`
may move to records rebuilt elsewhere while `task.vocab_file`, given back
with `--config_file`, still names the old file), else `task.vocab_file`.

Example:
>>> check(model_dir, *vocab_of(params))  # on resume
>>> record(model_dir, vocab_of(params)[0])  # a fresh run, before training
"""

import json
import os

import tensorflow as tf

from token_dropping.common import files
from token_dropping.common.errors import UserError
from token_dropping.train import run_data

FILE = "training_vocab.json"


def vocab_of(params):
    """`(vocab file, where it was named)` of the run's training records:
    the manifest's beside them (what the records were made with, even when
    `task.vocab_file` still names an older file), else `task.vocab_file`;
    `("", "")` when neither names one."""
    data = getattr(params.task, "train_data", None)
    pattern = str(getattr(data, "input_path", "") or "").split(",")[0]
    matches = sorted(tf.io.gfile.glob(pattern)) if pattern else []
    info = run_data.read_manifest_beside(matches[0]) if matches else None
    if info is not None:
        return info.vocab_file, f"the records' manifest {info.manifest_path}"
    vocab_file = getattr(params.task, "vocab_file", "") or ""
    return (vocab_file, "task.vocab_file") if vocab_file else ("", "")


def record(model_dir, vocab_file):
    """Keeps `vocab_file`'s SHA-256 in `model_dir` (a fresh run; nothing
    when the vocab is unknown)."""
    if vocab_file and tf.io.gfile.exists(vocab_file):
        tf.io.gfile.makedirs(model_dir)
        files.write_json(os.path.join(model_dir, FILE), dict(
            vocab_file=vocab_file, sha256=files.sha256(vocab_file)),
            indent=1)


def check(run_dir, vocab_file, where):
    """Raises UserError if `run_dir` recorded another vocab than
    `vocab_file` (named by `where`: a flag or a file); nothing recorded or
    no vocab given: nothing to compare."""
    path = os.path.join(run_dir, FILE)
    if not (vocab_file and tf.io.gfile.exists(path)
            and tf.io.gfile.exists(vocab_file)):
        return
    with tf.io.gfile.GFile(path) as f:
        recorded = json.load(f)
    if files.sha256(vocab_file) != recorded["sha256"]:
        raise UserError(
            f"{vocab_file!r} ({where}) is not the vocabulary the run in "
            f"{run_dir} was trained with ({recorded['vocab_file']!r} then, "
            f"SHA-256 {recorded['sha256'][:12]}..., {path}): its ids would "
            "name other pieces. Give the records and vocab it was trained "
            "with (rebuild them from the same text), or train a new "
            "--model_dir.")

"""A run keeps its vocab's SHA-256: a resume or an export given another
vocab (a dataset rebuilt in place from changed text) is refused in one
line; the same vocab elsewhere is not.

The run is `run` (conftest: two steps through tools/train.py, its vocab
named by task.vocab_file); reruns go through tools/train.py's own calls,
as in test_recorded_run.py.
"""

import hashlib
import json
import os
import shutil

import pytest
from absl import flags
from official.common import flags as tfm_flags

import token_dropping  # noqa: F401  (registers the experiments)
from token_dropping.common.errors import UserError
from token_dropping.data.dataset_info import STATIC_FORMAT
from token_dropping.export import bert as export
from token_dropping.train import driver as training
from token_dropping.train import recorded_run
from token_dropping.train import run_vocab

if "experiment" not in flags.FLAGS:
    tfm_flags.define_flags()


def _rerun(model_dir, override):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train.py", "--experiment=token_drop_bert_tiny",
                 "--mode=train",
                 f"--config_file={os.path.join(model_dir, 'params.yaml')}",
                 f"--params_override={override}"])
    params = training.params_from_flags(flags.FLAGS)
    return training.resolve(params, "train", model_dir)


@pytest.fixture
def copies(run, tmp_path):
    """The run's folder, its vocab moved, and its vocab rebuilt: one
    ordinary piece (same count, same special tokens) is another."""
    model_dir = str(tmp_path / "run")
    shutil.copytree(run["model_dir"], model_dir)
    moved = str(tmp_path / "moved_vocab.txt")
    shutil.copy(run["vocab"], moved)
    pieces = open(run["vocab"], encoding="utf-8").read().splitlines()
    index = next(i for i, p in enumerate(pieces) if not p.startswith("["))
    pieces[index] = "zzz" + pieces[index]
    rebuilt = str(tmp_path / "rebuilt_vocab.txt")
    with open(rebuilt, "w", encoding="utf-8") as f:
        f.write("\n".join(pieces) + "\n")
    return model_dir, moved, rebuilt


def test_a_fresh_run_records_its_vocab(run):
    with open(os.path.join(run["model_dir"], run_vocab.FILE)) as f:
        recorded = json.load(f)
    with open(run["vocab"], "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert recorded == dict(vocab_file=run["vocab"], sha256=digest)


def test_a_resume_on_another_vocab_is_refused(copies):
    model_dir, moved, rebuilt = copies
    assert _rerun(model_dir, f"task.vocab_file={moved}")  # moved: resumes
    with pytest.raises(UserError) as e:
        _rerun(model_dir, f"task.vocab_file={rebuilt}")
    message = str(e.value)
    assert message.startswith(
        f"{rebuilt!r} (task.vocab_file) is not the vocabulary the run in "
        f"{model_dir} was trained with ")
    assert "\n" not in message


def _dataset(folder, records, vocab, model_dir):
    """A prepare_data folder: the records, its vocab, a manifest of the
    run's shapes and special ids (`dataset_info` reads it)."""
    recorded = recorded_run.read(model_dir)
    encoder = "task.model.encoder.any."
    os.makedirs(folder)
    shutil.copy(records, os.path.join(folder, "train.tfrecord"))
    shutil.copy(vocab, os.path.join(folder, "vocab.txt"))
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(dict(
            format=STATIC_FORMAT, vocab_file="vocab.txt",
            special_tokens_file="special_tokens.json",
            seq_length=recorded["task.train_data.seq_length"],
            max_predictions_per_seq=recorded[
                "task.train_data.max_predictions_per_seq"],
            special_tokens=dict(
                vocab_size=recorded[encoder + "vocab_size"],
                token_allow_list=recorded[encoder + "token_allow_list"],
                token_deny_list=recorded[encoder + "token_deny_list"]),
            splits=dict(train=dict(input_path="train.tfrecord",
                                   num_examples=16))), f)
    return os.path.join(folder, "train.tfrecord")


def test_records_moved_to_a_rebuilt_dataset_are_checked_by_its_vocab(
        run, copies, tmp_path):
    # Resumed as the docs say (--config_file=params.yaml: task.vocab_file
    # still names the old file), the records moved to a dataset rebuilt
    # from changed text: its manifest's vocab is what the ids mean.
    model_dir, moved, rebuilt = copies
    records = os.path.join(os.path.dirname(run["vocab"]), "train.tfrecord")
    same = _dataset(str(tmp_path / "same"), records, moved, model_dir)
    assert _rerun(model_dir, f"task.train_data.input_path={same}")
    other = _dataset(str(tmp_path / "other"), records, rebuilt, model_dir)
    with pytest.raises(UserError) as e:
        _rerun(model_dir, f"task.train_data.input_path={other}")
    manifest = tmp_path / "other" / "manifest.json"
    assert str(e.value).startswith(
        f"{str(tmp_path / 'other' / 'vocab.txt')!r} (the records' manifest "
        f"{manifest}) is not the vocabulary the run in {model_dir} was "
        "trained with ")


def test_an_export_with_another_vocab_is_refused(copies, tmp_path):
    model_dir, moved, rebuilt = copies
    with pytest.raises(UserError) as e:
        export.export_bert(model_dir, str(tmp_path / "out"),
                           vocab_file=rebuilt)
    assert str(e.value).startswith(
        f"{rebuilt!r} (--vocab_file) is not the vocabulary the run in "
        f"{model_dir} was trained with ")
    assert not os.path.exists(tmp_path / "out")


def test_a_run_without_the_record_is_not_compared(copies):
    # Runs made before the record resume as they did.
    model_dir, _, rebuilt = copies
    os.remove(os.path.join(model_dir, run_vocab.FILE))
    assert _rerun(model_dir, f"task.vocab_file={rebuilt}")

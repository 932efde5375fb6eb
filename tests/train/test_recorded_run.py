"""A rerun into a run directory resumes the run its params.yaml records, or
is refused in one line before anything is written.

The recorded run is `run` (conftest): two steps of the shrunk tiny
experiment through tools/train.py, whose params.yaml Model Garden's
`serialize_config` wrote. Each rerun goes through tools/train.py's own calls
(`params_from_flags`, then `resolve`) with `--config_file` set to that
params.yaml, as the error tells a user to do, plus one change.
"""

import os
import re
import shutil

import pytest
import tensorflow as tf
from absl import flags
from official.common import flags as tfm_flags
from official.core import exp_factory
from official.core import train_utils

import token_dropping  # noqa: F401  (registers the experiments)
from token_dropping.common.errors import UserError
from token_dropping.train import driver as training
from token_dropping.train import recorded_run
from helpers import overrides

if "experiment" not in flags.FLAGS:
    tfm_flags.define_flags()


def rerun(model_dir, override, experiment="token_drop_bert_tiny",
          mode="train"):
    """tools/train.py's checks for a rerun of `model_dir`'s run with its
    params.yaml and `override`; returns the resolved config."""
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train.py", f"--experiment={experiment}", f"--mode={mode}",
                 f"--config_file={os.path.join(model_dir, 'params.yaml')}",
                 f"--params_override={override}"])
    params = training.params_from_flags(flags.FLAGS)
    training.resolve(params, mode, model_dir)
    return params


@pytest.mark.parametrize("override,key,old,new", [
    ("task.model.encoder.any.token_keep_k=8",
     "task.model.encoder.any.token_keep_k", "16", "8"),
    ("task.train_data.global_batch_size=2",
     "task.train_data.global_batch_size", "4", "2"),
    ("task.train_data.seed=7", "task.train_data.seed", None, "7"),
    ("trainer.optimizer_config.learning_rate.polynomial."
     "initial_learning_rate=0.5",
     "trainer.optimizer_config.learning_rate.polynomial."
     "initial_learning_rate", None, "0.5"),
    # A section unset in the record (None), set now: the optimizer's slots
    # would not restore and its schedule would start again.
    ("trainer.optimizer_config.ema.average_decay=0.99",
     "trainer.optimizer_config.ema", "None", "{"),
])
def test_a_rerun_with_other_settings_is_refused_before_writing(
        run, override, key, old, new):
    model_dir = run["model_dir"]
    params_yaml = os.path.join(model_dir, "params.yaml")
    before = open(params_yaml, encoding="utf-8").read()
    recorded = recorded_run.read(model_dir)[key]
    if old is not None:
        assert str(recorded) == old
    with pytest.raises(UserError) as error:
        rerun(model_dir, override)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(
        f"--model_dir={model_dir} holds a run trained with "
        f"{key}={recorded!r} ({params_yaml}), but this command asks for "
        f"{key}={new}"), message
    assert f"--config_file={params_yaml}" in message
    assert open(params_yaml, encoding="utf-8").read() == before


def test_a_baseline_run_is_not_resumed_as_token_dropping(run, tmp_path):
    """bert_tiny's sub-layers have the names token dropping's have (so an
    export loads as BERT): only the recorded config tells the runs apart."""
    model_dir = str(tmp_path / "run")
    shutil.copytree(run["model_dir"], model_dir)
    recorded = recorded_run.read(model_dir)
    # The same directory as a bert_tiny run would have recorded it.
    train_utils.serialize_config(exp_factory.get_exp_config("bert_tiny"),
                                 model_dir)
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train.py", "--experiment=token_drop_bert_tiny",
                 "--mode=train", "--params_override=" + overrides(
                     (recorded["task.train_data.input_path"],
                      recorded["task.validation_data.input_path"]), 2)])
    params = training.params_from_flags(flags.FLAGS)
    with pytest.raises(UserError, match=re.escape(
            f"--model_dir={model_dir} holds a run trained with ")):
        training.resolve(params, "train", model_dir)
    assert "task.model.encoder.type" in recorded_run.differences(
        params, recorded_run.read(model_dir))


def test_a_section_switched_off_is_a_difference(run):
    # The other way round: recorded with EMA, asked for without it.
    model_dir = run["model_dir"]
    recorded = recorded_run.read(model_dir)
    params = rerun(model_dir, "trainer.train_steps=6")
    assert recorded_run.differences(params, recorded) == []
    key = "trainer.optimizer_config.ema"
    assert recorded.pop(key) is None
    recorded[key + ".average_decay"] = 0.99
    assert recorded_run.differences(params, recorded) == [key]
    # A field only one side has, under a section both set, is not one
    # (another version's field).
    recorded[key] = None
    del recorded[key + ".average_decay"]
    recorded["trainer.optimizer_config.optimizer.adamw.new_field"] = 1
    assert recorded_run.differences(params, recorded) == []


def test_a_rerun_may_train_longer_elsewhere_and_report_less_often(
        run, tmp_path):
    model_dir = run["model_dir"]
    recorded = recorded_run.read(model_dir)
    moved = str(tmp_path / "train.tfrecord")
    shutil.copy(recorded["task.train_data.input_path"], moved)
    params = rerun(model_dir, (
        f"trainer.train_steps=6,task.train_data.input_path={moved},"
        "trainer.validation_interval=6,trainer.checkpoint_interval=6,"
        "trainer.max_to_keep=2,runtime.enable_xla=true,"
        "task.validation_data.global_batch_size=2"))
    assert params.trainer.train_steps == 6
    assert recorded_run.differences(params, recorded) == []


def test_schedule_steps_without_a_schedule_may_change(run):
    """The study sets task.keep_k_schedule_steps to its largest budget for
    every token-dropping run: more --budgets must resume a run that has no
    keep_k schedule, whose numbers those steps do not change."""
    model_dir = run["model_dir"]
    assert not recorded_run.read(model_dir)[
        "task.model.encoder.any.keep_k_schedule"]
    params = rerun(model_dir, "task.keep_k_schedule_steps=99")
    assert params.task.keep_k_schedule_steps == 99


def test_nothing_recorded_or_nothing_to_resume_is_not_compared(run, tmp_path):
    """A checkpoint with no params.yaml (e.g. copied in) resumes as before;
    a params.yaml with no checkpoint is a fresh run that writes over it."""
    no_yaml = str(tmp_path / "no_yaml")
    shutil.copytree(run["model_dir"], no_yaml)
    params_yaml = os.path.join(run["model_dir"], "params.yaml")
    os.remove(os.path.join(no_yaml, "params.yaml"))
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train.py", "--experiment=token_drop_bert_tiny",
                 "--mode=train", f"--config_file={params_yaml}",
                 "--params_override=task.model.encoder.any.token_keep_k=8"])
    params = training.params_from_flags(flags.FLAGS)
    assert training.resolve(params, "train", no_yaml)
    no_checkpoint = tmp_path / "no_checkpoint"
    no_checkpoint.mkdir()
    shutil.copy(params_yaml, no_checkpoint / "params.yaml")
    assert training.resolve(params, "train", str(no_checkpoint)) is None


def test_a_damaged_params_yaml_is_one_line(run, tmp_path):
    model_dir = str(tmp_path / "run")
    shutil.copytree(run["model_dir"], model_dir)
    params_yaml = os.path.join(model_dir, "params.yaml")
    with open(params_yaml, "w", encoding="utf-8") as f:
        f.write("task: [unclosed\n")
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train.py", "--experiment=token_drop_bert_tiny",
                 "--mode=train", "--config_file="
                 f"{os.path.join(run['model_dir'], 'params.yaml')}"])
    params = training.params_from_flags(flags.FLAGS)
    with pytest.raises(UserError, match=re.escape(
            f"{params_yaml} cannot be read (")):
        training.resolve(params, "train", model_dir)


def test_a_resumed_schedule_keeps_the_steps_it_started_with(run, tmp_path):
    """A keep_k schedule's fractions refer to the first start's train steps:
    the same command with more steps goes on at the stage the run was at."""
    model_dir = str(tmp_path / "run")
    shutil.copytree(run["model_dir"], model_dir)
    recorded = recorded_run.read(model_dir)
    data = (recorded["task.train_data.input_path"],
            recorded["task.validation_data.input_path"])

    def command(train_steps):
        flags.FLAGS.unparse_flags()
        flags.FLAGS([
            "train.py", "--experiment=token_drop_bert_tiny", "--mode=train",
            "--params_override=" + overrides(data, 4, (
                "task.model.encoder.any.keep_k_schedule=[{start_fraction: "
                "0.0, token_keep_k: 32}, {start_fraction: 0.5, token_keep_k:"
                f" 16}}],trainer.train_steps={train_steps}"))])
        return training.params_from_flags(flags.FLAGS)

    first = command(4)
    training.resolve(first, "train", str(tmp_path / "fresh"))
    assert first.task.keep_k_schedule_steps == 4
    train_utils.serialize_config(first, model_dir)  # as its first start did
    params = command(40)
    training.resolve(params, "train", model_dir)
    assert params.task.keep_k_schedule_steps == 4


def test_a_config_file_that_is_a_directory_is_one_line(tmp_path):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train.py", "--experiment=token_drop_bert_tiny",
                 "--mode=train", f"--config_file={tmp_path}"])
    with pytest.raises(UserError, match=re.escape(
            f"--config_file='{tmp_path}' is a directory")):
        training.params_from_flags(flags.FLAGS)
    assert tf.io.gfile.listdir(str(tmp_path)) == []

"""--config_file and --params_override mistakes are one line naming the flag,
the file and line, or the dotted key and the keys that are there.

Each goes through tools/train.py's calls (`params_from_flags`, then
`resolve`) with Model Garden's real absl flags; the reference for what is
valid is the experiment config's own fields.
"""

import dataclasses

import pytest
from absl import flags
from official.common import flags as tfm_flags
from official.core import exp_factory

import token_dropping  # noqa: F401  (registers the experiments)
from token_dropping.common.errors import UserError
from token_dropping.train import driver as training

if "experiment" not in flags.FLAGS:
    tfm_flags.define_flags()

DUMMY = "task.train_data.input_path=dummy,task.validation_data.input_path=dummy"


def resolve(*args, tmp_path):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train.py", "--experiment=token_drop_bert_tiny",
                 "--mode=train", *args])
    params = training.params_from_flags(flags.FLAGS)
    training.resolve(params, "train", str(tmp_path / "run"))
    return params


def refused(*args, tmp_path):
    with pytest.raises(UserError) as error:
        resolve(*args, tmp_path=tmp_path)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()
    return str(error.value)


def test_an_override_without_equals_is_not_taken_for_a_file(tmp_path):
    for text in ("trainer.train_steps 10", "task.model.encoder.any."
                 "token_keep_k=[1,"):
        assert refused(f"--params_override={text}", tmp_path=tmp_path) == (
            f"--params_override={text!r} is neither comma-separated "
            "KEY=VALUE pairs (e.g. trainer.train_steps=100,task.model."
            "encoder.any.token_keep_k=64) nor a YAML file.")


def test_bad_yaml_in_a_config_file_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("trainer:\n  train_steps: 10\n   steps_per_loop: 2\n"
                    "task: {}\n")  # line 3 indented one space too far
    message = refused(f"--config_file={path}", tmp_path=tmp_path)
    assert message.startswith(f"--config_file='{path}' is not valid YAML: ")
    assert message.endswith("mapping values are not allowed here at line 3, "
                            "column 18."), message


@pytest.mark.parametrize("where", ["params_override", "config_file"])
def test_an_unknown_key_names_the_dotted_key_and_the_keys_there(where,
                                                                tmp_path):
    runtime = [f.name for f in dataclasses.fields(
        exp_factory.get_exp_config("token_drop_bert_tiny").runtime)]
    if where == "params_override":
        args, flag = ["--params_override=runtime.num_gpu=1"], (
            "--params_override")
    else:
        path = tmp_path / "typo.yaml"
        path.write_text("runtime:\n  num_gpu: 1\n")
        args, flag = [f"--config_file={path}"], f"--config_file='{path}'"
    message = refused(*args, tmp_path=tmp_path)
    assert message == (
        f"{flag}: runtime.num_gpu is not a setting of the experiment "
        f"'token_drop_bert_tiny'; there are {', '.join(sorted(runtime))}.")
    assert "is_strict" not in message


def test_an_unknown_one_of_type_lists_the_types(tmp_path):
    optimizer = exp_factory.get_exp_config(
        "token_drop_bert_tiny").trainer.optimizer_config.optimizer
    types = sorted(f.name for f in dataclasses.fields(optimizer)
                   if f.name != "type")
    assert "adamw" in types
    assert refused("--params_override=trainer.optimizer_config.optimizer."
                   "type=adamww", tmp_path=tmp_path) == (
        "trainer.optimizer_config.optimizer.type='adamww' is not one of "
        f"{', '.join(types)}.")


@pytest.mark.parametrize("override,message", [
    ("trainer.train_steps=-1", "trainer.train_steps=-1 must be at least 1."),
    ("trainer.steps_per_loop=0",
     "trainer.steps_per_loop=0 must be at least 1."),
    ("task.train_data.global_batch_size=0",
     "task.train_data.global_batch_size=0 must be at least 1."),
    ("trainer.checkpoint_interval=0",
     "trainer.checkpoint_interval=0 must be at least 1."),
    ("trainer.steps_per_loop=2,trainer.summary_interval=3",
     "trainer.summary_interval=3 must be a multiple of "
     "trainer.steps_per_loop=2."),
    ("trainer.optimizer_config.learning_rate.polynomial."
     "initial_learning_rate=-0.1", "trainer.optimizer_config.learning_rate."
     "polynomial.initial_learning_rate=-0.1 must be 0 or more."),
    ("trainer.optimizer_config.warmup.type=linear,"
     "trainer.optimizer_config.warmup.linear.warmup_learning_rate=-1e-5",
     "trainer.optimizer_config.warmup.linear.warmup_learning_rate=-1e-05 "
     "must be 0 or more."),
    ("trainer.optimizer_config.learning_rate.type=cosine,"
     "trainer.optimizer_config.learning_rate.cosine.alpha=-0.5",
     "trainer.optimizer_config.learning_rate.cosine.alpha=-0.5 must be 0 or "
     "more."),
    ("trainer.optimizer_config.learning_rate.type=exponential,"
     "trainer.optimizer_config.learning_rate.exponential.decay_rate=-0.5",
     "trainer.optimizer_config.learning_rate.exponential.decay_rate=-0.5 "
     "must be 0 or more."),
])
def test_counts_and_rates_model_garden_would_run_with(override, message,
                                                       tmp_path):
    """Model Garden trains to step -1 (a checkpoint, exit 0), with a negative
    rate, or fails deep in tf.data on a batch of 0."""
    assert refused(f"--params_override={override},{DUMMY}",
                   tmp_path=tmp_path) == message


def test_a_negative_rate_in_a_stepwise_schedule_is_refused(tmp_path):
    path = tmp_path / "stepwise.yaml"
    path.write_text("trainer:\n  optimizer_config:\n    learning_rate:\n"
                    "      type: stepwise\n      stepwise:\n"
                    "        boundaries: [10]\n        values: [0.1, -0.01]\n")
    assert refused(f"--config_file={path}", f"--params_override={DUMMY}",
                   tmp_path=tmp_path) == (
        "trainer.optimizer_config.learning_rate.stepwise.values=[0.1, -0.01] "
        "must be 0 or more in each entry.")


def test_a_good_config_file_and_override_still_compose(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text("trainer:\n  train_steps: 7\n")
    params = resolve(f"--config_file={path}", "--params_override="
                     "trainer.steps_per_loop=7,trainer.summary_interval=14,"
                     f"{DUMMY}", tmp_path=tmp_path)
    assert (params.trainer.train_steps, params.trainer.steps_per_loop) == (
        7, 7)

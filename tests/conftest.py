"""Test-session setup shared by every test.

The CPU is split into two logical devices before TensorFlow starts, so tests
can run `tf.distribute.MirroredStrategy` with two replicas on one machine.
Single-device code keeps using the first one.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tools and workers the tests start as subprocesses import this checkout's
# package, not whichever checkout the venv's editable install points at.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)

import tensorflow as tf  # noqa: E402  (must follow the log-level setting)

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402,F811
import tf_keras  # noqa: E402

from helpers import overrides, run_tool, write_records, write_vocab  # noqa: E402


_DEFAULT_RANDOM_MODE = (
    tf_keras.backend.experimental.is_tf_random_generator_enabled())


def _set_random_mode(enabled):
    mode = tf_keras.backend.experimental
    if enabled:
        mode.enable_tf_random_generator()
    else:
        mode.disable_tf_random_generator()


@pytest.fixture(autouse=True)
def default_tf_keras_random_mode():
    """A training run switches tf_keras to its generator-backed random ops
    for the whole process (`train.random_state.seed_run`), which changes
    the initial weights every later seeded model draws. Every test starts
    and ends in tf_keras's default mode, whatever trained before it (a
    module fixture's in-process study included), so no test depends on
    which ran before it."""
    _set_random_mode(_DEFAULT_RANDOM_MODE)
    yield
    _set_random_mode(_DEFAULT_RANDOM_MODE)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Tiny train and validation records (16 and 10 examples, seq 32)."""
    folder = tmp_path_factory.mktemp("records")
    return (write_records(str(folder / "train.tfrecord"), seed=0),
            write_records(str(folder / "valid.tfrecord"), num_examples=10,
                          seed=1))


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """A 2-step token-dropping pretraining run whose params name its vocab."""
    folder = tmp_path_factory.mktemp("pretrain")
    data = (write_records(str(folder / "train.tfrecord"), seed=0),
            write_records(str(folder / "valid.tfrecord"), seed=1))
    vocab = write_vocab(str(folder / "vocab.txt"))
    model_dir = str(folder / "run")
    result = run_tool(
        "train.py", "--experiment=token_drop_bert_tiny", "--mode=train",
        f"--model_dir={model_dir}",
        f"--params_override={overrides(data, 2, f'task.vocab_file={vocab}')}")
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(model_dir=model_dir, vocab=vocab,
                checkpoint=tf.train.latest_checkpoint(model_dir))


@pytest.fixture(scope="session")
def exported(run, tmp_path_factory):
    """`run` exported by tools/export_bert.py."""
    output_dir = str(tmp_path_factory.mktemp("exports") / "bert")
    result = run_tool("export_bert.py", f"--model_dir={run['model_dir']}",
                      f"--output_dir={output_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"to {output_dir}" in result.stdout
    return output_dir


class FakeClock:
    """A seconds clock that shows `now`, which the test sets."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    """A `FakeClock` at 0 s, for progress lines and rates."""
    return FakeClock()

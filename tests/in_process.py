"""`tool_in_process`: a tool's `main` in the test process.

Each `tools/*.py` process start loads TensorFlow and Model Garden (~6 s on 2
cores). A tool's bad-input contract (one line, no traceback, the exit code)
is checked through its real command line once (`helpers.run_tool`); further
cases of the same tool call its `main` here, with its own absl flags, its
own `sys.exit` line and its log records.
"""

import contextlib
import importlib.util
import io
import os
import subprocess
import sys

import tf_keras

from helpers import ROOT


def tool_in_process(name, *args):
    """`tools/<name>`'s `main` in this process, its absl flags parsed from
    `args`: the tool's own flag definitions, library call and
    `sys.exit("<tool>: error: ...")` line, without a process start (each
    start loads TensorFlow and Model Garden, ~6 s). For the cases of a tool
    beyond the one that `run_tool` checks through the real command line.

    Returns a `subprocess.CompletedProcess` as `run_tool` does: what the
    tool prints and absl's log records at INFO and above (messages only, no
    prefix) in order; a `sys.exit` message is written to its stderr with
    code 1, as Python does on exit. Any other exception propagates (the test
    fails with its traceback). TensorFlow's C++ log lines are not captured.

    Flags are parsed as `absl.app.run` parses them: a bad value is its
    "FATAL Flags parsing error" line and code 1. Model Garden's flags
    (`--experiment`, `--model_dir`, ...), which other tests define in this
    process, are set aside meanwhile (other tools define flags of the same
    names); every flag, and Keras's global dtype policy (which a run sets
    from `runtime.mixed_precision_dtype`), is as before afterwards.
    """
    import logging  # pylint: disable=import-outside-toplevel
    from absl import app  # pylint: disable=import-outside-toplevel
    from absl import flags  # pylint: disable=import-outside-toplevel
    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
    from official.common import flags as tfm_flags  # pylint: disable=import-outside-toplevel
    policy = tf_keras.mixed_precision.global_policy()
    state = flags.FLAGS.__dict__
    saved = {key: (dict((k, list(v) if isinstance(v, list) else v)
                        for k, v in value.items())
                   if isinstance(value, dict) else value)
             for key, value in state.items()}
    registered = state["__flags"]
    for flag in flags.FLAGS.flags_by_module_dict().get(
            tfm_flags.__name__, []):
        registered.pop(flag.name, None)
    stdout, stderr = io.StringIO(), io.StringIO()
    logger = absl_logging.get_absl_logger()
    level, handler = logger.level, logging.StreamHandler(stderr)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        spec = importlib.util.spec_from_file_location(
            "tool_" + name.replace(".py", ""),
            os.path.join(ROOT, "tools", name))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if name == "train.py":
            tfm_flags.define_flags()  # as its `__main__` block does
        with contextlib.redirect_stdout(stdout), (
                contextlib.redirect_stderr(stderr)):
            try:
                module.main(app.parse_flags_with_usage([name, *args]))
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (
                    0 if e.code is None else 1)
                if not isinstance(e.code, (int, type(None))):
                    print(e.code, file=sys.stderr)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        state.update(saved)
        tf_keras.mixed_precision.set_global_policy(policy)
    return subprocess.CompletedProcess([name, *args], code,
                                       stdout.getvalue(), stderr.getvalue())

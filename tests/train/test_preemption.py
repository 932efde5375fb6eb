"""SIGTERM mid-training: a checkpoint at the step reached, exit code 42, resume."""

import os
import re
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf

from token_dropping.train.preemption import EXIT_CODE
from helpers import ROOT, TRAIN, importance_in, overrides

TIMEOUT = 600  # seconds; a watchdog kills a run that stops talking
STEPS = 2000  # far more than a run reaches before its SIGTERM


def run_until_step_then_sigterm(args, at_least):
    """Runs tools/train.py, sends SIGTERM once its progress line shows a step
    >= `at_least`; returns (returncode, stderr, steps the progress showed)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               GCE_METADATA_IP="127.0.0.1:9")  # "not on GCE", loopback only
    process = subprocess.Popen([sys.executable, TRAIN, *args],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=env,
                               cwd=ROOT)
    watchdog = threading.Timer(TIMEOUT, process.kill)
    watchdog.start()
    lines, steps, sent = [], [], False
    try:
        for line in process.stderr:
            lines.append(line)
            found = re.search(rf"step (\d+)/{STEPS} \|", line)
            if found:
                steps.append(int(found.group(1)))
                if steps[-1] >= at_least and not sent:
                    process.send_signal(signal.SIGTERM)
                    sent = True
        process.wait()
    finally:
        watchdog.cancel()
    return process.returncode, "".join(lines), steps


def checkpoints_load(model_dir):
    """Every checkpoint the state file lists loads completely."""
    state = tf.train.get_checkpoint_state(model_dir)
    for path in state.all_model_checkpoint_paths:
        reader = tf.train.load_checkpoint(path)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    return state.all_model_checkpoint_paths


@pytest.mark.slow  # two training runs in turn, about 40 s
def test_sigterm_saves_the_step_reached_and_the_rerun_continues(records,
                                                                 tmp_path):
    model_dir = tmp_path / "run"
    # No interval checkpoints: after the first loop's (orbit saves when a
    # manager has saved nothing yet), any checkpoint is the SIGTERM's.
    args = ["--experiment=token_drop_bert_tiny", "--mode=train",
            f"--model_dir={model_dir}", "--params_override=" + overrides(
                records, STEPS, "trainer.checkpoint_interval=100000")]

    code, log, steps = run_until_step_then_sigterm(args, at_least=6)
    assert code == EXIT_CODE, log[-3000:]
    last = log.strip().splitlines()[-1]
    found = re.fullmatch(r"train\.py: stopped by SIGTERM; checkpoint saved at "
                         rf"step (\d+) in {re.escape(str(model_dir))}; rerun "
                         r"the same command to continue\.", last)
    assert found, last
    saved = int(found.group(1))
    # The loop after the signal is the last one (TF's handler saves once
    # every worker has finished it).
    assert steps[-1] >= 6 and saved == steps[-1] < STEPS, (saved, steps)
    assert tf.train.latest_checkpoint(str(model_dir)).endswith(f"ckpt-{saved}")
    assert [os.path.basename(p) for p in checkpoints_load(str(model_dir))
            ] == ["ckpt-2", f"ckpt-{saved}"]
    table = importance_in(tf.train.latest_checkpoint(str(model_dir)))
    assert (table != 10.0).any()

    # The same command resumes at that step (and a second SIGTERM works too).
    code, log, steps = run_until_step_then_sigterm(args, at_least=saved + 4)
    assert code == EXIT_CODE, log[-3000:]
    assert f"(step {saved} of {STEPS})" in log and steps[0] == saved + 2, (
        saved, steps)
    resumed = int(re.search(r"checkpoint saved at step (\d+)",
                            log).group(1))
    assert resumed == steps[-1] >= saved + 4
    paths = checkpoints_load(str(model_dir))
    assert os.path.basename(paths[-1]) == f"ckpt-{resumed}", paths
    later = importance_in(paths[-1])
    # Restored, not restarted: ids measured before are still measured.
    assert ((table != 10.0) <= (later != 10.0)).all()
    assert not np.array_equal(table, later)

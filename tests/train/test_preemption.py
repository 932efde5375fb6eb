"""SIGTERM mid-training: a checkpoint at the end of the loop it interrupted,
exit code 42, resume."""

import os
import re
import signal

import numpy as np
import pytest
import tensorflow as tf

from token_dropping.train.preemption import EXIT_CODE
from token_dropping.train.preemption import Preempted
from token_dropping.train.preemption import SaveAndStopOnSigterm
from helpers import run_and_sigterm, TRAIN, importance_in, overrides, write_records

TIMEOUT = 600  # seconds; a watchdog kills a run that stops talking
STEPS = 2000  # far more than a run reaches before its SIGTERM
LOOP = 4  # trainer.steps_per_loop of the end-to-end runs


def test_a_sigterm_saves_at_the_end_of_the_loop_it_interrupted(tmp_path):
    """The action as the runner wires it: `note` first after a loop, the
    other actions (the progress line), then the action itself."""
    step = tf.Variable(0, dtype=tf.int64)
    # Model Garden's manager has an interval the preemption save ignores.
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(step=step), str(tmp_path), max_to_keep=None,
        step_counter=step, checkpoint_interval=1000)
    action = SaveAndStopOnSigterm(tf.distribute.get_strategy(), manager, step)

    def end_of_loop(end, signal_after_progress_line=False):
        step.assign(end)
        action.note(None)
        if signal_after_progress_line:
            os.kill(os.getpid(), signal.SIGTERM)
        action(None)

    try:
        end_of_loop(20)
        end_of_loop(40)
        os.kill(os.getpid(), signal.SIGTERM)  # during steps 41-60
        with pytest.raises(Preempted, match="saved at step 60 in "):
            end_of_loop(60)
        assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-60")

        # A signal after a loop's progress line counts for the next loop.
        action.signalled = False
        end_of_loop(80, signal_after_progress_line=True)
        with pytest.raises(Preempted, match="saved at step 100 in "):
            end_of_loop(100)
    finally:
        action.close()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def run_until_step_then_sigterm(args, at_least):
    """Runs tools/train.py, sends SIGTERM once a loop ending at a step
    >= `at_least` is over; returns (returncode, stderr, steps the progress
    line showed, the step after whose loop the signal was sent)."""
    def orbit_step(line):
        # Orbit's line, after every action of the loop: a signal now comes
        # during the next loop.
        found = re.search(r"train \| step: +(\d+) \|", line)
        return int(found.group(1)) if found else None

    code, lines, sent = run_and_sigterm(
        [TRAIN, *args], lambda line: (orbit_step(line) or -1) >= at_least,
        TIMEOUT)
    steps = [int(m.group(1)) for line in lines
             if (m := re.search(rf"step (\d+)/{STEPS} \|", line))]
    return (code, "".join(lines), steps,
            None if sent is None else orbit_step(lines[sent]))


def checkpoints_load(model_dir):
    """Every checkpoint the state file lists loads completely."""
    state = tf.train.get_checkpoint_state(model_dir)
    for path in state.all_model_checkpoint_paths:
        reader = tf.train.load_checkpoint(path)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    return state.all_model_checkpoint_paths


@pytest.mark.slow  # two training runs in turn, about 40 s
def test_sigterm_saves_the_loop_it_interrupted_and_the_rerun_continues(
        tmp_path):
    model_dir = tmp_path / "run"
    # 64 examples: the rerun's 8 steps read half of them, so some ids the
    # first run measured keep their value only if the table is restored.
    records = (write_records(str(tmp_path / "train.tfrecord"), 64),
               write_records(str(tmp_path / "valid.tfrecord"), 10, seed=1))
    # No interval checkpoints: after the first loop's (orbit saves when a
    # manager has saved nothing yet), any checkpoint is the SIGTERM's.
    args = ["--experiment=token_drop_bert_tiny", "--mode=train",
            f"--model_dir={model_dir}", "--params_override=" + overrides(
                records, STEPS, f"trainer.steps_per_loop={LOOP},"
                f"trainer.summary_interval={LOOP},task.train_data.seed=1,"
                "trainer.checkpoint_interval=100000")]

    code, log, steps, sent = run_until_step_then_sigterm(args, at_least=8)
    assert code == EXIT_CODE, log[-3000:]
    last = log.strip().splitlines()[-1]
    found = re.fullmatch(r"train\.py: stopped by SIGTERM; checkpoint saved at "
                         rf"step (\d+) in {re.escape(str(model_dir))}; rerun "
                         r"the same command to continue\.", last)
    assert found, last
    saved = int(found.group(1))
    # A signal after the step-k lines interrupts the loop k+1..k+LOOP: the
    # run saves at its end, after one more progress line (TensorFlow's
    # PreemptionCheckpointHandler saved a loop later).
    assert saved == sent + LOOP and steps[-2:] == [sent, saved], (sent, steps)
    assert tf.train.latest_checkpoint(str(model_dir)).endswith(f"ckpt-{saved}")
    assert [os.path.basename(p) for p in checkpoints_load(str(model_dir))
            ] == [f"ckpt-{LOOP}", f"ckpt-{saved}"]
    table = importance_in(tf.train.latest_checkpoint(str(model_dir)))
    assert (table != 10.0).any()

    # The same command resumes at that step (and a second SIGTERM works too).
    code, log, steps, sent = run_until_step_then_sigterm(
        args, at_least=saved + LOOP)
    assert code == EXIT_CODE, log[-3000:]
    assert f"(step {saved} of {STEPS})" in log and steps[0] == saved + LOOP, (
        saved, steps)
    resumed = int(re.search(r"checkpoint saved at step (\d+)",
                            log).group(1))
    assert resumed == steps[-1] == sent + LOOP == saved + 2 * LOOP, steps
    paths = checkpoints_load(str(model_dir))
    assert os.path.basename(paths[-1]) == f"ckpt-{resumed}", paths
    later = importance_in(paths[-1])
    # Restored, not restarted: ids measured before are still measured, and
    # ids the rerun did not predict kept their value exactly (a table reset
    # on restore holds 10.0 there, or a value from the rerun's steps only).
    assert ((table != 10.0) <= (later != 10.0)).all()
    assert ((table != 10.0) & (later == table)).any()
    assert not np.array_equal(table, later)

"""tools/train.py on 2 worker processes (MultiWorkerMirroredStrategy, TF_CONFIG).

The way TensorFlow tests multi-worker training: several processes on
127.0.0.1, each a worker of one cluster, here each a `tools/train.py`. The
reference is a one-process run (`one_device`) on the same global batches:
with one record file Model Garden shards by record (worker w reads records
w, w+2, ...), so worker 0's step-k batch and worker 1's together are the
records 4k..4k+3, the reference's step-k batch. Both start from the same
init checkpoint, without dropout, with `task.scale_loss` so that the
summed per-worker gradients equal the one-process gradient, and with SGD:
AdamW's first steps move every weight by about the learning rate whatever
the gradient's size, so a gradient that is 0 up to rounding in one run and
not the other moves weights apart by far more than rounding (the tables
then differed by 2e-6 relative after 4 steps).
"""

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import token_dropping  # noqa: F401  (registers the experiments)
from token_dropping.train.preemption import EXIT_CODE
from checkpoint_values import checkpoint_values
from helpers import ROOT, SHRINK, TRAIN, importance_in, overrides
from helpers import train_py, write_init_checkpoint

TIMEOUT = 600  # seconds per run, so a stuck collective cannot hang the suite
SAME_MATH = ("task.scale_loss=true,trainer.optimizer_config.optimizer.type=sgd,"
             "task.train_data.shuffle_buffer_size=1,"
             "task.model.encoder.any.dropout_rate=0.0,"
             "task.model.encoder.any.attention_dropout_rate=0.0")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def worker_env(tmp):
    # TF's preemption handler asks GCE's metadata server whether it runs on
    # GCE; a closed loopback port answers "no" without the network.
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
                GCE_METADATA_IP="127.0.0.1:9", TMPDIR=str(tmp))


def run_workers(tmp_path, name, args, while_running=None):
    """Runs 2 `tools/train.py` workers; returns their (returncode, output,
    pid, TMPDIR). `while_running(workers)` is called once they started."""
    addresses = [f"127.0.0.1:{p}" for p in free_ports(2)]
    workers = []
    for index in range(2):
        tmp = tmp_path / f"{name}_worker{index}_tmp"
        tmp.mkdir()
        env = worker_env(tmp)
        env["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": addresses},
            "task": {"type": "worker", "index": index}})
        log = open(tmp_path / f"{name}_worker{index}.log", "w+")
        workers.append((subprocess.Popen(
            [sys.executable, TRAIN, *args], stdout=log,
            stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT), log, tmp))
    results = []
    try:
        if while_running:
            while_running(workers)
        for process, log, tmp in workers:
            process.wait(timeout=TIMEOUT)
            log.seek(0)
            results.append((process.returncode, log.read(), process.pid, tmp))
    finally:
        for process, log, _ in workers:
            if process.poll() is None:
                process.kill()
            log.close()
    return results


@pytest.mark.slow  # 4 training processes, about 60 to 100 s
def test_two_workers_match_one_process_and_resume(records, tmp_path):
    init = write_init_checkpoint(str(tmp_path / "init" / "ckpt"), records[0])
    same = f"{SAME_MATH},task.init_checkpoint={init}"
    model_dir = tmp_path / "two_workers"

    def two_workers(name, steps):
        results = run_workers(tmp_path, name, [
            "--experiment=token_drop_bert_tiny", "--mode=train",
            f"--model_dir={model_dir}", "--params_override=" + overrides(
                records, steps,
                f"{same},runtime.distribution_strategy=multi_worker_mirrored",
                decay_steps=6)])
        for code, log, _, _ in results:
            assert code == 0, log[-3000:]
        return results

    def one_process(steps):
        result = train_py(
            "--experiment=token_drop_bert_tiny", "--mode=train",
            f"--model_dir={tmp_path / 'one_process'}",
            "--params_override=" + overrides(
                records, steps,
                f"{same},runtime.distribution_strategy=one_device",
                decay_steps=6))
        assert result.returncode == 0, result.stderr[-3000:]
        return importance_in(tf.train.latest_checkpoint(
            str(tmp_path / "one_process")))

    def tables(results):
        """The chief's table (model_dir) and the other worker's (its temp
        dir, where Model Garden writes its checkpoints)."""
        chief = importance_in(tf.train.latest_checkpoint(str(model_dir)))
        other = glob.glob(str(results[1][3] / "*" / "checkpoint"))
        assert len(other) == 1, other
        return chief, importance_in(tf.train.latest_checkpoint(
            os.path.dirname(other[0])))

    first = two_workers("first", 4)
    chief, other = tables(first)
    reference = one_process(4)
    np.testing.assert_array_equal(chief, other)
    np.testing.assert_allclose(chief, reference, rtol=1e-6, atol=1e-6)
    assert (chief != 10.0).sum() > 20  # both halves' ids were measured

    # Only the chief wrote into model_dir: one checkpoint series, params,
    # summaries; nothing carries the other worker's pid (event files do).
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-4")
    other_pid = f".{first[1][2]}."
    written = [p for p in glob.glob(f"{model_dir}/**", recursive=True)
               if os.path.isfile(p)]
    assert written and not [p for p in written if other_pid in p], written
    assert "saved checkpoint to " + str(first[1][3]) in first[1][1]

    # The same command with more steps: both workers resume from the chief's
    # step-4 checkpoint, table included, and still match one process.
    second = two_workers("second", 6)
    for _, log, _, _ in second:
        assert "Resuming from" in log and "(step 4 of 6)" in log, log[-3000:]
    chief, other = tables(second)
    reference = one_process(6)
    np.testing.assert_array_equal(chief, other)
    np.testing.assert_allclose(chief, reference, rtol=1e-6, atol=1e-6)
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-6")


@pytest.mark.slow  # about 20 to 50 s
def test_sigterm_to_one_worker_stops_both_at_the_same_saved_step(records,
                                                                 tmp_path):
    model_dir = tmp_path / "two_workers"
    steps = 2000  # far more than the run reaches before its SIGTERM

    def sigterm_the_other_worker_after_step_6(workers):
        chief_log, deadline = workers[0][1], time.time() + TIMEOUT
        while time.time() < deadline and workers[0][0].poll() is None:
            chief_log.seek(0)
            reached = [int(s) for s in re.findall(rf"step (\d+)/{steps} \|",
                                                  chief_log.read())]
            if reached and reached[-1] >= 6:
                workers[1][0].send_signal(signal.SIGTERM)
                return
            time.sleep(0.5)

    results = run_workers(tmp_path, "sigterm", [
        "--experiment=token_drop_bert_tiny", "--mode=train",
        f"--model_dir={model_dir}", "--params_override=" + overrides(
            records, steps, "trainer.checkpoint_interval=100000,"
            "runtime.distribution_strategy=multi_worker_mirrored")],
        while_running=sigterm_the_other_worker_after_step_6)
    saved = []
    for code, log, _, _ in results:
        assert code == EXIT_CODE, log[-3000:]
        saved.append(int(re.search(
            r"train\.py: stopped by SIGTERM; checkpoint saved at step (\d+)",
            log).group(1)))
    assert saved[0] == saved[1] >= 6, saved
    chief = tf.train.latest_checkpoint(str(model_dir))
    assert chief.endswith(f"ckpt-{saved[0]}")
    other = glob.glob(str(results[1][3] / "*" / f"ckpt-{saved[0]}.index"))
    assert len(other) == 1, other
    np.testing.assert_array_equal(importance_in(chief),
                                  importance_in(other[0][:-len(".index")]))


def sigterm_the_other_worker_after_step(step, total):
    """A `run_workers` callback: SIGTERM to worker 1 once the chief's
    progress line shows a step >= `step` (of `total`)."""

    def send(workers):
        chief_log, deadline = workers[0][1], time.time() + TIMEOUT
        while time.time() < deadline and workers[0][0].poll() is None:
            chief_log.seek(0)
            reached = [int(s) for s in re.findall(rf"step (\d+)/{total} \|",
                                                  chief_log.read())]
            if reached and reached[-1] >= step:
                workers[1][0].send_signal(signal.SIGTERM)
                return
            time.sleep(0.5)

    return send


@pytest.mark.slow  # 6 training processes, about 100 to 200 s
def test_two_workers_stopped_and_resumed_equal_their_straight_run(records,
                                                                  tmp_path):
    """Each worker resumes its own shard where it stopped: the chief's last
    checkpoint (weights, optimizer slots, importance table) equals a
    straight run's."""
    init = write_init_checkpoint(str(tmp_path / "init" / "ckpt"), records[0])
    decay = 2000  # the learning rate's schedule, whatever train_steps is

    def run(name, model_dir, steps, while_running=None):
        return run_workers(tmp_path, name, [
            "--experiment=token_drop_bert_tiny", "--mode=train",
            f"--model_dir={model_dir}", "--params_override="
            f"{SHRINK},trainer.train_steps={steps},"
            "trainer.optimizer_config.learning_rate.polynomial.decay_steps="
            f"{decay},task.train_data.input_path={records[0]},"
            f"task.init_checkpoint={init},task.train_data.seed=5,"
            "runtime.distribution_strategy=multi_worker_mirrored"],
            while_running=while_running)

    stopped = run("stopped", tmp_path / "resumed", decay,
                  sigterm_the_other_worker_after_step(4, decay))
    saved = []
    for code, log, _, _ in stopped:
        assert code == EXIT_CODE, log[-3000:]
        saved.append(int(re.search(r"checkpoint saved at step (\d+)",
                                   log).group(1)))
    assert saved[0] == saved[1] >= 4, saved
    end = saved[0] + 4
    for name, model_dir in (("rerun", "resumed"), ("straight", "straight")):
        for code, log, _, _ in run(name, tmp_path / model_dir, end):
            assert code == 0, log[-3000:]
            if name == "rerun":
                assert f"(step {saved[0]} of {end})" in log, log[-3000:]
    resumed, straight = (
        checkpoint_values(tf.train.latest_checkpoint(str(tmp_path / d)))
        for d in ("resumed", "straight"))
    assert sorted(resumed) == sorted(straight)
    assert any("OPTIMIZER_SLOT" in k for k in straight)
    for key, value in straight.items():
        np.testing.assert_allclose(resumed[key], value, rtol=1e-5, atol=1e-6,
                                   err_msg=key)
    assert tf.train.latest_checkpoint(
        str(tmp_path / "resumed")).endswith(f"ckpt-{end}")


def test_a_bad_tf_config_is_one_line(tmp_path):
    env = worker_env(tmp_path)
    env["TF_CONFIG"] = '{"cluster": {"worker": ["127.0.0.1:1"]}'  # no "}"
    result = subprocess.run(
        [sys.executable, TRAIN, "--experiment=token_drop_bert_tiny",
         "--mode=train", f"--model_dir={tmp_path / 'run'}",
         "--params_override=runtime.distribution_strategy="
         "multi_worker_mirrored"], capture_output=True, text=True, env=env,
        cwd=ROOT, timeout=TIMEOUT)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and "Traceback" not in result.stderr, last
    assert last.startswith("train.py: error: runtime.distribution_strategy="
                           "multi_worker_mirrored cannot start this worker "
                           "from TF_CONFIG="), last
    assert not (tmp_path / "run").exists()

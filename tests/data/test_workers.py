"""num_workers > 1: input files built by worker processes, merged in order."""

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from data_testdata import bert_format, read_manifest, shard_records
from data_testdata import tiny_documents, write_text
from token_dropping.data import BuildProfile, PrepareDataConfig
from token_dropping.data import build_pretraining_data
from token_dropping.data import sharded_build


def _config(input_files, **kwargs):
    defaults = dict(input_files=input_files, vocab_size=300, seq_length=32,
                    max_predictions_per_seq=5, dupe_factor=2,
                    shuffle_buffer_size=16, num_train_shards=2,
                    num_validation_shards=1, validation_fraction=0.2)
    defaults.update(kwargs)
    return PrepareDataConfig(**defaults)


def _files(tmp_path, num_files, num_documents=12):
    paths = []
    for i in range(num_files):
        documents = tiny_documents(num_documents, seed=i)
        paths.append(write_text(tmp_path / f"part-{i}.txt",
                                bert_format(documents)))
    return paths


@pytest.mark.parametrize("output_format", ["static", "text"])
def test_one_input_file_gives_the_one_process_records(tmp_path, output_format):
    (path,) = _files(tmp_path, 1, num_documents=30)
    one = _config(path, output_format=output_format)
    build_pretraining_data(one, str(tmp_path / "one"))
    two = _config(path, output_format=output_format, num_workers=2)
    build_pretraining_data(two, str(tmp_path / "two"))
    records = shard_records(tmp_path / "one")
    assert sum(len(r) for r in records.values()) > 20
    assert shard_records(tmp_path / "two") == records
    assert (read_manifest(tmp_path / "two")["splits"] ==
            read_manifest(tmp_path / "one")["splits"])
    assert not [n for n in os.listdir(tmp_path / "two") if n.startswith(".")]


@pytest.mark.slow  # Three builds' worth of worker processes starting.
def test_records_depend_on_the_files_not_on_the_number_of_workers(tmp_path):
    _files(tmp_path, 3)
    pattern = str(tmp_path / "part-*.txt")
    build_pretraining_data(_config(pattern, num_workers=2),
                           str(tmp_path / "two"))
    build_pretraining_data(_config(pattern, num_workers=3),
                           str(tmp_path / "three"))
    assert shard_records(tmp_path / "three") == shard_records(tmp_path / "two")


def test_each_file_is_built_as_if_it_were_alone(tmp_path, caplog):
    """Text records kept in order: the merge is the files' builds, in order.

    Both passes log the files' sizes added up as what they read in the end.
    """
    paths = _files(tmp_path, 3)
    options = dict(output_format="text", shuffle_buffer_size=1,
                   num_train_shards=1, validation_fraction=0.0)
    learned = build_pretraining_data(_config(paths[0], **options),
                                     str(tmp_path / "vocab"))
    options["vocab_file"] = os.path.join(learned.output_dir, "vocab.txt")
    expected = []
    for i, path in enumerate(paths):
        output_dir = str(tmp_path / f"alone-{i}")
        build_pretraining_data(_config(path, **options), output_dir)
        expected += shard_records(output_dir)["train-00000-of-00001.tfrecord"]
    with caplog.at_level("INFO", logger="absl"):
        build_pretraining_data(
            _config(",".join(paths), num_workers=2, **options),
            str(tmp_path / "workers"))
    assert (shard_records(tmp_path / "workers") ==
            {"train-00000-of-00001.tfrecord": expected})
    total = f"{sum(os.path.getsize(p) for p in paths):,}"
    closing = [m for m in (r.getMessage() for r in caplog.records)
               if m.startswith("pass ") and " bytes)" in m]
    assert [m.split(": read")[0] for m in closing] == [
        "pass 1 of 2 (document hashes)", "pass 2 of 2 (records)"]
    assert all(m.endswith(f"; {total} of {total} bytes)") for m in closing)


def test_duplicates_across_files_and_max_documents_over_all_files(tmp_path):
    paths = _files(tmp_path, 3)
    # The second file starts with the first file's first document: dropped.
    repeated = tiny_documents(1, seed=0) + tiny_documents(12, seed=1)
    write_text(paths[1], bert_format(repeated))
    profile = BuildProfile()
    info = build_pretraining_data(
        _config(",".join(paths), num_workers=2, max_documents=20,
                validation_fraction=0.0), str(tmp_path / "out"), profile)
    manifest = read_manifest(info.output_dir)
    assert manifest["num_duplicate_documents"] == 1
    assert manifest["splits"]["train"]["num_documents"] == 19
    documents = tiny_documents(12, seed=0) + repeated[:8]
    measured = profile.as_dict()
    assert measured["text_bytes"] == sum(
        len(s.encode("utf-8")) for d in documents for s in d)
    assert "workers" in measured["stages"]


@pytest.mark.parametrize("change, message", [
    (dict(num_workers=0), "num_workers=0 must be at least 1"),
    (dict(num_workers=2, input_files=""), "num_workers=2 needs input_files"),
])
def test_bad_num_workers_is_one_line_before_anything_is_written(
        tmp_path, change, message):
    (path,) = _files(tmp_path, 1)
    config = _config(**{"input_files": path, **change})
    with pytest.raises(ValueError, match=message):
        build_pretraining_data(config, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_killed_worker_fails_the_build_and_leaves_nothing(tmp_path):
    """A worker killed by the system (out of memory) must not hang the build."""
    paths = _files(tmp_path, 2, num_documents=200)
    output_dir = tmp_path / "out"
    killed = []

    def kill_a_worker():
        while not killed:
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)
                break
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker, daemon=True)
    killer.start()
    with pytest.raises(RuntimeError, match="worker process died"):
        build_pretraining_data(_config(",".join(paths), num_workers=2),
                               str(output_dir))
    assert killed
    assert not output_dir.exists()
    assert not multiprocessing.active_children()


def _pid_after(seconds):
    time.sleep(seconds)
    return os.getpid()


def test_a_sigterm_to_the_workers_is_left_to_the_parent():
    """A SIGTERM to the whole process group (a preemption, `timeout`) reaches
    the workers too: they leave it to the parent (prepare_data stops the
    build, a study finishes its data step and stops) instead of dying, which
    read as "a worker process died (killed, e.g. out of memory)"."""
    with sharded_build.ProcessWorkers(2, 2) as workers:
        ready = set()  # workers that ran a task, so their start is done
        while len(ready) < 2:  # no time limit: the pool starts them
            ready |= set(workers.map(_pid_after, [0.2, 0.2], [1, 1], "start"))
        processes = list(workers.pool._processes.values())
        assert {process.pid for process in processes} == ready
        for process in processes:
            os.kill(process.pid, signal.SIGTERM)
        time.sleep(0.5)  # a worker that dies of it is gone by then
        assert list(workers.map(abs, [-3, -4], [1, 1], "after")) == [3, 4]
        assert all(process.is_alive() for process in processes)
    assert not multiprocessing.active_children()


def test_a_sigterm_to_a_worker_still_starting_is_left_to_the_parent():
    """The same SIGTERM in the first moments of a worker, while it imports
    and before its start ignores SIGTERM, does not kill it either."""
    with sharded_build.ProcessWorkers(2, 2) as workers:
        results = workers.map(abs, [-3, -4], [1, 1], "start")
        processes = list(workers.pool._processes.values())
        assert len(processes) == 2
        for process in processes:  # spawned just now: still starting
            os.kill(process.pid, signal.SIGTERM)
        assert list(results) == [3, 4]
        assert all(process.is_alive() for process in processes)
    assert not multiprocessing.active_children()


REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# Runs tools/prepare_data.py, pausing after the first input file is merged
# (workers are up) once it has touched the file $MARKER.
_PAUSED_TOOL = f"""
import os, runpy, signal
from token_dropping.data import sharded_build
merge = sharded_build._merge
def merge_then_pause(*args):
    merge(*args)
    open(os.environ["MARKER"], "w").close()
    signal.pause()
sharded_build._merge = merge_then_pause
runpy.run_path({os.path.join(REPO, "tools", "prepare_data.py")!r},
               run_name="__main__")
"""


def _workers(pid):
    """The pids of the spawned worker processes of process `pid`."""
    children = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            children += [int(c) for c in f.read().split()]
    workers = []
    for child in children:
        with open(f"/proc/{child}/cmdline", "rb") as f:
            if b"spawn_main" in f.read():
                workers.append(child)
    return workers


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow  # A TensorFlow start-up in a subprocess, and its workers.
def test_sigterm_stops_the_workers_and_removes_what_was_written(tmp_path):
    paths = _files(tmp_path, 3, num_documents=60)
    out, marker = tmp_path / "out", tmp_path / "marker"
    process = subprocess.Popen(
        [sys.executable, "-c", _PAUSED_TOOL, f"--output_dir={out}",
         f"--input_files={','.join(paths)}", "--vocab_size=300",
         "--seq_length=32", "--max_predictions_per_seq=5", "--num_workers=2"],
        env={**os.environ, "MARKER": str(marker),
             "PYTHONPATH": os.pathsep.join([REPO, os.environ.get(
                 "PYTHONPATH", "")])},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not marker.exists() and process.poll() is None:
        time.sleep(0.1)
    assert process.poll() is None, process.communicate()[1]
    workers = _workers(process.pid)
    assert workers
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert not out.exists()
    assert not [pid for pid in workers if _running(pid)]

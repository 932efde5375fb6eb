"""The build's middle with `num_workers` processes, one input file each.

Built on the standard library's `concurrent.futures` process pool (spawn
context, so workers start clean, without the parent's TensorFlow state), or
on an Apache Beam pipeline with `runner` set (`beam_build`: the same worker
functions, one element per file), in two passes:

1. Each worker reads its file and returns a hash per document. The parent
   walks them in file order with the same `DocumentRouter` as the one-stream
   build (duplicates across files dropped, the first document held out,
   `max_documents` counted over all files) and gives each file its plan.
2. Each worker tokenizes, packs and masks its file's documents by the plan
   (`SplitWriter` with the file's `input_shard`: masking seeded by the seed
   and the file's index) and writes the records in order to one file per
   split. The parent merges them in file order through the splits' seeded
   shuffle into the final shards, as soon as each file is done.

The records thus depend on the input, the seed and the file layout, not on
`num_workers`, and one input file gives the records of the one-stream build.
Reading is done twice; the hash pass is cheap next to tokenizing. Each pass
logs its progress through the input's bytes (`read_progress`) file by file:
a file's size counts when a worker has finished it, whatever the order.
"""

from concurrent import futures
import multiprocessing
from multiprocessing import resource_tracker
import os
import signal
import threading
import time

from absl import logging
import tensorflow as tf

from token_dropping.data import build_profile
from token_dropping.data import read_progress
from token_dropping.data import split_writer
from token_dropping.data import vocab
from token_dropping.data import wordpiece

# Sentences per tokenizer call. Large: each batch holding a sentence the fast
# path may not take also pays BertTokenizer's per-call cost (milliseconds).
TOKENIZE_BATCH_SENTENCES = 16384
WORK_DIRNAME = "input-shards"  # The workers' records, removed after merging.
_MERGE_BATCH = 4096  # Records read back per call when merging.
# Plan codes, one per document of a file, in order.
_SKIP, _TRAIN, _VALIDATION = 0, 1, 2


def write_examples(config, corpus, splits, special, output_dir,
                   vocab_filename, run_suffix, profile) -> int:
    """Builds every file of `corpus` in workers into `splits`; closes them.

    Args:
        config: the build's `PrepareDataConfig` (`num_workers` > 1, or a
            Beam `runner`).
        corpus: its `TextFileCorpus`, already scanned (for the files' sizes).
        splits: the parent's `SplitWriter`s by name; workers' records are
            written through their shuffles, their counts added.
        special: the special token ids of the vocab.
        output_dir: the directory the build writes into.
        vocab_filename: the vocab's name in it.
        run_suffix: the build's run mark for the workers' folder, if any.
        profile: the build's profile; workers' time shows as `workers`.

    Returns:
        The number of duplicate documents dropped.
    """
    paths = corpus.paths
    work_dir = os.path.join(output_dir, WORK_DIRNAME + run_suffix)
    tf.io.gfile.makedirs(work_dir)
    sizes = [scan.num_bytes for scan in corpus.scan()]
    profile.push("workers")
    with _workers(config, len(paths), work_dir) as workers:
        digests = list(workers.map(
            _document_digests, [(config, p) for p in paths], sizes,
            "pass 1 of 2 (document hashes): read"))
        plans, num_duplicates = _plan(config, digests)
        tasks = [(config, special, work_dir,
                  os.path.join(output_dir, vocab_filename), paths[i], plans[i],
                  i)
                 for i in range(len(paths))]
        replacements = 0
        results = workers.map(_build_file, tasks, sizes,
                              "pass 2 of 2 (records): read")
        for done, result in enumerate(results):
            _merge(result, splits, profile)
            replacements += result["undecodable_replacements"]
            logging.info("Merged input file %d of %d (%s).", done + 1,
                         len(paths), paths[done])
    tf.io.gfile.rmtree(work_dir)
    profile.pop()
    corpus.undecodable_replacements = replacements
    for split in splits.values():
        split.close()
    return num_duplicates


def _workers(config, num_files, work_dir):
    """What runs the worker functions: local processes or a Beam runner."""
    if config.runner:
        from token_dropping.data import beam_build  # Lazy: the beam extra.
        return beam_build.BeamWorkers(config, work_dir)
    return ProcessWorkers(config.num_workers, num_files)


class ProcessWorkers:
    """Maps tasks over up to `num_workers` spawned processes, one per file.

    A context manager: leaving it normally shuts the pool down; leaving it by
    an error ends the workers, also those still busy.
    """

    def __init__(self, num_workers: int, num_files: int):
        self.num_workers, self.num_files = num_workers, num_files
        processes = min(num_workers, num_files)
        logging.info("Building %d input files with %d worker processes.",
                     num_files, processes)
        # A process pool (not multiprocessing.Pool) so that a worker killed by
        # the system (out of memory) fails the build instead of hanging it.
        self.pool = futures.ProcessPoolExecutor(
            processes, mp_context=multiprocessing.get_context("spawn"),
            initializer=_leave_sigterm_to_the_parent)

    def map(self, function, tasks, sizes, what):
        """Yields `function(task)` of each task, in order (`pool.map`)."""
        # The pool spawns its processes as tasks are submitted. They start
        # with SIGTERM blocked (the mask is inherited) until their initializer
        # ignores it: a SIGTERM to the process group while a worker is still
        # importing would otherwise kill it. The resource tracker unblocks
        # SIGTERM when it (re)starts, so it is made sure of first.
        resource_tracker.ensure_running()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            jobs = [self.pool.submit(function, task) for task in tasks]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return _results_with_progress(jobs, sizes, what)

    def __enter__(self):
        return self

    def __exit__(self, error_type, error, unused_traceback):
        if error is None:
            self.pool.shutdown()
            return
        _stop(self.pool)
        if isinstance(error, futures.process.BrokenProcessPool):
            raise RuntimeError(
                f"A worker process died while building {self.num_files} input "
                f"files with num_workers={self.num_workers} (killed, e.g. out "
                "of memory); nothing was published. Try fewer workers."
            ) from error


def _results_with_progress(jobs, sizes, what):
    """Yields each job's result in order, as `pool.map` does, and logs the
    `sizes` (bytes) of the jobs done so far, in any order."""
    progress = read_progress.ReadProgress(sum(sizes), what)
    lock = threading.Lock()  # Callbacks run in the pool's thread or this one.
    counted = set()

    def count(index):
        with lock:
            if index not in counted:
                counted.add(index)
                progress.add(sizes[index])

    def on_done(job, index):
        if not job.cancelled() and job.exception() is None:
            count(index)

    for index, job in enumerate(jobs):
        job.add_done_callback(lambda job, index=index: on_done(job, index))
    for index, job in enumerate(jobs):
        result = job.result()
        count(index)  # Its callback may not have run yet.
        yield result
    progress.done()


def _leave_sigterm_to_the_parent() -> None:
    """A worker's start: it ignores SIGTERM. A SIGTERM to the whole process
    group (a preemption, `timeout`) is the parent's to act on: prepare_data
    stops the build and removes it, a study finishes the data step and then
    stops; a worker dying of it would instead read as one killed by the
    system ("a worker process died"). The worker started with SIGTERM
    blocked (`ProcessWorkers.map`); one sent meanwhile is dropped here."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _stop(pool) -> None:
    """Ends the workers now, also those still busy (on an error, SIGTERM)."""
    # ProcessPoolExecutor has no public way to stop a running task before
    # Python 3.14 (terminate_workers); its processes are its `_processes`.
    # SIGKILL: the workers ignore SIGTERM (`_leave_sigterm_to_the_parent`).
    processes = list((pool._processes or {}).values())
    for process in processes:
        process.kill()
    pool.shutdown(wait=True, cancel_futures=True)
    for process in processes:
        process.join()


def _plan(config, digests) -> tuple[list[bytes], int]:
    """Each file's plan: skip, train or validation per document."""
    router = split_writer.DocumentRouter(config.validation_fraction)
    remaining = config.max_documents
    plans = []
    for file_digests in digests:
        if remaining is not None:
            file_digests = file_digests[:remaining]
            remaining -= len(file_digests)
        codes = {None: _SKIP, "train": _TRAIN, "validation": _VALIDATION}
        plans.append(bytes(codes[router.route(d)] for d in file_digests))
    return plans, router.num_duplicates


def _document_digests(task) -> list[bytes]:
    """Worker, pass 1: the hash of each document of one file."""
    config, path = task
    corpus = config.make_corpus(paths=[path])
    return [split_writer.document_digest(d)[:16] for d in corpus.documents()]


def _build_file(task) -> dict:
    """Worker, pass 2: one file's records, in order, one file per split."""
    config, special, work_dir, vocab_path, path, plan, index = task
    start = time.process_time()
    tokens = vocab.read_vocab(vocab_path)
    tokenizer = wordpiece.WordPieceIds(vocab_path, tokens,
                                       config.do_lower_case)
    profile = build_profile.NO_PROFILE
    names = ["train"] + (["validation"] if config.validation_fraction else [])
    splits = {name: split_writer.SplitWriter(name, config, tokens, special,
                                             work_dir, profile,
                                             input_shard=index)
              for name in names}
    corpus = config.make_corpus(paths=[path])
    batch, batch_sentences, text_bytes = [], 0, 0
    for code, document in zip(plan, corpus.documents()):
        text_bytes += sum(len(s.encode("utf-8")) for s in document)
        if code == _SKIP:
            continue
        batch.append((splits["validation" if code == _VALIDATION
                              else "train"], document))
        batch_sentences += len(document)
        if batch_sentences >= TOKENIZE_BATCH_SENTENCES:
            split_writer.add_documents(tokenizer, batch, config, profile)
            batch, batch_sentences = [], 0
    split_writer.add_documents(tokenizer, batch, config, profile)
    result = {"splits": {}, "undecodable_replacements":
              corpus.undecodable_replacements, "text_bytes": text_bytes}
    for name, split in splits.items():
        split.close()
        result["splits"][name] = {
            "file": os.path.join(work_dir, split.writer.filenames[0]),
            "counts": split.counts, "num_overlong": split.packer.num_overlong}
    result["cpu_seconds"] = time.process_time() - start
    return result


def _merge(result, splits, profile) -> None:
    """Adds one file's records, in order, and counts to the parent's
    splits."""
    for name, part in result["splits"].items():
        split = splits[name]
        for key, value in part["counts"].items():
            split.counts[key] += value
        split.packer.num_overlong += part["num_overlong"]
        # In batches: one eager call per record cost ~180 us, most of a
        # two-worker build's time.
        for records in tf.data.TFRecordDataset(part["file"]).batch(
                _MERGE_BATCH).as_numpy_iterator():
            split.writer.write_many(records)
        tf.io.gfile.remove(part["file"])
    profile.add_worker(result["text_bytes"], result["cpu_seconds"])

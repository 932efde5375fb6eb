"""ReadProgress: bytes read of the input's size, rate and ETA, in the build."""

from concurrent import futures
import os
import re
import threading

import numpy as np
import pytest

from data_testdata import WORDS, bert_format, tiny_documents, write_lines
from data_testdata import write_text
from token_dropping.data import PrepareDataConfig, TextFileCorpus
from token_dropping.data import build_pretraining_data
from token_dropping.data import read_progress
from token_dropping.data import sharded_build
from token_dropping.data import text_files
from token_dropping.data import vocab
from token_dropping.data.builder import (  # pylint: disable=protected-access
    _ReplayableDocuments)

MB = 10**6
# The closing line ends "(R MB/s; READ of TOTAL bytes)".
_DONE_BYTES = re.compile(r"; ([\d,]+) of ([\d,]+) bytes\)")


@pytest.mark.parametrize("bytes_read, total, elapsed, expected", [
    # 412/1024 = 40.2%; 412 MB in 132.9 s = 3.100 MB/s; 612 MB left at that
    # rate = 197.4 s, which rounds to 3 min.
    (412 * MB, 1024 * MB, 132.9,
     "read 412.0 of 1,024.0 MB (40%), 3.1 MB/s; about 3 min left"),
    # 900 MB in 90 s = 10 MB/s; 100 MB left = 10 s.
    (900 * MB, 1000 * MB, 90.0,
     "read 900.0 of 1,000.0 MB (90%), 10.0 MB/s; about 10 s left"),
    # 100 MB in 100 s = 1 MB/s; 9,900 MB left = 9,900 s = 165 min.
    (100 * MB, 10_000 * MB, 100.0,
     "read 100.0 of 10,000.0 MB (1%), 1.0 MB/s; about 2 h 45 min left"),
    # Nothing read yet: no rate, so no time left is claimed.
    (0, 1000 * MB, 12.0,
     "read 0.0 of 1,000.0 MB (0%), 0.0 MB/s; time left not known yet"),
])
def test_progress_line_fraction_rate_and_time_left(bytes_read, total, elapsed,
                                                   expected):
    assert read_progress.progress_line("read", bytes_read, total,
                                       elapsed) == expected


def test_lines_every_ten_seconds_of_a_fake_clock_and_a_closing_line(
        caplog, clock):
    progress = read_progress.ReadProgress(2_000 * MB, clock=clock)
    with caplog.at_level("INFO", logger="absl"):
        for now, bytes_read in [(5, 100 * MB), (10, 300 * MB), (15, 400 * MB),
                                (25, 500 * MB), (400, 2_000 * MB)]:
            clock.now = now
            progress.update(bytes_read)
        closing = progress.done()
    lines = [r.getMessage() for r in caplog.records]
    # At 10 s: 300 MB at 30 MB/s, 1,700 MB left = 56.7 s.
    # At 25 s (15 s after): 500 MB at 20 MB/s, 1,500 MB left = 75 s = 1 min.
    # At 400 s: 2,000 MB at 5 MB/s, nothing left.
    assert lines == [
        "read 300.0 of 2,000.0 MB (15%), 30.0 MB/s; about 57 s left",
        "read 500.0 of 2,000.0 MB (25%), 20.0 MB/s; about 1 min left",
        "read 2,000.0 of 2,000.0 MB (100%), 5.0 MB/s; about 0.0 s left",
        "read 2,000.0 of 2,000.0 MB in 7 min (5.0 MB/s; "
        "2,000,000,000 of 2,000,000,000 bytes)",
    ]
    assert closing == lines[-1]


@pytest.mark.parametrize("input_format",
                         ["sentence_per_line", "document_per_line"])
def test_the_corpus_counts_the_bytes_on_disk_plain_and_gzipped(
        tmp_path, input_format):
    documents = tiny_documents(6000, seed=3)
    paths = [write_text(tmp_path / "a.txt", bert_format(documents[:100])),
             write_text(tmp_path / "b.txt.gz", bert_format(documents[100:]),
                        gz=True)]
    sizes = [os.path.getsize(p) for p in paths]
    assert sizes[1] > 2 * 128 * 1024  # More than two of gzip's reads.
    corpus = TextFileCorpus(",".join(paths), input_format)
    positions = []
    for _ in corpus.documents():
        positions.append(corpus.bytes_read)
    assert corpus.bytes_read == corpus.num_input_bytes == sum(sizes)
    assert positions == sorted(positions)
    # The first file alone, wholly read; then the gzip file, read by parts.
    assert sizes[0] in positions
    assert len({p for p in positions if sizes[0] < p < sum(sizes)}) >= 2


def test_a_replayed_corpus_replays_its_byte_positions(tmp_path, monkeypatch):
    """A corpus read once for the vocab is replayed from memory for the
    records; progress must then move as it did when reading the files."""
    # Blocks smaller than the files, so that positions move inside each.
    monkeypatch.setattr(text_files, "_READ_BLOCK_BYTES", 256)
    documents = _ReplayableDocuments(
        TextFileCorpus(",".join(_two_files(tmp_path))), max_documents=None)
    positions = []
    for _ in range(2):
        positions.append([documents.bytes_read for _ in documents])
        positions[-1].append(documents.bytes_read)
    assert documents._cached is not None  # pylint: disable=protected-access
    assert positions[1] == positions[0]
    assert len(set(positions[0])) > 2


def _two_files(tmp_path):
    documents = tiny_documents(30, seed=5)
    return [write_text(tmp_path / "one.txt", bert_format(documents[:15])),
            write_text(tmp_path / "two.txt.gz", bert_format(documents[15:]),
                       gz=True)]


def _done_lines(caplog, what):
    return [m for m in (r.getMessage() for r in caplog.records)
            if m.startswith(what) and _DONE_BYTES.search(m)]


@pytest.mark.parametrize("learn_vocab", [False, True])
def test_a_build_of_two_files_ends_with_their_sizes(tmp_path, caplog,
                                                    learn_vocab):
    """Learning the vocab reads the files first; the build then replays."""
    paths = _two_files(tmp_path)
    options = dict(input_files=",".join(paths), vocab_size=300, seq_length=32,
                   max_predictions_per_seq=5)
    if not learn_vocab:
        options["vocab_file"] = write_lines(
            tmp_path / "vocab.txt", vocab.learn_vocab(
                [s for d in tiny_documents(30, seed=5) for s in d], 300))
    with caplog.at_level("INFO", logger="absl"):
        build_pretraining_data(PrepareDataConfig(**options),
                               str(tmp_path / "out"))
    (line,) = _done_lines(caplog, "read ")
    total = sum(os.path.getsize(p) for p in paths)
    assert _DONE_BYTES.search(line).groups() == (f"{total:,}", f"{total:,}")


def test_no_progress_through_bytes_without_a_known_size():
    assert read_progress.NO_PROGRESS.update(5) is None
    assert read_progress.NO_PROGRESS.done() is None


def test_workers_report_each_files_size_when_done_in_any_order(caplog):
    """Results come in task order; sizes count as tasks finish (a last)."""
    released = threading.Event()
    tasks = [lambda: released.wait() and "a", lambda: "b",
             lambda: released.set() or "c"]
    sizes = [100, 20, 3]
    with futures.ThreadPoolExecutor(3) as pool, caplog.at_level("INFO", logger="absl"):
        jobs = [pool.submit(task) for task in tasks]
        with_progress = sharded_build._results_with_progress  # pylint: disable=W0212
        results = list(with_progress(jobs, sizes, "pass"))
    assert results == ["a", "b", "c"]
    (line,) = _done_lines(caplog, "pass ")
    assert _DONE_BYTES.search(line).groups() == ("123", "123")


class TickingClock:
    """A fake clock that moves 10 s at each reading: every update logs."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 10.0
        return self.now


def _percents(caplog, what):
    return [int(m.group(1)) for m in (
        re.match(re.escape(what) + r" [\d.,]+ of [\d.,]+ MB \((\d+)%\)",
                 r.getMessage()) for r in caplog.records) if m]


def test_scan_logs_its_progress_through_the_files_sizes(tmp_path, caplog,
                                                        monkeypatch):
    paths = [write_text(tmp_path / f"{name}.txt", "word\n" * 200_000)
             for name in "ab"]
    monkeypatch.setattr(text_files, "_SCAN_CHUNK_BYTES", 200_000)
    corpus = TextFileCorpus(",".join(paths))
    corpus.clock = TickingClock()
    with caplog.at_level("INFO", logger="absl"):
        corpus.scan()
    # Five reads of each 1 MB file, then the read that finds its end.
    assert _percents(caplog, "scan: read") == [10, 20, 30, 40, 50, 50,
                                               60, 70, 80, 90, 100, 100]
    (line,) = _done_lines(caplog, "scan: read ")
    assert _DONE_BYTES.search(line).groups() == ("2,000,000", "2,000,000")


def test_counting_the_vocab_samples_words_logs_progress(caplog):
    rng = np.random.default_rng(0)
    # 1,000 sentences of 50 bytes: ten batches of 100, 10% each.
    sentences = [(" ".join(rng.choice(WORDS, 12)) + " " + "z" * 50)[:50]
                 for _ in range(1000)]
    with caplog.at_level("INFO", logger="absl"):
        vocab.learn_vocab(sentences, 300, batch_size=100,
                          clock=TickingClock())
    assert _percents(caplog, "vocab: counted the words of") == list(
        range(10, 101, 10))
    (line,) = _done_lines(caplog, "vocab: counted the words of ")
    assert _DONE_BYTES.search(line).groups() == ("50,000", "50,000")
    messages = [r.getMessage() for r in caplog.records]
    learning = [m for m in messages if m.startswith("vocab: learning")]
    assert len(learning) == 1
    assert messages.index(learning[0]) > messages.index(line)


@pytest.mark.parametrize("vocab_max_sentences", [1_000_000, 20])
def test_a_learned_vocabs_sample_logs_the_input_read(tmp_path, caplog,
                                                     vocab_max_sentences):
    paths = _two_files(tmp_path)
    total = sum(os.path.getsize(p) for p in paths)
    config = PrepareDataConfig(input_files=",".join(paths), vocab_size=300,
                               seq_length=32, max_predictions_per_seq=5,
                               vocab_max_sentences=vocab_max_sentences)
    with caplog.at_level("INFO", logger="absl"):
        build_pretraining_data(config, str(tmp_path / "out"))
    (line,) = _done_lines(caplog, "vocab sample: read ")
    sample_bytes = int(_DONE_BYTES.search(line).group(1).replace(",", ""))
    if vocab_max_sentences > 1000:  # All of it.
        assert sample_bytes == total
    else:  # 20 sentences are in the first file: the second is not read.
        assert sample_bytes == os.path.getsize(paths[0]) < total

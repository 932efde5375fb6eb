"""ShardedRecordWriter.write_many, in calls of any size, writes what the
per-record shuffle it replaced wrote: the same files, byte for byte, and the
generator left in the same state. Its `Progress` logs counts on a fake clock."""

import os

import numpy as np

from token_dropping.data.record_writer import Progress, ShardedRecordWriter


def _files(directory):
    return {name: open(os.path.join(directory, name), "rb").read()
            for name in sorted(os.listdir(directory))}


def _per_record_write(writer, record):
    """The per-record `write` from before `write_many`, verbatim: the
    reference."""
    if len(writer._buffer) < writer.shuffle_buffer_size:
        writer._buffer.append(record)
        return
    index = writer.rng.integers(len(writer._buffer))
    writer._emit(writer._buffer[index])
    writer._buffer[index] = record


def test_write_many_equals_one_write_per_record(tmp_path):
    draw = np.random.default_rng(0)
    for trial in range(40):
        buffer_size = int(draw.integers(1, 30))
        records = [f"record {i}".encode() for i in
                   range(int(draw.integers(0, 100)))]
        # The records in a few calls of any size, empty ones included.
        cuts = sorted(draw.integers(0, len(records) + 1, size=3).tolist())
        directories = [tmp_path / f"{trial}-{way}" for way in ("one", "many")]
        writers = []
        for directory in directories:
            directory.mkdir()
            writers.append(ShardedRecordWriter(
                str(directory), "train", 3, buffer_size,
                rng=np.random.default_rng(trial)))
        for record in records:
            _per_record_write(writers[0], record)
        for start, end in zip([0] + cuts, cuts + [len(records)]):
            writers[1].write_many(records[start:end])
        states = [w.rng.bit_generator.state for w in writers]
        for writer in writers:
            writer.close()
        assert states[0] == states[1]
        assert _files(directories[0]) == _files(directories[1]), trial
        assert writers[1].num_records == len(records)


def test_progress_logs_the_count_every_ten_seconds_and_at_the_end(
        caplog, clock):
    progress = Progress("train examples", clock=clock)
    with caplog.at_level("INFO", logger="absl"):
        for now in [1, 2, 10, 11, 19, 20.5, 95]:
            clock.now = now
            progress.update(300)
        progress.update(3)  # no time since the last line: none
        clock.now = 125.0
        progress.done()
    # Lines at 10 s (900 in 10 s), 20.5 s (10.5 s later; 1,800 in 20.5 s =
    # 87.8/s) and 95 s (2,100 in 95 s = 22.1/s); at the end 2,103 in 125 s
    # = 16.8/s, 125 s rounded to 2 min.
    assert [r.getMessage() for r in caplog.records] == [
        "train examples: 900 so far (90/s)",
        "train examples: 1800 so far (88/s)",
        "train examples: 2100 so far (22/s)",
        "train examples: 2103 in 2 min (17/s)",
    ]

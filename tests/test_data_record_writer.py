"""ShardedRecordWriter.write_many writes what one `write` per record writes:
the same files, byte for byte, and the generator left in the same state."""

import os

import numpy as np

from token_dropping.data.record_writer import ShardedRecordWriter


def _files(directory):
    return {name: open(os.path.join(directory, name), "rb").read()
            for name in sorted(os.listdir(directory))}


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
            writers[0].write(record)
        for start, end in zip([0] + cuts, cuts + [len(records)]):
            writers[1].write_many(records[start:end])
        states = [w.rng.bit_generator.state for w in writers]
        for writer in writers:
            writer.close()
        assert states[0] == states[1]
        assert _files(directories[0]) == _files(directories[1]), trial
        assert writers[1].num_records == len(records)

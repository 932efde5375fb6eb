"""ShardedRecordWriter: shuffled, sharded TFRecord output with progress.

Examples pass through a seeded shuffle buffer (like `tf.data`'s `shuffle`, but
reproducible) so neighbouring sequences of a document, and the `dupe_factor`
maskings of one sequence, are spread out; they are then dealt round-robin to
`num_shards` files, which Model Garden's `InputReader` interleaves when reading.
"""

import itertools
import time
from typing import Callable

from absl import logging
import numpy as np
import tensorflow as tf

from token_dropping.common import progress

_LOG_EVERY_SECONDS = 10.0


def shard_filename(prefix: str, index: int, num_shards: int,
                   run_suffix: str = "") -> str:
    """`run_suffix`: `.run-ID` for a build written in place (`dataset_dir`)."""
    return f"{prefix}-{index:05d}-of-{num_shards:05d}{run_suffix}.tfrecord"


def shard_pattern(prefix: str, num_shards: int, run_suffix: str = "") -> str:
    """The glob matching every shard of `prefix`, for an `input_path`."""
    return f"{prefix}-*-of-{num_shards:05d}{run_suffix}.tfrecord"


class Progress:
    """Logs a count and its rate every few seconds, and a summary at the end.

    Example:
    >>> progress = Progress("train examples")
    >>> for _ in range(3):
    ...   progress.update()
    >>> progress.done()  # "train examples: 3 in 0.0 s (... /s)"
    """

    def __init__(self, what: str, every_seconds: float = _LOG_EVERY_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.what = what
        self.meter = progress.Meter(every_seconds=every_seconds, clock=clock)

    @property
    def count(self) -> int:
        return self.meter.done

    def update(self, n: int = 1) -> None:
        if self.meter.add(n):
            logging.info("%s: %d so far (%.0f/s)", self.what, self.count,
                         self.meter.rate)

    def done(self) -> None:
        self.meter.update()
        logging.info("%s: %d in %s (%.0f/s)", self.what, self.count,
                     progress.format_duration(self.meter.elapsed),
                     self.meter.rate)


class ShardedRecordWriter:
    """Writes serialized records to shards through a seeded shuffle buffer.

    Example:
    >>> rng = np.random.default_rng(0)
    >>> with ShardedRecordWriter("/tmp/d", "train", 4, rng=rng) as writer:
    ...     writer.write(example.SerializeToString())

    Args:
        output_dir: the directory for the shard files.
        prefix: the shard name prefix, e.g. `train`.
        num_shards: how many files to deal the records to.
        shuffle_buffer_size: records held for shuffling; 1 keeps the order.
        rng: the generator that decides the order.
        run_suffix: marks the file names with a build's run id (see
            `shard_filename`).
    """

    def __init__(self, output_dir: str, prefix: str, num_shards: int,
                 shuffle_buffer_size: int = 10_000,
                 rng: np.random.Generator | None = None,
                 run_suffix: str = ""):
        self.output_dir = output_dir
        self.prefix = prefix
        self.num_shards = num_shards
        self.shuffle_buffer_size = max(1, shuffle_buffer_size)
        self.rng = rng or np.random.default_rng(0)
        self.filenames = [shard_filename(prefix, i, num_shards, run_suffix)
                          for i in range(num_shards)]
        self.num_records = 0
        self.progress = Progress(f"{prefix} examples")
        self._buffer = []
        self._writers = [tf.io.TFRecordWriter(f"{output_dir}/{name}")
                         for name in self.filenames]

    def write(self, record: bytes) -> None:
        self.write_many((record,))

    def write_many(self, records) -> None:
        """Writes each record in order through the shuffle buffer: the
        buffer fills first, then each record takes the place of a random
        one, which goes out."""
        buffer, size = self._buffer, self.shuffle_buffer_size
        records = iter(records)
        if len(buffer) < size:  # Fill the buffer first, drawing nothing.
            buffer.extend(itertools.islice(records, size - len(buffer)))
        integers, emit = self.rng.integers, self._emit
        for record in records:
            index = integers(size)
            emit(buffer[index])
            buffer[index] = record

    def close(self) -> None:
        """Writes what is left in the buffer, in random order; closes files."""
        for index in self.rng.permutation(len(self._buffer)):
            self._emit(self._buffer[index])
        self._buffer = []
        for writer in self._writers:
            writer.close()
        self.progress.done()

    def __enter__(self) -> "ShardedRecordWriter":
        return self

    def __exit__(self, exc_type, *unused) -> None:
        if exc_type is None:
            self.close()
        else:
            for writer in self._writers:
                writer.close()

    def _emit(self, record: bytes) -> None:
        self._writers[self.num_records % self.num_shards].write(record)
        self.num_records += 1
        self.progress.update()

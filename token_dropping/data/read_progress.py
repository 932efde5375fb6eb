"""ReadProgress: bytes read of the input's known size, its rate and an ETA.

A build of text files knows its total before it starts (`TextFileCorpus.scan`
reads every file once and keeps each one's size), so it logs every few
seconds how far through the input it is, e.g.
`read 412.0 of 1,024.0 MB (40%), 3.1 MB/s; about 3 min left`, and at the end
the total and the time it took. Bytes are the files' bytes on disk: for a
`.gz` file the compressed bytes, so the total equals the files' sizes. The
rate is the average since the start, and the time left is what remains of
the total at that rate. Sources without a known size (the embedded corpus, a
TFDS dataset) have none of this; their builds log the example counts of
`record_writer.Progress` only. MB are 10**6 bytes, as in `build_profile`.

Example:
>>> progress = ReadProgress(total_bytes=corpus.num_input_bytes)
>>> for document in corpus.documents():
...     progress.update(corpus.bytes_read)
>>> progress.done()  # "read 1,024.0 of 1,024.0 MB in 5 min 30 s (3.1 MB/s)"
"""

import time
from typing import Callable

from absl import logging

from token_dropping.common import progress
from token_dropping.common.progress import format_duration

_LOG_EVERY_SECONDS = 10.0
_MB = 1e6


def progress_line(what: str, bytes_read: int, total_bytes: int,
                  elapsed: float) -> str:
    """One line of progress: how much, what share, how fast, how long left.

    The rate is `bytes_read / elapsed`; the time left is
    `(total_bytes - bytes_read) / rate`, unknown until some bytes are read.
    """
    fraction = progress.fraction(bytes_read, total_bytes)
    rate = progress.rate(bytes_read, elapsed)
    line = (f"{what} {bytes_read / _MB:,.1f} of {total_bytes / _MB:,.1f} MB "
            f"({fraction:.0%}), {rate / _MB:,.1f} MB/s; ")
    left = progress.seconds_left(bytes_read, total_bytes, rate)
    if left is None:
        return line + "time left not known yet"
    return line + f"about {format_duration(left)} left"


def done_line(what: str, bytes_read: int, total_bytes: int,
              elapsed: float) -> str:
    """The closing line: what was read of the total, in what time, how fast."""
    rate = progress.rate(bytes_read, elapsed)
    return (f"{what} {bytes_read / _MB:,.1f} of {total_bytes / _MB:,.1f} MB "
            f"in {format_duration(elapsed)} ({rate / _MB:,.1f} MB/s; "
            f"{bytes_read:,} of {total_bytes:,} bytes)")


class ReadProgress:
    """Logs bytes read of a known total every few seconds, and at the end.

    Example:
    >>> progress = ReadProgress(total_bytes=2_000_000)
    >>> progress.update(1_000_000)  # logs if 10 s passed since the last line
    >>> progress.done()

    Args:
        total_bytes: the size of the whole input, in bytes.
        what: the line's first word(s), e.g. `read`.
        every_seconds: the least time between two lines.
        clock: the seconds clock (tests pass a fake one).
    """

    def __init__(self, total_bytes: int, what: str = "read",
                 every_seconds: float = _LOG_EVERY_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.total_bytes = total_bytes
        self.what = what
        self.meter = progress.Meter(total_bytes, every_seconds=every_seconds,
                                    clock=clock)

    @property
    def bytes_read(self) -> int:
        return self.meter.done

    def update(self, bytes_read: int) -> None:
        """Sets the bytes read so far; logs a line if it is time to."""
        if self.meter.update(bytes_read):
            logging.info("%s", progress_line(self.what, bytes_read,
                                             self.total_bytes,
                                             self.meter.elapsed))

    def add(self, num_bytes: int) -> None:
        """Counts `num_bytes` more (a whole file a worker finished)."""
        self.update(self.bytes_read + num_bytes)

    def done(self) -> str:
        """Logs and returns the closing line."""
        self.meter.update()
        line = done_line(self.what, self.bytes_read, self.total_bytes,
                         self.meter.elapsed)
        logging.info("%s", line)
        return line


class _NoProgress:
    """What a build of a source without a known size uses: does nothing."""

    def update(self, bytes_read: int) -> None:
        pass

    def add(self, num_bytes: int) -> None:
        pass

    def done(self) -> None:
        pass


NO_PROGRESS = _NoProgress()

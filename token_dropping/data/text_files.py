"""TextFileCorpus: documents from text files, plain or gzipped, by glob.

Two layouts are read:

* `sentence_per_line`, the original BERT format that Model Garden's
    `create_pretraining_data.py` reads: one sentence per line, a blank line
    between documents.
* `document_per_line`: one document per line (e.g. a Wikipedia dump flattened
    by WikiExtractor); each line is split into sentences.

Files are read through `tf.io.gfile`, so patterns may name GCS or other
TensorFlow file systems. Before anything is built, `scan()` reads every file
once: its SHA-256 goes into the dataset's fingerprint (so a file rewritten at
the same path is noticed), and a file that cannot be read, a `.gz` that is not
gzip or is cut short, or one whose bytes are more than 1% not UTF-8 text (a
binary file, another encoding) stops the run naming the file. With
`allow_undecodable` such bytes are replaced by U+FFFD and counted in
`undecodable_replacements`.
"""

import codecs
import dataclasses
import gzip
import hashlib
import re
import time
import zlib
from typing import Callable, Iterator

import tensorflow as tf

from token_dropping.data import read_progress
from token_dropping.data import text
from token_dropping.common import files
from token_dropping.common.errors import UserError

INPUT_FORMATS = ("sentence_per_line", "document_per_line")
# Above this share of bytes that are not UTF-8 text (or are NUL), a file is
# taken for binary or for another encoding.
MAX_UNDECODABLE_FRACTION = 0.01
_SCAN_CHUNK_BYTES = 1 << 20
# Small enough that progress moves within a file (also a gzip one).
_READ_BLOCK_BYTES = 1 << 18
# Python's "surrogateescape" decoding turns each undecodable byte into one of
# these, so they count bytes exactly.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
# What ends a line of an input file: "\r\n" (Windows), "\n", "\r" (old Mac).
# Not `str.splitlines`, which also splits at U+2028, "\x0c" and others.
LINE_END = re.compile("\r\n|\r|\n")
_LINE_END_BYTES = re.compile(b"\r\n|\r|\n")


@dataclasses.dataclass(frozen=True)
class FileScan:
    """What one reading of an input file found.

    Attributes:
        path: the file.
        num_bytes: its size on disk.
        sha256: the hash of those bytes (compressed ones for `.gz`).
        num_text_bytes: its size as text (decompressed for `.gz`).
        num_undecodable_bytes: text bytes that are not UTF-8, or are NUL.
    """
    path: str
    num_bytes: int
    sha256: str
    num_text_bytes: int
    num_undecodable_bytes: int


class _CountingReader:
    """A binary file object that counts the bytes read from it."""

    def __init__(self, raw):
        self.raw = raw
        self.num_bytes = 0

    def read(self, size=-1) -> bytes:
        chunk = self.raw.read(size)
        self.num_bytes += len(chunk)
        return chunk


class _HashingReader(_CountingReader):
    """A binary file object that hashes and counts what is read from it."""

    def __init__(self, raw):
        super().__init__(raw)
        self.digest = hashlib.sha256()

    def read(self, size=-1) -> bytes:
        chunk = super().read(size)
        self.digest.update(chunk)
        return chunk


def scan_file(path: str,
              on_bytes: Callable[[int], None] | None = None) -> FileScan:
    """Reads `path` once: its hash, and how much of it is not UTF-8 text.

    `on_bytes`, if given, gets the file's bytes read so far after each read.

    Raises:
        UserError: naming the file if it cannot be read, or if it ends in
            `.gz` and is not gzip, is corrupt, or is cut short.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    num_text_bytes = num_undecodable = 0
    try:
        with tf.io.gfile.GFile(path, "rb") as raw:
            hashing = _HashingReader(raw)
            stream = (gzip.GzipFile(fileobj=hashing) if path.endswith(".gz")
                      else hashing)
            final = False
            while not final:
                chunk = stream.read(_SCAN_CHUNK_BYTES)
                final = not chunk
                num_text_bytes += len(chunk)
                num_undecodable += chunk.count(b"\0")
                decoded = decoder.decode(chunk, final=final)
                try:
                    decoded.encode("utf-8")  # Fails only on escaped bytes.
                except UnicodeEncodeError:
                    num_undecodable += len(_ESCAPED_BYTE.findall(decoded))
                if on_bytes is not None:
                    on_bytes(hashing.num_bytes)
    except gzip.BadGzipFile as e:
        raise UserError(f"input file {path!r} ends in .gz but is not gzip "
                        f"({e}); decompress it or drop the .gz suffix.") from e
    except (EOFError, zlib.error) as e:
        raise UserError(f"input file {path!r} is a damaged or truncated gzip "
                        f"file ({e}); `gzip -t` checks it.") from e
    except tf.errors.OpError as e:
        raise UserError(f"input file {path!r} cannot be read: "
                        f"{e.message}") from e
    return FileScan(path, hashing.num_bytes, hashing.digest.hexdigest(),
                    num_text_bytes, num_undecodable)


def _size_or_zero(path: str) -> int:
    """The file's size; 0 if it cannot be stat'ed (`scan_file` then says
    why it cannot be read)."""
    try:
        return tf.io.gfile.stat(path).length
    except tf.errors.OpError:
        return 0


def match_files(input_files: str) -> list[str]:
    """Expands comma-separated globs: pattern order, sorted within, no repeats.

    Raises:
        UserError: if a pattern matches no files, or matches a directory.
    """
    return files.match_files(input_files, "input_files", file_glob="*.txt")


class TextFileCorpus:
    """Documents (lists of sentences) read from text files.

    Example:
    >>> corpus = TextFileCorpus("/data/wiki/*.txt.gz,/data/books/*.txt")
    >>> for sentences in corpus.documents():
    ...   ...

    Args:
        input_files: comma-separated glob patterns; `.gz` files are
            decompressed.
        input_format: `sentence_per_line` (BERT's format: blank line between
            documents) or `document_per_line`.
        allow_undecodable: read files of which more than
            `MAX_UNDECODABLE_FRACTION` of the bytes are not UTF-8 text,
            replacing those bytes; False stops at such a file.
        paths: the files, already matched (one worker's input shard); None
            matches `input_files`.

    Raises:
        UserError: for an unknown format or a pattern that matches no files
            or a directory.
    """

    def __init__(self, input_files: str,
                 input_format: str = "sentence_per_line",
                 allow_undecodable: bool = False,
                 paths: list[str] | None = None):
        if input_format not in INPUT_FORMATS:
            raise UserError(f"input_format={input_format!r} is not one of "
                            f"{', '.join(INPUT_FORMATS)}.")
        self.input_files = input_files
        self.input_format = input_format
        self.allow_undecodable = allow_undecodable
        self.paths = match_files(input_files) if paths is None else paths
        self.undecodable_replacements = 0
        # The files' bytes consumed by `documents()` so far (compressed ones
        # for `.gz`), for `read_progress`; at the end, `num_input_bytes`.
        self.bytes_read = 0
        self.clock = time.monotonic  # For `scan`'s progress; tests fake it.
        self._scans = None

    def scan(self) -> list[FileScan]:
        """Reads every file once (then remembers) and checks it is text.

        Raises:
            UserError: naming the first file that cannot be read, is a bad
                `.gz`, or (unless `allow_undecodable`) is not UTF-8 text.
        """
        if self._scans is None:
            scans = self._scan_files()
            for scan in scans:
                share = scan.num_undecodable_bytes / max(scan.num_text_bytes, 1)
                if share > MAX_UNDECODABLE_FRACTION and not (
                        self.allow_undecodable):
                    raise UserError(
                        f"input file {scan.path!r} is not UTF-8 text: "
                        f"{scan.num_undecodable_bytes:,} of its "
                        f"{scan.num_text_bytes:,} bytes ({share:.1%}) are not "
                        f"UTF-8 or are NUL, above the "
                        f"{MAX_UNDECODABLE_FRACTION:.0%} limit; convert it to "
                        "UTF-8, leave it out, or set allow_undecodable "
                        "(--allow_undecodable) to read it with those bytes "
                        "replaced.")
            self._scans = scans
        return self._scans

    def _scan_files(self) -> list[FileScan]:
        """`scan_file` of each path, logging progress through their sizes."""
        progress = read_progress.ReadProgress(
            sum(_size_or_zero(path) for path in self.paths), "scan: read",
            clock=self.clock)
        scans = []
        for path in self.paths:
            before = progress.bytes_read
            scans.append(scan_file(path, lambda num_bytes, before=before:
                                   progress.update(before + num_bytes)))
        progress.done()
        return scans

    @property
    def num_input_bytes(self) -> int:
        """The files' sizes on disk, added up (`.gz` files compressed)."""
        return sum(scan.num_bytes for scan in self.scan())

    def describe(self) -> dict:
        """What the corpus is, for the manifest and the fingerprint.

        Each file's size and SHA-256 are included (read once by `scan()`), so
        a file rewritten at the same path makes a different dataset.
        """
        return {"name": "text_files", "input_files": self.input_files,
                "input_format": self.input_format,
                "files": [{"path": s.path, "num_bytes": s.num_bytes,
                           "sha256": s.sha256} for s in self.scan()]}

    def documents(self) -> Iterator[list[str]]:
        """Yields each non-empty document as a list of sentences, in order.

        `bytes_read` follows the reading, file by file.
        """
        self.undecodable_replacements = 0
        self.bytes_read = 0
        for path in self.paths:
            if self.input_format == "sentence_per_line":
                yield from self._sentence_per_line(path)
            else:
                for line in self._lines(path):
                    sentences = text.split_sentences(line)
                    if sentences:
                        yield sentences

    def _sentence_per_line(self, path: str) -> Iterator[list[str]]:
        document = []
        for lines in self._blocks(path):
            for line in lines:
                line = line.strip()
                if line:
                    document.append(line)
                elif document:
                    yield document
                    document = []
        if document:
            yield document

    def _lines(self, path: str) -> Iterator[str]:
        for lines in self._blocks(path):
            yield from lines

    def _blocks(self, path: str) -> Iterator[list[str]]:
        """The file's lines (without their line ends), a block at a time.

        Reads `_READ_BLOCK_BYTES` at once and decodes whole blocks: a line at
        a time through `GFile`'s iterator was most of the reading time (and
        TensorFlow's `ReadLine` drops every "\\r" of a plain file, while
        `GzipFile` keeps them). "\\r\\n", "\\n" and "\\r" (old Mac files)
        all end a line, in plain and gzipped files alike (`LINE_END`); a
        block is cut after its last line end, except a final "\\r", which
        waits for the next block in case a "\\n" follows. `bytes_read`
        counts each block (compressed bytes for `.gz`) when it is handed over.
        """
        gz, before = path.endswith(".gz"), self.bytes_read
        with tf.io.gfile.GFile(path, "rb") as raw:
            counting = _CountingReader(raw)
            stream = gzip.GzipFile(fileobj=counting) if gz else counting
            tail = []  # The start of a line that goes on in the next block.
            while True:
                chunk = stream.read(_READ_BLOCK_BYTES)
                # A "\r" at the very end may be the first half of "\r\n".
                end = len(chunk) - 1 if chunk.endswith(b"\r") else len(chunk)
                cut = (max(chunk.rfind(b"\n", 0, end),
                           chunk.rfind(b"\r", 0, end)) + 1
                       if chunk else 0)
                if chunk and not cut:
                    tail.append(chunk)
                    continue
                block = b"".join(tail + [chunk[:cut]]) if tail else chunk[:cut]
                tail = [chunk[cut:]] if cut < len(chunk) else []
                self.bytes_read = before + counting.num_bytes
                if block:
                    yield self._decode_lines(block)
                if not chunk:
                    return

    def _decode_lines(self, block: bytes) -> list[str]:
        try:
            lines = LINE_END.split(block.decode("utf-8"))
        except UnicodeDecodeError:  # Line by line, to count replacements.
            lines = []
            for line in _LINE_END_BYTES.split(block):
                decoded, replaced = text.decode_text(line)
                self.undecodable_replacements += replaced
                lines.append(decoded)
        if not lines[-1]:  # The block ends with a line end.
            lines.pop()
        return lines

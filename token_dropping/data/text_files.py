"""TextFileCorpus: documents from text files, plain or gzipped, by glob.

Two layouts are read:

* `sentence_per_line`, the original BERT format that Model Garden's
    `create_pretraining_data.py` reads: one sentence per line, a blank line
    between documents.
* `document_per_line`: one document per line (e.g. a Wikipedia dump flattened
    by WikiExtractor); each line is split into sentences.

Files are read through `tf.io.gfile`, so patterns may name GCS or other
TensorFlow file systems. Bytes that are not UTF-8 are replaced by U+FFFD and
counted in `undecodable_replacements`, never fatal.
"""

import gzip
from typing import Iterator

import tensorflow as tf

from token_dropping.data import text

INPUT_FORMATS = ("sentence_per_line", "document_per_line")


def match_files(input_files: str) -> list[str]:
    """Expands comma-separated globs: pattern order, sorted within, no repeats.

    Raises:
        ValueError: if a pattern matches no files.
    """
    paths = []
    for pattern in (p.strip() for p in input_files.split(",")):
        if not pattern:
            continue
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise ValueError(
                f"input_files pattern {pattern!r} matches no files.")
        paths.extend(path for path in matched if path not in paths)
    if not paths:
        raise ValueError(f"input_files={input_files!r} names no file patterns.")
    return paths


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

    Raises:
        ValueError: for an unknown format or a pattern that matches no files.
    """

    def __init__(self, input_files: str,
                 input_format: str = "sentence_per_line"):
        if input_format not in INPUT_FORMATS:
            raise ValueError(f"input_format={input_format!r} is not one of "
                             f"{', '.join(INPUT_FORMATS)}.")
        self.input_files = input_files
        self.input_format = input_format
        self.paths = match_files(input_files)
        self.undecodable_replacements = 0

    def describe(self) -> dict:
        """What the corpus is, for the manifest."""
        return {"name": "text_files", "input_files": self.input_files,
                "input_format": self.input_format, "files": self.paths}

    def documents(self) -> Iterator[list[str]]:
        """Yields each non-empty document as a list of sentences, in order."""
        self.undecodable_replacements = 0
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
        for line in self._lines(path):
            line = line.strip()
            if line:
                document.append(line)
            elif document:
                yield document
                document = []
        if document:
            yield document

    def _lines(self, path: str) -> Iterator[str]:
        with tf.io.gfile.GFile(path, "rb") as raw:
            stream = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
            for raw_line in stream:
                line, replaced = text.decode_text(raw_line)
                self.undecodable_replacements += replaced
                yield line

"""The line-by-line reading `TextFileCorpus` did before it read blocks.

From commit 14dbb8a (`documents`, `_sentence_per_line`, `_lines`),
as functions of a corpus, for `tests/data/test_block_reading.py`: one
line at a time, each decoded alone. Since issue 22, "\\r\\n", "\\n" and "\\r"
end a line in plain and gzipped files alike: the lines here are Python's
universal newlines (`io.TextIOWrapper(newline=None)`), with each line's
bytes given back by "surrogateescape" and decoded as before.
"""

import gzip
import io

import tensorflow as tf

from token_dropping.data import text
from token_dropping.data import text_files


def documents(corpus):
    """(documents, undecodable replacements) as the old reader gave them."""
    replaced = [0]
    found = []
    for path in corpus.paths:
        if corpus.input_format == "sentence_per_line":
            found.extend(_sentence_per_line(path, replaced))
        else:
            for line in _lines(path, replaced):
                sentences = text.split_sentences(line)
                if sentences:
                    found.append(sentences)
    return found, replaced[0]


def _sentence_per_line(path, replaced):
    document = []
    for line in _lines(path, replaced):
        line = line.strip()
        if line:
            document.append(line)
        elif document:
            yield document
            document = []
    if document:
        yield document


def _lines(path, replaced):
    gz = path.endswith(".gz")
    with tf.io.gfile.GFile(path, "rb") as raw:
        counting = text_files._CountingReader(raw)  # pylint: disable=protected-access
        stream = gzip.GzipFile(fileobj=counting) if gz else counting
        lines = io.TextIOWrapper(io.BytesIO(stream.read()), encoding="utf-8",
                                 errors="surrogateescape", newline=None)
        for escaped in lines:
            raw_line = escaped.encode("utf-8", "surrogateescape")
            line, count = text.decode_text(raw_line)
            replaced[0] += count
            yield line

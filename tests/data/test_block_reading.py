"""Reading text files a block at a time gives the documents the old
line-by-line reader gave (`data_testdata/per_line.py`), character for
character, with the same count of replaced bytes."""

import random

import pytest

from data_testdata import per_line, write_text
from token_dropping.data import text_files

# Pieces that stress the reader: "\r" (plain files lose it, gzip ones keep
# it), blank and space-only lines, bad UTF-8, U+FFFD already in the text,
# multi-byte characters, long words, NUL.
PIECES = ["word", "two words", " ", "\n", "\n\n", "\r", "\r\n", "\t",
          "caf\u00e9", "\u4e2d\u6587", "\U0001f600", "\ufffd", "x" * 300,
          "Mr. Smith went.", "End? Yes!", "\u2028", "\0"]
BAD = [b"\xff", b"\xe2\x82", b"\xc3", b"\xed\xa0\x80"]


def _content(rng):
    parts = []
    for _ in range(rng.randint(0, 400)):
        if rng.random() < 0.05:
            parts.append(rng.choice(BAD))
        else:
            parts.append(rng.choice(PIECES).encode("utf-8"))
    return b"".join(parts)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("input_format",
                         ["sentence_per_line", "document_per_line"])
def test_blocks_give_the_line_by_line_documents(tmp_path, monkeypatch, gz,
                                                input_format):
    rng = random.Random(7)
    for trial in range(40):
        # Blocks from 1 byte (lines span many) to more than the file.
        monkeypatch.setattr(text_files, "_READ_BLOCK_BYTES",
                            rng.choice([1, 2, 7, 64, 1 << 18]))
        paths = [write_text(tmp_path / f"{trial}-{i}.txt{'.gz' if gz else ''}",
                            _content(rng), gz=gz) for i in range(2)]
        corpus = text_files.TextFileCorpus(",".join(paths), input_format,
                                           allow_undecodable=True)
        expected, replaced = per_line.documents(corpus)
        assert list(corpus.documents()) == expected, trial
        assert corpus.undecodable_replacements == replaced, trial


def test_a_plain_file_loses_its_carriage_returns_as_before(tmp_path):
    path = write_text(tmp_path / "cr.txt", b"a\rb c\r\nd\n\n\re\n")
    gz_path = write_text(tmp_path / "cr.txt.gz", b"a\rb c\r\nd\n\n\re\n",
                         gz=True)
    assert list(text_files.TextFileCorpus(path).documents()) == [
        ["ab c", "d"], ["e"]]
    # GzipFile keeps "\r"; strip() drops it at the ends of a line only.
    assert list(text_files.TextFileCorpus(gz_path).documents()) == [
        ["a\rb c", "d"], ["e"]]

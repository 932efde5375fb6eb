"""Reading text files a block at a time gives the documents the old
line-by-line reader gave (`data_testdata/per_line.py`), character for
character, with the same count of replaced bytes."""

import random

import pytest

from data_testdata import per_line, write_text
from token_dropping.data import text_files

# Pieces that stress the reader: "\r", "\r\n" (line ends, also split across
# blocks), blank and space-only lines, bad UTF-8, U+FFFD already in the text,
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


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_cr_lf_and_crlf_end_lines_in_plain_and_gzip_files(tmp_path, gz):
    content = b"fox\rjumps c\r\nd\n\n\re\n"
    path = write_text(tmp_path / f"cr.txt{'.gz' if gz else ''}", content,
                      gz=gz)
    assert list(text_files.TextFileCorpus(path).documents()) == [
        ["fox", "jumps c", "d"], ["e"]]


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_an_old_mac_file_is_lines_and_documents(tmp_path, gz):
    content = b"One fox.\rTwo dogs.\r\rThree cats.\rFour.\r"
    path = write_text(tmp_path / f"mac.txt{'.gz' if gz else ''}", content,
                      gz=gz)
    assert list(text_files.TextFileCorpus(path).documents()) == [
        ["One fox.", "Two dogs."], ["Three cats.", "Four."]]
    per_document = text_files.TextFileCorpus(path, "document_per_line")
    assert [d[0] for d in per_document.documents()] == [
        "One fox.", "Two dogs.", "Three cats.", "Four."]


@pytest.mark.parametrize("block", [1, 2, 3, 4, 5])
def test_crlf_split_across_blocks_is_one_line_end(tmp_path, monkeypatch,
                                                   block):
    monkeypatch.setattr(text_files, "_READ_BLOCK_BYTES", block)
    path = write_text(tmp_path / "crlf.txt", b"ab\r\ncd\r\n\r\nef\r\ngh")
    assert list(text_files.TextFileCorpus(path).documents()) == [
        ["ab", "cd"], ["ef", "gh"]]

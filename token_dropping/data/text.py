"""Plain-text helpers: prose out of documentation, sentences out of prose.

BERT's pretraining data is documents made of sentences (Devlin et al. 2019,
`create_pretraining_data.py` in Model Garden reads one sentence per line). The
sources here (docstrings, comments, one-document-per-line files, TFDS articles)
are paragraphs, so they are split into sentences with a small rule-based
splitter: it only has to be deterministic and good enough for packing, because
sentence boundaries only decide where an unpacked sequence may end.
"""

import re

# A sentence ends at ., ! or ? (optionally closed by quotes or brackets) that is
# followed by white space and then something that can start a sentence.
_SENTENCE_END = re.compile(r"""(?<=[.!?])["')\]]*\s+(?=["'(\[]?[A-Z0-9])""")
# Words after which a period does not end the sentence.
_ABBREVIATIONS = frozenset({
    "e.g.", "i.e.", "etc.", "vs.", "cf.", "mr.", "mrs.", "ms.", "dr.", "st.",
    "no.", "fig.", "approx.", "resp.", "incl.", "esp.", "et al.", "al.", "ca.",
})
# reST and docstring markup whose text should be kept without the markup.
_REST_ROLE = re.compile(r":[\w:+-]+:`~?([^`<]*?)(?:\s*<[^`>]*>)?`")
_REST_LITERAL = re.compile(r"``([^`]*)``")
_REST_INTERPRETED = re.compile(r"`([^`]*)`_?")
_EMPHASIS = re.compile(r"(?<![\w*])\*{1,2}([^*\s][^*]*?)\*{1,2}(?![\w*])")
# Sphinx field lists (":param name:", ":returns:"): the label goes, the text
# stays.
_FIELD_LABEL = re.compile(r"^\s*:(?:param|type|returns?|rtype|raises?|arg|"
                          r"keyword|ivar|var|cvar)\b[^:]*:\s*")
_BULLET = re.compile(r"^\s*(?:[-*+\u2022]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+")
_CODE_LINE = re.compile(
    r"^\s*(?:>>>|\.\.\.\s|\$ |%|#|@\w|def |class |import |from \S+ import |"
    r"return\b|raise\b|yield\b|if .*:$|for .*:$|while .*:$|try:|except\b|"
    r"with .*:$|elif\b|else:|\w+(?:\.\w+)*\s*[-+*/]?=\s|\w+(?:\.\w+)*\(.*\)$|"
    r"[{}\[\]()]+$)")
_PUNCTUATION_LINE = re.compile(r"^\W+$")
_WHITESPACE = re.compile(r"\s+")
_CODE_CHARS_RE = re.compile(r"[=(){}\[\]<>_*/\\|@#$%^&~`;]")


def strip_markup(text: str) -> str:
    """Removes reST roles, literals and emphasis markers, keeping their text."""
    text = _REST_ROLE.sub(r"\1", text)
    text = _REST_LITERAL.sub(r"\1", text)
    text = _REST_INTERPRETED.sub(r"\1", text)
    return _EMPHASIS.sub(r"\1", text)


def _is_prose(paragraph: str) -> bool:
    """Whether a joined paragraph reads like English prose rather than code."""
    words = paragraph.split()
    chars = "".join(words)
    if len(words) < 4:
        return False
    letters = sum(map(str.isalpha, chars))
    code = len(_CODE_CHARS_RE.findall(chars))
    return letters >= 0.75 * len(chars) and code <= 0.04 * len(chars)


def prose_paragraphs(text: str) -> list[str]:
    """Splits documentation text into prose paragraphs, dropping code and
    markup.

    Paragraphs are separated by blank lines. A paragraph is dropped when any of
    its lines looks like code (doctest prompts, statements, assignments), when
    it follows a reST literal-block marker (`::`), or when too few of its
    characters are letters. Bullets and markup are removed, lines are joined
    with spaces.

    Args:
        text: documentation text, e.g. a cleaned docstring or a pydoc topic.

    Returns:
        The prose paragraphs, each one line of single-spaced text.
    """
    paragraphs, literal_block_next = [], False
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        is_literal = literal_block_next
        literal_block_next = lines[-1].rstrip().endswith("::")
        if is_literal or any(_CODE_LINE.match(line) for line in lines):
            continue
        lines = [_BULLET.sub("", _FIELD_LABEL.sub("", line)) for line in lines
                 if not _PUNCTUATION_LINE.match(line)]
        joined = _WHITESPACE.sub(" ", strip_markup(" ".join(lines))).strip()
        joined = joined.replace("::", ":")
        if _is_prose(joined):
            paragraphs.append(joined)
    return paragraphs


def split_sentences(paragraph: str) -> list[str]:
    """Splits one paragraph of prose into sentences.

    Example:
    >>> split_sentences("Return x, e.g. 3. Then stop! Done?")
    ['Return x, e.g. 3.', 'Then stop!', 'Done?']

    Args:
        paragraph: a single paragraph; line breaks are treated as spaces.

    Returns:
        The non-empty sentences, stripped, in order.
    """
    paragraph = _WHITESPACE.sub(" ", paragraph).strip()
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(paragraph):
        candidate = paragraph[start:match.start()].strip()
        last_words = " ".join(candidate.split()[-2:]).lower()
        last_word = candidate.split()[-1].lower() if candidate else ""
        if last_word in _ABBREVIATIONS or last_words in _ABBREVIATIONS or (
            len(last_word) == 2 and last_word[0].isalpha()):  # An initial: "J."
            continue
        candidate = paragraph[start:match.end()].strip()
        if candidate:
            sentences.append(candidate)
        start = match.end()
    tail = paragraph[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def decode_text(raw: bytes, encoding: str = "utf-8") -> tuple[str, int]:
    """Decodes bytes, replacing bad ones by U+FFFD; returns (text, replaced).

    Example:
    >>> decode_text(b"caf\xe9 ok")
    ('caf\ufffd ok', 1)

    Args:
        raw: the bytes.
        encoding: their encoding; UTF-8 unless a file declares another.
    """
    try:
        return raw.decode(encoding), 0
    except UnicodeDecodeError:
        decoded = raw.decode(encoding, "replace")
        replaced = decoded.count("\ufffd")
        if encoding == "utf-8":  # U+FFFD already in the text is not counted.
            replaced -= raw.count("\ufffd".encode("utf-8"))
        return decoded, replaced

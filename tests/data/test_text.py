"""Sentence splitting and prose extraction for the corpora."""

from token_dropping.data import text


def test_split_sentences_keeps_abbreviations_initials_and_decimals():
    paragraph = ("Return x, e.g. the first one. Then stop! Is it done? "
                 "J. Smith wrote 3.5 pages (see Fig. 2). \"Quoted.\" Next one")
    assert text.split_sentences(paragraph) == [
        "Return x, e.g. the first one.", "Then stop!", "Is it done?",
        "J. Smith wrote 3.5 pages (see Fig. 2).", "\"Quoted.\"", "Next one"]


def test_split_sentences_does_not_split_before_lower_case():
    assert text.split_sentences("Call os.path.join. then go.") == [
        "Call os.path.join. then go."]


def test_prose_paragraphs_drops_code_doctests_and_literal_blocks():
    doc = "\n".join([
        "Join two paths with :func:`os.path.join` and ``sep``.",
        "It returns a *new* string.",
        "",
        "Example::",
        "",
        "    join('a', 'b')",
        "",
        ">>> join('a', 'b')",
        "'a/b'",
        "",
        "x = compute(a, b)",
        "",
        ":param path: the path to read from the disk.",
        "",
        "* a bullet item that reads like prose text",
        "",
        "=====",
        "Too short",
    ])
    assert text.prose_paragraphs(doc) == [
        "Join two paths with os.path.join and sep. It returns a new string.",
        "the path to read from the disk.",
        "a bullet item that reads like prose text",
    ]


def test_decode_text_replaces_and_counts_only_bad_bytes():
    assert text.decode_text("ok \ufffd".encode("utf-8")) == ("ok \ufffd", 0)
    decoded, replaced = text.decode_text(b"caf\xe9 \xff ok")
    assert decoded == "caf\ufffd \ufffd ok"
    assert replaced == 2

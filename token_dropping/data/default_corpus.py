"""DefaultCorpus: English prose that ships with every Python installation.

The corpus needs no network and no extra package: it is the documentation the
interpreter carries, read the same way on every run so the bytes are identical
for the same Python version.

1. `pydoc_data.topics.topics`: the language-reference topics behind `help()`,
   one document per topic, in sorted key order.
2. The standard library's `.py` files, in sorted path order, parsed with `ast`
   (never imported, so nothing runs): one document per module made of its
   module, class and function docstrings and its comment blocks, in line
   order. `site-packages` is skipped; the test suite is read too.
3. The modules compiled into the interpreter (`sys.builtin_module_names`, e.g.
   `math`, `builtins`), whose docstrings exist only at run time: importing
   them runs no Python code.

Each piece of text is reduced to prose paragraphs (code, doctests and markup
dropped), split into sentences, and every sentence is kept only at its first
occurrence, which removes boilerplate such as licence headers and inherited
docstrings ("Return repr(self).").
"""

import ast
import importlib
import inspect
import io
import os
import re
import sys
import sysconfig
import tokenize
from typing import Iterator

from absl import logging

from token_dropping.data import text

# Bump when the extraction changes, so caches of older code are not reused.
CORPUS_VERSION = 3
# Third-party packages are not part of Python; the test suite is (its
# docstrings and comments are a third of the prose).
_SKIPPED_DIRS = frozenset(
    {"site-packages", "dist-packages", "__pycache__", "lib-dynload"})
_MIN_WORDS_PER_SENTENCE = 3
# A whole-line comment: indentation, '#' marks (and '#!'), then the text.
_COMMENT_LINE = re.compile(r"^(\s*)#+!?(.*)$")
# Comments for tools, not readers: coding cookies, shebangs, linter pragmas.
_PRAGMA = re.compile(r"^\s*(?:/|-\*-|vim?:|.*coding[:=]|noqa|type: |pylint: |"
                     r"fmt: |pragma\b|isort: )")


class DefaultCorpus:
    """The embedded default corpus: Python's own documentation as documents.

    Example:
    >>> corpus = DefaultCorpus()
    >>> first = next(iter(corpus.documents()))  # a list of sentences
    >>> corpus.describe()["name"]
    'python_docs'

    Args:
        stdlib_dir: the standard library directory to read; defaults to the
            running interpreter's (`sysconfig.get_paths()["stdlib"]`).
        max_documents: keep only the first documents (tests); None keeps all.
    """

    def __init__(self, stdlib_dir: str | None = None,
                 max_documents: int | None = None):
        self.stdlib_dir = stdlib_dir or sysconfig.get_paths()["stdlib"]
        self.max_documents = max_documents
        self.undecodable_replacements = 0  # Sources are UTF-8; still counted.

    def describe(self) -> dict:
        """What the corpus is, for the manifest and the cache key."""
        return {
            "name": "python_docs",
            "corpus_version": CORPUS_VERSION,
            "python_version": ".".join(map(str, sys.version_info[:3])),
            "max_documents": self.max_documents,
        }

    def documents(self) -> Iterator[list[str]]:
        """Yields documents (lists of sentences), deduplicated, in order."""
        self.undecodable_replacements = 0
        seen, emitted = set(), 0
        for _, raw_texts in self.keyed_raw_documents():
            sentences = first_occurrences(raw_texts, seen)
            if sentences:
                yield sentences
                emitted += 1
                if emitted == self.max_documents:
                    return

    def keyed_raw_documents(self) -> Iterator[tuple[str, list[str]]]:
        """Yields (key, raw documentation texts) of each document, in order.

        Keys: `pydoc/<topic>`, `stdlib/<path>` (relative, `/`-separated) and
        `builtin/<module>`.
        """
        import pydoc_data.topics  # Lazy: a 0.5 MB dict.
        topics = pydoc_data.topics.topics
        for key in sorted(topics):
            yield f"pydoc/{key}", [topics[key]]
        yield from self.source_documents(self.stdlib_dir, "stdlib")
        for name in sorted(set(sys.builtin_module_names) | {"builtins"}):
            yield f"builtin/{name}", _builtin_module_texts(name)

    def source_documents(self, root: str,
                         prefix: str) -> Iterator[tuple[str, list[str]]]:
        """Yields (`prefix/<path>`, texts) of each `.py` file under `root`.

        Files in sorted relative-path order; files without text are left out.
        """
        for path in _source_files(root):
            texts = self._module_texts(path)
            if texts:
                relative = os.path.relpath(path, root).replace(os.sep, "/")
                yield f"{prefix}/{relative}", texts

    def _module_texts(self, path: str) -> list[str]:
        """Docstrings and comment blocks of one source file, in line order."""
        with open(path, "rb") as f:
            source = f.read()
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            logging.vlog(1, "Skipping %s: not parseable by this Python.", path)
            return []
        # The encoding a file declares (PEP 263), as the interpreter reads it.
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
        decoded, replaced = text.decode_text(source, encoding)
        self.undecodable_replacements += replaced
        statements = _statements(tree)
        items = (_docstrings(tree, statements) +
                 _comment_blocks(decoded, _string_lines(statements)))
        return [body for _, body in sorted(items, key=lambda item: item[0])]


def first_occurrences(raw_texts: list[str], seen: set[str]) -> list[str]:
    """The prose sentences of `raw_texts` not in `seen`, which they join.

    Sentences shorter than `_MIN_WORDS_PER_SENTENCE` words are dropped.
    """
    sentences = []
    for raw in raw_texts:
        for paragraph in text.prose_paragraphs(raw):
            for sentence in text.split_sentences(paragraph):
                if (len(sentence.split()) >= _MIN_WORDS_PER_SENTENCE
                        and sentence not in seen):
                    seen.add(sentence)
                    sentences.append(sentence)
    return sentences


def _source_files(root: str) -> list[str]:
    """The `.py` files under `root`, outside `_SKIPPED_DIRS`, sorted."""
    paths = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS
                   and not d.startswith("config-")]
        paths.extend(os.path.join(directory, name) for name in files
                     if name.endswith(".py"))
    # The order is this sort's alone, whatever order the walk went in.
    return sorted(paths, key=lambda p: os.path.relpath(p, root))


def _statements(tree: ast.Module) -> list[ast.stmt]:
    """Every statement of the module, in nested blocks too, in source order."""
    found, stack = [], list(reversed(tree.body))
    while stack:
        node = stack.pop()
        found.append(node)
        for field in ("cases", "handlers", "finalbody", "orelse", "body"):
            stack.extend(reversed(getattr(node, field, None) or []))
    return found


def _docstrings(tree: ast.Module,
                statements: list[ast.stmt]) -> list[tuple[int, str]]:
    """(line, docstring) of the module and every class and function in it."""
    found = []
    for node in [tree, *statements]:
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                             ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                found.append((getattr(node, "lineno", 0), doc))
    return found


def _string_lines(statements: list[ast.stmt]) -> set[int]:
    """Lines inside multi-line strings that are statements or assigned."""
    lines = set()
    for node in statements:
        value = getattr(node, "value", None)
        if (isinstance(value, ast.Constant) and isinstance(value.value, str)
                and value.end_lineno > value.lineno):
            lines.update(range(value.lineno + 1, value.end_lineno + 1))
    return lines


def _comment_blocks(source: str,
                    in_string: set[int]) -> list[tuple[int, str]]:
    """(first line, text) of each run of whole-line comments in the same column.

    A line scan is used instead of `tokenize` (five times slower); lines inside
    multi-line strings are excluded using the parsed tree.
    """
    blocks, lines, first_row, last = [], [], 0, None
    for row, line in enumerate(source.splitlines(), start=1):
        match = _COMMENT_LINE.match(line)
        if not match or row in in_string or _PRAGMA.match(match.group(2)):
            continue
        col = len(match.group(1))
        if last is None or row != last[0] + 1 or col != last[1]:
            if lines:
                blocks.append((first_row, "\n".join(lines)))
            lines, first_row = [], row
        lines.append(match.group(2).strip())  # An empty one ends a paragraph.
        last = (row, col)
    if lines:
        blocks.append((first_row, "\n".join(lines)))
    return blocks


def _builtin_module_texts(name: str) -> list[str]:
    """Docstrings of a module compiled into the interpreter and its members."""
    module = importlib.import_module(name)
    texts = [inspect.cleandoc(module.__doc__ or "")]
    members = vars(module)
    for attr in sorted(members):
        # A hook the running program replaced (pytest and absl replace
        # sys.unraisablehook and sys.excepthook) is read as the original that
        # sys keeps under `__name__`, so every process reads the same text.
        member = members.get(f"__{attr}__", members[attr])
        if attr.startswith("_") or not callable(member):
            continue
        texts.append(inspect.cleandoc(getattr(member, "__doc__", None) or ""))
        if isinstance(member, type):
            for method in sorted(vars(member)):
                doc = getattr(vars(member)[method], "__doc__", None)
                if not method.startswith("_") and isinstance(doc, str):
                    texts.append(inspect.cleandoc(doc))
    return [t for t in texts if t]

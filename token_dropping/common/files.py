"""Files: comma-separated globs, vocab files, writes that land whole or not.

The one implementation of each, through `tf.io.gfile`, so local paths and
Cloud Storage (`gs://...`) alike:

- `split_patterns` / `match_files`: `"a/*.txt,b.txt"` to the files, in
  pattern order, sorted within a pattern, each once; a pattern that matches
  nothing is a `UserError` naming it.
- `read_vocab`: one token per line, line ends (`\\n`, `\\r\\n`) and trailing
  empty lines dropped.
- `replacing`, `open_atomically`, `write_text`, `write_json`: write under a
  temporary sibling name, renamed over the target when the write ends (an
  atomic `rename(2)` on a local disk); a write that fails leaves the old
  file as it was and no temporary file behind.
- `replacing_directory`: the same for a whole directory (an export).

Example:
>>> files = match_files("/data/wiki/*.txt.gz,/data/books/*.txt")
>>> write_json("/runs/x/result.json", {"dev_accuracy": 0.84})
"""

import contextlib
import hashlib
import json
import os
import uuid

import tensorflow as tf

from token_dropping.common.errors import UserError


def split_patterns(patterns: str) -> list[str]:
    """`"a/*.txt, b.txt,"` -> `["a/*.txt", "b.txt"]`: stripped, empty
    ones dropped."""
    return [p.strip() for p in str(patterns).split(",") if p.strip()]


def match_files(patterns: str, flag: str = "input_files", hint: str = "",
                file_glob: str | None = "*") -> list[str]:
    """The files of comma-separated globs: pattern order, sorted within a
    pattern, each file once.

    Args:
        patterns: e.g. `"/data/wiki/*.txt.gz,/data/books/a.txt"`.
        flag: how the user gave them, for the errors, e.g.
            `"task.train_data.input_path"`.
        hint: said after "matches no files", e.g. how to make the files.
        file_glob: a matched directory is an error suggesting
            `DIR/<file_glob>`; None: directories are not looked for (saves
            a request per file on Cloud Storage).

    Raises:
        UserError: if there are no patterns, a pattern matches nothing, or a
            pattern matches a directory.
    """
    paths, seen = [], set()
    for pattern in split_patterns(patterns):
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise UserError(f"{flag} pattern {pattern!r} matches no files."
                            + (f" {hint}" if hint else ""))
        if file_glob is not None:
            for path in matched:
                if tf.io.gfile.isdir(path):
                    raise UserError(
                        f"{flag} pattern {pattern!r} matches the directory "
                        f"{path!r}; name the files in it, e.g. "
                        f"'{path.rstrip('/')}/{file_glob}'.")
        paths += [path for path in matched if path not in seen]
        seen.update(matched)
    if not paths:
        raise UserError(f"{flag}={patterns!r} names no file patterns.")
    return paths


def read_vocab(path: str, flag: str = "vocab_file") -> list[str]:
    """The tokens of a vocab file, one a line (line ends and trailing empty
    lines dropped).

    Raises:
        UserError: if the file does not exist, is a directory, is not UTF-8
            text, or has a piece twice (a lookup table cannot hold it, and
            a tokenizer would silently use one of the two ids).
    """
    if not tf.io.gfile.exists(path):
        raise UserError(f"{flag}={path!r} does not exist.")
    if tf.io.gfile.isdir(path):
        raise UserError(f"{flag}={path!r} is a directory; give the vocab "
                        "file in it (one word piece a line, e.g. vocab.txt).")
    try:
        with tf.io.gfile.GFile(path) as f:
            tokens = [line.rstrip("\r\n") for line in f]
    except UnicodeDecodeError as e:
        raise UserError(
            f"{flag}={path!r} is not UTF-8 text ({e.reason}); give a "
            "WordPiece vocab, one piece a line.") from None
    while tokens and not tokens[-1]:
        tokens.pop()
    first = {}
    for line, token in enumerate(tokens, 1):
        if token and first.setdefault(token, line) != line:
            raise UserError(
                f"{flag}={path!r} has {token!r} twice (lines {first[token]} "
                f"and {line}); each piece must have one id.")
    return tokens


def sha256(path: str) -> str:
    """The hex SHA-256 of a file's bytes (gfile: local or Cloud Storage)."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sibling(path: str, kind: str) -> str:
    """A hidden, unique name beside `path`: `DIR/.NAME.<kind>-<hex>`."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.{kind}-{uuid.uuid4().hex[:12]}")


@contextlib.contextmanager
def replacing(path: str):
    """Yields a temporary sibling path for a writer that takes a path (a
    TFRecord writer, a library function); when the block ends it is renamed
    to `path`, or removed if the block raised.

    Example:
    >>> with replacing("/out/train.tf_record") as temporary:
    ...     write_records(temporary)
    """
    temporary = _sibling(path, "tmp")
    try:
        yield temporary
        tf.io.gfile.rename(temporary, path, overwrite=True)
    finally:
        if tf.io.gfile.exists(temporary):
            tf.io.gfile.remove(temporary)


@contextlib.contextmanager
def open_atomically(path: str, mode: str = "w"):
    """A `tf.io.gfile.GFile` on a temporary sibling of `path`, renamed to
    `path` when the block ends: readers see the old file or the new one,
    never part of it. If the block raises, `path` is left as it was."""
    with replacing(path) as temporary:
        with tf.io.gfile.GFile(temporary, mode) as f:
            f.write(b"" if "b" in mode else "")  # GFile creates on a write
            yield f


def write_text(path: str, text: str) -> None:
    """Writes `text` (UTF-8, line ends as given) to `path` atomically."""
    with open_atomically(path) as f:
        f.write(text)


def write_json(path: str, value, **dump_options) -> None:
    """Writes `value` as JSON and a final newline to `path` atomically.

    `dump_options` go to `json.dump`, e.g. `indent=2, sort_keys=True`.
    """
    write_text(path, json.dumps(value, **dump_options) + "\n")


@contextlib.contextmanager
def replacing_directory(path: str):
    """Yields a new temporary sibling directory to fill; when the block ends
    it takes `path`'s place, or is removed if the block raised. A symbolic
    link's target is replaced; the link stays.

    An old `path` is moved aside first and removed only once the new one is
    in; if the move in fails, it is put back.

    Example:
    >>> with replacing_directory("/exports/bert") as directory:
    ...     write_checkpoint(directory)
    """
    path = path.rstrip("/")
    if os.path.islink(path):
        # The directory the link names takes the new one (the link stays):
        # moving the link aside and removing it would empty its target.
        path = os.path.realpath(path)
    partial = _sibling(path, "partial")
    tf.io.gfile.makedirs(partial)
    try:
        yield partial
        old = None
        if tf.io.gfile.exists(path):
            old = f"{partial}.old"
            tf.io.gfile.rename(path, old)
        try:
            tf.io.gfile.rename(partial, path)
        except Exception:
            if old:  # the previous directory goes back
                tf.io.gfile.rename(old, path)
            raise
        if old:
            tf.io.gfile.rmtree(old)
    finally:
        if tf.io.gfile.exists(partial):
            tf.io.gfile.rmtree(partial)

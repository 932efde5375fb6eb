"""Checks that an output path can be written, and destroys no input.

A long benchmark, comparison or training run that fails at its last step
because `--output` names a file's child, or a directory that is a file,
wastes the run; the tools call `check_output_path` first. An output that
is, contains or is inside what a tool reads (a run, its checkpoint, a
vocab, input files) is refused by `check_apart`, through symlinks too.
"""

import os
import posixpath
import re

from token_dropping.common.errors import UserError


# A '~' starting a path inside a flag's value: after "--flag=", a comma or
# an override's "key=", where the shell does not expand it.
_HOME = re.compile(r"(?:^|[=,])~")


def unexpanded_home(flag_values):
    """A one-line message for the first flag given on the command line
    whose value starts a path with '~', or None.

    The shell expands '~' only at the start of a word, so `--output_dir=~/x`
    reaches a tool as the text '~/x', and TensorFlow's file system would
    write a folder named '~' in the working directory (while the overlap
    checks, which expand it, looked at the home folder).
    """
    seen = set()
    for name in sorted(flag_values):
        flag = flag_values[name]
        if flag.name in seen or not flag.present:
            continue
        seen.add(flag.name)
        values = flag.value if isinstance(flag.value, list) else [flag.value]
        for value in values:
            if isinstance(value, str) and _HOME.search(value):
                return (f"--{flag.name}={value!r}: '~' is not expanded after "
                        "'=' (the shell expands it only at the start of a "
                        f"word); write the full path, e.g. "
                        f"{os.path.expanduser('~')}/...")
    return None


def check_output_path(path, flag, directory):
    """Raises UserError unless `path` can be created or written.

    Args:
        path: str. A local path (URLs such as gs://... are left to the
            writer).
        flag: str. How the user gave it, e.g. "--output_dir".
        directory: bool. Whether `path` is a directory (else a file).
    """
    if "://" in path:
        return
    absolute = os.path.abspath(path)
    if os.path.exists(absolute) and os.path.isdir(absolute) != directory:
        raise UserError(
            f"{flag}={path!r} is a {'file' if directory else 'directory'}; "
            f"give a {'directory' if directory else 'file path'}.")
    parent = os.path.dirname(absolute)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UserError(f"{flag}={path!r} is under {parent!r}, which is a "
                        "file, not a directory.")
    if not os.access(parent, os.W_OK):
        raise UserError(f"{flag}={path!r}: {parent!r} is not writable.")


def _resolved(path):
    """`path` with symlinks resolved (local), or normalised (a URL)."""
    if "://" in path:
        scheme, rest = path.split("://", 1)
        return f"{scheme}://{posixpath.normpath('/' + rest).lstrip('/')}"
    return os.path.realpath(os.path.expanduser(path))


def same_path(a, b):
    """Whether `a` and `b` name the same file or folder (`_resolved`)."""
    return _resolved(a) == _resolved(b)


def check_apart(output, flag, inputs):
    """Raises UserError if `output` is, contains or is inside an input.

    An output directory that is replaced (`--overwrite`), or a build's
    temporary sibling of it, must not take an input with it: a symlink to a
    run's own directory given as `--output_dir` emptied the run. Paths are
    compared with symlinks resolved (`os.path.realpath`), so a link, `..`
    or a relative path is caught too; URLs (gs://...) by their text.

    Args:
        output: str. The output directory (it need not exist).
        flag: str. How the user gave it, e.g. "--output_dir".
        inputs: iterable of `(name, path)`: what is read, e.g.
            `("--model_dir", "runs/base")`; empty paths are skipped.
    """
    if not output:
        return
    out = _resolved(output)
    for name, path in inputs:
        if not path:
            continue
        source = _resolved(path)
        if source == out:
            relation = "is"
        elif source.startswith(out.rstrip("/") + "/"):
            relation = "contains"
        elif out.startswith(source.rstrip("/") + "/"):
            relation = "is inside"
        else:
            continue
        resolved = "" if (out, source) == (
            os.path.abspath(output), os.path.abspath(path)) or (
                "://" in output) else f" ({out} and {source} on disk)"
        raise UserError(
            f"{flag}={output!r} {relation} {name}={path!r}{resolved}, which "
            "it reads; give an output directory apart from it.")

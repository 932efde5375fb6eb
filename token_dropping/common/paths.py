"""Checks that an output path can be written, before any work starts.

A long benchmark, comparison or training run that fails at its last step
because `--output` names a file's child, or a directory that is a file,
wastes the run; the tools call `check_output_path` first.
"""

import os

from token_dropping.common.errors import UserError


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

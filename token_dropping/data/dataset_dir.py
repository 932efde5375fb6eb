"""The output directory of a prepared dataset: check, lock, publish.

A directory is a dataset of ours when it holds `manifest.json` (complete: the
manifest is moved in last), or is empty but for our own hidden entries: `.lock`
and `.partial-*` (a build in progress, or one that was killed). Anything else
there is someone else's, and nothing is written beside it.

Builds of one directory hold an exclusive lock (POSIX `flock` on `DIR/.lock`,
as the cache of the default dataset does; not on remote file systems such as
GCS), so the build holding it knows every `.partial-*` it finds is left by a
killed run and deletes it. The lock file is removed when the build ends, and
a directory this build created is removed again if the build fails.

On a remote file system (`gs://...`), where folders cannot be renamed and
renaming a file copies it, a build writes in place instead (`writes_in_place`):
it removes the old manifest, writes every file under its final name marked
with a run id (`train-00000-of-00004.run-ID.tfrecord`, `vocab.run-ID.txt`),
the manifest (which names them) last, then removes the files of earlier runs.
A folder without a manifest is incomplete either way, and files with a run
id are ours, so a killed build's are cleaned up by the next.
"""

import contextlib
import json
import os
import re
import uuid

from absl import logging
import tensorflow as tf

from token_dropping.common import files
from token_dropping.data import dataset_info
from token_dropping.data import prepare_data_config
from token_dropping.common.errors import UserError

LOCK_FILENAME = ".lock"
PARTIAL_PREFIX = ".partial-"
# Written before a publish removes the old manifest, removed after the new
# one is in: it names the files a publish moves, so those a killed publish
# left (no manifest) are known to be ours and removed by the next build.
PUBLISHING_FILENAME = ".publishing.json"
_RUN_MARK = re.compile(r"\.run-([0-9a-f]{12})(\.|$)")


def _is_remote(path: str) -> bool:
    return "://" in path


def _is_ours(name: str, published=()) -> bool:
    return (name in (LOCK_FILENAME, PUBLISHING_FILENAME) or
            name.startswith(PARTIAL_PREFIX) or name in published or
            _RUN_MARK.search(name) is not None)


def _publishing(output_dir: str) -> list:
    """The names a killed publish was moving into `output_dir` ([]: none)."""
    path = os.path.join(output_dir, PUBLISHING_FILENAME)
    try:
        with tf.io.gfile.GFile(path) as f:
            return json.load(f)
    except tf.errors.NotFoundError:  # none, or a publish just finished
        return []


def writes_in_place(output_dir: str) -> bool:
    """Whether builds write into `output_dir` directly (no rename)."""
    return _is_remote(output_dir)


def new_run_suffix() -> str:
    """`.run-ID`, the mark of the files one in-place build writes."""
    return f".run-{uuid.uuid4().hex[:12]}"


def run_name(name: str, run_suffix: str) -> str:
    """`vocab.txt` -> `vocab.run-ID.txt`; unchanged for no run suffix."""
    stem, ext = os.path.splitext(name)
    return f"{stem}{run_suffix}{ext}"


def remove_manifest(output_dir: str) -> None:
    """Marks the dataset in `output_dir` incomplete."""
    path = os.path.join(output_dir, dataset_info.MANIFEST_FILENAME)
    if tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)


def remove_runs(output_dir: str, keep: str = "", only: str = "") -> None:
    """Removes in-place builds' files: all but run `keep`, or run `only`."""
    for name in tf.io.gfile.listdir(output_dir):
        name = name.rstrip("/")
        mark = _RUN_MARK.search(name)
        if mark is None or (only and mark.group(0).rstrip(".") != only) or (
                keep and mark.group(0).rstrip(".") == keep):
            continue
        path = os.path.join(output_dir, name)
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)


def _nearest_existing(output_dir: str) -> str:
    """`output_dir` if it exists, else its nearest existing parent."""
    path = os.path.abspath(output_dir)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def check_output_dir(output_dir: str) -> None:
    """Checks that `output_dir` can be a directory: no file is in the way.

    Raises:
        UserError: if `output_dir`, or a folder above it, is a file.
    """
    if _is_remote(output_dir):
        if tf.io.gfile.exists(output_dir) and not tf.io.gfile.isdir(
                output_dir):
            raise UserError(f"output_dir={output_dir!r} is a file; give a "
                            "directory (new, empty, or prepared here).")
        return
    path = _nearest_existing(output_dir)
    if not os.path.isdir(path):
        where = ("is a file" if path == os.path.abspath(output_dir)
                 else f"is under {path!r}, which is a file")
        raise UserError(f"output_dir={output_dir!r} {where}; give a "
                        "directory (new, empty, or prepared here).")


def existing_dataset(output_dir: str, fingerprint: str, config: dict):
    """The complete dataset with `fingerprint` in `output_dir`, if any.

    Args:
        output_dir: the dataset directory.
        fingerprint: the hash of everything the records depend on.
        config: the fingerprinted fields of the config asking.

    Returns:
        Its `DatasetInfo`, or None when there is none, or when the directory
        holds this config's dataset made from other inputs (a rewritten input
        file, another vocab file's contents, an older builder): it is then
        built again in place.

    Raises:
        UserError: if the directory holds another config's dataset, or files
            that are not a dataset prepared here.
    """
    if not tf.io.gfile.isdir(output_dir):
        return None
    manifest_path = os.path.join(output_dir, dataset_info.MANIFEST_FILENAME)
    if not tf.io.gfile.exists(manifest_path):
        published = _publishing(output_dir)
        foreign = sorted(name for name in tf.io.gfile.listdir(output_dir)
                         if not _is_ours(name.rstrip("/"), published))
        if foreign:
            raise UserError(
                f"output_dir={output_dir!r} holds {len(foreign)} "
                f"{'entry' if len(foreign) == 1 else 'entries'} (e.g. "
                f"{foreign[0]!r}) but no {dataset_info.MANIFEST_FILENAME}, so "
                "it is not a dataset prepared here; give a new or empty "
                "directory.")
        return None
    manifest = dataset_info.read_manifest(manifest_path)
    if manifest.get("fingerprint") == fingerprint:
        logging.info("Reusing the complete dataset in %s.", output_dir)
        return dataset_info.DatasetInfo.from_manifest(manifest_path)
    recorded = manifest.get("config", {})
    previous = {k: v for k, v in recorded.items() if k in config}
    if "input_shards" in config:  # derived, not a field of the manifest
        previous["input_shards"] = prepare_data_config.input_shards(
            recorded.get("num_workers", 1), recorded.get("runner", ""))
    if previous != config:
        differing = sorted(k for k in config if previous.get(k) != config[k])
        raise UserError(
            f"output_dir={output_dir!r} already holds a different dataset "
            f"(source {manifest.get('source', {}).get('name')!r}, seq_length="
            f"{manifest.get('seq_length')}, format "
            f"{manifest.get('format')!r}: "
            f"{_what_differs(differing[0], previous, config)}); choose "
            "another output directory or delete that one.")
    logging.warning("%s was prepared with this config from other inputs (an "
                    "input or vocab file changed, or the builder); preparing "
                    "it again.", output_dir)
    return None


_LAYOUTS = {"one": "as one stream (--num_workers=1, no --runner)",
            "per_file": "per input file (--num_workers above 1 or --runner)"}


def _what_differs(key, previous, config) -> str:
    """The first setting of `config` the directory's dataset was not made
    with, in words."""
    if key == "input_shards":  # the records of the two layouts differ
        return (f"it was built {_LAYOUTS[previous[key]]}, this command "
                f"builds {_LAYOUTS[config[key]]}")
    return f"it has {key}={previous.get(key)!r}, this command {config[key]!r}"


@contextlib.contextmanager
def locked(output_dir: str):
    """Creates `output_dir` if needed and holds its build lock.

    On a failure inside, a directory this call created is removed again if
    nothing else is left in it.

    Yields:
        Nothing; the lock is held until the block ends.

    Raises:
        UserError: if the directory cannot be created or written.
    """
    try:
        import fcntl  # POSIX only.
    except ImportError:
        fcntl = None
    if not _is_remote(output_dir):
        nearest = _nearest_existing(output_dir)
        if not os.access(nearest, os.W_OK | os.X_OK):
            raise UserError(f"output_dir={output_dir!r} cannot be written: "
                            f"{nearest!r} is not writable by this user.")
    lock_path = os.path.join(output_dir, LOCK_FILENAME)
    lock_file = None
    while True:
        created = not tf.io.gfile.isdir(output_dir)
        tf.io.gfile.makedirs(output_dir)
        if fcntl is None or _is_remote(output_dir):
            break
        try:
            lock_file = open(lock_path, "a")
        except FileNotFoundError:  # The directory went away: a failed build.
            continue
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        # The lock file may have been removed (and another one made) while
        # this one waited for it; then the lock held is not the directory's.
        opened = os.fstat(lock_file.fileno())
        try:
            current = os.stat(lock_path)
        except FileNotFoundError:
            current = None
        if current and (current.st_dev, current.st_ino) == (opened.st_dev,
                                                            opened.st_ino):
            break
        lock_file.close()
    failed = True
    try:
        yield
        failed = False
    finally:
        if lock_file is not None:
            os.remove(lock_path)
        if failed and created and not tf.io.gfile.listdir(output_dir):
            tf.io.gfile.rmtree(output_dir)
        if lock_file is not None:
            lock_file.close()


def has_build_entries(output_dir: str) -> bool:
    """Whether a build runs in `output_dir` or a killed one left files."""
    return any(name.rstrip("/") in (LOCK_FILENAME, PUBLISHING_FILENAME) or
               name.startswith(PARTIAL_PREFIX)
               for name in tf.io.gfile.listdir(output_dir))


def remove_stale_partials(output_dir: str) -> None:
    """Deletes `.partial-*` builds, and the files a killed publish moved in
    before its manifest; call it holding the lock (see `locked`)."""
    for name in tf.io.gfile.listdir(output_dir):
        if name.rstrip("/").startswith(PARTIAL_PREFIX):
            logging.info("Removing %s, left by an interrupted build.", name)
            tf.io.gfile.rmtree(os.path.join(output_dir, name.rstrip("/")))
    published = _publishing(output_dir)
    manifest = os.path.join(output_dir, dataset_info.MANIFEST_FILENAME)
    if published and not tf.io.gfile.exists(manifest):
        logging.info("Removing the %d files an interrupted build had moved "
                     "into %s before its manifest.", len(published),
                     output_dir)
        for name in published:
            path = os.path.join(output_dir, name)
            if tf.io.gfile.exists(path):
                tf.io.gfile.remove(path)
    marker = os.path.join(output_dir, PUBLISHING_FILENAME)
    if tf.io.gfile.exists(marker):
        tf.io.gfile.remove(marker)


def remove_other_runs(output_dir: str) -> None:
    """Deletes in-place builds' files that the manifest in `output_dir` does
    not name: those of an earlier run, left when a build was killed after
    its manifest was written (they would match `DIR/train-*`)."""
    manifest = dataset_info.read_manifest(os.path.join(
        output_dir, dataset_info.MANIFEST_FILENAME))
    # The shards' names carry the run (a --vocab_file may name another's).
    marks = set(m.group(0).rstrip(".") for split in manifest.get(
        "splits", {}).values() for m in _RUN_MARK.finditer(
            split.get("input_path", "")))
    if len(marks) == 1:  # a manifest of an in-place build names one run
        remove_runs(output_dir, keep=marks.pop())


def publish(partial_dir: str, output_dir: str) -> None:
    """Moves finished files into `output_dir`, the manifest last.

    A manifest already there (a dataset being prepared again) is removed
    first, so the directory reads as incomplete until the new one is in.
    The names moved are written down first (`PUBLISHING_FILENAME`): a
    publish killed before its manifest is in leaves files the next build
    knows are ours and removes (`remove_stale_partials`). A dataset is
    prepared again only with the same config, so the old files have the
    names of the new ones.
    """
    manifest = dataset_info.MANIFEST_FILENAME
    names = sorted(tf.io.gfile.listdir(partial_dir))
    names.remove(manifest)
    marker = os.path.join(output_dir, PUBLISHING_FILENAME)
    files.write_json(marker, names)
    old_manifest = os.path.join(output_dir, manifest)
    if tf.io.gfile.exists(old_manifest):
        tf.io.gfile.remove(old_manifest)
    for name in names + [manifest]:
        tf.io.gfile.rename(os.path.join(partial_dir, name),
                           os.path.join(output_dir, name), overwrite=True)
    tf.io.gfile.remove(marker)

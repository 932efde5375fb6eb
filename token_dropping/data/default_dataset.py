"""ensure_default_dataset: the embedded default corpus, prepared once and cached.

With no input path configured, training uses Python's own documentation
(`DefaultCorpus`) with a WordPiece vocab learned from it. The first call for a
shape builds it (about a minute on two cores) into the cache directory; later
calls, from any process, return the cached copy.

Concurrent first use is safe: callers take an exclusive lock file per dataset,
so one builds while the others wait and then reuse its result. The build itself
writes into a hidden directory and moves files into place with the manifest
last (see `builder`), so a crash never leaves a dataset that looks complete.
"""

import contextlib
import dataclasses
import os

from absl import logging

from token_dropping.data import builder
from token_dropping.data import dataset_info
from token_dropping.data import default_corpus
from token_dropping.data import prepare_data_config

CACHE_ENV_VAR = "TOKEN_DROPPING_CACHE"
DEFAULT_DUPE_FACTOR = 2  # Two maskings of each sequence: ~20k examples at 128.


def default_cache_dir() -> str:
  """`$TOKEN_DROPPING_CACHE`, else `~/.cache/token_dropping`."""
  return os.environ.get(CACHE_ENV_VAR) or os.path.join(
      os.path.expanduser("~"), ".cache", "token_dropping")


def default_dataset_config(seq_length: int = 128,
                           max_predictions_per_seq: int = 20,
                           vocab_size: int = 8000,
                           packed: bool = True
                           ) -> prepare_data_config.PrepareDataConfig:
  """The config of the embedded default dataset for one shape."""
  return prepare_data_config.PrepareDataConfig(
      seq_length=seq_length, max_predictions_per_seq=max_predictions_per_seq,
      vocab_size=vocab_size, packed=packed, dupe_factor=DEFAULT_DUPE_FACTOR)


def ensure_default_dataset(seq_length: int = 128,
                           max_predictions_per_seq: int = 20,
                           vocab_size: int = 8000, packed: bool = True,
                           cache_dir: str | None = None
                           ) -> dataset_info.DatasetInfo:
  """Builds (first use) or reuses (cached) the default pretraining dataset.

  Example:
  >>> info = ensure_default_dataset(seq_length=128, max_predictions_per_seq=20)
  >>> info.vocab_size, info.token_allow_list, info.token_deny_list
  (7856, (100, 101, 102, 103), (0,))

  Args:
    seq_length: tokens per example.
    max_predictions_per_seq: masked-LM targets per example.
    vocab_size: the size of the vocab to learn; the learned one may be up to
      5% smaller (`DatasetInfo.vocab_size` is the true size).
    packed: sequence packing (the paper's) or one document per sequence.
    cache_dir: where datasets are cached; default `default_cache_dir()`.

  Returns:
    The `DatasetInfo` of the static-masked records (Model Garden's
    `BertPretrainDataLoader`, v2 feature names, no next-sentence labels).

  Raises:
    ValueError: for shapes that cannot be built (e.g. `seq_length=2`).
  """
  config = default_dataset_config(seq_length, max_predictions_per_seq,
                                  vocab_size, packed)
  return _ensure_cached(config, cache_dir)


def _ensure_cached(config: prepare_data_config.PrepareDataConfig,
                   cache_dir: str | None) -> dataset_info.DatasetInfo:
  """Builds or reuses `config` in its own directory of the cache."""
  config.validate()
  cache_dir = os.path.abspath(cache_dir or default_cache_dir())
  fingerprint = builder.dataset_fingerprint(
      config, default_corpus.DefaultCorpus().describe(), None)
  name = (f"python_docs-L{config.seq_length}-P{config.max_predictions_per_seq}"
          f"-V{config.vocab_size}-{'packed' if config.packed else 'unpacked'}"
          f"-{fingerprint[:12]}")
  output_dir = os.path.join(cache_dir, name)
  manifest_path = os.path.join(output_dir, dataset_info.MANIFEST_FILENAME)
  if os.path.exists(manifest_path):  # The common case: no lock needed.
    logging.info("Using the cached default dataset %s.", output_dir)
    return dataset_info.DatasetInfo.from_manifest(manifest_path)
  os.makedirs(cache_dir, exist_ok=True)
  with _exclusive_lock(output_dir + ".lock"):
    if not os.path.exists(manifest_path):
      logging.info("Building the default dataset (Python's documentation, "
                   "%s) into %s; this happens once per shape.",
                   dataclasses.asdict(config), output_dir)
    return builder.build_pretraining_data(config, output_dir)


@contextlib.contextmanager
def _exclusive_lock(path: str):
  """Holds an exclusive `flock` on `path` (a no-op where fcntl is missing)."""
  try:
    import fcntl  # pylint: disable=g-import-not-at-top  # POSIX only.
  except ImportError:
    yield
    return
  with open(path, "a") as lock_file:
    fcntl.flock(lock_file, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock_file, fcntl.LOCK_UN)

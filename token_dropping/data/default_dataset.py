"""ensure_default_dataset: the embedded default corpus, built once, cached.

With no input path configured, training uses Python's own documentation
(`DefaultCorpus`) with a WordPiece vocab learned from it. The first call for a
shape builds it (about a minute on two cores) into the cache directory; later
calls, from any process, return the cached copy.

Concurrent first use is safe: builders of a directory hold its lock (see
`dataset_dir`), so one builds while the others wait and then reuse its result.
The build itself writes into a hidden directory and moves files into place with
the manifest last (see `builder`), so a crash never leaves a dataset that looks
complete, and the next build removes what a killed one left.
"""

import os

from absl import logging

from token_dropping.data import builder
from token_dropping.data import dataset_info
from token_dropping.data import default_corpus
from token_dropping.data import prepare_data_config
from token_dropping.common.errors import UserError

CACHE_ENV_VAR = "TOKEN_DROPPING_CACHE"


def default_cache_dir() -> str:
    """`$TOKEN_DROPPING_CACHE`, else `~/.cache/token_dropping`."""
    return os.environ.get(CACHE_ENV_VAR) or os.path.join(
        os.path.expanduser("~"), ".cache", "token_dropping")


def ensure_default_dataset(seq_length: int = 128,
                           max_predictions_per_seq: int = 20,
                           vocab_size: int = 8000, packed: bool = True,
                           cache_dir: str | None = None
                           ) -> dataset_info.DatasetInfo:
    """Builds (first use) or reuses (cached) the default pretraining dataset.

    Example:
    >>> info = ensure_default_dataset(seq_length=128)
    >>> info.vocab_size, info.token_allow_list, info.token_deny_list
    (7655, (100, 101, 102, 103), (0,))

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
        UserError: for shapes that cannot be built (e.g. `seq_length=2`).
    """
    config = prepare_data_config.PrepareDataConfig(
        seq_length=seq_length, max_predictions_per_seq=max_predictions_per_seq,
        vocab_size=vocab_size, packed=packed)
    return prepare_data(config, cache_dir=cache_dir)


def prepare_data(config: prepare_data_config.PrepareDataConfig,
                 output_dir: str = "", cache_dir: str | None = None,
                 profile=None) -> dataset_info.DatasetInfo:
    """Prepares `config` into `output_dir`, or into the cache if none is given.

    This is what `tools/prepare_data.py` runs.

    Args:
        config: the source and the shape of the records.
        output_dir: the dataset directory; "" caches the default corpus.
        cache_dir: the cache for `output_dir=""`; default `default_cache_dir()`.
        profile: a `BuildProfile` to time the build's stages, or None.

    Returns:
        The prepared (or reused) dataset's `DatasetInfo`.

    Raises:
        UserError: for a bad config or input, or no `output_dir` for a source
            other than the embedded default.
    """
    config.validate()
    if output_dir:
        return builder.build_pretraining_data(config, output_dir, profile)
    if config.input_files or config.tfds_name:
        raise UserError(
            "output_dir is empty: only the embedded default corpus is cached; "
            "give an output directory for input_files or tfds_name.")
    cache_dir = os.path.abspath(cache_dir or default_cache_dir())
    fingerprint = builder.dataset_fingerprint(
        config, default_corpus.DefaultCorpus().describe(), None)
    layout = "packed" if config.packed else "unpacked"
    name = (f"python_docs-L{config.seq_length}-"
            f"P{config.max_predictions_per_seq}-V{config.vocab_size}-{layout}-"
            f"{fingerprint[:12]}")
    output_dir = os.path.join(cache_dir, name)
    manifest_path = os.path.join(output_dir, dataset_info.MANIFEST_FILENAME)
    if os.path.exists(manifest_path):  # The common case: no lock needed.
        logging.info("Using the cached default dataset %s.", output_dir)
        return dataset_info.DatasetInfo.from_manifest(manifest_path)
    logging.info("Building the default dataset (Python's docs) into %s, "
                 "unless another process is: once per shape, about a minute.",
                 output_dir)
    return builder.build_pretraining_data(config, output_dir, profile)

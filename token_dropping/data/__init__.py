"""Pretraining data: the embedded default corpus, vocabularies and records.

Importing this package builds nothing; tensorflow-text and TFDS are loaded
only when data is prepared.

* `ensure_default_dataset(...)`: the default corpus (Python's documentation),
    prepared once per shape into a cache and reused.
* `build_pretraining_data(PrepareDataConfig(...), output_dir)`: any source
    (the default, text files, a prepared TFDS dataset) into static-masked
    records for Model Garden's `BertPretrainDataLoader` or raw text for its
    `BertPretrainTextDataLoader`; what `tools/prepare_data.py` calls.
* `special_token_ids(vocab_file)`: the ids of the special tokens and the
    paper's allow/deny lists for any vocab.
* `prepare_data(config, output_dir, cache_dir)`: what `tools/prepare_data.py`
    runs: `build_pretraining_data`, or the cache when no directory is given.
* `PackageDocsCorpus(...).write_text_files(output_dir)`: the study corpus,
    Python's and the pinned packages' docstrings as text files, with
    documents held out of pretraining.
* `BuildProfile`, `format_profile`: seconds and MB/s per stage of a build
    (`tools/prepare_data.py --profile`).
"""

from token_dropping.data.build_profile import BuildProfile
from token_dropping.data.build_profile import format_table as format_profile
from token_dropping.data.builder import build_pretraining_data
from token_dropping.data.dataset_info import DatasetInfo
from token_dropping.data.default_corpus import DefaultCorpus
from token_dropping.data.default_dataset import default_cache_dir
from token_dropping.data.default_dataset import ensure_default_dataset
from token_dropping.data.default_dataset import prepare_data
from token_dropping.data.package_docs import PackageDocsCorpus
from token_dropping.data.prepare_data_config import PrepareDataConfig
from token_dropping.data.text_files import TextFileCorpus
from token_dropping.data.tfds_corpus import TfdsCorpus
from token_dropping.data.vocab import learn_vocab
from token_dropping.data.vocab import special_token_ids

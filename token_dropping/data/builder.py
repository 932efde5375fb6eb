"""build_pretraining_data: corpus -> vocab -> sequences -> sharded TFRecords.

The steps, for any source:

1. Read documents (lists of sentences); drop exact duplicates; hold out a
   document for validation when a hash of its text falls under
   `validation_fraction` (the first document always, so validation is never
   empty).
2. Take the vocab file, or learn one with tensorflow-text (`vocab.learn_vocab`).
3. Tokenize sentences in batches with tensorflow-text's `BertTokenizer`, the
   tokenizer Model Garden's text loader uses, or its `FastBertTokenizer` for
   the sentences where both give the same ids (`wordpiece.WordPieceIds`).
4. Pack sentences into sequences (`SequencePacker`; for the static packed
   layout `TokenPacker`, the same sequences from whole documents of ids).
5. Static format: add [CLS]/[SEP], mask (`MaskedLmMasker`, `dupe_factor` times
   for training), write Model Garden's v2 features for `BertPretrainDataLoader`.
   Text format: write the (normalized) text of each sequence for
   `BertPretrainTextDataLoader`, which masks at training time.
6. Shuffle and shard (`ShardedRecordWriter`), write `manifest.json` last.

Everything is written into a hidden `.partial-*` directory inside the output
directory and moved into place when complete, manifest last: a directory with
a manifest is whole, and re-running with the same config and the same input
contents finds it and returns (see `dataset_dir` for the lock and the checks).
"""

import dataclasses
import hashlib
import importlib.metadata
import itertools
import json
import os
import sys
import time
import uuid

from absl import logging
import tensorflow as tf

from token_dropping.common import paths
from token_dropping.data import build_profile
from token_dropping.data import dataset_dir
from token_dropping.data import dataset_info
from token_dropping.data import prepare_data_config
from token_dropping.data import read_progress
from token_dropping.data import sharded_build
from token_dropping.data import split_writer
from token_dropping.data import text_files
from token_dropping.data import vocab
from token_dropping.data import wordpiece
from token_dropping.common.errors import UserError

# Bump when the records for the same config change, so stale caches are rebuilt.
# 2: "\r" and "\r\n" end lines of text files (plain files dropped "\r").
BUILDER_VERSION = 2
VOCAB_FILENAME = "vocab.txt"
_TOKENIZE_BATCH_SENTENCES = sharded_build.TOKENIZE_BATCH_SENTENCES
_MAX_CACHED_CHARS = 64 * 2**20  # Read a corpus this small only once.


def build_pretraining_data(
        config: prepare_data_config.PrepareDataConfig, output_dir: str,
        profile: build_profile.BuildProfile | None = None
) -> dataset_info.DatasetInfo:
    """Prepares records for `config` in `output_dir`, or finds them there.

    Example:
    >>> config = PrepareDataConfig(input_files="books/*.txt", seq_length=128)
    >>> info = build_pretraining_data(config, "/data/books")
    >>> info.train_input_path
    '/data/books/train-*-of-00004.tfrecord'

    Args:
        config: what to read and how to shape it.
        output_dir: the dataset directory; created if missing.
        profile: times the build's stages (`tools/prepare_data.py --profile`);
            None times nothing.

    Returns:
        The `DatasetInfo` read back from the manifest.

    Raises:
        UserError: for a bad config, missing, unreadable or empty input, a
            vocab without the special tokens, or an `output_dir` that is a
            file or holds something other than this dataset. Every check that
            needs no build runs before anything is written.
    """
    profile = profile or build_profile.NO_PROFILE
    profile.start()
    config.validate()
    if config.runner:
        from token_dropping.data import beam_build  # Lazy: the beam extra.
        beam_build.check(config, output_dir)
    dataset_dir.check_output_dir(output_dir)
    corpus = config.make_corpus()
    # A rebuild replaces files in output_dir: no input may be among them.
    paths.check_apart(output_dir, "output_dir", [
        *(("input file", path) for path in getattr(corpus, "paths", ())),
        ("vocab_file", config.vocab_file),
        ("tfds_data_dir", config.tfds_data_dir)])
    given_vocab = (vocab.read_vocab(config.vocab_file) if config.vocab_file
                   else None)
    with profile.stage("scan"):  # Reads every input file once.
        source = corpus.describe()
    fingerprint = dataset_fingerprint(config, source, given_vocab)
    # The shard layout decides the records too (workers and Beam build each
    # input file alone), so another one is another dataset, not a rebuild.
    config_fields = dict(_fingerprinted_config(config),
                         input_shards=config.input_shards)
    existing = dataset_dir.existing_dataset(output_dir, fingerprint,
                                            config_fields)
    if existing is not None and not dataset_dir.has_build_entries(output_dir):
        return _reused(existing, output_dir)
    with dataset_dir.locked(output_dir):
        dataset_dir.remove_stale_partials(output_dir)
        # Another process may have built it while this one waited.
        existing = dataset_dir.existing_dataset(output_dir, fingerprint,
                                                config_fields)
        if existing is not None:
            return _reused(existing, output_dir)
        start = time.monotonic()
        build = _Build(config, corpus, given_vocab, fingerprint, profile)
        if dataset_dir.writes_in_place(output_dir):
            _build_in_place(build, output_dir)
        else:
            _build_and_publish(build, output_dir)
    profile.stop()
    info = dataset_info.DatasetInfo.from_manifest(
        os.path.join(output_dir, dataset_info.MANIFEST_FILENAME))
    logging.info("Prepared %s in %.1fs: %d train and %d validation examples.",
                 output_dir, time.monotonic() - start, info.num_train_examples,
                 info.num_validation_examples)
    return info


def _reused(existing, output_dir):
    """`existing` (a complete dataset), without an earlier in-place run's
    files its manifest does not name (`remove_other_runs`)."""
    if dataset_dir.writes_in_place(output_dir):
        dataset_dir.remove_other_runs(output_dir)
    return existing


def _build_and_publish(build, output_dir) -> None:
    """Builds in a hidden folder, then moves the files in, manifest last."""
    partial_dir = os.path.join(
        output_dir, f"{dataset_dir.PARTIAL_PREFIX}{uuid.uuid4().hex}")
    tf.io.gfile.makedirs(partial_dir)
    try:
        build.run(partial_dir)
        with build.profile.stage("finish"):
            dataset_dir.publish(partial_dir, output_dir)
    finally:
        if tf.io.gfile.exists(partial_dir):
            tf.io.gfile.rmtree(partial_dir)


def _build_in_place(build, output_dir) -> None:
    """Builds under final names marked with a run id, manifest last (GCS)."""
    run_suffix = dataset_dir.new_run_suffix()
    dataset_dir.remove_manifest(output_dir)
    try:
        build.run(output_dir, run_suffix)
    except BaseException:
        dataset_dir.remove_runs(output_dir, only=run_suffix)
        raise
    with build.profile.stage("finish"):
        dataset_dir.remove_runs(output_dir, keep=run_suffix)


def _fingerprinted_config(config) -> dict:
    """The config fields that decide the records' bytes."""
    return {k: v for k, v in dataclasses.asdict(config).items()
            if k not in prepare_data_config.NOT_IN_FINGERPRINT}


def dataset_fingerprint(config, source: dict, given_vocab) -> str:
    """A hash of everything that decides the records' bytes.

    That is the config, the source as `describe()` gives it (for text files
    the size and SHA-256 of each; for TFDS the version and each split's
    shard lengths and bytes), the vocab file's tokens, and the versions
    of this builder and of tensorflow-text (its tokenizer and vocab learner).
    """
    described = {
        "builder_version": BUILDER_VERSION,
        "tensorflow_text_version": importlib.metadata.version(
            "tensorflow-text"),
        "config": _fingerprinted_config(config),
        **({"input_shards": config.input_shards}
           if config.input_shards != "one" else {}),
        "source": source,
        "vocab_sha256": (None if given_vocab is None else hashlib.sha256(
            "\n".join(given_vocab).encode("utf-8")).hexdigest()),
    }
    return hashlib.sha256(
        json.dumps(described, sort_keys=True).encode("utf-8")).hexdigest()


class _ReplayableDocuments:
    """Iterates a corpus twice, reading it once if it fits in memory.

    `bytes_read` is the corpus's input bytes behind the documents yielded so
    far (text files only; 0 for other sources), also when replaying.
    """

    def __init__(self, corpus, max_documents: int | None):
        self.corpus = corpus
        self.max_documents = max_documents
        self.bytes_read = 0
        self._cached = None

    def __iter__(self):
        if self._cached is not None:
            cache, total_bytes_read = self._cached
            for document, bytes_read in cache:
                self.bytes_read = bytes_read
                yield document
            self.bytes_read = total_bytes_read
            return
        cache, chars = [], 0
        for document in itertools.islice(self.corpus.documents(),
                                         self.max_documents):
            self.bytes_read = getattr(self.corpus, "bytes_read", 0)
            if cache is not None:
                cache.append((document, self.bytes_read))
                chars += sum(len(sentence) for sentence in document)
                if chars > _MAX_CACHED_CHARS:
                    cache = None
            yield document
        self.bytes_read = getattr(self.corpus, "bytes_read", 0)
        if cache is not None:  # The whole corpus was read: replay it.
            self._cached = cache, self.bytes_read


class _Build:
    """One run of the steps in the module docstring, into `output_dir`."""

    def __init__(self, config, corpus, given_vocab, fingerprint, profile):
        self.config = config
        self.profile = profile
        self.corpus = corpus
        self.given_vocab = given_vocab
        self.fingerprint = fingerprint
        self.documents = _ReplayableDocuments(corpus, config.max_documents)

    def run(self, output_dir: str, run_suffix: str = "") -> None:
        """Writes everything into `output_dir`, the manifest last.

        `run_suffix` marks every other file's name (`dataset_dir.run_name`).
        """
        self.output_dir, self.run_suffix = output_dir, run_suffix
        self.vocab_filename = dataset_dir.run_name(VOCAB_FILENAME, run_suffix)
        self.special_filename = dataset_dir.run_name(
            vocab.SPECIAL_TOKENS_FILENAME, run_suffix)
        tokens = self._vocab()
        vocab_path = os.path.join(output_dir, self.vocab_filename)
        vocab.write_vocab(tokens, vocab_path)
        special = vocab.write_special_tokens(vocab_path, os.path.join(
            output_dir, self.special_filename))
        tokenizer = wordpiece.WordPieceIds(vocab_path, tokens,
                                           self.config.do_lower_case)
        names = ["train"] + (["validation"] if self.config.validation_fraction
                             else [])
        splits = {name: split_writer.SplitWriter(
            name, self.config, tokens, special, output_dir, self.profile,
            run_suffix=run_suffix)
            for name in names}
        num_duplicates = self._write_examples(tokenizer, splits, special)
        train_documents = splits["train"].counts["documents"]
        held_out = splits["validation"].counts["documents"] if (
            "validation" in splits) else 0
        if train_documents == 0 and held_out:
            raise UserError(
                f"The source has {held_out} document(s) and validation takes "
                f"them (validation_fraction={self.config.validation_fraction} "
                "always holds out the first); give at least 2 documents "
                "(blank line between documents in sentence_per_line files), "
                "or validation_fraction=0 to train on all of it.")
        if splits["train"].num_examples == 0:
            raise UserError("The source holds no text to train on: "
                            f"{_describe_briefly(self.corpus.describe())}.")
        with self.profile.stage("finish"):
            self._write_manifest(special, splits, num_duplicates)

    def _vocab(self) -> list[str]:
        if self.given_vocab is not None:
            return self.given_vocab
        sentences = self._vocab_sample()
        start = time.monotonic()
        with self.profile.stage("vocab"):
            tokens = vocab.learn_vocab(sentences, self.config.vocab_size,
                                       lower_case=self.config.do_lower_case)
        logging.info("Learned a vocab of %d tokens in %.1fs.", len(tokens),
                     time.monotonic() - start)
        return tokens

    def _vocab_sample(self) -> list[str]:
        """The first `vocab_max_sentences` sentences, logging the input read
        of the whole (the limit may stop it early)."""
        limit = self.config.vocab_max_sentences
        progress = _read_progress(self.corpus, "vocab sample: read")
        sentences = []
        for document in self.profile.timed(self.documents, "read"):
            progress.update(self.documents.bytes_read)
            sentences += document
            if len(sentences) >= limit:
                del sentences[limit:]
                break
        progress.update(self.documents.bytes_read)
        progress.done()
        return sentences

    def _write_examples(self, tokenizer, splits, special) -> int:
        """Routes, tokenizes and writes every document; counts duplicates."""
        if self.config.input_shards == "per_file":
            return sharded_build.write_examples(
                self.config, self.corpus, splits, special, self.output_dir,
                self.vocab_filename, self.run_suffix, self.profile)
        router = split_writer.DocumentRouter(self.config.validation_fraction)
        batch, batch_sentences = [], 0
        progress = _read_progress(self.corpus)
        self.profile.push("read")
        for document in self.documents:
            progress.update(self.documents.bytes_read)
            self.profile.count_text(document)
            name = router.route(split_writer.document_digest(document))
            if name is None:
                continue
            batch.append((splits[name], document))
            batch_sentences += len(document)
            if batch_sentences >= _TOKENIZE_BATCH_SENTENCES:
                split_writer.add_documents(tokenizer, batch, self.config,
                                           self.profile)
                batch, batch_sentences = [], 0
        split_writer.add_documents(tokenizer, batch, self.config, self.profile)
        progress.update(self.documents.bytes_read)
        progress.done()
        self.profile.pop()
        for split in splits.values():
            split.close()
        return router.num_duplicates

    def _write_manifest(self, special, splits, num_duplicates) -> None:
        import tensorflow_text as tf_text  # Lazy: loads custom ops.
        config = self.config
        static = config.output_format == "static"
        manifest = {
            "format": (dataset_info.STATIC_FORMAT if static
                       else dataset_info.TEXT_FORMAT),
            "fingerprint": self.fingerprint,
            "source": self.corpus.describe(),
            "vocab_file": self.vocab_filename,
            "vocab_learned": self.given_vocab is None,
            "vocab_source": config.vocab_file or "learned from the corpus",
            "special_tokens_file": self.special_filename,
            "special_tokens": special,
            "seq_length": config.seq_length,
            "max_predictions_per_seq": config.max_predictions_per_seq,
            "feature_names": list(dataset_info.STATIC_FEATURE_NAMES if static
                                  else dataset_info.TEXT_FEATURE_NAMES),
            "seed": config.seed,
            "config": dataclasses.asdict(config),
            "splits": {name: split.stats() for name, split in splits.items()},
            "num_duplicate_documents": num_duplicates,
            "undecodable_replacements": self.corpus.undecodable_replacements,
            "versions": {"python": sys.version.split()[0],
                         "tensorflow": tf.__version__,
                         "tensorflow_text": tf_text.__version__,
                         "builder": BUILDER_VERSION},
        }
        path = os.path.join(self.output_dir, dataset_info.MANIFEST_FILENAME)
        with tf.io.gfile.GFile(path, "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
            f.write("\n")


def _read_progress(corpus, what: str = "read"):
    """Progress through the input's bytes where their total is known ahead:
    text files (sized by `scan`). Other sources log example counts only."""
    if isinstance(corpus, text_files.TextFileCorpus):
        return read_progress.ReadProgress(corpus.num_input_bytes, what)
    return read_progress.NO_PROGRESS


def _describe_briefly(source: dict) -> str:
    """The source's description without per-file hashes."""
    if source.get("name") == "text_files":
        return f"input_files={source['input_files']!r}"
    return ", ".join(f"{k}={v!r}" for k, v in source.items())

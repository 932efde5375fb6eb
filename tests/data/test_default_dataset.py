"""The embedded default corpus and its cached dataset."""

import inspect
import json
import os
import re
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf
from official.nlp.data import pretrain_dataloader

from data_testdata import bert_format
from token_dropping.data import builder
from token_dropping.data import DefaultCorpus
from token_dropping.data import default_cache_dir
from token_dropping.data import ensure_default_dataset

SHAPE = dict(seq_length=64, max_predictions_per_seq=10, vocab_size=300)
# The default dataset at its default shape, per Python release: what the
# docs quote (docs/data.md) and `ensure_default_dataset`'s example shows.
FIGURES = {
    (3, 11, 7): dict(documents=1564, sentences=45004, vocab_size=7655,
                     train_sequences=5547, train_examples=11094,
                     validation_sequences=296),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two threads ask for one dataset at once; one build must serve both."""
    cache = str(tmp_path_factory.mktemp("cache"))
    runs, results = [], [None, None]
    original = builder._Build.run

    def counted_run(self, *args):
        runs.append(self)
        return original(self, *args)

    def ask(i):
        results[i] = ensure_default_dataset(cache_dir=cache, **SHAPE)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builder._Build, "run", counted_run)
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return cache, runs, results


def test_concurrent_first_use_builds_once_and_both_get_it(built):
    cache, runs, (first, second) = built
    assert first is not None and first == second
    assert len(runs) == 1
    names = sorted(os.listdir(cache))
    dataset = os.path.basename(first.output_dir)
    assert names == [dataset]  # No lock file is left beside or inside it.
    assert not [n for n in os.listdir(first.output_dir) if n.startswith(".")]


def test_cached_dataset_is_reused(built):
    cache, runs, (first, _) = built
    assert ensure_default_dataset(cache_dir=cache, **SHAPE) == first
    assert len(runs) == 1


def test_default_dataset_describes_itself(built):
    _, _, (info, _) = built
    assert info.data_format == "bert_pretrain_v2"
    assert info.seq_length == 64 and info.max_predictions_per_seq == 10
    with open(info.vocab_file) as f:
        assert info.vocab_size == len(f.read().splitlines()) <= 300
    assert info.token_allow_list == (100, 101, 102, 103)
    assert info.token_deny_list == (0,)
    assert info.num_train_examples > 20 * info.num_validation_examples > 0


def test_default_corpus_is_large_enough(built):
    _, _, (info, _) = built
    with open(info.manifest_path) as f:
        manifest = json.load(f)
    splits = manifest["splits"]
    total = {key: sum(s[key] for s in splits.values()) for key in (
        "num_documents", "num_sentences", "num_word_pieces")}
    print("default corpus (vocab 300):", total)
    assert total["num_documents"] >= 1000
    assert total["num_sentences"] >= 30_000
    assert total["num_word_pieces"] >= 700_000
    assert manifest["source"]["name"] == "python_docs"


def test_default_records_load_and_are_packed(built):
    _, _, (info, _) = built
    config = info.data_config("train", global_batch_size=512, is_training=False,
                              drop_remainder=False)
    dataset = pretrain_dataloader.BertPretrainDataLoader(config).load()
    masks = [x["input_mask"] for x in dataset.as_numpy_iterator()]
    mask = np.concatenate(masks)
    assert mask.shape == (info.num_train_examples, 64)
    assert mask.mean() >= 0.95


def test_cache_dir_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TOKEN_DROPPING_CACHE", "/some/where")
    assert default_cache_dir() == "/some/where"
    monkeypatch.delenv("TOKEN_DROPPING_CACHE")
    assert default_cache_dir() == os.path.expanduser("~/.cache/token_dropping")


def test_bad_shape_is_rejected_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="max_predictions_per_seq=200 must be"):
        ensure_default_dataset(seq_length=128, max_predictions_per_seq=200,
                               cache_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_default_corpus_is_deterministic():
    first = bert_format(DefaultCorpus(max_documents=100).documents())
    second = bert_format(DefaultCorpus(max_documents=100).documents())
    assert first == second and len(first) > 50_000


def test_default_corpus_reads_a_standard_library_tree(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "site-packages").mkdir()
    (tmp_path / "test").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text('''"""Tools for parsing the sky.
They are old.

>>> parse("sky")
'blue'
"""

# The sky is parsed in two steps here.
# Each step reads one line of input.
x = 1  # A trailing comment is not read.


class Parser:
    """Parses the sky into its colours. They are old."""

    def run(self):
        """Return the colour of the sky at noon."""
        text = """
        # Not a comment: this line is inside a string.
        """
        return text
''')
    (tmp_path / "site-packages" / "other.py").write_text(
        '"""Third party modules are never read here."""\n')
    (tmp_path / "test" / "test_mod.py").write_text(
        '"""Tests check that the sky parser works."""\n')
    (tmp_path / "test" / "test_latin.py").write_bytes(
        b"# -*- coding: latin-1 -*-\n# The sky over the caf\xe9 is blue.\n")
    corpus = DefaultCorpus(stdlib_dir=str(tmp_path))
    documents = list(corpus.documents())
    ours = [d for d in documents if any("sky" in s for s in d)]
    assert ours == [
        ["Tools for parsing the sky.", "They are old.",
         "The sky is parsed in two steps here.",
         "Each step reads one line of input.",
         "Parses the sky into its colours.",
         "Return the colour of the sky at noon."],
        ["The sky over the caf\xe9 is blue."],  # Decoded as it declares.
        ["Tests check that the sky parser works."],
    ]
    assert corpus.undecodable_replacements == 0
    assert not any("Third party" in s for d in documents for s in d)


@pytest.mark.slow
def test_full_default_corpus_is_byte_identical_twice():
    first = bert_format(DefaultCorpus().documents())
    # Not just equal: the whole corpus (README: 1,564 documents and 3.4 MB
    # on Python 3.11.7; well above these floors on any Python 3).
    assert first.count("\n\n") + 1 >= 500
    assert len(first.encode("utf-8")) >= 1_000_000
    assert first == bert_format(DefaultCorpus().documents())


@pytest.mark.slow
def test_default_dataset_at_the_default_shape(tmp_path):
    info = ensure_default_dataset(cache_dir=str(tmp_path))
    assert info.seq_length == 128 and 7600 <= info.vocab_size <= 8000
    assert info.num_train_examples > 10_000
    with open(info.manifest_path) as f:
        splits = json.load(f)["splits"]
    train, validation = splits["train"], splits["validation"]
    assert train["num_examples"] == 2 * train["num_sequences"]  # dupe_factor

    # On any Python: the manifest's counts are this build's, recounted from
    # the corpus, the shards and the vocab file.
    documents = list(DefaultCorpus().documents())
    unique = list(dict.fromkeys(tuple(d) for d in documents))
    with open(info.manifest_path) as f:
        manifest = json.load(f)
    assert len(documents) == len(unique) + manifest["num_duplicate_documents"]
    assert sum(s["num_documents"] for s in splits.values()) == len(unique)
    assert sum(s["num_sentences"] for s in splits.values()) == sum(
        len(d) for d in unique)
    for path, split in ((info.train_input_path, train),
                        (info.validation_input_path, validation)):
        files = tf.io.gfile.glob(path)
        assert sum(1 for _ in tf.data.TFRecordDataset(files)) == (
            split["num_examples"])
    assert info.num_validation_examples == validation["num_sequences"]
    with open(info.vocab_file) as f:
        assert info.vocab_size == sum(1 for _ in f)

    # The figures the docs and the docstring quote, pinned for the Python
    # they were measured on (another patch release ships other docstrings).
    python = sys.version_info[:3]
    if python not in FIGURES:
        pytest.skip(f"figures pinned for Python {sorted(FIGURES)}, this is "
                    f"{python}; the counts above were checked")
    assert dict(
        documents=len(unique), sentences=sum(len(d) for d in unique),
        vocab_size=info.vocab_size, train_sequences=train["num_sequences"],
        train_examples=info.num_train_examples,
        validation_sequences=validation["num_sequences"]) == FIGURES[python]
    example = re.search(r"\((\d+), \(100, 101, 102, 103\), \(0,\)\)",
                        ensure_default_dataset.__doc__)
    assert int(example.group(1)) == info.vocab_size


def test_builtin_docs_are_read_the_same_in_any_process(monkeypatch):
    # pytest and absl replace sys hooks; the corpus must not depend on that.
    from token_dropping.data import default_corpus
    original = default_corpus._builtin_module_texts("sys")

    def replaced_hook(unraisable):
        """A hook this process installed, which reads differently."""

    monkeypatch.setattr(sys, "unraisablehook", replaced_hook)
    monkeypatch.setattr(sys, "excepthook", replaced_hook)
    assert default_corpus._builtin_module_texts("sys") == original
    assert inspect.cleandoc(sys.__excepthook__.__doc__) in original

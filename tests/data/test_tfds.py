"""TFDS sources: a tiny dataset builder defined and prepared here, offline."""

import os
import shutil

import pytest
import tensorflow_datasets as tfds

from data_testdata import bert_format, tiny_documents, write_text
from token_dropping.data import PrepareDataConfig
from token_dropping.data import TfdsCorpus
from token_dropping.data import build_pretraining_data

DOCUMENTS = tiny_documents(12, seed=7)


class TokenDroppingTinyDocs(tfds.core.GeneratorBasedBuilder):
    """Twelve documents, one per example, sentences separated by newlines."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict({
                "text": tfds.features.Text(), "title": tfds.features.Text()}))

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing is downloaded.
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i, sentences in enumerate(DOCUMENTS):
            yield i, {"text": "\n".join(sentences), "title": f"doc {i}"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    TokenDroppingTinyDocs(data_dir=path).download_and_prepare(
        download_dir=os.path.join(path, "downloads"))
    return path


def test_tfds_documents_are_the_examples(data_dir):
    corpus = TfdsCorpus("token_dropping_tiny_docs", "train", data_dir)
    documents = list(corpus.documents())
    # TFDS may store examples in another order than they were generated.
    assert sorted(documents) == sorted(DOCUMENTS)


def test_tfds_and_text_files_give_the_same_records(data_dir, tmp_path):
    corpus = TfdsCorpus("token_dropping_tiny_docs", "train", data_dir)
    ordered = list(corpus.documents())
    text_file = write_text(tmp_path / "docs.txt", bert_format(ordered))
    shape = dict(vocab_size=300, seq_length=32, max_predictions_per_seq=5)
    from_tfds = build_pretraining_data(PrepareDataConfig(
        tfds_name="token_dropping_tiny_docs", tfds_split="train",
        tfds_data_dir=data_dir, **shape), str(tmp_path / "tfds"))
    from_text = build_pretraining_data(
        PrepareDataConfig(input_files=text_file, **shape),
        str(tmp_path / "text"))
    assert from_tfds.num_train_examples == from_text.num_train_examples > 0
    for name in sorted(os.listdir(tmp_path / "tfds")):
        if name.endswith(".tfrecord") or name == "vocab.txt":
            assert (tmp_path / "tfds" / name).read_bytes() == (
                tmp_path / "text" / name).read_bytes(), name


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="token_dropping_tiny_docs", data_dir="EMPTY"),
     "is not prepared"),
    (dict(name="token_dropping_no_such_dataset"),
     "is not a known TFDS dataset"),
    (dict(name="token_dropping_tiny_docs", text_key="body"),
     "tfds_text_key='body' is not a feature of .* it has text, title"),
    (dict(name="token_dropping_tiny_docs", split="test"), "tfds_split='test'"),
])
def test_bad_tfds_settings_name_the_value(data_dir, tmp_path, kwargs, message):
    kwargs.setdefault("data_dir", data_dir)
    if kwargs["data_dir"] == "EMPTY":
        kwargs["data_dir"] = str(tmp_path)
    with pytest.raises(ValueError, match=message):
        next(iter(TfdsCorpus(**kwargs).documents()))


def test_a_dataset_prepared_again_with_other_examples_is_rebuilt(
        data_dir, tmp_path, monkeypatch):
    # The same name, version and folder, prepared again from other text: the
    # records made from the first are not reused.
    prepared = str(tmp_path / "tfds")
    TokenDroppingTinyDocs(data_dir=prepared).download_and_prepare(
        download_dir=os.path.join(prepared, "downloads"))
    config = PrepareDataConfig(
        tfds_name="token_dropping_tiny_docs", tfds_split="train",
        tfds_data_dir=prepared, vocab_size=300, seq_length=32,
        max_predictions_per_seq=5)
    first = build_pretraining_data(config, str(tmp_path / "out"))
    records = sorted((tmp_path / "out").glob("train*"))
    before = {p.name: p.read_bytes() for p in records}
    monkeypatch.setitem(globals(), "DOCUMENTS",  # one document more
                        tiny_documents(13, seed=7))
    shutil.rmtree(os.path.join(prepared, "token_dropping_tiny_docs"))
    TokenDroppingTinyDocs(data_dir=prepared).download_and_prepare(
        download_dir=os.path.join(prepared, "downloads"))
    second = build_pretraining_data(config, str(tmp_path / "out"))
    assert second.num_train_examples + second.num_validation_examples > (
        first.num_train_examples + first.num_validation_examples)
    after = {p.name: p.read_bytes()
             for p in sorted((tmp_path / "out").glob("train*"))}
    assert after != before

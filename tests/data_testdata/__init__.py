"""Tiny corpora for the data tests, made on the fly (no files are shipped)."""

import gzip
import json
import os
import random

WORDS = (
    "the a model token layer drops keeps every sentence word piece vocabulary "
    "masked loss training importance attention runs fast slow small large "
    "python text corpus document reads writes learns predicts hidden middle "
    "first last batch sequence length packing record shard manifest seed "
    "encoder decoder gradient update moving average special unusual rare "
    "frequent chosen random stable quickly carefully again never always"
).split()


def tiny_documents(num_documents=20, seed=0, min_sentences=2, max_sentences=6,
                   words=WORDS):
    """Deterministic English-like documents: lists of sentences."""
    rng = random.Random(seed)
    documents = []
    for _ in range(num_documents):
        sentences = []
        for _ in range(rng.randint(min_sentences, max_sentences)):
            length = rng.randint(4, 14)
            body = " ".join(rng.choice(words) for _ in range(length))
            sentences.append(body.capitalize() + rng.choice(".!?"))
        documents.append(sentences)
    return documents


def bert_format(documents):
    """BERT's text format: one sentence per line, a blank line between docs."""
    return "\n\n".join("\n".join(d) for d in documents) + "\n"


def write_text(path, content, gz=False):
    """Writes `content` (str or bytes) to `path`, gzipped if asked."""
    raw = content.encode("utf-8") if isinstance(content, str) else content
    if gz:
        raw = gzip.compress(raw, mtime=0)
    with open(path, "wb") as f:
        f.write(raw)
    return str(path)


def write_lines(path, tokens):
    """Writes a vocab file, one token per line."""
    return write_text(path, "".join(t + "\n" for t in tokens))


def small_config(input_files, **overrides):
    """A `PrepareDataConfig` at test size (vocab 300, seq 32, 5 predictions)."""
    from token_dropping.data import PrepareDataConfig  # pylint: disable=import-outside-toplevel
    return PrepareDataConfig(**dict(
        dict(input_files=input_files, vocab_size=300, seq_length=32,
             max_predictions_per_seq=5), **overrides))


def shard_records(output_dir):
    """Every record of every `.tfrecord` file of a local `output_dir`, by
    file name, in file order."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    names = sorted(n for n in os.listdir(output_dir) if n.endswith(".tfrecord"))
    return {n: [r.numpy() for r in tf.data.TFRecordDataset(
        os.path.join(output_dir, n))] for n in names}


def read_manifest(output_dir):
    """The `manifest.json` of a local `output_dir`."""
    with open(os.path.join(output_dir, "manifest.json")) as f:
        return json.load(f)

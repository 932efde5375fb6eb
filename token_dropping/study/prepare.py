"""A study's data: the pretraining records and the probe's GLUE folder.

By default both come from text that installs with the project
(`PackageDocsCorpus`); documents held out of pretraining become the probe
(`probe_data`). With `data_dir` the user's prepared records are used, and
with `glue_dir` a GLUE task is the probe.
"""

import os

from absl import logging

from token_dropping.common.errors import UserError
from token_dropping.common.errors import first_line
from token_dropping.data import dataset_info
from token_dropping.data import default_dataset
from token_dropping.data import package_docs
from token_dropping.data import prepare_data_config
from token_dropping.study import probe_tasks

# --quick's encoder and data: 3 layers (one dropped) of 32, sequences of 32.
QUICK_ENCODER = dict(num_layers=3, hidden_size=32, num_attention_heads=2,
                     intermediate_size=64, token_keep_k=16)
_QUICK_DATA = dict(seq_length=32, max_predictions_per_seq=5, vocab_size=600)
# Every source, a larger held-out share: both labels of the source probe.
_QUICK_CORPUS = dict(max_documents_per_source=50, heldout_share=0.3)
QUICK_PROBE = dict(num_train=160, num_dev=80)
_DATA = dict(seq_length=128, max_predictions_per_seq=20, vocab_size=8000)
PROBE = dict(num_train=2000, num_dev=1000)
SENTENCE_ORDER_PROBE = dict(num_train=1000, num_dev=500)
# Sentences (two rows each). 2,000 dev sentences in 145 documents: a
# document-bootstrap interval of about +-0.02 on BERT's accuracy.
CLOZE_PROBE = dict(num_train=2000, num_dev=2000)
_WHOLE_SHUFFLE = 1_000_000  # examples: more than the default corpus makes


def data_shape(config):
    """The shape the study's records will have (`seq_length`,
    `max_predictions_per_seq`, `vocab_size`: the vocabulary's target size),
    known before they are built; --data_dir's from its manifest."""
    if config.data_dir:
        info = dataset_info.DatasetInfo.from_manifest(os.path.join(
            config.data_dir, dataset_info.MANIFEST_FILENAME))
        return dict(seq_length=info.seq_length,
                    max_predictions_per_seq=info.max_predictions_per_seq,
                    vocab_size=info.vocab_size)
    return dict(_QUICK_DATA if config.quick else _DATA)


def prepare_data(config):
    """Builds (or finds) the pretraining records and the probe's GLUE dir."""
    if config.data_dir:
        info = dataset_info.DatasetInfo.from_manifest(os.path.join(
            config.data_dir, dataset_info.MANIFEST_FILENAME))
        if info.data_format != dataset_info.STATIC_FORMAT:
            raise UserError(f"--data_dir={config.data_dir!r} holds "
                            f"{info.data_format} records; the study reads "
                            "static ones (--output_format=static).")
        return info, config.glue_dir
    corpus_kwargs = _QUICK_CORPUS if config.quick else {}
    corpus = package_docs.PackageDocsCorpus(**corpus_kwargs)
    text = corpus.write_text_files(os.path.join(config.runs_dir, "corpus"))
    shape = _QUICK_DATA if config.quick else _DATA
    data_config = prepare_data_config.PrepareDataConfig(
        input_files=text.input_files, dupe_factor=2,
        validation_fraction=0.02 if not config.quick else 0.1,
        # The corpus files come package by package; a window shuffle would
        # leave the stream in that order, so a longer run (token dropping at
        # equal compute) would see packages a shorter one never saw. The
        # study shuffles the whole training set (about 150 MB held).
        shuffle_buffer_size=_WHOLE_SHUFFLE,
        num_workers=min(2, os.cpu_count() or 1), **shape)
    data_dir = os.path.join(config.runs_dir, "data")
    try:
        info = default_dataset.prepare_data(data_config, output_dir=data_dir)
    except ValueError as e:
        raise UserError(
            f"--runs_dir={config.runs_dir!r} holds records built with other "
            f"settings ({first_line(e)}); use a new --runs_dir, or delete "
            f"{data_dir} and the runs trained on it "
            f"({os.path.join(config.runs_dir, 'pretrain')}).") from None
    if info.num_train_examples > _WHOLE_SHUFFLE:
        logging.warning(
            "study: %d training examples, more than the %d shuffled together:"
            " the records keep some of the corpus's order.",
            info.num_train_examples, _WHOLE_SHUFFLE)
    glue_dir = config.glue_dir
    if not glue_dir:
        glue_dir = os.path.join(config.runs_dir, "probe")
        _build_probe(config, text, info.vocab_file, glue_dir)
    return info, glue_dir


def _build_probe(config, text, vocab_file, glue_dir):
    """The built probe (`config.probe`) from the held-out documents."""
    counts = QUICK_PROBE if config.quick else PROBE
    if config.probe == "sentence_order" and not config.quick:
        counts = SENTENCE_ORDER_PROBE  # the default corpus has 1,552 pairs
    if config.probe == "cloze" and not config.quick:
        counts = CLOZE_PROBE
    probe_tasks.build(config.probe, text.heldout_file, glue_dir,
                      sources=text.heldout_sources(), seed=0,
                      pretraining_files=text.pretrain_files,
                      vocab_file=vocab_file, **counts)


def probe_note(config, glue_dir):
    """What the probe is, for the summary."""
    if config.glue_dir:
        return (f"Probe: `{os.path.basename(glue_dir.rstrip('/'))}` "
                f"(GLUE {config.glue_task}).")
    return probe_tasks.note(config.probe)

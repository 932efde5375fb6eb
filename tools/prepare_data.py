r"""Prepare BERT pretraining records for Model Garden's data loaders.

    # The embedded default corpus (Python's documentation), into a directory:
    python tools/prepare_data.py --output_dir=/tmp/python_docs

    # ... or into the cache that tools/train.py uses when no input path is set
    # ($TOKEN_DROPPING_CACHE, else ~/.cache/token_dropping):
    python tools/prepare_data.py --seq_length=128 --max_predictions_per_seq=20

    # Text files (BERT's format: one sentence per line, blank line between
    # documents), plain or gzipped, BERT's uncased vocab, the paper's shape:
    python tools/prepare_data.py --output_dir=/data/wiki_books_512 \
        --input_files='/data/wiki/*.txt.gz,/data/books/*.txt' \
        --vocab_file=/models/uncased_L-12_H-768_A-12/vocab.txt \
        --seq_length=512 --max_predictions_per_seq=76 --dupe_factor=5

    # One document per line, a vocab learned from the corpus:
    python tools/prepare_data.py --output_dir=/data/mine \
        --input_files=/data/mine.txt --input_format=document_per_line \
        --vocab_size=30522

    # A TFDS dataset you have prepared (nothing is downloaded here):
    python tools/prepare_data.py --output_dir=/data/wiki_tfds \
        --tfds_name=wikipedia/20230601.en --tfds_split=train \
        --tfds_data_dir=$HOME/tensorflow_datasets --vocab_file=vocab.txt

    # Raw text for BertPretrainTextDataLoader (dynamic masking at train time):
    python tools/prepare_data.py --output_dir=/tmp/python_docs_text \
        --output_format=text

    # All cores: one worker process per input file at a time (records are the
    # same for any --num_workers above 1; one file gives the one-process ones):
    python tools/prepare_data.py --output_dir=/data/wiki_128 \
        --input_files='/data/wiki/*.txt.gz' --vocab_file=vocab.txt \
        --num_workers=8

    # Apache Beam (pip install token-dropping[beam]), the records of
    # --num_workers above 1: on this machine with Beam's DirectRunner ...
    OPTIONS=direct_num_workers=8,direct_running_mode=multi_processing
    python tools/prepare_data.py --output_dir=/data/wiki_128 \
        --input_files='/data/wiki/*.txt.gz' --vocab_file=vocab.txt \
        --runner=DirectRunner --beam_pipeline_options=$OPTIONS

    # ... or on many machines with Dataflow (apache-beam[gcp]; input and
    # output on GCS; this package staged for the workers with setup_file):
    OPTIONS=project=my-project,region=us-central1,temp_location=gs://bucket/tmp
    python tools/prepare_data.py --output_dir=gs://bucket/wiki_128 \
        --input_files='gs://bucket/wiki/*.txt.gz' --vocab_file=vocab.txt \
        --runner=DataflowRunner \
        --beam_pipeline_options=$OPTIONS,setup_file=./setup.py

    # Where the time goes: seconds and MB/s of text per stage of a build.
    python tools/prepare_data.py --output_dir=/tmp/profiled --profile

The output directory gets `train-*.tfrecord`, `validation-*.tfrecord`,
`vocab.txt`, `special_tokens.json` (the [PAD]/[UNK]/[CLS]/[SEP]/[MASK] ids and
the paper's allow/deny lists for that vocab) and `manifest.json`, written last.
Point an experiment at it with
`--params_override=task.train_data.input_path=DIR/train-*,...`. Everything
happens in `token_dropping.data.prepare_data`; bad input ends with one line.
"""

import signal
import sys

from absl import app
from absl import flags

from token_dropping import data
from token_dropping.common import paths

_CONFIG = data.PrepareDataConfig()
_HELP = {  # One line per PrepareDataConfig field; its docstring has more.
    "input_files": "Comma-separated globs of text files (.gz ok); "
                   "empty with no --tfds_name: the embedded default corpus.",
    "input_format": "sentence_per_line (BERT's) or document_per_line.",
    "tfds_name": "A prepared TFDS dataset to read, e.g. wikipedia/20230601.en.",
    "tfds_split": "The TFDS split.",
    "tfds_data_dir": "Where the TFDS dataset is prepared.",
    "tfds_text_key": "The TFDS text feature.",
    "vocab_file": "A WordPiece vocab; empty: learn one of --vocab_size.",
    "vocab_size": "Size of the vocab to learn (BERT's layout, 104 reserved).",
    "do_lower_case": "Uncased tokenization.",
    "vocab_max_sentences": "Learn the vocab from at most this many sentences.",
    "output_format": "static (masked records, BertPretrainDataLoader) or text "
                     "(BertPretrainTextDataLoader).",
    "seq_length": "Tokens per example, [CLS] and [SEP] included.",
    "max_predictions_per_seq": "Masked-LM targets per example.",
    "masked_lm_prob": "Fraction of tokens to predict.",
    "dupe_factor": "Maskings of each training sequence.",
    "whole_word_masking": "Mask all pieces of a word together.",
    "packed": "Pack sentences across documents (the paper's sequence packing).",
    "validation_fraction": "Share of documents held out for validation.",
    "num_train_shards": "Training TFRecord files.",
    "num_validation_shards": "Validation TFRecord files.",
    "shuffle_buffer_size": "Examples shuffled together before writing.",
    "seed": "Seed of masking and shuffling.",
    "max_documents": "Read only this many documents (quick trials).",
    "allow_undecodable": "Read input files that are over 1% non-UTF-8 bytes "
                         "(replaced by U+FFFD) instead of stopping.",
    "num_workers": "Processes building at once, one input file each; above 1 "
                   "the records depend on the files, not on the count.",
    "runner": "An Apache Beam runner building one input file per element "
              "(DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, "
              "PortableRunner), with the records of --num_workers above 1; "
              "empty: local processes. Needs pip install token-dropping[beam].",
    "beam_pipeline_options": "The runner's Beam pipeline options, comma-"
                             "separated name=value, e.g. direct_num_workers=2,"
                             "direct_running_mode=multi_processing.",
}

flags.DEFINE_string("output_dir", "", "Dataset directory; empty: the cache "
                    "(embedded default corpus only).")
flags.DEFINE_string("cache_dir", None, "Cache directory; default "
                    "$TOKEN_DROPPING_CACHE or ~/.cache/token_dropping.")
flags.DEFINE_bool("profile", False, "Print seconds and MB/s of text per stage "
                  "of the build (reading, tokenization, packing, masking, "
                  "serialization, writing).")
for _name, _help in _HELP.items():
    _default = getattr(_CONFIG, _name)
    if isinstance(_default, bool):
        flags.DEFINE_bool(_name, _default, _help)
    elif isinstance(_default, int) or _name == "max_documents":
        flags.DEFINE_integer(_name, _default, _help)
    elif isinstance(_default, float):
        flags.DEFINE_float(_name, _default, _help)
    else:
        flags.DEFINE_string(_name, _default, _help)


def _stop(signum, unused_frame):
    """SIGTERM unwinds like an error, so the unfinished output is removed."""
    print(f"prepare_data.py: stopped by {signal.Signals(signum).name}; "
          "removing the unfinished output.", file=sys.stderr)
    raise SystemExit(128 + signum)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    home = paths.unexpanded_home(flags.FLAGS)
    if home:
        sys.exit(f"prepare_data.py: error: {home}")
    if flags.FLAGS.vocab_file and flags.FLAGS["vocab_size"].present:
        sys.exit(f"prepare_data.py: error: --vocab_size="
                 f"{flags.FLAGS.vocab_size} sizes a vocab to learn, but "
                 f"--vocab_file={flags.FLAGS.vocab_file!r} is given (its "
                 "pieces decide the size); give one of them.")
    signal.signal(signal.SIGTERM, _stop)
    config = data.PrepareDataConfig(
        **{name: flags.FLAGS[name].value for name in _HELP})
    profile = data.BuildProfile() if flags.FLAGS.profile else None
    try:
        info = data.prepare_data(config, flags.FLAGS.output_dir,
                                 flags.FLAGS.cache_dir, profile=profile)
    except ValueError as e:
        print(f"prepare_data.py: error: {e}", file=sys.stderr)
        sys.exit(2)
    for field, value in vars(info).items():
        print(f"{field}: {value}")
    if profile:
        print(data.format_profile(profile.as_dict()))


if __name__ == "__main__":
    app.run(main)

"""glue_data: GLUE's TSV files into Model Garden's fine-tuning records.

Model Garden 2.20 reads GLUE only from TFDS: `create_finetuning_data.py`
asserts that `--input_data_dir` is not given for CoLA, SST-2, MNLI and the
other GLUE tasks, and its `ColaProcessor`, `SstProcessor` and `MnliProcessor`
load `glue/<task>` from TFDS (a download; `MnliProcessor` does so as soon as
it is built). `convert` instead reads the TSV files of GLUE's own download, as
BERT's original `run_classifier.py` did, with Model Garden's `_read_tsv` and
each processor's label set, and writes the records, in the layout
`bert/sentence_prediction` reads, with Model Garden's
`classifier_data_lib.generate_tf_record_from_data_file` and its
`FullTokenizer`.

`tools/finetuning_data.py` is its command line; the study's probe
(`probe.py`) converts its CoLA-layout task with it too.

Example:
>>> records = convert("glue/SST-2", "sst2", "exports/base/vocab.txt",
...                   "data/finetune", max_seq_length=128)
>>> records.train_path, records.train_size
('data/finetune/sst2_train.tf_record', 67349)
"""

import dataclasses
import json
import os

import tensorflow as tf
from official.nlp.data import classifier_data_lib
from official.nlp.tools import tokenization

from token_dropping.common.checks import as_int
from token_dropping.common.errors import UserError
from token_dropping.common.paths import check_output_path


@dataclasses.dataclass(frozen=True)
class _Columns:
    """Where a split's examples are in its TSV file."""
    file: str
    text_a: int
    text_b: int | None
    label: int | None  # None: unlabelled (test)
    header: bool


class _TsvExamples:
    """`get_*_examples` from GLUE's TSV files, by `columns[split]`."""
    columns = {}

    def get_train_examples(self, data_dir):
        return self._examples(data_dir, "train")

    def get_dev_examples(self, data_dir):
        return self._examples(data_dir, "dev")

    def get_test_examples(self, data_dir):
        return self._examples(data_dir, "test")

    def _examples(self, data_dir, split):
        columns = self.columns[split]
        path = os.path.join(data_dir, columns.file)
        lines = self._read_tsv(path, quotechar=None)
        labels = self.get_labels()
        needed = max(c if c >= 0 else -c - 1
                     for c in (columns.text_a, columns.text_b, columns.label)
                     if c is not None) + 1
        examples = []
        for number, line in enumerate(lines, start=1):
            if number == 1 and columns.header:
                continue
            if len(line) < needed:
                raise UserError(
                    f"{path}, line {number}: {len(line)} tab-separated "
                    f"columns; GLUE's {self.get_processor_name()} layout has "
                    f"at least {needed}.")
            label = labels[0]  # test files have none
            if columns.label is not None:
                label = line[columns.label]
                if label not in labels:
                    raise UserError(
                        f"{path}, line {number}: label {label!r} is not one "
                        f"of {', '.join(labels)}.")
            examples.append(classifier_data_lib.InputExample(
                guid=f"{split}-{len(examples)}",
                text_a=self.process_text_fn(line[columns.text_a]),
                text_b=(self.process_text_fn(line[columns.text_b])
                        if columns.text_b is not None else None),
                label=label))
        return examples


class TsvCola(_TsvExamples, classifier_data_lib.ColaProcessor):
    """Model Garden's CoLA processor on GLUE's `CoLA/*.tsv` files.

    train/dev: no header; source, label, original label, sentence.
    test: header `index<TAB>sentence`.
    """
    columns = dict(train=_Columns("train.tsv", 3, None, 1, False),
                   dev=_Columns("dev.tsv", 3, None, 1, False),
                   test=_Columns("test.tsv", 1, None, None, True))


class TsvSst2(_TsvExamples, classifier_data_lib.SstProcessor):
    """Model Garden's SST-2 processor on GLUE's `SST-2/*.tsv` files.

    train/dev: header `sentence<TAB>label`; test: `index<TAB>sentence`.
    """
    columns = dict(train=_Columns("train.tsv", 0, None, 1, True),
                   dev=_Columns("dev.tsv", 0, None, 1, True),
                   test=_Columns("test.tsv", 1, None, None, True))


class TsvMnli(_TsvExamples, classifier_data_lib.MnliProcessor):
    """Model Garden's MNLI processor (matched dev set) on GLUE's `MNLI/`.

    Every file has a header; sentence1 (the premise) is column 8 and
    sentence2 (the hypothesis) column 9, the gold label the last column:
    `train.tsv`, `dev_matched.tsv`, `test_matched.tsv` (no label). The pair
    order is BERT's `run_classifier.py`'s.
    """
    columns = dict(train=_Columns("train.tsv", 8, 9, -1, True),
                   dev=_Columns("dev_matched.tsv", 8, 9, -1, True),
                   test=_Columns("test_matched.tsv", 8, 9, None, True))

    def __init__(self, process_text_fn=tokenization.convert_to_unicode):
        # MnliProcessor's own constructor loads TFDS; only its labels are used.
        classifier_data_lib.DataProcessor.__init__(self, process_text_fn)
        self.mnli_type = "matched"


PROCESSORS = {"cola": TsvCola, "sst2": TsvSst2, "mnli": TsvMnli}


@dataclasses.dataclass
class GlueRecords:
    """Fine-tuning records made by `convert`, and their meta data."""
    task: str
    train_path: str
    eval_path: str
    meta_path: str
    num_labels: int
    train_size: int
    dev_size: int
    max_seq_length: int


def convert(glue_dir, task, vocab_file, output_dir, *, do_lower_case=True,
            max_seq_length=128):
    """Writes `<task>_train.tf_record`, `<task>_eval.tf_record` and
    `<task>_meta_data` (JSON, last) into `output_dir`; returns GlueRecords.

    The same input gives the same tf.Examples in the same order; the bytes
    may differ between processes (protobuf writes a feature map in no fixed
    order).

    Raises:
        UserError: an unknown task, a missing file, a file in another
            layout, before anything is left in `output_dir`.
    """
    if task not in PROCESSORS:
        raise UserError(f"task={task!r} is not one of "
                        f"{', '.join(sorted(PROCESSORS))}.")
    processor = PROCESSORS[task]()
    for path in (os.path.join(glue_dir, processor.columns["train"].file),
                 os.path.join(glue_dir, processor.columns["dev"].file),
                 vocab_file):
        if not tf.io.gfile.exists(path):
            raise UserError(f"{path!r}: no such file (glue_dir={glue_dir!r}, "
                            f"vocab_file={vocab_file!r}).")
    as_int("max_seq_length", max_seq_length, 3, why="[CLS] a word [SEP]")
    check_output_path(output_dir, "output_dir", directory=True)
    tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case)
    missing = [t for t in ("[CLS]", "[SEP]", "[UNK]")
               if t not in tokenizer.vocab]
    if missing:
        raise UserError(f"vocab_file={vocab_file!r} has no {missing[0]}: give "
                        "the pretrained model's vocab.txt (an export's).")
    # Every line is read and checked (one line per problem) before anything
    # is written; Model Garden's writer then reads them again.
    for split in ("train", "dev"):
        try:
            getattr(processor, f"get_{split}_examples")(glue_dir)
        except UnicodeDecodeError as e:
            raise UserError(f"glue_dir={glue_dir!r}: the {split} file is not "
                            f"UTF-8 text ({e.reason} at byte {e.start})."
                            ) from None

    def out(name):
        return os.path.join(output_dir, f"{task}_{name}")

    def temporary(path):
        return f"{path}.tmp{os.getpid()}"

    names = ("train.tf_record", "eval.tf_record")
    try:
        meta = classifier_data_lib.generate_tf_record_from_data_file(
            processor, glue_dir, tokenizer,
            train_data_output_path=temporary(out(names[0])),
            eval_data_output_path=temporary(out(names[1])),
            max_seq_length=max_seq_length)
        if tf.io.gfile.exists(out("meta_data")):
            tf.io.gfile.remove(out("meta_data"))  # incomplete until the end
        for name in names:
            tf.io.gfile.rename(temporary(out(name)), out(name), overwrite=True)
    finally:
        for name in names:
            if tf.io.gfile.exists(temporary(out(name))):
                tf.io.gfile.remove(temporary(out(name)))
    with tf.io.gfile.GFile(temporary(out("meta_data")), "w") as f:
        json.dump(meta, f, indent=1)
    tf.io.gfile.rename(temporary(out("meta_data")), out("meta_data"),
                       overwrite=True)
    return GlueRecords(task=task, train_path=out("train.tf_record"),
                       eval_path=out("eval.tf_record"),
                       meta_path=out("meta_data"),
                       num_labels=meta["num_labels"],
                       train_size=meta["train_data_size"],
                       dev_size=meta["eval_data_size"],
                       max_seq_length=max_seq_length)

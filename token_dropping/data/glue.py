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

import csv
import dataclasses
import os

import tensorflow as tf
from absl import logging
from official.nlp.data import classifier_data_lib
from official.nlp.tools import tokenization

from token_dropping.common import files
from token_dropping.common.checks import as_int
from token_dropping.common.errors import UserError
from token_dropping.common.paths import check_apart
from token_dropping.common.paths import check_output_path
from token_dropping.data.text_files import LINE_END


@dataclasses.dataclass(frozen=True)
class _Columns:
    """Where a split's examples are in its TSV file."""
    file: str
    text_a: int
    text_b: int | None
    label: int | None  # None: unlabelled (test)
    header: tuple | None  # ((column, name), ...) of its header; None: none


class _TsvExamples:
    """`get_*_examples` from GLUE's TSV files, by `columns[split]`."""
    columns = {}

    def get_train_examples(self, data_dir):
        return self._examples(data_dir, "train")

    def get_dev_examples(self, data_dir):
        return self._examples(data_dir, "dev")

    def get_test_examples(self, data_dir):
        return self._examples(data_dir, "test")

    @classmethod
    def _read_tsv(cls, input_file, quotechar=None):
        """Model Garden's `_read_tsv` (tab-separated, `csv`), with "\\r\\n",
        "\\n" and "\\r" as line ends, as the pretraining text reader has
        them (`GFile`'s lines drop every "\\r", so an old-Mac file was one
        line). Blank lines at the end are not rows."""
        with tf.io.gfile.GFile(input_file, "rb") as f:
            lines = LINE_END.split(f.read().decode("utf-8"))
        while lines and not lines[-1]:
            lines.pop()
        return list(csv.reader(lines, delimiter="\t", quotechar=quotechar))

    def _examples(self, data_dir, split):
        columns = self.columns[split]
        path = os.path.join(data_dir, columns.file)
        lines = self._read_tsv(path, quotechar=None)
        start = 0  # the first row that is an example
        if columns.header and lines:
            if self._is_header(lines[0], columns):
                start = 1
            else:
                self._check_first_row(path, lines[0], columns)
        examples = []
        for number, line in enumerate(lines[start:], start=start + 1):
            problem = self._problem(line, columns)
            if problem:
                raise UserError(f"{path}, line {number}: {problem}.")
            examples.append(self._example(line, columns,
                                          f"{split}-{len(examples)}"))
        if not examples:
            raise UserError(
                f"{path} has no examples "
                f"({'only a header' if lines else 'empty'}); GLUE's "
                f"{self.get_processor_name()} {split} file has one per line.")
        return examples

    @staticmethod
    def _is_header(line, columns):
        return all(len(line) > (c if c >= 0 else -c - 1) and line[c] == name
                   for c, name in columns.header)

    def _check_first_row(self, path, line, columns):
        """A file whose first row is not its header but an example (as some
        copies of GLUE come) is read from that row on, with a warning, rather
        than losing that example; a first row that is neither is an error."""
        header = ", ".join(name for _, name in columns.header)
        problem = self._problem(line, columns)
        if problem:
            raise UserError(
                f"{path}, line 1: neither GLUE's {self.get_processor_name()}"
                f" header ({header}) nor an example ({problem}).")
        if path not in self._warned:
            self._warned.add(path)
            logging.warning("%s has no header row (%s): its line 1 is read "
                            "as an example.", path, header)

    def _problem(self, line, columns):
        """Why `line` is not an example in `columns`' layout; None if it is."""
        labels = self.get_labels()
        needed = max(c if c >= 0 else -c - 1
                     for c in (columns.text_a, columns.text_b, columns.label)
                     if c is not None) + 1
        if len(line) < needed:
            return (f"{len(line)} tab-separated columns; GLUE's "
                    f"{self.get_processor_name()} layout has at least "
                    f"{needed}")
        if columns.label is not None and line[columns.label] not in labels:
            return (f"label {line[columns.label]!r} is not one of "
                    f"{', '.join(labels)}")
        return None

    def _example(self, line, columns, guid):
        return classifier_data_lib.InputExample(
            guid=guid,
            text_a=self.process_text_fn(line[columns.text_a]),
            text_b=(self.process_text_fn(line[columns.text_b])
                    if columns.text_b is not None else None),
            # test files have no label
            label=(self.get_labels()[0] if columns.label is None
                   else line[columns.label]))

    @property
    def _warned(self):
        if "_warned_paths" not in self.__dict__:
            self._warned_paths = set()
        return self._warned_paths


class TsvCola(_TsvExamples, classifier_data_lib.ColaProcessor):
    """Model Garden's CoLA processor on GLUE's `CoLA/*.tsv` files.

    train/dev: no header; source, label, original label, sentence.
    test: header `index<TAB>sentence`.
    """
    columns = dict(train=_Columns("train.tsv", 3, None, 1, None),
                   dev=_Columns("dev.tsv", 3, None, 1, None),
                   test=_Columns("test.tsv", 1, None, None,
                                 ((0, "index"), (1, "sentence"))))


_SST2_HEADER = ((0, "sentence"), (1, "label"))
_MNLI_HEADER = ((8, "sentence1"), (9, "sentence2"), (-1, "gold_label"))


class TsvSst2(_TsvExamples, classifier_data_lib.SstProcessor):
    """Model Garden's SST-2 processor on GLUE's `SST-2/*.tsv` files.

    train/dev: header `sentence<TAB>label`; test: `index<TAB>sentence`.
    """
    columns = dict(train=_Columns("train.tsv", 0, None, 1, _SST2_HEADER),
                   dev=_Columns("dev.tsv", 0, None, 1, _SST2_HEADER),
                   test=_Columns("test.tsv", 1, None, None,
                                 ((0, "index"), (1, "sentence"))))


class TsvMnli(_TsvExamples, classifier_data_lib.MnliProcessor):
    """Model Garden's MNLI processor (matched dev set) on GLUE's `MNLI/`.

    Every file has a header; sentence1 (the premise) is column 8 and
    sentence2 (the hypothesis) column 9, the gold label the last column:
    `train.tsv`, `dev_matched.tsv`, `test_matched.tsv` (no label). The pair
    order is BERT's `run_classifier.py`'s.
    """
    columns = dict(train=_Columns("train.tsv", 8, 9, -1, _MNLI_HEADER),
                   dev=_Columns("dev_matched.tsv", 8, 9, -1, _MNLI_HEADER),
                   test=_Columns("test_matched.tsv", 8, 9, None,
                                 _MNLI_HEADER[:2]))

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
    if tf.io.gfile.exists(glue_dir) and not tf.io.gfile.isdir(glue_dir):
        raise UserError(
            f"glue_dir={glue_dir!r} is a file; give the folder holding "
            f"{processor.columns['train'].file} and "
            f"{processor.columns['dev'].file}.")
    for path in (os.path.join(glue_dir, processor.columns["train"].file),
                 os.path.join(glue_dir, processor.columns["dev"].file),
                 vocab_file):
        if not tf.io.gfile.exists(path):
            raise UserError(f"{path!r}: no such file (glue_dir={glue_dir!r}, "
                            f"vocab_file={vocab_file!r}).")
    as_int("max_seq_length", max_seq_length, 3, why="[CLS] a word [SEP]")
    check_output_path(output_dir, "output_dir", directory=True)
    check_apart(output_dir, "output_dir", [("glue_dir", glue_dir),
                                           ("vocab_file", vocab_file)])
    files.read_vocab(vocab_file)  # UTF-8, one id a piece
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

    with files.replacing(out("train.tf_record")) as train, \
            files.replacing(out("eval.tf_record")) as eval_:
        meta = classifier_data_lib.generate_tf_record_from_data_file(
            processor, glue_dir, tokenizer, train_data_output_path=train,
            eval_data_output_path=eval_, max_seq_length=max_seq_length)
        if tf.io.gfile.exists(out("meta_data")):
            tf.io.gfile.remove(out("meta_data"))  # incomplete until the end
    files.write_json(out("meta_data"), meta, indent=1)
    return GlueRecords(task=task, train_path=out("train.tf_record"),
                       eval_path=out("eval.tf_record"),
                       meta_path=out("meta_data"),
                       num_labels=meta["num_labels"],
                       train_size=meta["train_data_size"],
                       dev_size=meta["eval_data_size"],
                       max_seq_length=max_seq_length)

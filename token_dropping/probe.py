"""probe: fine-tune an exported encoder on a GLUE-layout task, get dev accuracy.

The study's downstream probe (issue 11, item 4), built on Model Garden's own
pieces and the README's fine-tuning recipe, with no training loop of ours:

1. `probe_data.build_probe_task` writes the acceptability task (CoLA's TSV
   layout) from held-out text;
2. `convert(glue_dir, task, vocab_file, output_dir)` makes the fine-tuning
   records with Model Garden's `classifier_data_lib`
   (`generate_tf_record_from_data_file`, the `ColaProcessor` /
   `SstProcessor` label sets) and its `FullTokenizer`; the same call reads
   real GLUE `CoLA/` or `SST-2/` folders;
3. `finetune(model_dir, data, init_checkpoint=..., encoder_config=...)`
   runs Model Garden's `bert/sentence_prediction` experiment through
   `training.run` and returns the accuracy on the whole dev set;
   `init_checkpoint=""` fine-tunes a randomly initialised encoder, the
   control that shows the probe measures pretraining;
4. `majority_accuracy(labels)`: the accuracy of always answering the most
   frequent label, the floor every row is read against.

Model Garden 2.20's `ColaProcessor` and `SstProcessor` read GLUE from TFDS
(`tfds.load("glue/cola")`, a download) whatever `data_dir` says; `TsvCola`
and `TsvSst2` are them reading GLUE's TSV files instead, as BERT's original
`run_classifier.py` processors did, with Model Garden's `_read_tsv`.

Example:
>>> probe_data.build_probe_task("heldout.txt", "data/probe")
>>> data = convert("data/probe", "cola", "exports/base/vocab.txt",
...                "data/probe_records")
>>> accuracy = finetune("runs/probe_base_s0", data,
...                     init_checkpoint="exports/base",
...                     encoder_config="exports/base/encoder.yaml", seed=0)
>>> majority_accuracy(dev_labels(data))
0.5
"""

import collections
import dataclasses
import json
import math
import os

import tensorflow as tf
import tf_keras
import yaml
from official.core import exp_factory
from official.nlp.data import classifier_data_lib
from official.nlp.tools import tokenization

from token_dropping import training
from token_dropping.errors import UserError
from token_dropping.paths import check_output_path


class _TsvExamples:
    """`get_*_examples` from GLUE's TSV files; `columns[split]` is (text
    column, label column or None, whether the file has a header)."""
    columns = {}

    def get_train_examples(self, data_dir):
        return self._examples(data_dir, "train")

    def get_dev_examples(self, data_dir):
        return self._examples(data_dir, "dev")

    def get_test_examples(self, data_dir):
        return self._examples(data_dir, "test")

    def _examples(self, data_dir, split):
        text_column, label_column, header = self.columns[split]
        lines = self._read_tsv(os.path.join(data_dir, f"{split}.tsv"),
                               quotechar=None)
        return [classifier_data_lib.InputExample(
                    guid=f"{split}-{i}",
                    text_a=self.process_text_fn(line[text_column]),
                    label=line[label_column] if label_column is not None
                    else "0")
                for i, line in enumerate(lines[1:] if header else lines)]


class TsvCola(_TsvExamples, classifier_data_lib.ColaProcessor):
    """Model Garden's CoLA processor on GLUE's `CoLA/*.tsv` files.

    train/dev: no header; source, label, original label, sentence.
    test: header `index<TAB>sentence`.
    """
    columns = dict(train=(3, 1, False), dev=(3, 1, False), test=(1, None, True))


class TsvSst2(_TsvExamples, classifier_data_lib.SstProcessor):
    """Model Garden's SST-2 processor on GLUE's `SST-2/*.tsv` files.

    train/dev: header `sentence<TAB>label`; test: `index<TAB>sentence`.
    """
    columns = dict(train=(0, 1, True), dev=(0, 1, True), test=(1, None, True))


PROCESSORS = {"cola": TsvCola, "sst2": TsvSst2}


@dataclasses.dataclass
class ProbeData:
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
            max_seq_length=64):
    """Writes `<task>_train.tf_record`, `<task>_eval.tf_record` and
    `<task>_meta_data` (JSON, last) into `output_dir`; returns ProbeData.

    The same input gives the same tf.Examples in the same order; the bytes
    may differ between processes (protobuf writes a feature map in no fixed
    order).

    Raises:
        UserError: an unknown task, a missing file, before writing.
    """
    if task not in PROCESSORS:
        raise UserError(f"task={task!r} is not one of "
                        f"{', '.join(sorted(PROCESSORS))}.")
    for path in (os.path.join(glue_dir, "train.tsv"),
                 os.path.join(glue_dir, "dev.tsv"), vocab_file):
        if not tf.io.gfile.exists(path):
            raise UserError(f"{path!r}: no such file (glue_dir={glue_dir!r}, "
                            f"vocab_file={vocab_file!r}).")
    if not isinstance(max_seq_length, int) or max_seq_length < 3:
        raise UserError(f"max_seq_length={max_seq_length!r}: give an "
                        "integer >= 3 ([CLS] a word [SEP]).")
    check_output_path(output_dir, "output_dir", directory=True)
    tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case)

    def out(name):
        return os.path.join(output_dir, f"{task}_{name}")

    def temporary(path):
        return f"{path}.tmp{os.getpid()}"

    if tf.io.gfile.exists(out("meta_data")):
        tf.io.gfile.remove(out("meta_data"))  # incomplete until the end
    try:
        meta = classifier_data_lib.generate_tf_record_from_data_file(
            PROCESSORS[task](), glue_dir, tokenizer,
            train_data_output_path=temporary(out("train.tf_record")),
            eval_data_output_path=temporary(out("eval.tf_record")),
            max_seq_length=max_seq_length)
    except (IndexError, KeyError) as e:
        for name in ("train.tf_record", "eval.tf_record"):
            if tf.io.gfile.exists(temporary(out(name))):
                tf.io.gfile.remove(temporary(out(name)))
        raise UserError(f"glue_dir={glue_dir!r} is not in GLUE's {task} TSV "
                        f"layout: a line has no column {e}.") from None
    for name in ("train.tf_record", "eval.tf_record"):
        os.replace(temporary(out(name)), out(name))
    with open(temporary(out("meta_data")), "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(temporary(out("meta_data")), out("meta_data"))
    return ProbeData(task=task, train_path=out("train.tf_record"),
                     eval_path=out("eval.tf_record"),
                     meta_path=out("meta_data"), num_labels=meta["num_labels"],
                     train_size=meta["train_data_size"],
                     dev_size=meta["eval_data_size"],
                     max_seq_length=max_seq_length)


def finetune(model_dir, data, *, init_checkpoint, encoder_config, seed,
             epochs=3, batch_size=32, learning_rate=1e-4):
    """Fine-tunes with `bert/sentence_prediction`; returns dev accuracy.

    Args:
        model_dir: str. The fine-tuning run (rerunning a finished one only
            evaluates its last checkpoint again).
        data: ProbeData from `convert`.
        init_checkpoint: str. An export directory of tools/export_bert.py
            (or its `bert_model.ckpt`); "" for a randomly initialised encoder.
        encoder_config: the export's `encoder.yaml` path, or a dict
            `{"type": "bert_v2", "bert_v2": {...}}`.
        seed: int. Initial weights (head and, without a checkpoint, the
            encoder), dropout and the order of training examples.
        epochs, batch_size: the training length is
            `ceil(epochs * train_size / batch_size)` steps, 10% warmup,
            then a linear decay to 0 (the README's recipe).
        learning_rate: float. 1e-4, the top of the grid Turc et al. (2019)
            use for small BERTs; BERT-base's 2e-5..5e-5 is too low for them.
    """
    if isinstance(encoder_config, str):
        if not tf.io.gfile.exists(encoder_config):
            raise UserError(f"encoder_config={encoder_config!r}: no such file.")
        with tf.io.gfile.GFile(encoder_config) as f:
            encoder_config = yaml.safe_load(f)["task"]["model"]["encoder"]
    steps = math.ceil(epochs * data.train_size / batch_size)
    if steps < 1:
        raise UserError(f"epochs={epochs!r} x train_size={data.train_size} / "
                        f"batch_size={batch_size!r} is no training step.")
    params = exp_factory.get_exp_config("bert/sentence_prediction")
    data_config = dict(input_path=data.train_path, global_batch_size=batch_size,
                       seq_length=data.max_seq_length, label_type="int")
    params.override({
        "task": {
            "init_checkpoint": init_checkpoint, "metric_type": "accuracy",
            "model": {"num_classes": data.num_labels, "encoder": encoder_config},
            "train_data": dict(data_config, is_training=True,
                               drop_remainder=True, seed=seed),
            "validation_data": dict(data_config, input_path=data.eval_path,
                                    is_training=False, drop_remainder=False),
        },
        "trainer": {
            "train_steps": steps, "steps_per_loop": min(steps, 100),
            "summary_interval": min(steps, 100), "checkpoint_interval": steps,
            "validation_interval": steps, "max_to_keep": 1,
            "validation_steps": math.ceil(data.dev_size / batch_size),
            "optimizer_config": {
                "learning_rate": {"polynomial": {
                    "initial_learning_rate": learning_rate,
                    "decay_steps": steps}},
                "warmup": {"polynomial": {"power": 1,
                                          "warmup_steps": max(1, steps // 10)}},
            },
        },
    }, is_strict=True)
    tf_keras.utils.set_random_seed(seed)
    result = training.run(params, mode="train_and_eval", model_dir=model_dir)
    return float(result.eval_logs["cls_accuracy"])


def majority_accuracy(labels):
    """The dev accuracy of always answering the most frequent label."""
    labels = list(labels)
    if not labels:
        raise UserError("majority_accuracy: no labels.")
    return collections.Counter(labels).most_common(1)[0][1] / len(labels)


def dev_labels(data):
    """The dev set's labels, read back from `data.eval_path`."""
    spec = {"label_ids": tf.io.FixedLenFeature([], tf.int64)}
    return [int(tf.io.parse_single_example(r, spec)["label_ids"])
            for r in tf.data.TFRecordDataset(data.eval_path)]

"""probe: fine-tune an exported encoder on a GLUE-layout task, get dev accuracy.

The study's downstream probe (issue 11, item 4), built on Model Garden's own
pieces and docs/export.md's fine-tuning recipe, with no training loop of ours:

1. `probe_data` writes the task from held-out text (CoLA's TSV layout);
2. `glue_data.convert(glue_dir, task, vocab_file, output_dir)` makes the
   fine-tuning records with Model Garden's classifier data tools; the same
   call reads real GLUE `CoLA/` or `SST-2/` folders;
3. `finetune(model_dir, records, init_checkpoint=..., encoder_config=...)`
   runs Model Garden's `bert/sentence_prediction` experiment through
   `training.run` and returns the accuracy on the whole dev set;
   `init_checkpoint=""` fine-tunes a randomly initialised encoder, the
   control that shows the probe measures pretraining;
4. `majority_accuracy(labels)`: the accuracy of always answering the most
   frequent label, the floor every row is read against.

Example:
>>> probe_data.build_source_task("heldout.txt", sources, "data/probe")
>>> records = glue_data.convert("data/probe", "cola",
...                             "exports/base/vocab.txt", "data/probe_records")
>>> accuracy = finetune("runs/probe_base_s0", records,
...                     init_checkpoint="exports/base",
...                     encoder_config="exports/base/encoder.yaml", seed=0)
>>> majority_accuracy(dev_labels(records))
0.5
"""

import collections
import math

import tensorflow as tf
import tf_keras
import yaml
from official.core import exp_factory

from token_dropping.train import driver as training
from token_dropping.common.errors import UserError
# Registers bert/sentence_prediction.
from token_dropping.train import finetuning_experiments  # noqa: F401


def finetune(model_dir, data, *, init_checkpoint, encoder_config, seed,
             epochs=3, batch_size=32, learning_rate=1e-4):
    """Fine-tunes with `bert/sentence_prediction`; returns dev accuracy.

    Args:
        model_dir: str. The fine-tuning run (rerunning a finished one only
            evaluates its last checkpoint again).
        data: `glue_data.GlueRecords` from `glue_data.convert`.
        init_checkpoint: str. An export directory of tools/export_bert.py
            (or its `bert_model.ckpt`); "" for a randomly initialised encoder.
        encoder_config: the export's `encoder.yaml` path, or a dict
            `{"type": "bert_v2", "bert_v2": {...}}`.
        seed: int. Initial weights (head and, without a checkpoint, the
            encoder), dropout and the order of training examples.
        epochs, batch_size: the training length is
            `ceil(epochs * train_size / batch_size)` steps, 10% warmup,
            then a linear decay to 0 (docs/export.md's recipe).
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

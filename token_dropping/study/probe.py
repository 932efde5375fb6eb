"""probe: fine-tune an exported encoder on a GLUE-layout task, get dev accuracy.

The study's downstream probe (issue 11, item 4), built on Model Garden's own
pieces and docs/export.md's fine-tuning recipe, with no training loop of ours:

1. `probe_data` writes the task from held-out text (CoLA's TSV layout);
2. `glue_data.convert(glue_dir, task, vocab_file, output_dir)` makes the
   fine-tuning records with Model Garden's classifier data tools; the same
   call reads real GLUE `CoLA/` or `SST-2/` folders;
3. `finetune(model_dir, records, init_checkpoint=..., encoder_config=...)`
   runs Model Garden's `bert/sentence_prediction` experiment through
   `training.run` and returns a `Finetuned`: the accuracy on the whole dev
   set (equal to Model Garden's `cls_accuracy`) and the per-example dev
   predictions of the final weights (`predictions.DevPredictions`, made
   with Model Garden's `official.nlp.tasks.utils.predict`), also written to
   `<model_dir>/dev_predictions.tsv`; `init_checkpoint=""` fine-tunes a
   randomly initialised encoder, the control that shows the probe measures
   pretraining.

Example:
>>> probe_data.build_source_task("heldout.txt", sources, "data/probe")
>>> records = glue_data.convert("data/probe", "cola",
...                             "exports/base/vocab.txt", "data/probe_records")
>>> result = finetune("runs/probe_base_s0", records,
...                   init_checkpoint="exports/base",
...                   encoder_config="exports/base/encoder.yaml", seed=0,
...                   dev_documents=predictions.dev_documents(
...                       "data/probe", "cola"))
>>> result.accuracy, result.predictions.accuracy
(0.71, 0.71)
"""

import dataclasses
import math
import os

import tensorflow as tf
import tf_keras
import yaml
from official.core import exp_factory
from official.core import task_factory
from official.nlp.tasks import utils as nlp_task_utils

from token_dropping.train import driver as training
from token_dropping.common.errors import UserError
from token_dropping.study import predictions
# Registers bert/sentence_prediction.
from token_dropping.train import finetuning_experiments  # noqa: F401


@dataclasses.dataclass(frozen=True)
class Finetuned:
    """A fine-tuning's dev accuracy (Model Garden's `cls_accuracy`), its
    per-example dev predictions and the file that holds them."""
    accuracy: float
    predictions: predictions.DevPredictions
    predictions_path: str


def finetune(model_dir, data, *, init_checkpoint, encoder_config, seed,
             dev_documents=None, epochs=3, batch_size=32, learning_rate=1e-4):
    """Fine-tunes with `bert/sentence_prediction`; returns a `Finetuned`.

    Args:
        model_dir: str. The fine-tuning run (rerunning a finished one only
            predicts with its last checkpoint again).
        data: `glue_data.GlueRecords` from `glue_data.convert`.
        init_checkpoint: str. An export directory of tools/export_bert.py
            (or its `bert_model.ckpt`); "" for a randomly initialised encoder.
        encoder_config: the export's `encoder.yaml` path, or a dict
            `{"type": "bert_v2", "bert_v2": {...}}`.
        seed: int. Initial weights (head and, without a checkpoint, the
            encoder), dropout and the order of training examples.
        dev_documents: per dev example, its document (`predictions.
            dev_documents`), for document-bootstrap intervals; None: each
            example is its own document (as in SST-2).
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
    if dev_documents is None:
        dev_documents = [str(i) for i in range(data.dev_size)]
    dev_documents = [str(d) for d in dev_documents]
    if len(dev_documents) != data.dev_size:
        raise UserError(f"dev_documents: {len(dev_documents)} given for the "
                        f"{data.dev_size} dev examples of {data.eval_path!r}.")
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
    rows = dev_predictions(params, model_dir, dev_documents)
    # A run finished before this call trains and evaluates nothing (orbit's
    # loop ends at train_steps); where it evaluated, Model Garden's accuracy
    # and the predictions' are the same number.
    evaluated = result.eval_logs.get("cls_accuracy")
    if evaluated is not None and abs(float(evaluated) - rows.accuracy) > 1e-6:
        raise ValueError(f"{model_dir}: Model Garden's dev accuracy "
                         f"{float(evaluated)} differs from the predictions' "
                         f"{rows.accuracy}.")
    path = os.path.join(model_dir, predictions.FILE)
    predictions.write(path, rows)
    return Finetuned(rows.accuracy, rows, path)


def dev_predictions(params, model_dir, dev_documents):
    """The dev predictions of `model_dir`'s latest checkpoint.

    Model Garden's `sentence_prediction.predict` returns only the argmax;
    this is the same loop (`official.nlp.tasks.utils.predict` over the
    task's `inference_step`, sorted by the records' `example_id`) keeping
    the softmax probability of the predicted label too.

    Args:
        params: the fine-tuning's `ExperimentConfig`.
        model_dir: its run (the checkpoint is read from there).
        dev_documents: per dev example, its document.
    """
    task = task_factory.get_task(params.task)
    model = task.build_model()
    config = params.task.validation_data.replace(include_example_id=True)
    dataset = task.build_inputs(config)
    first = next(iter(dataset))
    model({k: v for k, v in first.items() if k != "example_id"},
          training=False)  # builds the variables before the restore
    checkpoint = tf.train.Checkpoint(model=model)
    latest = tf.train.latest_checkpoint(model_dir)
    checkpoint.read(latest).expect_partial().assert_existing_objects_matched()

    def predict_step(inputs):
        example_id = inputs.pop("example_id")
        labels = inputs[task.label_field]
        logits = task.inference_step(inputs, model)  # [batch, num_labels]
        return dict(example_id=example_id, labels=labels,
                    probabilities=tf.nn.softmax(tf.cast(logits, tf.float32)))

    def aggregate(state, outputs):
        state = state or []
        for ids, labels, probabilities in zip(outputs["example_id"],
                                              outputs["labels"],
                                              outputs["probabilities"]):
            state.extend(zip(ids.numpy().tolist(),
                             tf.reshape(labels, [-1]).numpy().tolist(),
                             probabilities.numpy()))
        return state

    rows = sorted(nlp_task_utils.predict(predict_step, aggregate, dataset),
                  key=lambda row: row[0])
    index = [int(i) for i, _, _ in rows]
    if index != list(range(len(dev_documents))):
        raise ValueError(f"dev predictions for examples {index[:5]}...; "
                         f"expected 0..{len(dev_documents) - 1}.")
    return predictions.DevPredictions(
        index=index, documents=dev_documents,
        labels=[int(label) for _, label, _ in rows],
        predicted=[int(p.argmax()) for _, _, p in rows],
        probability=[float(p.max()) for _, _, p in rows])

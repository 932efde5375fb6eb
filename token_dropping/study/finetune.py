"""The study's probe step: export each run, fine-tune each export.

`export_run` writes the plain BERT checkpoint of a pretraining run's latest
checkpoint (`export.export_bert`); `finetune_run` fine-tunes it (or a
randomly initialised encoder) on the probe through Model Garden's
`bert/sentence_prediction` (`probe.finetune`). Each keeps a settings record
(`records.py`) beside its result and is reused only when the record equals
what the study asks for now; otherwise it is redone. An export names its run's
`run_id` and checkpoint (name and the hash of its index, which holds a
checksum of every tensor), a fine-tuning its export's record, so a run trained
again (deleted, then retrained) gets a new export and new fine-tunings, never
the old ones. A fine-tuning stopped half way resumes from its own checkpoint
only under the same record.

A finished fine-tuning is `result.json` (its dev accuracy) with
`dev_predictions.tsv` (per dev example: document, label, prediction,
probability; `predictions.py`) beside it, the predictions written first. A
result without the predictions (made before they were kept), or whose
predictions name other dev documents, is not reused: the fine-tuning runs
again (under the same record it resumes from its own finished checkpoint,
so only the predictions are redone).
"""

import dataclasses
import hashlib
import json
import os

import tensorflow as tf
import yaml

from token_dropping.common import files
from token_dropping.export import bert as export
from token_dropping.data import glue as glue_data
from token_dropping.study import cloze
from token_dropping.study import predictions as study_predictions
from token_dropping.study import probe
from token_dropping.study import records as study_records
from token_dropping.study import runs as study_runs

# 1e-4 left a pretrained 4 x 128 encoder at chance on the probe (its loss
# stayed at log 2); 3e-4 learns. Small BERTs take higher rates (Turc et
# al. 2019).
FINETUNE_LEARNING_RATE = 3e-4
PROBE_SEQ_LENGTH = 64
RESULT = "result.json"


def export_run(runs_dir, spec, seed, model_dir, vocab_file):
    """Exports a finished run (or reuses its export); returns the export's
    directory and its settings (what a fine-tuning of it records)."""
    output_dir = os.path.join(runs_dir, "export", f"{spec.name}-seed{seed}")
    settings = checkpoint_settings(model_dir, vocab_file)
    if not (tf.io.gfile.exists(os.path.join(output_dir, "encoder.yaml"))
            and study_records.is_current(output_dir, settings)):
        export.export_bert(model_dir, output_dir, checkpoint=os.path.join(
            model_dir, settings["checkpoint"]),
                           vocab_file=vocab_file, overwrite=True,
                           huggingface=False)
        study_records.write(output_dir, dict(settings=settings))
    return output_dir, settings


def checkpoint_settings(model_dir, vocab_file):
    """What names a run's latest checkpoint: its run's `run_id`, the
    checkpoint's name and the hash of its index (which holds a checksum of
    every tensor, so a checkpoint trained again under the same name is told
    from the old one), and the vocabulary's hash."""
    return dict(run_id=study_records.read(model_dir)["run_id"],
                **study_runs.final_checkpoint(model_dir),
                vocab_sha256=files.sha256(vocab_file))


def probe_id(config, glue_dir, vocab_file):
    """A name for the probe and its fine-tuning settings: fine-tunings of
    another probe (another --probe, --glue_dir or --finetune_epochs) in the
    same runs_dir are kept apart, never reused."""
    digest = hashlib.sha256(json.dumps(dict(
        task=config.glue_task, epochs=config.finetune_epochs,
        learning_rate=FINETUNE_LEARNING_RATE,
        max_seq_length=PROBE_SEQ_LENGTH)).encode())
    columns = glue_data.PROCESSORS[config.glue_task].columns
    for path in (os.path.join(glue_dir, columns["train"].file),
                 os.path.join(glue_dir, columns["dev"].file), vocab_file):
        with tf.io.gfile.GFile(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class FinetuneResult:
    """One fine-tuning of the study: its dev accuracy, its per-example dev
    predictions (`predictions.DevPredictions`), their file, and whether it
    was reused rather than run now."""
    accuracy: float
    predictions: study_predictions.DevPredictions
    predictions_path: str
    reused: bool


def finetune_run(config, data, encoder_config, init, init_settings, seed,
                 result_dir, probe_key, *, dev_documents):
    """One fine-tuning; returns a `FinetuneResult`.

    Args:
        config: the `StudyConfig` (its epochs).
        data: the probe's `glue_data.GlueRecords`.
        encoder_config: an export's `encoder.yaml` (the architecture).
        init: the export to start from; "" for a random encoder.
        init_settings: that export's settings (None for a random encoder).
        seed: the fine-tuning seed.
        result_dir: where its run and `result.json` go.
        probe_key: `probe_id` of the probe.
        dev_documents: per dev example, its document:
            `predictions.dev_documents(glue_dir, config.glue_task)`.
    """
    with tf.io.gfile.GFile(encoder_config) as f:
        encoder = yaml.safe_load(f)["task"]["model"]["encoder"]
    settings = dict(init=init_settings or "random encoder", encoder=encoder,
                    probe=probe_key, seed=seed, epochs=config.finetune_epochs,
                    learning_rate=FINETUNE_LEARNING_RATE,
                    max_seq_length=PROBE_SEQ_LENGTH)
    if study_records.is_current(result_dir, settings):
        kept = _kept(result_dir, dev_documents)
        if kept is not None:
            return kept
    else:
        # Made from another export, with other settings, or by an older
        # study (no record): not this fine-tuning, nor a start for it.
        if tf.io.gfile.exists(result_dir):
            tf.io.gfile.rmtree(result_dir)
        study_records.write(result_dir, dict(settings=settings))
    result_path = os.path.join(result_dir, RESULT)
    if tf.io.gfile.exists(result_path):
        tf.io.gfile.remove(result_path)  # no result without its predictions
    result = _finetune(data, encoder_config, init, seed, result_dir,
                       config.finetune_epochs, dev_documents)
    return _keep(result_dir, result.predictions, result.accuracy)


def score_run(model_dir, params, glue_dir, vocab_file, init_settings,
              result_dir, probe_key, *, dev_documents):
    """A zero-shot probe's reading of one model (`cloze.score`): the run
    `model_dir` as its last checkpoint left it, or a random model for
    None; returns a `FinetuneResult`, reused as `finetune_run`'s are."""
    settings = dict(init=init_settings or "random model", probe=probe_key,
                    zero_shot="cloze.score")
    if not model_dir:  # a random model of the baseline's architecture
        settings["model"] = study_records.flatten(params.task.model.as_dict())
    if study_records.is_current(result_dir, settings):
        kept = _kept(result_dir, dev_documents)
        if kept is not None:
            return kept
    if tf.io.gfile.exists(result_dir):
        tf.io.gfile.rmtree(result_dir)  # a reading has nothing to resume
    study_records.write(result_dir, dict(settings=settings))
    predictions = cloze.score(model_dir, params, glue_dir, vocab_file,
                              dev_documents)
    return _keep(result_dir, predictions, predictions.accuracy)


def _kept(result_dir, dev_documents):
    """The finished result in `result_dir` (its record already checked), as
    a reused `FinetuneResult`; None without `result.json` and predictions
    of these dev documents."""
    result_path = os.path.join(result_dir, RESULT)
    predictions_path = os.path.join(result_dir, study_predictions.FILE)
    if not (tf.io.gfile.exists(result_path)
            and tf.io.gfile.exists(predictions_path)):
        return None
    kept = study_predictions.read(predictions_path)
    if kept.documents != tuple(str(d) for d in dev_documents):
        return None
    with tf.io.gfile.GFile(result_path) as f:
        accuracy = json.load(f)["dev_accuracy"]
    return FinetuneResult(accuracy, kept, predictions_path, True)


def _keep(result_dir, predictions, accuracy):
    """Writes the predictions, then `result.json` with `accuracy` (a result
    is never without its predictions); returns a new `FinetuneResult`."""
    predictions_path = os.path.join(result_dir, study_predictions.FILE)
    study_predictions.write(predictions_path, predictions)
    files.write_json(os.path.join(result_dir, RESULT),
                     dict(dev_accuracy=accuracy))
    return FinetuneResult(accuracy, predictions, predictions_path, False)


def _finetune(data, encoder_config, init, seed, result_dir, epochs,
              dev_documents):
    return probe.finetune(
        os.path.join(result_dir, "run"), data, init_checkpoint=init,
        encoder_config=encoder_config, seed=seed, dev_documents=dev_documents,
        epochs=epochs, learning_rate=FINETUNE_LEARNING_RATE)

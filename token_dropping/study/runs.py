"""One pretraining run of a study: configured, trained, resumable, recorded.

`pretrain(spec, ...)` trains one (model, seed) pair through
`token_dropping.train.driver.train`: the real task on Model Garden's trainer and
orbit controller, in `train_and_eval` mode. Each evaluation adds a row to
`evaluations.jsonl` in the run's directory as it happens, so a run stopped at
any point keeps what it measured; rerunning resumes from the latest checkpoint
(Model Garden's own restore) and adds rows from there. A run stopped during an
evaluation (after that step's checkpoint) gets that evaluation on resume, from
its checkpoint (Model Garden's `eval` mode), before training on. A finished
run is marked by `study_done.json`, which names its last checkpoint, and is
not trained again. A fresh run writes its settings record first
(`records.py`), so every checkpoint in the directory was made with them.

Per evaluation the row holds the training FLOPs so far (`train_flops_at`:
a keep_k schedule's stages counted step by step),
the training wall time so far (the trainer's training loops only; tracing is
inside the first; time lost to an interruption is not counted), Model
Garden's validation `lm_example_loss` and `masked_lm_accuracy` on the whole
validation set with full sequences (evaluation never drops tokens), and the
training MLM loss averaged over the loop before it.
"""

import dataclasses
import functools
import json
import math
import os
import time
from typing import Optional

import tensorflow as tf
from absl import logging
from official.core import base_trainer
from official.core import exp_factory
from official.nlp.configs import encoders
from official.nlp.tasks import masked_lm

from token_dropping.model import flops
from token_dropping.common import files
from token_dropping.study import annealing
from token_dropping.study import records as study_records
from token_dropping.train import driver as training
from token_dropping.train import overrides
from token_dropping.train.actions import scalars
from token_dropping.model.encoder_config import TokenDropBertEncoderConfig
from token_dropping.common.errors import UserError
from token_dropping.common.errors import first_line
from token_dropping.model.schedule import KeepKSchedule

EVALUATIONS = "evaluations.jsonl"
# Encoder fields only token dropping has (a baseline skips them).
TOKEN_DROP_FIELDS = frozenset(
    f.name for f in dataclasses.fields(TokenDropBertEncoderConfig)) - {
        f.name for f in dataclasses.fields(encoders.BertEncoderConfig)}
DONE = "study_done.json"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model of the study: a registered experiment and encoder overrides."""
    name: str  # the CSV's `model` column
    experiment: str
    label: str
    encoder: tuple = ()  # (field, value) pairs

    @property
    def is_baseline(self):
        """BERT: Model Garden's encoder, nothing dropped."""
        return experiment_kind(self.experiment) == "bert"


@functools.lru_cache(maxsize=None)
def experiment_kind(experiment):
    """"bert" or "token_drop" for a registered masked-LM pretraining
    experiment, None for any other (e.g. `bert/sentence_prediction`)."""
    task = exp_factory.get_exp_config(experiment).task
    if not isinstance(task, masked_lm.MaskedLMConfig):
        return None
    encoder = task.model.encoder.get()
    return ("token_drop" if isinstance(encoder, TokenDropBertEncoderConfig)
            else "bert")


def flops_per_step(params):
    """Average training FLOPs of one step of any variant (a schedule over
    its stages, ScTD's full pass over its interval): `flops.config_train_flops`.
    """
    return flops.config_train_flops(params.task)


def make_params(spec, *, train_steps, eval_every, loop_steps,
                optimizer_config, seed, data, encoder_overrides=None,
                params_override=""):
    """The experiment config of one run: the registered one, overridden.

    Every model gets the study's schedule (`optimizer_config`: a stable
    run's or a decay branch's, `train.warmup_stable_decay`), evaluations
    every `eval_every` steps on the whole validation set, and loops of
    `loop_steps`. `data` is a `DatasetInfo`: its record paths, shapes and
    vocabulary.
    """
    params = exp_factory.get_exp_config(spec.experiment)
    experiment_seq_length = params.task.train_data.seq_length
    # Orbit writes summaries and checkpoints at loop ends.
    every_loop = loop_steps * int(math.ceil(eval_every / loop_steps))
    params.override({
        "trainer": dict(
            train_steps=train_steps, steps_per_loop=loop_steps,
            summary_interval=every_loop, validation_interval=eval_every,
            validation_steps=-1, checkpoint_interval=every_loop,
            max_to_keep=2, optimizer_config=optimizer_config),
        "task": dict(
            train_data=dict(input_path=data.train_input_path, seed=seed,
                            seq_length=data.seq_length,
                            max_predictions_per_seq=(
                                data.max_predictions_per_seq)),
            validation_data=dict(input_path=data.validation_input_path,
                                 seq_length=data.seq_length,
                                 max_predictions_per_seq=(
                                     data.max_predictions_per_seq))),
    })
    encoder = params.task.model.encoder.get()
    values = dict(encoder_overrides or {})
    values.update(spec.encoder)
    if not isinstance(encoder, TokenDropBertEncoderConfig):
        # A baseline has no token-dropping fields; everything else applies.
        values = {k: v for k, v in values.items()
                  if k not in TOKEN_DROP_FIELDS}
    else:
        if encoder.keep_k_schedule and "keep_k_schedule" not in values:
            values["keep_k_schedule"] = _scaled_schedule(
                encoder, experiment_seq_length, data.seq_length,
                values.get("token_keep_k", encoder.token_keep_k))
        if (encoder.drop_end_layer is not None and "num_layers" in values
                and "drop_end_layer" not in values):
            # A fixed range (random-LTD's 1..L-2) keeps its distance from
            # the last layer on another depth (e.g. --quick's).
            values["drop_end_layer"] = values["num_layers"] - (
                encoder.num_layers - encoder.drop_end_layer)
    values["vocab_size"] = data.vocab_size
    values["max_position_embeddings"] = max(
        encoder.max_position_embeddings, data.seq_length)
    try:
        encoder.override(values, is_strict=True)
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise UserError(f"{spec.name}: encoder fields {sorted(values)}: "
                        f"{first_line(e)}") from None
    return overrides.apply(params, params_override)


def _scaled_schedule(encoder, seq_length, new_seq_length, new_keep_k):
    """The experiment's keep_k schedule for other shapes (e.g. --quick's).

    A schedule's stages are written for the experiment's `seq_length` and
    `token_keep_k` (`full_ends`: the whole sequence, then `token_keep_k`;
    `random_ltd`: a ramp between them). Each stage's keep_k is mapped
    linearly from [token_keep_k, seq_length] onto [new_keep_k,
    new_seq_length] (below token_keep_k: in proportion), so "drops nothing"
    stays so and the ramp keeps its shape; the stage boundaries are
    fractions of training and fit any step count.
    """
    keep_k = encoder.token_keep_k
    stages = []
    for stage in encoder.keep_k_schedule:
        k = stage.token_keep_k
        if k >= keep_k and seq_length > keep_k:
            k = new_keep_k + (k - keep_k) * ((new_seq_length - new_keep_k)
                                             / (seq_length - keep_k))
        else:
            k = k * new_keep_k / keep_k
        stages.append((stage.start_fraction,
                       min(new_seq_length, max(1, round(k)))))
    schedule = KeepKSchedule.resolve(stages, seq_length=new_seq_length)
    return [dict(start_fraction=start, token_keep_k=k)
            for start, k in schedule.stages]


def read_rows(model_dir):
    """The rows a run has recorded so far (empty if none)."""
    path = os.path.join(model_dir, EVALUATIONS)
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _write_rows(model_dir, rows):
    """Rewrites `evaluations.jsonl` whole (Cloud Storage cannot append)."""
    path = os.path.join(model_dir, EVALUATIONS)
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def is_done(model_dir, steps):
    """Whether the run finished `steps` or more (a stable run asked to go
    further, for a larger budget, trains on)."""
    done = _read_done(model_dir)
    return done is not None and done["steps"] >= steps


def _read_done(model_dir):
    """The run's `study_done.json`, or None before it finished."""
    path = os.path.join(model_dir, DONE)
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            return json.load(f)


def train_flops_at(params, step):
    """Training FLOPs of a run's first `step` steps, exact for every variant
    (a schedule's stages counted step by step, not averaged):
    `flops.config_train_flops_sum`."""
    return flops.config_train_flops_sum(params, step)


@dataclasses.dataclass(frozen=True)
class Phase:
    """Which run of the annealed study a run is.

    Attributes:
        schedule: the study's `WarmupStableDecay`.
        budget: the decay branch's budget; None for the stable run.
        forks: the stable run's decay starts, where it keeps a checkpoint
            for the branches (`annealing.save_fork`).
        start_seconds: a branch's training seconds before its start (the
            stable run's, up to the fork).
    """
    schedule: object
    budget: Optional[int] = None
    forks: tuple = ()
    start_seconds: float = 0.0

    @property
    def name(self):
        return "stable" if self.budget is None else "decay"


def _recording_trainer_cls(spec, seed, model_dir, params, start_rows,
                           floor, phase):
    """A Model Garden Trainer that times its training loops, adds a row per
    evaluation to `evaluations.jsonl`, and (a stable run) keeps its
    checkpoint at each decay start."""
    state = dict(seconds=(start_rows[-1]["wall_seconds"] if start_rows
                          else phase.start_seconds),
                 train_loss=float("nan"), rows=list(start_rows))

    class RecordingTrainer(base_trainer.Trainer):
        def train(self, num_steps):
            start = time.perf_counter()
            output = super().train(num_steps)
            logs = scalars(output)  # waits for the loop's last step
            state["seconds"] += time.perf_counter() - start
            state["train_loss"] = logs.get("lm_example_loss", float("nan"))
            step = int(self.global_step.numpy())
            if step in phase.forks:
                annealing.save_fork(self.checkpoint, model_dir, step,
                                    state["seconds"])
            return output

        def evaluate(self, num_steps):
            output = super().evaluate(num_steps)
            logs = scalars(output)
            step = int(self.global_step.numpy())
            row = dict(
                model=spec.name, experiment=spec.experiment, seed=seed,
                phase=phase.name, budget=phase.budget, step=step,
                learning_rate=phase.schedule.rate(step, phase.budget),
                train_flops=train_flops_at(params, step),
                wall_seconds=state["seconds"],
                val_mlm_loss=logs.get("lm_example_loss", float("nan")),
                val_mlm_accuracy=logs.get("masked_lm_accuracy",
                                          float("nan")),
                train_mlm_loss=state["train_loss"])
            state["rows"].append(row)
            _write_rows(model_dir, state["rows"])
            gap = floor - row["val_mlm_loss"]
            logging.info(
                "study: %s seed %d %s step %d: validation MLM loss %.3f, "
                "%.3f %s the unigram floor %.3f; accuracy %.3f; training "
                "loss %.3f.", spec.name, seed,
                phase.name if phase.budget is None
                else f"decay to {phase.budget}", step, row["val_mlm_loss"],
                abs(gap), "below" if gap > 0 else "above", floor,
                row["val_mlm_accuracy"], row["train_mlm_loss"])
            return output

    return RecordingTrainer


def resolve(params, model_dir, cache_dir=None):
    """Checks a run's config before anything trains; returns the checkpoint
    to resume from (None for a fresh run)."""
    # The study compares its runs' records (`records`), with its remedies:
    # a decay branch of other settings is redone, a stable run refused.
    return training.resolve(params, "train_and_eval", model_dir,
                            cache_dir=cache_dir, own_records=True)


def pretrain(spec, seed, params, model_dir, latest, floor, settings=None,
             phase=None):
    """Trains one run to `params.trainer.train_steps` (or finishes it).

    `floor` is the unigram cross-entropy each evaluation is logged against.
    `settings` (`study_records.pretraining_settings`) is recorded, with a
    new run id, whenever the run starts from step 0 (a record, forks or
    branches there are of weights gone: a run stopped before its first
    checkpoint); the caller has checked a resumed or finished run's
    record. `phase` (a `Phase`): the stable run or a decay branch (the
    branch starts from its fork, copied into `model_dir` by the caller:
    `latest`).

    Returns:
        The run's rows, one per evaluation, in step order.
    """
    if is_done(model_dir, params.trainer.train_steps):
        return _exact_flops(read_rows(model_dir), params)
    rows = read_rows(model_dir)
    start_step = (int(latest.rsplit("-", 1)[-1]) if latest else 0)
    rows = [r for r in rows if r["step"] <= start_step]
    tf.io.gfile.makedirs(model_dir)
    if latest is None and getattr(phase, "budget", None) is None:
        annealing.forget_branches(model_dir)  # of weights that are gone
    if settings is not None and (latest is None
                                 or study_records.read(model_dir) is None):
        study_records.write(model_dir, dict(
            settings=settings, run_id=study_records.new_run_id()))
    _write_rows(model_dir, rows)
    if latest and _missing_evaluation(params, rows, start_step, phase):
        logging.info("study: %s seed %d: no evaluation at step %d (stopped "
                     "during it); evaluating its checkpoint.", spec.name,
                     seed, start_step)
        training.train(params, mode="eval", model_dir=model_dir,
                       latest=latest, trainer_cls=_recording_trainer_cls(
                           spec, seed, model_dir, params, rows, floor, phase))
        rows = read_rows(model_dir)
    if start_step < params.trainer.train_steps:
        trainer_cls = _recording_trainer_cls(spec, seed, model_dir, params,
                                             rows, floor, phase)
        training.train(params, mode="train_and_eval", model_dir=model_dir,
                       latest=latest, trainer_cls=trainer_cls)
    rows = read_rows(model_dir)
    reached = rows[-1]["step"] if rows else 0
    if reached != params.trainer.train_steps:
        # Never mark a run done that stopped short (it would be reported).
        raise UserError(
            f"{spec.name} seed {seed}: training stopped at step {reached} of "
            f"{params.trainer.train_steps} in {model_dir}; rerun the same "
            "command to continue it.")
    files.write_json(os.path.join(model_dir, DONE), dict(
        steps=params.trainer.train_steps, evaluations=len(rows),
        **_checkpoint_fields(model_dir)))
    return _exact_flops(rows, params)


def _checkpoint_fields(model_dir):
    """The name of the run's latest checkpoint and the hash of its index
    (which holds a checksum of every tensor): what tells a checkpoint from
    one trained again under the same name."""
    latest = tf.train.latest_checkpoint(model_dir)
    if latest is None:
        raise UserError(f"{model_dir} has no checkpoint, and its "
                        f"{DONE} names none.")
    return dict(checkpoint=os.path.basename(latest),
                checkpoint_index_sha256=files.sha256(latest + ".index"))


def final_checkpoint(model_dir):
    """`{checkpoint, checkpoint_index_sha256}` of a finished run's last
    checkpoint, from its `study_done.json`, so a run whose checkpoints are
    gone (a carried result, `carry.py`) is still named. A run finished
    before the marker named it gets the names from its checkpoint, added to
    the marker; one unfinished, from its latest checkpoint."""
    done = _read_done(model_dir)
    if done and "checkpoint" in done:
        return dict(checkpoint=done["checkpoint"],
                    checkpoint_index_sha256=done["checkpoint_index_sha256"])
    fields = _checkpoint_fields(model_dir)
    if done:
        files.write_json(os.path.join(model_dir, DONE), dict(done, **fields))
    return fields


def _missing_evaluation(params, rows, step, phase):
    """Whether `step` is one the run evaluates at and its row is missing (a
    branch evaluates only at its budget: its fork is not annealed)."""
    trainer = params.trainer
    evaluated = (step == trainer.train_steps
                 or (phase.budget is None
                     and step % trainer.validation_interval == 0))
    return evaluated and step not in {row["step"] for row in rows}


def _exact_flops(rows, params):
    """`rows` with `train_flops` from their steps, `train_flops_at`: runs
    recorded before it (steps x the average step) read the same for every
    variant without a keep_k schedule and right for those with one."""
    return [dict(row, train_flops=train_flops_at(params, row["step"]))
            for row in rows]

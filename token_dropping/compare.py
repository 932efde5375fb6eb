"""Quality at equal compute: BERT vs token-dropping BERT, in miniature.

`run_comparison` trains the plain-BERT baseline (`bert_<size>`) and the
token-dropping model (`token_drop_bert_<size>`), and optionally the
token-dropping model with random instead of loss-based selection, one after
the other through `token_dropping.training.run`: the real task, Model
Garden's trainer and orbit controller, in `train_and_eval` mode. All of them
read the same records in the same order (`task.train_data.seed`), start from
the same random seed (the initial weights still differ: the two encoders
draw their variables in a different order), train the same number of steps
with the same schedule,
and are evaluated every `eval_every` steps on the whole validation set with
full sequences (evaluation never drops tokens).

Per evaluation it records:

1. `train_flops`: steps x global batch x 3 x the analytic forward FLOPs per
   sequence of `token_dropping.flops.pretraining_flops` (encoder layers and
   MLM head; 3x counts forward plus backward, two products of the forward's
   size per forward product);
2. `wall_seconds`: the training time so far, summed over the trainer's
   training loops (`Trainer.train`, timed by a subclass handed to the
   trainer factory). Evaluation, checkpoints, summaries and the orbit actions
   run outside those loops and are not counted; the first loop includes
   tracing the step function;
3. the validation MLM loss and accuracy (Model Garden's `lm_example_loss` and
   `masked_lm_accuracy`).

It writes `comparison.csv`, `comparison.png` (validation loss against
training FLOPs and against wall time) and `summary.md` (one paragraph: the
loss gap at equal steps and the share of the baseline's compute the
token-dropping model needed to reach the baseline's final loss, or that it did
not) into `output_dir`.

Example:
>>> result = run_comparison("docs/compare", train_steps=600, eval_every=100)
>>> print(result.summary)

`compute_to_reach` is the interpolation behind the summary's share.

Reference: Hou et al., "Token Dropping for Efficient BERT Pretraining",
ACL 2022, arXiv 2203.13240.
"""

import dataclasses
import os
import shutil
import tempfile
import time

import tensorflow as tf
import tf_keras
from absl import logging
from official.core import base_trainer
from official.core import exp_factory
from official.modeling import hyperparams
from official.nlp.configs import encoders

from token_dropping import experiments
from token_dropping import flops
from token_dropping import report
from token_dropping.report import compute_to_reach  # noqa: F401  (public)
from token_dropping import training
from token_dropping.actions import scalars
from token_dropping.configs import TokenDropBertEncoderConfig
from token_dropping.errors import UserError
from token_dropping.errors import first_line
from token_dropping.paths import check_output_path

CSV_COLUMNS = ("model", "experiment", "step", "train_flops", "wall_seconds",
               "val_mlm_loss", "val_mlm_accuracy", "train_mlm_loss")
CSV_NAME = "comparison.csv"
PNG_NAME = "comparison.png"
SUMMARY_NAME = "summary.md"
SIZES = experiments.SIZES  # the registered experiment sizes
# Encoder fields only the token-dropping config has (the baseline skips them).
TOKEN_DROP_FIELDS = tuple(
    f.name for f in dataclasses.fields(TokenDropBertEncoderConfig)
    if f.name not in {g.name for g in dataclasses.fields(
        encoders.BertEncoderConfig)})


@dataclasses.dataclass(frozen=True)
class _Model:
    name: str  # the CSV's `model` column
    experiment: str
    label: str  # for the plot and the summary
    encoder: tuple = ()  # (field, value) pairs for this model only

    @property
    def encoder_type(self):
        return "bert_v2" if self.experiment.startswith("bert_") else "any"


@dataclasses.dataclass
class ComparisonResult:
    """What `run_comparison` measured and wrote.

    Attributes:
        rows: one dict per (model, evaluation), keys `CSV_COLUMNS`.
        summary: the summary paragraph, as written to `summary.md`.
        csv_path, png_path, summary_path: the files written.
    """
    rows: list
    summary: str
    csv_path: str
    png_path: str
    summary_path: str


def _models(size, with_random):
    models = [
        _Model("bert", f"bert_{size}", "BERT (baseline)"),
        _Model("token_drop", f"token_drop_bert_{size}",
               "token dropping (MLM-loss selection)"),
    ]
    if with_random:
        models.append(_Model(
            "token_drop_random", f"token_drop_bert_{size}",
            "token dropping (random selection)", (("selection", "random"),)))
    return models


def _params(model, train_steps, eval_every, seed, train_input_path,
            validation_input_path, encoder_overrides, params_override):
    """One model's experiment config: the registered one, overridden."""
    params = exp_factory.get_exp_config(model.experiment)
    paths = (dict(train_data={"input_path": train_input_path},
                  validation_data={"input_path": validation_input_path})
             if train_input_path else {})
    params.override({
        "trainer": dict(
            train_steps=train_steps, steps_per_loop=eval_every,
            summary_interval=eval_every, validation_interval=eval_every,
            validation_steps=-1,  # the whole validation set
            checkpoint_interval=train_steps,
            optimizer_config=dict(
                learning_rate={"polynomial": {"decay_steps": train_steps}},
                # the tiny recipe's 10%
                warmup={"polynomial": {"warmup_steps": max(
                    1, train_steps // 10)}})),
        "task": dict(paths, train_data=dict(paths.get("train_data", {}),
                                            seed=seed)),
    })
    encoder = dict(encoder_overrides or {})
    if model.encoder_type == "bert_v2":
        encoder = {k: v for k, v in encoder.items()
                   if k not in TOKEN_DROP_FIELDS}
    encoder.update(model.encoder)
    params.task.model.encoder.get().override(encoder)
    if params_override:
        try:
            params = hyperparams.override_params_dict(
                params, params_override, is_strict=True)
        except (KeyError, ValueError, TypeError, AttributeError) as e:
            raise UserError(f"--params_override={params_override!r}: "
                            f"{first_line(e)}") from None
    return params


def _check_arguments(output_dir, size, train_steps, eval_every,
                     train_input_path, validation_input_path):
    if not output_dir:
        raise UserError("--output_dir is required, e.g. "
                           "--output_dir=docs/compare.")
    check_output_path(output_dir, "--output_dir", directory=True)
    if size not in SIZES:
        raise UserError(f"--size={size!r} is not one of "
                           f"{', '.join(SIZES)}.")
    for name, value in (("train_steps", train_steps),
                        ("eval_every", eval_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"--{name}={value!r} must be a positive "
                               "integer.")
    if train_steps % eval_every:
        raise UserError(
            f"--train_steps={train_steps} is not a multiple of --eval_every="
            f"{eval_every}; every model is evaluated at the same steps, "
            "including the last.")
    if bool(train_input_path) != bool(validation_input_path):
        raise UserError(
            "Give both --train_input_path and --validation_input_path (records"
            " from tools/prepare_data.py), or neither for the embedded "
            "default corpus.")


def _flops_per_step(params):
    """Training FLOPs of one step: 3 x forward FLOPs x global batch size."""
    data = params.task.train_data
    per_sequence = flops.pretraining_flops(**flops.config_sizes(
        params.task.model.encoder.get(), data))
    return 3 * per_sequence * data.global_batch_size


class _TrainClock:
    """Training seconds so far, and the last training loop's outputs by step."""

    def __init__(self):
        self.seconds = 0.0
        self.at_step = {}  # step: (seconds so far, {metric: value})


def _timed_trainer_cls(clock):
    """A Model Garden Trainer whose training loops add their time to `clock`."""

    class TimedTrainer(base_trainer.Trainer):
        def train(self, num_steps):
            start = time.perf_counter()
            output = super().train(num_steps)
            # Reading the values waits for the loop's last step to finish.
            logs = scalars(output)
            clock.seconds += time.perf_counter() - start
            clock.at_step[int(self.global_step.numpy())] = (clock.seconds,
                                                            logs)
            return output

    return TimedTrainer


def _rows(model, result, clock, flops_per_step):
    rows = []
    for step, metrics in result.eval_history:
        seconds, train_logs = clock.at_step.get(step, (float("nan"), {}))
        rows.append(dict(
            model=model.name, experiment=model.experiment, step=step,
            train_flops=step * flops_per_step, wall_seconds=seconds,
            val_mlm_loss=metrics.get("lm_example_loss", float("nan")),
            val_mlm_accuracy=metrics.get("masked_lm_accuracy", float("nan")),
            train_mlm_loss=train_logs.get("lm_example_loss", float("nan"))))
    return rows


def run_comparison(output_dir, *, size="tiny", train_steps=600,
                   eval_every=100, with_random=False, train_input_path="",
                   validation_input_path="", runs_dir="", seed=1,
                   encoder_overrides=None, params_override="",
                   cache_dir=None):
    """Trains BERT and token-dropping BERT side by side; writes the comparison.

    Args:
        output_dir: str. Where `comparison.csv`, `comparison.png` and
            `summary.md` go (created if missing).
        size: str. The registered experiments to compare: `bert_<size>` and
            `token_drop_bert_<size>`, one of `SIZES`.
        train_steps: int. Training steps of every model (the learning rate
            decays to 0 over them, with 10% warmup).
        eval_every: int. Steps between evaluations; divides `train_steps`.
        with_random: bool. Also train token dropping with random selection.
        train_input_path, validation_input_path: str. Pretraining records
            (`tools/prepare_data.py`); both empty means the embedded default
            corpus.
        runs_dir: str. Where the models' checkpoints and TensorBoard summaries
            go, one directory per model; empty means a temporary directory,
            deleted at the end.
        seed: int. Seeds the data order and the initial weights of every model.
        encoder_overrides: dict or None. Encoder fields set on every model,
            e.g. `{"num_layers": 2}`; the token-dropping fields
            (`TOKEN_DROP_FIELDS`) only on the token-dropping models.
        params_override: str. Model Garden overrides for every model, e.g.
            `"runtime.num_gpus=1,task.train_data.global_batch_size=64"`.
        cache_dir: str or None. The default corpus's cache directory.

    Returns:
        A `ComparisonResult`.

    Raises:
        UserError: for bad arguments or configurations, before any
            training starts.
    """
    _check_arguments(output_dir, size, train_steps, eval_every,
                     train_input_path, validation_input_path)
    models = _models(size, with_random)
    own_runs_dir = not runs_dir
    runs_dir = runs_dir or tempfile.mkdtemp(prefix="token_dropping_compare_")
    model_dirs = {m.name: os.path.join(runs_dir, m.name) for m in models}
    try:
        # Every configuration is checked before the first model trains.
        params, latest = {}, {}
        for model in models:
            model_dir = model_dirs[model.name]
            if tf.io.gfile.exists(model_dir) and tf.io.gfile.listdir(
                    model_dir):
                raise UserError(
                    f"{model_dir} is not empty: a comparison starts every "
                    "model from scratch; choose another --runs_dir or "
                    "delete it.")
            try:
                params[model.name] = _params(
                    model, train_steps, eval_every, seed, train_input_path,
                    validation_input_path, encoder_overrides,
                    params_override)
                latest[model.name] = training.resolve(
                    params[model.name], "train_and_eval", model_dir,
                    cache_dir=cache_dir)
            except UserError as e:
                raise UserError(f"{model.experiment}: {e}") from None
        flops_per_step = {m.name: _flops_per_step(params[m.name])
                          for m in models}
        load = [os.getloadavg()[0]]
        rows = []
        for i, model in enumerate(models, 1):
            logging.info("compare: training %s (%s), model %d of %d.",
                         model.label, model.experiment, i, len(models))
            tf_keras.utils.set_random_seed(seed)
            clock = _TrainClock()
            result = training.train(
                params[model.name], mode="train_and_eval",
                model_dir=model_dirs[model.name], latest=latest[model.name],
                trainer_cls=_timed_trainer_cls(clock))
            rows += _rows(model, result, clock, flops_per_step[model.name])
        load.append(os.getloadavg()[0])
    finally:
        if own_runs_dir:
            shutil.rmtree(runs_dir, ignore_errors=True)

    os.makedirs(output_dir, exist_ok=True)
    paths = [os.path.join(output_dir, name)
             for name in (CSV_NAME, PNG_NAME, SUMMARY_NAME)]
    report.write_csv(paths[0], rows, CSV_COLUMNS)
    flop_ratio = flops_per_step[models[1].name] / flops_per_step[
        models[0].name]
    report.comparison_plot(paths[1], rows, models,
               f"{models[0].experiment} vs {models[1].experiment}, "
               f"{train_steps} steps each (step FLOP ratio {flop_ratio:.3f})")
    summary = report.comparison_summary(rows, models, params, flop_ratio, train_steps,
                       eval_every, _count_records(
                           params[models[0].name].task.validation_data),
                       report.describe_machine(), load)
    with open(paths[2], "w") as f:
        f.write(summary + "\n")
    return ComparisonResult(rows, summary, *paths)


def _count_records(data):
    files = [f for pattern in str(data.input_path).split(",") if pattern
             for f in tf.io.gfile.glob(pattern)]
    return sum(1 for _ in tf.data.TFRecordDataset(files))

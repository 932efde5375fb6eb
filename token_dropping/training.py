"""The body of `tools/train.py`: Model Garden's training driver, ready to run.

`run(flags)` does what `official/nlp/train.py` does (parse the experiment,
YAML files and overrides; pick the distribution strategy; build the task and
trainer; hand off to `train_lib.run_experiment`), plus what a first run needs:

1. `--model_dir` defaults to `runs/<experiment>`;
2. with no `input_path` configured, the embedded default corpus is built (once,
   cached) and used, and the log says so and how to point at real data;
3. bad input (unknown experiment, malformed override, `token_keep_k` above
   `seq_length`, no file matching `input_path`) ends with one `TrainError`
   that names the value, before any checkpoint is touched;
4. a progress line per loop (step, steps/s, examples/s, ETA, MLM loss and
   accuracy, dropped share) and token-dropping TensorBoard summaries;
5. rerunning the same command resumes from the last checkpoint (Model
   Garden's checkpoint manager; the importance table is part of the model).
"""

import dataclasses
import math
import os
import time

import gin
import tensorflow as tf
import yaml
from absl import logging
from official.common import distribute_utils
from official.core import base_trainer
from official.core import exp_factory
from official.core import task_factory
from official.core import train_lib
from official.core import train_utils
from official.modeling import performance
from official.nlp.tasks import masked_lm

from token_dropping import data as token_data
from token_dropping.data.dataset_info import MANIFEST_FILENAME
from token_dropping.summaries import TokenDropSummaries

# The modes Model Garden's train_lib.run_experiment runs.
MODES = ("train", "eval", "train_and_eval", "continuous_eval",
         "train_and_post_eval")


class TrainError(ValueError):
    """A problem with what the user asked for, said in one line."""


@dataclasses.dataclass
class RunResult:
    """What a run leaves behind, for the closing summary."""
    model_dir: str
    train_logs: dict = dataclasses.field(default_factory=dict)
    eval_history: list = dataclasses.field(default_factory=list)
    vocab_size: int = 0

    @property
    def eval_logs(self):
        return self.eval_history[-1][1] if self.eval_history else {}


def default_model_dir(experiment):
    return os.path.join("runs", experiment.replace("/", "_"))


def parse_params(flags_obj):
    """The experiment config from the flags, validated, not yet locked."""
    if flags_obj.mode not in MODES:
        raise TrainError(f"--mode={flags_obj.mode!r} is not one of "
                         f"{', '.join(MODES)}.")
    if not flags_obj.experiment:
        raise TrainError("--experiment is required, e.g. "
                         "--experiment=token_drop_bert_tiny.")
    try:
        exp_factory.get_exp_config(flags_obj.experiment)
    except (LookupError, ValueError):
        raise TrainError(
            f"--experiment={flags_obj.experiment!r} is not a registered "
            f"experiment; registered: {', '.join(registered_experiments())}."
        ) from None
    for path in flags_obj.config_file or []:
        if not tf.io.gfile.exists(path):
            raise TrainError(f"--config_file={path!r}: no such file.")
    try:
        return train_utils.parse_configuration(flags_obj, lock_return=False,
                                               print_return=False)
    except yaml.YAMLError as e:
        raise TrainError(
            f"--params_override={flags_obj.params_override!r} or a "
            f"--config_file is not valid YAML: {first_line(e)}") from None
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise TrainError(
            "The configuration does not fit the experiment "
            f"{flags_obj.experiment!r} (--config_file {flags_obj.config_file},"
            f" --params_override={flags_obj.params_override!r}): "
            f"{first_line(e)}") from None


def registered_experiments():
    """Every registered experiment name, e.g. "token_drop_bert/pretraining"."""
    def walk(tree, prefix):
        for key, value in tree.items():
            name = f"{prefix}/{key}" if prefix else key
            yield from (walk(value, name) if isinstance(value, dict)
                        else [name])
    return sorted(walk(exp_factory._REGISTERED_CONFIGS, ""))  # pylint: disable=protected-access


def first_line(error):
    """An exception's message as one line, for one-line errors."""
    text = str(error).strip().strip("'\"") or type(error).__name__
    return text.splitlines()[0]


def _encoder_config(params):
    return params.task.model.encoder.get()


def _uses(mode):
    """Which data configs a mode reads."""
    uses = []
    if "train" in mode:
        uses.append("train_data")
    if "eval" in mode:
        uses.append("validation_data")
    return uses


def _is_pretraining(params):
    """Masked-LM pretraining (ours or Model Garden's), not fine-tuning."""
    return isinstance(params.task, masked_lm.MaskedLMConfig)


def use_default_data(params, mode, cache_dir=None):
    """Points empty `input_path`s at the embedded default corpus.

    The encoder's vocab_size follows the corpus's vocabulary; its special-token
    ids and vocab file come from the records' manifest, as for any prepared
    records (`use_dataset_manifest`). Pretraining only: a fine-tuning task
    (bert/sentence_prediction, bert/squad, ...) with no input_path is a
    TrainError.
    """
    empty = [name for name in _uses(mode)
             if not getattr(params.task, name).input_path]
    if not empty:
        return
    if not _is_pretraining(params):
        raise TrainError(
            f"task.{empty[0]}.input_path is empty; fine-tuning needs its "
            "data: make records with Model Garden's "
            "official/nlp/data/create_finetuning_data.py (README, \"Fine-"
            "tuning on GLUE and SQuAD\")"
            f" and pass --params_override=task.{empty[0]}.input_path=...")
    shape = getattr(params.task, empty[0])
    encoder = _encoder_config(params)
    logging.info(
        "No input_path configured for %s: using the embedded default corpus "
        "(English documentation shipped with Python; built once, then "
        "cached). For real data, build records with tools/prepare_data.py "
        "and pass --params_override=task.train_data.input_path=...,"
        "task.validation_data.input_path=...", " and ".join(empty))
    info = token_data.ensure_default_dataset(
        seq_length=shape.seq_length,
        max_predictions_per_seq=shape.max_predictions_per_seq,
        vocab_size=encoder.vocab_size, cache_dir=cache_dir)
    for name in empty:
        getattr(params.task, name).input_path = {
            "train_data": info.train_input_path,
            "validation_data": info.validation_input_path}[name]
    if encoder.vocab_size != info.vocab_size:
        logging.info("The default corpus's vocabulary has %d pieces; the "
                     "encoder's vocab_size follows it (was %d).",
                     info.vocab_size, encoder.vocab_size)
        encoder.vocab_size = info.vocab_size


def use_dataset_manifest(params, mode):
    """Takes the special-token ids and vocab from prepared records' manifest.

    `tools/prepare_data.py` writes `manifest.json` beside the records with the
    allow/deny ids of its vocabulary, so a custom vocabulary needs no ids set
    by hand. The embedded default corpus has one too. Records from elsewhere
    have no manifest and change nothing.
    """
    encoder = _encoder_config(params)
    for name in _uses(mode):
        data = getattr(params.task, name)
        first = next((p for p in str(data.input_path).split(",") if p), "")
        files = tf.io.gfile.glob(first) if first and first != "dummy" else []
        manifest = (os.path.join(os.path.dirname(files[0]),
                                 MANIFEST_FILENAME)
                    if files else "")
        if not manifest or not tf.io.gfile.exists(manifest):
            continue
        info = token_data.DatasetInfo.from_manifest(manifest)
        for field in ("seq_length", "max_predictions_per_seq"):
            if getattr(data, field) != getattr(info, field):
                raise TrainError(
                    f"task.{name}.{field}={getattr(data, field)} but the "
                    f"records in {info.output_dir} were made with {field}="
                    f"{getattr(info, field)}; set them equal.")
        if info.vocab_size > encoder.vocab_size:
            raise TrainError(
                f"The records in {info.output_dir} use a vocabulary of "
                f"{info.vocab_size} pieces but the encoder's vocab_size="
                f"{encoder.vocab_size}; set task.model.encoder."
                f"{params.task.model.encoder.type}.vocab_size="
                f"{info.vocab_size}.")
        if hasattr(encoder, "token_allow_list") and (
                tuple(encoder.token_allow_list) != info.token_allow_list
                or tuple(encoder.token_deny_list) != info.token_deny_list):
            logging.info(
                "Special-token ids from %s: allow %s, deny %s (were %s, %s).",
                info.special_tokens_path, info.token_allow_list,
                info.token_deny_list, tuple(encoder.token_allow_list),
                tuple(encoder.token_deny_list))
            encoder.token_allow_list = info.token_allow_list
            encoder.token_deny_list = info.token_deny_list
        if hasattr(params.task, "vocab_file") and not params.task.vocab_file:
            params.task.vocab_file = info.vocab_file


def check_params(params, mode):
    """Raises TrainError for settings that would fail later, deep in TF."""
    encoder = _encoder_config(params)
    for name in _uses(mode):
        data = getattr(params.task, name)
        patterns = [] if data.input_path == "dummy" else str(
            data.input_path).split(",")  # "dummy": Model Garden's fake data
        for pattern in patterns:
            if pattern and not tf.io.gfile.glob(pattern):
                raise TrainError(
                    f"task.{name}.input_path: no file matches {pattern!r}. "
                    + ("Build records with tools/prepare_data.py, or leave "
                       "input_path empty for the embedded default corpus."
                       if _is_pretraining(params) else
                       "Make records with official/nlp/data/"
                       "create_finetuning_data.py (README, \"Fine-tuning "
                       "on GLUE and SQuAD\")."))
        if data.seq_length > getattr(encoder, "max_position_embeddings",
                                     data.seq_length):
            raise TrainError(
                f"task.{name}.seq_length={data.seq_length} exceeds the "
                f"encoder's max_position_embeddings="
                f"{encoder.max_position_embeddings}.")
        keep_k = getattr(encoder, "token_keep_k", None)
        drops = name == "train_data" or getattr(encoder, "drop_at_inference",
                                                False)
        if keep_k is not None and drops and keep_k > data.seq_length:
            raise TrainError(
                f"token_keep_k={keep_k} exceeds task.{name}.seq_length="
                f"{data.seq_length}; choose token_keep_k <= seq_length "
                "(the paper keeps half).")
        if getattr(data, "max_predictions_per_seq", 0) > data.seq_length:
            raise TrainError(
                f"task.{name}.max_predictions_per_seq="
                f"{data.max_predictions_per_seq} exceeds seq_length="
                f"{data.seq_length}.")
    try:  # the encoder's own checks (layer range, allow/deny ids, ...)
        if hasattr(encoder, "token_keep_k"):
            encoder.BUILDER(encoder)
    except ValueError as e:
        raise TrainError(f"task.model.encoder: {e}") from None


def scalars(output):
    """The scalar entries of an orbit train/eval output, as floats."""
    return {k: float(v) for k, v in (output or {}).items() if tf.size(v) == 1}


class ProgressLog:
    """Orbit train action: one readable line per loop of training."""

    def __init__(self, global_step, total_steps, global_batch_size,
                 start_step=0):
        self.global_step = global_step
        self.total_steps = total_steps
        self.global_batch_size = global_batch_size
        # The first loop's rate includes start-up (tracing, compilation).
        self._last = (start_step, time.time())
        self.logs = {}

    def __call__(self, output):
        step = int(self.global_step.numpy())
        now = time.time()
        self.logs = scalars(output)
        last_step, last_time = self._last
        self._last = (step, now)
        rate = (step - last_step) / max(now - last_time, 1e-9)
        eta = (self.total_steps - step) / rate if rate > 0 else float("inf")
        line = (f"step {step}/{self.total_steps} | {rate:.2f} steps/s | "
                f"{rate * self.global_batch_size:.0f} examples/s | "
                f"ETA {_duration(eta)}")
        for key, label, fmt in (
                ("lm_example_loss", "MLM loss", "{:.3f}"),
                ("masked_lm_accuracy", "MLM accuracy", "{:.3f}"),
                ("dropped_token_fraction", "dropped", "{:.1%}")):
            if key in self.logs:
                line += f" | {label} {fmt.format(self.logs[key])}"
        logging.info(line)


class KeepLogs:
    """Orbit eval action: remembers every evaluation's results by step."""

    def __init__(self, global_step):
        self.global_step = global_step
        self.history = []  # [(step, {metric: value})]

    def __call__(self, output):
        self.history.append((int(self.global_step.numpy()), scalars(output)))


def _duration(seconds):
    if seconds == float("inf"):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def resolve_params(flags_obj, cache_dir=None):
    """The run's config, data paths filled in and checked; not yet locked.

    Raises TrainError before anything is built or written.
    """
    params = parse_params(flags_obj)
    use_default_data(params, flags_obj.mode, cache_dir=cache_dir)
    use_dataset_manifest(params, flags_obj.mode)
    check_params(params, flags_obj.mode)
    params.validate()
    return params


def run(flags_obj, cache_dir=None, trainer_cls=base_trainer.Trainer):
    """Runs the experiment the flags describe; returns a RunResult.

    `trainer_cls` is Model Garden's `train_utils.create_trainer` argument: a
    `base_trainer.Trainer` subclass, e.g. one that times its training loops
    (`token_dropping.compare`).
    """
    gin.parse_config_files_and_bindings(flags_obj.gin_file,
                                        flags_obj.gin_params)
    params = resolve_params(flags_obj, cache_dir=cache_dir)
    params.lock()
    mode = flags_obj.mode
    model_dir = flags_obj.model_dir or default_model_dir(flags_obj.experiment)

    latest = tf.train.latest_checkpoint(model_dir) if tf.io.gfile.isdir(
        model_dir) else None
    start_step = (train_utils.read_global_step_from_checkpoint(latest)
                  if latest else 0)
    if latest and "train" in mode:
        logging.info("Resuming from %s (step %d of %d).", latest, start_step,
                     params.trainer.train_steps)
    if "train" in mode:
        train_utils.serialize_config(params, model_dir)
    if params.runtime.mixed_precision_dtype:
        performance.set_mixed_precision_policy(
            params.runtime.mixed_precision_dtype)
    strategy = distribute_utils.get_distribution_strategy(
        distribution_strategy=params.runtime.distribution_strategy,
        all_reduce_alg=params.runtime.all_reduce_alg,
        num_gpus=params.runtime.num_gpus,
        tpu_address=params.runtime.tpu)
    with strategy.scope():
        task = task_factory.get_task(params.task, logging_dir=model_dir)
        trainer = train_utils.create_trainer(
            params, task, train="train" in mode, evaluate="eval" in mode,
            trainer_cls=trainer_cls)

    progress = ProgressLog(trainer.global_step, params.trainer.train_steps,
                           params.task.train_data.global_batch_size,
                           start_step)
    train_actions = [progress]
    encoder = getattr(trainer.model, "encoder_network", None)  # pretraining
    if hasattr(encoder, "record_mlm_loss") and "train" in mode:
        # After `progress`: it moves the routing metrics out of the output.
        train_actions.append(TokenDropSummaries.for_task(
            task, encoder, os.path.join(model_dir, "train"),
            trainer.global_step))
    final_eval = KeepLogs(trainer.global_step)
    train_lib.run_experiment(
        distribution_strategy=strategy, task=task, mode=mode, params=params,
        model_dir=model_dir, trainer=trainer, train_actions=train_actions,
        eval_actions=[final_eval])
    train_utils.save_gin_config(mode, model_dir)
    return RunResult(model_dir=model_dir, train_logs=progress.logs,
                     eval_history=final_eval.history,
                     vocab_size=_encoder_config(params).vocab_size)


def summary(result):
    """The closing lines a person reads after a run."""
    lines = [f"Run directory: {result.model_dir}"]
    if result.eval_logs and "lm_example_loss" not in result.eval_logs:
        lines.append("Validation: " + ", ".join(  # fine-tuning metrics
            f"{key} {value:.4f}" for key, value in
            sorted(result.eval_logs.items())))
    elif result.eval_history:
        step, ev = result.eval_history[-1]
        line = ("Validation at step "
                f"{step} (full sequences, no dropping): MLM loss "
                f"{ev.get('lm_example_loss', float('nan')):.3f}, MLM accuracy "
                f"{ev.get('masked_lm_accuracy', float('nan')):.3f}")
        if len(result.eval_history) > 1:
            first_step, first = result.eval_history[0]
            line += (f" (MLM loss {first.get('lm_example_loss', float('nan')):.3f}"
                     f" at step {first_step})")
        lines.append(line)
        if result.vocab_size > 1:
            lines.append(f"(An untrained model's MLM loss is about ln("
                         f"{result.vocab_size}) = "
                         f"{math.log(result.vocab_size):.2f}.)")
    if "dropped_token_fraction" in result.train_logs:
        lines.append(
            "Training: share of tokens dropped in the middle layers "
            f"{result.train_logs['dropped_token_fraction']:.1%}, last MLM "
            f"loss {result.train_logs.get('lm_example_loss', float('nan')):.3f}")
    lines.append(f"TensorBoard: tensorboard --logdir {result.model_dir}")
    return "\n".join(lines)

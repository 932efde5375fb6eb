"""The body of `tools/train.py`: Model Garden's training driver, ready to run.

`params_from_flags(flags)` reads Model Garden's flags (`--experiment
--config_file --params_override --tpu`) into an experiment config, and
`run(params, mode=..., model_dir=...)` does what `official/nlp/train.py`
does with it (pick the distribution strategy; build the task and trainer;
hand off to Model Garden's experiment runner), plus what a first run needs:

1. the data step (`run_data.resolve_data`): the embedded default corpus when
   no split names data, the records' manifest applied once;
2. every check (`run_checks`) before anything is written: bad values, an
   unknown strategy, an unreachable TPU, `--mode=eval` with nothing to
   evaluate, a `--model_dir` that is a file, a checkpoint that does not fit;
   each one `UserError` line naming the value;
3. a progress line per loop and token-dropping TensorBoard summaries
   (`actions`, `summaries`);
4. rerunning the same command resumes from the last checkpoint (Model
   Garden's checkpoint manager; the importance table is part of the model)
   and reads the batch the uninterrupted run would have read
   (`resume_data`: a seeded stream, the consumed batches skipped);
5. several workers (`multi_worker_mirrored` with `TF_CONFIG`): only the
   chief writes into `model_dir`, and every worker resumes from its
   checkpoint; a SIGTERM saves the step reached and stops (`runner`).

Example:
>>> params = exp_factory.get_exp_config("token_drop_bert_tiny")
>>> params.override({"trainer": {"train_steps": 100}})
>>> result = run(params, mode="train_and_eval", model_dir="runs/tiny")
"""

import dataclasses
import functools
import os
import socket
from urllib import parse

import gin
import orbit
import tensorflow as tf
from absl import logging
from official.common import distribute_utils
from official.core import base_trainer
from official.core import exp_factory
from official.core import task_factory
from official.core import train_utils
from official.modeling import performance

from token_dropping.train import checks as run_checks
from token_dropping.train import experiment_configs
from token_dropping.train.actions import KeepLogs
from token_dropping.train.actions import ProgressLog
from token_dropping.common.errors import UserError
from token_dropping.common.errors import first_line
from token_dropping.train.resume_data import fix_data_seed
from token_dropping.train.resume_data import train_dataset_fn
from token_dropping.train.params import encoder_config
from token_dropping.train import overrides
from token_dropping.train import random_state
from token_dropping.train import recorded_run
from token_dropping.train import run_vocab
from token_dropping.train.run_data import resolve_data
from token_dropping.train.runner import ExperimentRunner
from token_dropping.train.summaries import TokenDropSummaries

# The modes Model Garden's train_lib.run_experiment runs.
MODES = ("train", "eval", "train_and_eval", "continuous_eval",
         "train_and_post_eval")
_TPU_CONNECT_SECONDS = 20


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


def registered_experiments():
    """Our registered experiment names, e.g. "token_drop_bert/pretraining"."""
    return list(experiment_configs.NAMES)


def params_from_flags(flags_obj):
    """The experiment config Model Garden's flags describe, not yet locked.

    Also parses `--gin_file` / `--gin_params`. Raises UserError.
    """
    if flags_obj.mode not in MODES:
        raise UserError(f"--mode={flags_obj.mode!r} is not one of "
                        f"{', '.join(MODES)}.")
    if not flags_obj.experiment:
        raise UserError("--experiment is required, e.g. "
                        "--experiment=token_drop_bert_tiny.")
    if not experiment_configs.is_registered(flags_obj.experiment):
        raise UserError(
            f"--experiment={flags_obj.experiment!r} is not a registered "
            f"experiment; ours: {', '.join(registered_experiments())}, and "
            "Model Garden's fine-tuning ones (bert/sentence_prediction, "
            "bert/squad, ...).")
    sources = [(f"--config_file={path!r}", path)
               for path in flags_obj.config_file or []]
    for path in flags_obj.config_file or []:
        overrides.check_config_file(path)
    overrides.read(flags_obj.params_override)
    sources.append(("--params_override", flags_obj.params_override))
    try:  # Model Garden's parse_configuration, checked before validate()
        params = train_utils.ExperimentParser(flags_obj).parse()
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        fresh = exp_factory.get_exp_config(flags_obj.experiment)
        for what, text in sources:
            unknown = overrides.unknown_setting(
                fresh, overrides.read(text, what), flags_obj.experiment)
            if unknown:
                raise UserError(f"{what}: {unknown}") from None
        raise UserError(
            "The configuration does not fit the experiment "
            f"{flags_obj.experiment!r} (--config_file {flags_obj.config_file},"
            f" --params_override={flags_obj.params_override!r}): "
            f"{overrides.explain(e, fresh, {})}") from None
    for name in ("task", "trainer", "runtime"):
        overrides.check_one_ofs(getattr(params, name), name)
    try:
        params.validate()
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise UserError(
            "The configuration does not fit the experiment "
            f"{flags_obj.experiment!r}: {first_line(e)}") from None
    try:
        if flags_obj.gin_file or flags_obj.gin_params:
            with gin.unlock_config():  # parsing again in one process is fine
                gin.parse_config_files_and_bindings(flags_obj.gin_file,
                                                    flags_obj.gin_params)
    except (IOError, ValueError) as e:
        raise UserError(f"--gin_file/--gin_params: {first_line(e)}") from None
    return params


def fill_schedule_steps(params, recorded=None):
    """A keep_k schedule's fractions refer to the run's train steps, unless
    `task.keep_k_schedule_steps` names others; written to params.yaml. A
    resumed run keeps the steps it started with (`recorded`: the resumed
    run's `recorded_run.read`), so a rerun with more `trainer.train_steps`
    continues at the stage the uninterrupted run would be at."""
    task = params.task
    encoder = encoder_config(params)
    if (getattr(encoder, "keep_k_schedule", None)
            and not getattr(task, "keep_k_schedule_steps", 1)):
        task.keep_k_schedule_steps = ((recorded or {}).get(
            recorded_run.SCHEDULE_STEPS) or params.trainer.train_steps)


def resolve(params, mode, model_dir, cache_dir=None, own_records=False):
    """The data step and every check; raises UserError, writes nothing
    (but the cached default corpus). `own_records`: the caller checks what
    a resumed run was trained with itself (the study's records), so
    params.yaml is not compared (`recorded_run`)."""
    if mode not in MODES:
        raise UserError(f"mode={mode!r} is not one of {', '.join(MODES)}.")
    run_checks.check_model_dir(model_dir)
    latest = (tf.train.latest_checkpoint(model_dir)
              if tf.io.gfile.isdir(model_dir) else None)
    # The run a training rerun resumes, as params.yaml records it.
    recorded = (recorded_run.read(model_dir) if latest and "train" in mode
                else None)
    # `--tpu=NAME` alone means TPUStrategy, as in Model Garden.
    params.runtime.distribution_strategy = run_checks.strategy_name(
        params.runtime)
    run_checks.check_params(params, mode)
    fill_schedule_steps(params, recorded)
    resolve_data(params, mode, cache_dir=cache_dir)
    run_checks.check_encoder(params)
    try:
        params.validate()
    except (KeyError, ValueError) as e:
        raise UserError(f"The configuration is not valid: "
                        f"{first_line(e)}") from None
    if not own_records:
        recorded_run.check_same_run(params, recorded, model_dir)
    run_checks.check_resumable(latest, model_dir)
    if latest:
        run_checks.check_trainer_checkpoint(latest, model_dir)
        if "train" in mode:
            run_vocab.check(model_dir, *run_vocab.vocab_of(params))
    elif "train" in mode:  # read by a fresh run only
        run_checks.check_init_checkpoint(params.task)
    if mode == "eval" and not latest:
        raise UserError(
            f"--mode=eval needs a checkpoint in --model_dir={model_dir!r} and "
            "there is none; train first (--mode=train or train_and_eval), or "
            "use --mode=continuous_eval to wait for one.")
    return latest


def run(params, *, mode, model_dir, cache_dir=None,
        trainer_cls=base_trainer.Trainer):
    """Runs an experiment config; returns a RunResult.

    Args:
        params: an `ExperimentConfig` (e.g. `params_from_flags(FLAGS)` or
            `exp_factory.get_exp_config(name)` with `override`s); its data
            paths are filled in place.
        mode: one of `MODES`.
        model_dir: str. Checkpoints, `params.yaml` and summaries.
        cache_dir: str or None. Where the default corpus is cached.
        trainer_cls: Model Garden's `train_utils.create_trainer` argument, a
            `base_trainer.Trainer` subclass (e.g. one that times its loops).

    Raises:
        UserError: bad input, before `params.yaml` or a checkpoint is written.
    """
    strategy = None
    if str(params.runtime.distribution_strategy).lower() == (
            "multi_worker_mirrored"):
        # Before any op runs: collective ops are configured at startup.
        params.runtime.distribution_strategy = run_checks.strategy_name(
            params.runtime)
        strategy = _strategy(params.runtime)
    latest = resolve(params, mode, model_dir, cache_dir=cache_dir)
    return train(params, mode=mode, model_dir=model_dir, latest=latest,
                 trainer_cls=trainer_cls, strategy=strategy)


def train(params, *, mode, model_dir, latest=None,
          trainer_cls=base_trainer.Trainer, strategy=None):
    """`run` after `resolve`: `latest` is what `resolve` returned; a
    `strategy` made before it (multi-worker) or None for `params.runtime`'s."""
    if "train" in mode and hasattr(params.task, "train_data"):
        # One seed for the data order, the initial weights, dropout and the
        # random selections; params.yaml records it.
        random_state.seed_run(fix_data_seed(params.task.train_data,
                                            model_dir))
    params.lock()
    start_step = (train_utils.read_global_step_from_checkpoint(latest)
                  if latest else 0)
    if params.runtime.mixed_precision_dtype:
        performance.set_mixed_precision_policy(
            params.runtime.mixed_precision_dtype)
    strategy = strategy or _strategy(params.runtime)
    with strategy.scope():
        task = task_factory.get_task(params.task, logging_dir=model_dir)
        if "train" in mode:
            # Model Garden's trainer would read the data from its start; a
            # resumed run goes on from the batch of its checkpoint's step.
            trainer_cls = functools.partial(
                trainer_cls, train_dataset=orbit.utils.make_distributed_dataset(
                    strategy, train_dataset_fn(
                        task, params.task.train_data, start_step)))
        trainer = train_utils.create_trainer(
            params, task, train="train" in mode, evaluate="eval" in mode,
            trainer_cls=trainer_cls)
        if latest or "train" in mode:
            _build(trainer.model, params)
        # Every random layer exists now; before the runner restores, so the
        # dropout masks go on where the checkpoint's run stopped.
        random_state.carry_random_state(trainer.checkpoint, trainer.model)
    if latest:
        run_checks.check_checkpoint_fits(latest, trainer.checkpoint)
        if "train" in mode:
            logging.info("Resuming from %s (step %d of %d).", latest,
                         start_step, params.trainer.train_steps)
    # Only the chief writes into model_dir (Model Garden's rule for
    # checkpoints, kept here for params.yaml, summaries and the gin file).
    chief = strategy.extended.should_checkpoint
    if "train" in mode and chief:
        train_utils.serialize_config(params, model_dir)
        if not latest:  # what a resume and an export compare with
            run_vocab.record(model_dir, run_vocab.vocab_of(params)[0])

    progress = ProgressLog(trainer.global_step, params.trainer.train_steps,
                           params.task.train_data.global_batch_size,
                           start_step)
    train_actions = [progress]
    summary_manager = None  # orbit's default
    encoder = getattr(trainer.model, "encoder_network", None)  # pretraining
    if hasattr(encoder, "record_mlm_loss") and "train" in mode and chief:
        summaries = TokenDropSummaries.for_task(
            task, encoder, os.path.join(model_dir, "train"),
            trainer.global_step)
        train_actions.append(summaries)
        # The trainer writes the routing metrics only under summaries' tags.
        summary_manager = summaries.summary_manager()
    final_eval = KeepLogs(trainer.global_step)
    # Model Garden's train_lib.run_experiment, with a runner that resumes
    # every worker from the chief's checkpoint and stops on SIGTERM.
    ExperimentRunner(
        distribution_strategy=strategy, task=task, mode=mode, params=params,
        model_dir=model_dir, trainer=trainer, train_actions=train_actions,
        eval_actions=[final_eval], save_summary=chief,
        summary_manager=summary_manager).run()
    if chief:
        train_utils.save_gin_config(mode, model_dir)
    return RunResult(model_dir=model_dir, train_logs=progress.logs,
                     eval_history=final_eval.history,
                     vocab_size=encoder_config(params).vocab_size)


def _strategy(runtime):
    """Model Garden's strategy for `runtime`; an unreachable TPU is a
    UserError (a grpc:// address is tried first, so it cannot hang)."""
    if runtime.distribution_strategy == "tpu":
        _check_tpu_reachable(runtime.tpu)
    try:
        return distribute_utils.get_distribution_strategy(
            distribution_strategy=runtime.distribution_strategy,
            all_reduce_alg=runtime.all_reduce_alg,
            num_gpus=runtime.num_gpus, tpu_address=runtime.tpu)
    except Exception as e:  # pylint: disable=broad-except
        if runtime.distribution_strategy == "multi_worker_mirrored":
            raise UserError(
                "runtime.distribution_strategy=multi_worker_mirrored cannot "
                f"start this worker from TF_CONFIG="
                f"{os.environ.get('TF_CONFIG', '')!r}: {first_line(e)}") from None
        if runtime.distribution_strategy != "tpu":
            raise
        raise UserError(f"--tpu={runtime.tpu!r}: cannot reach the TPU: "
                        f"{first_line(e)}") from None


def _check_tpu_reachable(tpu):
    if not tpu.startswith("grpc://"):
        return  # a TPU name or "local": the cluster resolver says
    address = parse.urlparse(tpu)
    try:
        socket.create_connection((address.hostname, address.port),
                                 timeout=_TPU_CONNECT_SECONDS).close()
    except (OSError, ValueError) as e:
        raise UserError(f"--tpu={tpu!r}: cannot reach the TPU: "
                        f"{first_line(e)}") from None


def _build(model, params):
    """Creates the model's variables (a pretrainer builds them lazily)."""
    if model.built or not hasattr(params.task, "train_data"):
        return
    data = params.task.train_data
    ids = tf.zeros((1, data.seq_length), tf.int32)
    inputs = dict(input_word_ids=ids, input_mask=tf.ones_like(ids),
                  input_type_ids=ids)
    if hasattr(data, "max_predictions_per_seq"):
        inputs["masked_lm_positions"] = tf.zeros(
            (1, data.max_predictions_per_seq), tf.int32)
    try:
        model(inputs)
    except (ValueError, TypeError, KeyError, tf.errors.OpError):
        pass  # a model with other inputs: its variables come at restore

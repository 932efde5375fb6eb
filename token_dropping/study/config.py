"""A study's settings and their checks: `StudyConfig`, `check_config`.

What `tools/study.py` passes to `study.run_study`: which models (names from
`MODELS` or registered pretraining experiments; BERT is the baseline, in any
position), seeds, steps, the shared schedule, the probe, and the data.
`resolve_config` fills what the user left out (the committed study's values,
or `--quick`'s); `check_config` refuses a bad value in one line before
anything is built or trained.
"""

import dataclasses
import math
import os
from typing import Optional

import tensorflow as tf
from token_dropping.train import experiment_configs as experiments
from token_dropping.train import driver as training
from token_dropping.train import overrides
from token_dropping.train import recorded_run
from token_dropping.data import dataset_info
from token_dropping.common.checks import as_positive_int
from token_dropping.common.errors import UserError
from token_dropping.common.paths import check_output_path
from token_dropping.study import probe_tasks
from token_dropping.study import sweep as study_sweep
from token_dropping.study.runs import ModelSpec
from token_dropping.study.runs import experiment_kind
from token_dropping.train.warmup_stable_decay import WarmupStableDecay

MODELS = {
    "bert": ("bert_{size}", "BERT (baseline)", ()),
    "token_drop": ("token_drop_bert_{size}", "token dropping", ()),
    "token_drop_random": ("token_drop_bert_{size}",
                          "token dropping, random selection",
                          (("selection", "random"),)),
}
# The paper's comparison. Its random-selection ablation (`token_drop_random`)
# joins with --models; with it the default study takes about 170 minutes on
# 2 cores, past its 150-minute budget, so it belongs to the frontier sweep.
DEFAULT_MODELS = ("bert", "token_drop")
GLUE_TASKS = ("cola", "sst2")
# The built probes (`probe_tasks`). Fine-tuned from bert_mini annealed at
# 1,200 steps (seed 1, one fine-tuning), dev accuracy against bag-of-words:
# source 0.663 against 0.629 (random encoder 0.607); word order 0.493
# (0.491 at a fine-tuning rate of 1e-3) against 0.507; sentence order 0.510
# against 0.486: fine-tuning a model this small does not show what its
# pretraining taught. Read from the MLM head instead, the cloze probe (the
# default) gives 0.663 [0.641, 0.681] against bag of words' 0.534 and a
# random model's 0.503 (the same model, 2,000 dev sentences).
PROBES = probe_tasks.NAMES

# The steps and seeds of the committed study, and of --quick (the whole
# pipeline at toy size). A value the user gives wins over either.
# budgets: BERT's annealed budgets in steps (each other model gets the same
# compute points, and more at `reach_from`..1 of BERT's largest, every
# REACH_STEP); loop_steps: the stable runs' loop, where decays may start.
# Annealed at 1,200 steps BERT ended 0.65 nat below the unigram floor; the
# 1,800-step budget is for the 0.75 the study asks of a regime where
# context matters (at 1e-3, the peak rate that learned fastest).
FULL = dict(seeds=3, budgets=(400, 700, 1200, 1800), eval_every=200,
            warmup_steps=100, finetune_seeds=1, finetune_epochs=3,
            reach_from=0.8, loop_steps=10)
QUICK = dict(seeds=2, budgets=(10, 20), eval_every=4, warmup_steps=2,
             finetune_seeds=1, finetune_epochs=1, reach_from=1.0,
             loop_steps=2)
# Apart by at most this share of BERT's largest compute, the frontier
# points near "BERT's loss reached" (issue: interpolate between points at
# most 5% of BERT's compute apart).
REACH_STEP = 0.05


@dataclasses.dataclass
class StudyConfig:
    """What a study trains and how long. Defaults: the committed study.

    Attributes:
        output_dir: where the tables, plots and summary go.
        runs_dir: checkpoints, exports, data and per-run records.
        size: the registered experiment size (`bert_<size>`, ...).
        models: names from `MODELS` or registered pretraining experiment
            names; the one BERT among them (`bert`, `bert_<size>`) is the
            baseline the others are compared with, in any position.
        seeds: pretraining seeds per model (1..seeds).
        budgets: BERT's budgets in steps, each an annealed run (a decay
            branch of one stable run per seed); every other model gets the
            same compute points, and more from `reach_from` to 1 of BERT's
            largest compute every `REACH_STEP`.
        reach_from: float in (0, 1]; see `budgets`.
        decay_fraction: the last share of each budget that decays to 0.
        eval_every: steps between the stable runs' evaluations.
        warmup_steps, learning_rate: the shared warmup-stable-decay
            schedule (`train.warmup_stable_decay`): warmup, the peak
            `learning_rate`, and a linear decay to 0 at each budget.
        loop_steps: the stable runs' loop; decays start at its multiples.
        finetune_seeds: fine-tuning seeds per pretrained model.
        finetune_epochs: fine-tuning epochs over the probe's training set.
        probe: the built probe task, one of `PROBES` (without glue_dir).
        glue_dir, glue_task: a GLUE task directory and its name instead of
            the built probe.
        data_dir: a dataset directory of `tools/prepare_data.py` (static
            records, its manifest and vocab) instead of the built corpus.
        quick: a toy-size run of the whole pipeline.
        params_override: Model Garden overrides for every pretraining run.
        sweep: `--sweep` values, `FIELD=VALUE,...` (`sweep.py`): every
            token-dropping model becomes one model per combination.
        carry_dir: where every finished (model, seed)'s results are kept
            without checkpoints, and restored from on a fresh `runs_dir`
            (`carry.py`); "" for none. Zero-shot probes only.

    The step and seed fields left None take the committed study's values
    (`FULL`), or `QUICK`'s with `quick`; `resolve_config` fills them.
    """
    output_dir: str = "docs/study"
    runs_dir: str = "runs/study"
    size: str = "mini"
    models: tuple = DEFAULT_MODELS
    seeds: Optional[int] = None
    budgets: Optional[tuple] = None
    reach_from: Optional[float] = None
    decay_fraction: float = 0.1
    eval_every: Optional[int] = None
    warmup_steps: Optional[int] = None
    # bert_mini on the default corpus, warmup 100 then the peak: at step
    # 600, 1e-3 was 0.40 nat below the unigram floor (6.017); 2e-3 and 3e-3
    # were still at it (6.449, 6.454; floor 6.412). Lower peaks untried.
    learning_rate: float = 1e-3
    loop_steps: Optional[int] = None
    finetune_seeds: Optional[int] = None
    finetune_epochs: Optional[int] = None
    probe: str = "cloze"
    glue_dir: str = ""
    glue_task: str = "cola"
    data_dir: str = ""
    quick: bool = False
    params_override: str = ""
    sweep: tuple = ()
    carry_dir: str = ""


def resolve_config(config):
    """`config` with every step and seed field the user left None filled:
    `QUICK`'s with `quick`, else `FULL`'s. Given values are kept."""
    defaults = QUICK if config.quick else FULL
    return dataclasses.replace(config, **{
        name: value for name, value in defaults.items()
        if getattr(config, name) is None})


def wsd_schedule(config):
    """The study's `WarmupStableDecay` (config resolved); UserError on a
    bad warmup or decay fraction, naming the flag."""
    try:
        return WarmupStableDecay(
            learning_rate=config.learning_rate,
            warmup_steps=config.warmup_steps,
            decay_fraction=config.decay_fraction, align=config.loop_steps)
    except UserError as e:
        raise UserError(f"--{e}") from None


def model_specs(config):
    """The models' `ModelSpec`s, the BERT baseline first (whatever its
    position in `config.models`), the others in their order."""
    specs = []
    for name in config.models:
        model, settings = study_sweep.split_name(name)
        if model in MODELS:
            experiment, label, encoder = MODELS[model]
            experiment = experiment.format(size=config.size)
        else:
            experiment, label, encoder = model, model, ()
        if settings:  # one sweep point, named as --sweep names it
            label = f"{label}, {name[len(model) + 1:].replace('.', ', ')}"
        specs.append(ModelSpec(name, experiment, label,
                               tuple(encoder) + settings))
    specs = sorted(specs, key=lambda spec: not spec.is_baseline)
    return study_sweep.expand(specs, study_sweep.parse(config.sweep))


# What the study sets in every run, and the flag that sets it instead
# (an entry names a key or, ending in ".", a section: `recorded_run.covers`).
_STUDY_SETS = (
    ("trainer.train_steps", "--budgets"),
    ("trainer.steps_per_loop", "--eval_every"),
    ("trainer.summary_interval", "--eval_every"),
    ("trainer.validation_interval", "--eval_every"),
    ("trainer.validation_steps", "--eval_every (the whole validation set "
     "each time)"),
    ("trainer.checkpoint_interval", "--eval_every"),
    ("trainer.optimizer_config.", "--learning_rate, --warmup_steps and "
     "--decay_fraction"),
    ("task.train_data.input_path", "--data_dir"),
    ("task.train_data.seed", "--seeds"),
    ("task.train_data.seq_length", "--data_dir's dataset"),
    ("task.train_data.max_predictions_per_seq", "--data_dir's dataset"),
    ("task.validation_data.", "--data_dir's dataset"),
)


def check_override(params_override):
    """Raises UserError if `--params_override` sets what the study sets in
    every run (`_STUDY_SETS`): it would be overridden in one run and not in
    another, or break the study's own steps (a stable run shorter than its
    budgets)."""
    for key in overrides.dotted_keys(params_override):
        for entry, flag in _STUDY_SETS:
            if recorded_run.covers(entry, key):
                raise UserError(
                    f"--params_override sets {key}, which the study sets in "
                    f"every run; use {flag}.")


def check_config(config):
    """One line per bad value, before anything is built or trained."""
    if not config.output_dir:
        raise UserError("--output_dir is required, e.g. --output_dir="
                        "docs/study.")
    check_output_path(config.output_dir, "--output_dir", directory=True)
    if not config.runs_dir:
        raise UserError("--runs_dir is required (checkpoints, exports and "
                        "the built data go there).")
    check_output_path(config.runs_dir, "--runs_dir", directory=True)
    check_override(config.params_override)
    if config.size not in experiments.SIZES:
        raise UserError(f"--size={config.size!r} is not one of "
                        f"{', '.join(experiments.SIZES)}.")
    config = resolve_config(config)
    for name in ("seeds", "eval_every", "finetune_seeds", "finetune_epochs",
                 "loop_steps"):
        as_positive_int(f"--{name}", getattr(config, name))
    budgets = [as_positive_int("--budgets", b) for b in config.budgets]
    if len(budgets) < 2 or budgets != sorted(set(budgets)):
        raise UserError(
            f"--budgets={','.join(map(str, budgets))} must be at least two "
            "different step counts, ascending (BERT's annealed runs), e.g. "
            "400,700,1200.")
    if not (isinstance(config.reach_from, (int, float))
            and 0 < config.reach_from <= 1):
        raise UserError(f"--reach_from={config.reach_from!r} must be in "
                        "(0, 1], a share of BERT's largest budget.")
    if config.eval_every % config.loop_steps:
        raise UserError(f"--eval_every={config.eval_every} is not a multiple "
                        f"of the stable runs' loop of {config.loop_steps} "
                        "steps.")
    if not (config.learning_rate > 0 and math.isfinite(config.learning_rate)):
        raise UserError(f"--learning_rate={config.learning_rate!r} must be "
                        "a positive number.")
    # The schedule checks the warmup and every decay against it.
    schedule = wsd_schedule(config)
    for budget in budgets:
        try:
            schedule.decay_start(budget)
        except UserError as e:
            raise UserError(f"--budgets: {e}") from None
    names = list(config.models)
    if len(names) < 2 or len(set(names)) != len(names):
        raise UserError(f"--models={','.join(names)!r} needs at least two "
                        "different models, one of them BERT (the baseline).")
    registered = training.registered_experiments()
    for full_name in names:
        name, settings = study_sweep.split_name(full_name)
        if name not in MODELS and name not in registered:
            raise UserError(
                f"--models: {name!r} is neither one of {', '.join(MODELS)} "
                f"nor a registered experiment ({', '.join(registered)}).")
        if name not in MODELS and not experiment_kind(name):
            raise UserError(
                f"--models: {name!r} is a registered experiment but not a "
                "masked-LM pretraining one (e.g. bert_<size>, "
                "token_drop_bert_<size>, token_drop_bert_<size>_<variant>).")
        if settings and (name == "bert" or (
                name not in MODELS and experiment_kind(name) == "bert")):
            raise UserError(f"--models: {full_name!r} sets token-dropping "
                            "fields on BERT, the baseline; give them to "
                            "token_drop.")
    study_sweep.parse(config.sweep)  # one line on a bad --sweep
    specs = model_specs(config)
    seen = {}
    for spec in specs:  # e.g. drop_layers=1-7 and drop_start_layer=1...
        same = seen.setdefault((spec.experiment, tuple(sorted(
            dict(spec.encoder).items()))), spec.name)
        if same != spec.name:
            raise UserError(f"--models: {spec.name!r} is the model "
                            f"{same!r} under another name; give it once.")
    baselines = [spec.name for spec in specs if spec.is_baseline]
    if config.sweep and len(specs) == len(baselines):
        raise UserError(f"--sweep={config.sweep[0]!r} needs a token-dropping"
                        f" model in --models={','.join(names)!r} to vary.")
    if len(baselines) != 1:
        raise UserError(
            f"--models={','.join(names)!r} has {len(baselines)} BERT models "
            f"({', '.join(baselines) or 'none'}); the study needs exactly one,"
            " its baseline (bert, or a registered bert_<size> experiment).")
    if config.probe not in PROBES:
        raise UserError(f"--probe={config.probe!r} is not one of "
                        f"{', '.join(PROBES)}.")
    if config.glue_task not in GLUE_TASKS:
        raise UserError(f"--glue_task={config.glue_task!r} is not one of "
                        f"{', '.join(GLUE_TASKS)}.")
    if config.glue_dir and not tf.io.gfile.isdir(config.glue_dir):
        raise UserError(f"--glue_dir={config.glue_dir!r} is not a directory "
                        "(GLUE's layout: train.tsv and dev.tsv).")
    if config.data_dir:
        manifest = os.path.join(config.data_dir,
                                dataset_info.MANIFEST_FILENAME)
        if not tf.io.gfile.exists(manifest):
            raise UserError(
                f"--data_dir={config.data_dir!r} has no {os.path.basename(manifest)}"
                ": give a dataset directory of tools/prepare_data.py "
                "(--output_format=static).")
    if config.carry_dir:
        check_output_path(config.carry_dir, "--carry_dir", directory=True)
        if not probe_tasks.zero_shot(config):
            raise UserError(
                f"--carry_dir={config.carry_dir!r} keeps readings of a "
                f"zero-shot probe ({', '.join(sorted(probe_tasks.ZERO_SHOT))}); "
                "fine-tuning a probe needs each model's checkpoint, which "
                "it does not keep. Drop --carry_dir or use --probe="
                f"{min(probe_tasks.ZERO_SHOT)} without --glue_dir.")
    if config.data_dir and not config.glue_dir:
        raise UserError(
            "Your own records need a probe from your own text: give "
            "--glue_dir (GLUE CoLA or SST-2), since the built probe's "
            "documents are only held out of the built corpus.")

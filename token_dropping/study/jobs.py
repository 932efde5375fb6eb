"""The study's pretraining runs, planned before the first one trains.

`plan_jobs` builds every (model, seed)'s stable run and decay branches
(`annealing.model_plan`) as `Job`s, each config and settings record checked
before anything trains; `start_branch` gives a decay branch its checkpoint
when it is about to train. The driver (`driver.py`) runs them in order.
"""

import dataclasses
import os
import types

import tensorflow as tf
from absl import logging
from official.core import exp_factory

from token_dropping.common.errors import UserError
from token_dropping.study import annealing
from token_dropping.study import carry
from token_dropping.study import probe_tasks
from token_dropping.study import records as study_records
from token_dropping.study import runs as study_runs
from token_dropping.study import scaling
from token_dropping.train import checks as run_checks


def check_models(specs, params_of, shape=None):
    """Every model's config (its fields, a sweep's values, --params_override)
    checked before any data is built, at the data's `shape`
    (`prepare.data_shape`; None: the experiment's own), so a bad value
    stops the study in one line, not after the corpus. `params_of(spec,
    data)` is the driver's config of a stable run."""
    for spec in specs:
        experiment = exp_factory.get_exp_config(spec.experiment)
        own = experiment.task.train_data
        stand_in = types.SimpleNamespace(  # the data, before it is built
            train_input_path="-", validation_input_path="-", **(shape or dict(
                seq_length=own.seq_length,
                max_predictions_per_seq=own.max_predictions_per_seq,
                vocab_size=experiment.task.model.encoder.get().vocab_size)))
        params = params_of(spec, stand_in)
        try:
            run_checks.check_params(params, "train_and_eval")
            run_checks.check_encoder(params)
        except UserError as e:
            raise UserError(f"{spec.name}: {e}") from None


@dataclasses.dataclass
class Job:
    """One run of the study: a stable run (`fork` None) or a decay branch
    starting from the stable run's checkpoint at step `fork`."""
    spec: object
    seed: int
    params: object
    model_dir: str
    latest: object
    settings: dict
    phase: object
    fork: object

    @property
    def steps(self):
        """The steps this run trains itself."""
        return self.params.trainer.train_steps - (self.fork or 0)


@dataclasses.dataclass
class Plan:
    """Every run of the study, with what the report needs of the plan."""
    jobs: list
    plans: dict  # model name: `annealing.ModelPlan`
    flop_ratios: dict  # model name: train-step FLOPs over BERT's
    scaled_ratios: dict  # model name: {size: the same ratio at that size}


def plan_jobs(config, specs, params_of, manifest_path, schedule):
    """Plans and checks every run; `params_of(spec, train_steps, seed,
    budget=None, eval_every=None, schedule_steps=None)` makes a run's
    config. Jobs come seed by seed: every model's seed 1 first (a stable run
    before its branches), so a study stopped half way has one seed of each
    model rather than all seeds of the first ones.

    Raises:
        UserError: a config the encoder refuses, or a run made with other
            settings, before anything trains.
    """
    largest = config.budgets[-1]
    base_flops = study_runs.flops_per_step(params_of(specs[0], largest, 1))
    result = Plan([], {}, {}, {})
    for spec in specs:
        try:
            params = params_of(spec, largest, 1)
            ratio = study_runs.flops_per_step(params) / base_flops
        except UserError as e:  # e.g. a --sweep value the encoder refuses
            if str(e).startswith(f"{spec.name}: "):
                raise
            raise UserError(f"{spec.name}: {e}") from None
        result.flop_ratios[spec.name] = ratio
        result.scaled_ratios[spec.name] = {
            size: scaling.ceiling_at(spec, params, size)
            for size in scaling.SIZES}
        plan = result.plans[spec.name] = annealing.model_plan(
            config.budgets, ratio=1.0 if spec.is_baseline else ratio,
            reach_from=config.reach_from, schedule=schedule)
        for seed in range(1, config.seeds + 1):
            result.jobs += _seed_jobs(config, spec, seed, plan, params_of,
                                      manifest_path, schedule)
    result.jobs.sort(key=lambda job: job.seed)  # stable: runs keep order
    return result


def _seed_jobs(config, spec, seed, plan, params_of, manifest_path,
               schedule):
    """The stable run of (spec, seed) and its decay branches."""
    stable_dir = os.path.join(config.runs_dir, "pretrain",
                              f"{spec.name}-seed{seed}")
    stable = params_of(spec, plan.stable_steps, seed,
                       schedule_steps=plan.final_budget)
    what = f"{spec.name} (seed {seed})"
    latest = _resolve(what, stable, stable_dir)
    # Finished with no checkpoint and no fork: restored from --carry_dir
    # (`carry.py`), which never carries checkpoints.
    carried = (latest is None and study_runs.is_done(stable_dir, 0)
               and not annealing.kept_forks(stable_dir))
    remedy = None
    if carried and config.carry_dir:
        remedy = (f"it came from --carry_dir={config.carry_dir!r}: use "
                  "another --carry_dir and --runs_dir, or delete "
                  f"{carry.unit_path(config.carry_dir, spec.name, seed)} "
                  f"and {stable_dir} to retrain it")
    elif carried:
        remedy = (f"its checkpoints are gone (it came from a --carry_dir): "
                  f"use another --runs_dir, or delete {stable_dir} to "
                  "retrain it")
    # The stable run may grow (a larger budget): not a setting.
    settings = study_records.pretraining_settings(spec, seed, stable,
                                                  manifest_path)
    settings.pop("trainer.train_steps")
    record = study_records.check_pretraining(
        what, stable_dir, settings,
        reused=bool(latest) or study_runs.is_done(stable_dir, 0),
        remedy=remedy)
    if carried and not study_runs.is_done(stable_dir, plan.stable_steps):
        raise UserError(
            f"{what}: {stable_dir} has no checkpoint, and this study trains "
            f"it on to step {plan.stable_steps} (a larger --budgets); "
            f"{remedy}.")
    if carried and not probe_tasks.zero_shot(config):
        raise UserError(
            f"{what}: {stable_dir} has no checkpoint, and fine-tuning the "
            f"probe starts from one; use --probe=cloze (read from the "
            f"model as it is), or {remedy}.")
    jobs = [Job(spec, seed, stable, stable_dir, latest, settings,
                study_runs.Phase(schedule,
                                 forks=tuple(sorted(set(plan.starts)))),
                None)]
    for budget, start in zip(plan.budgets, plan.starts):
        # One evaluation, at the budget (the run starts at `start`).
        params = params_of(spec, budget, seed, budget=budget,
                           eval_every=budget,
                           schedule_steps=plan.final_budget)
        branch_dir = annealing.branch_dir(stable_dir, budget)
        branch = f"{spec.name} (seed {seed}, decay to {budget})"
        _resolve(branch, params, branch_dir)
        job = Job(spec, seed, params, branch_dir, None,
                  study_records.pretraining_settings(spec, seed, params,
                                                     manifest_path),
                  study_runs.Phase(schedule, budget=budget), start)
        if study_runs.is_done(branch_dir, budget):
            # Made from this stable run with these settings, or refused:
            # a branch's schedule (e.g. --decay_fraction) is not the
            # stable run's.
            study_records.check_pretraining(
                branch, branch_dir,
                dict(job.settings, stable_run_id=(record or {}).get(
                    "run_id")),
                reused=True, remedy=remedy)
        elif carried:
            raise UserError(
                f"{branch}: {stable_dir} has no checkpoint to start this "
                f"decay from; {remedy}.")
        jobs.append(job)
    return jobs


def _resolve(what, params, model_dir):
    try:
        return study_runs.resolve(params, model_dir)
    except UserError as e:
        raise UserError(f"{what}: {e}") from None


def start_branch(job, jobs):
    """`(latest, phase)` of a decay branch about to train: its checkpoint
    (the stable run's fork, copied in when the branch is new; `job.fork`
    becomes that fork's step, maybe before its decay start) and its training
    seconds before the fork. A branch made from another stable run (a
    retrained one: its run id differs) is redone."""
    stable = next(j for j in jobs if j.fork is None and j.spec == job.spec
                  and j.seed == job.seed)
    stable_id = study_records.read(stable.model_dir)["run_id"]
    job.settings = dict(job.settings, stable_run_id=stable_id)
    record = study_records.read(job.model_dir)
    if record is not None and not study_records.is_current(job.model_dir,
                                                           job.settings):
        logging.info("study: %s was made from another stable run or with "
                     "other settings; redoing it.", job.model_dir)
        tf.io.gfile.rmtree(job.model_dir)
    elif record is None and tf.io.gfile.exists(job.model_dir):
        tf.io.gfile.rmtree(job.model_dir)  # a copy interrupted before its record
    latest = (tf.train.latest_checkpoint(job.model_dir)
              if tf.io.gfile.isdir(job.model_dir) else None)
    fork = annealing.latest_fork(stable.model_dir, job.fork)
    if latest is None:
        latest, fork = annealing.start_branch(stable.model_dir, job.fork,
                                              job.model_dir)
    if fork != job.fork:
        logging.warning("study: the stable run kept no checkpoint at step "
                        "%d; %s starts from its step %d and trains at the "
                        "stable rate to %d first.", job.fork, job.model_dir,
                        fork, job.fork)
        job.fork = fork
    return latest, dataclasses.replace(
        job.phase, start_seconds=annealing.fork_seconds(stable.model_dir,
                                                        fork))

"""Does token dropping pay? BERT against token dropping, seeds and a probe.

`run_study` answers it on the user's machine, the same way at any scale:

1. **Data.** Pretraining records and a held-out probe task. By default both
   come from text that installs with the project (`PackageDocsCorpus`: the
   docstrings and comments of Python and of the pinned numerical packages);
   documents held out of pretraining become the probe. With `data_dir` the
   user's prepared records are used instead, and with `glue_dir` a GLUE task
   (CoLA or SST-2) is the probe.
2. **The floor.** The validation targets' unigram cross-entropy under the
   training records' frequencies (`unigram.py`): what a model that ignores
   context would score. Every loss is reported beside it.
3. **Pretraining, annealed at every budget.** Every model (default: BERT and
   token dropping; `token_drop_random`, the paper's random-selection
   ablation, joins with `models`) trains with every seed (initial weights,
   data order, dropout) through the real trainer (`study_runs.pretrain`) on
   one warmup-stable-decay schedule: per (model, seed) a stable run, and
   from its checkpoints a decay branch to 0 at each budget (`annealing`).
   BERT's budgets are `budgets`; every other model's are BERT's budgets'
   compute and a grid from `reach_from` to 1 of BERT's largest, so each
   model's annealed frontier (loss against training FLOPs) can be read
   where it reaches BERT's loss.
4. **The probe.** Each model annealed at BERT's largest compute is exported
   with `export_bert` (the plain BERT checkpoint users fine-tune). The
   default probe, `cloze`, is read from the run's MLM head as it is
   (`cloze.score`); the others, and a GLUE task, fine-tune the export
   through Model Garden's `bert/sentence_prediction` with `finetune_seeds`
   seeds (`probe.py`). A randomly initialised model, bag of words and the
   majority class are the control rows. A zero-shot probe, which costs
   seconds, is also read at BERT's smaller budgets' compute, so its
   accuracy can be plotted against compute like the loss; it is read as
   each (model, seed) finishes, and with `carry_dir` that pair's results
   are kept there without checkpoints (`carry.py`).
5. **Report** (`report.py`): `evaluations.csv`, `finetuning.csv`,
   `loss_vs_flops.png`, `probe_accuracy.png` and `summary.md` in `output_dir`.

Everything lands in `runs_dir` as it is made, each result with the settings
that made it (`records.py`); rerunning the same command skips finished
steps and resumes an interrupted pretraining from its checkpoint, and a
rerun with other settings retrains nothing silently: a pretraining run made
with other settings stops it in one line, an export or fine-tuning made from
another run is redone. The runs are planned and checked first
(`jobs.py`). A SIGTERM stops the study after the step it came in
(a training run at its next loop boundary), everything resumable
(`stop.py`).
"""

import os
import time

import tensorflow as tf
from absl import logging

from token_dropping.common.errors import UserError
from token_dropping.data import glue as glue_data
from token_dropping.study import carry
from token_dropping.study import bag_of_words
from token_dropping.study import cloze
from token_dropping.study import prepare as study_prepare
from token_dropping.study.timing import StudyProgress
from token_dropping.study import predictions as study_predictions
from token_dropping.study import probe_stats
from token_dropping.study import probe_tasks
from token_dropping.study import finetune as study_finetune
from token_dropping.study import report as study_report
from token_dropping.study import jobs as study_jobs
from token_dropping.study import runs as study_runs
from token_dropping.study import stop as study_stop
from token_dropping.study import unigram
# The settings live in study_config; tools/study.py and users reach them here.
from token_dropping.study.config import DEFAULT_MODELS  # noqa: F401
from token_dropping.study.config import FULL  # noqa: F401
from token_dropping.study.config import GLUE_TASKS  # noqa: F401
from token_dropping.study.config import MODELS  # noqa: F401
from token_dropping.study.config import PROBES  # noqa: F401
from token_dropping.study.config import QUICK  # noqa: F401
from token_dropping.study.config import StudyConfig  # noqa: F401
from token_dropping.study.config import check_config
from token_dropping.study.config import model_specs
from token_dropping.study.config import resolve_config
from token_dropping.study.config import wsd_schedule
from token_dropping.study.stop import StudyStopped  # noqa: F401


def run_study(config, command=""):
    """Runs the study described by `config`; returns its `StudyReport`.

    `command` is quoted in the summary (how to reproduce it).

    Raises:
        UserError: bad arguments or results made with other settings,
            before anything is built or trained.
        StudyStopped, preemption.Preempted: a SIGTERM; rerunning continues.
    """
    check_config(config)
    config = resolve_config(config)
    with study_stop.SigtermWatch() as watch:
        return _run(config, command, watch)


def _run(config, command, watch):
    specs = model_specs(config)  # the baseline (BERT) first
    started = time.time()
    encoder_overrides = study_prepare.QUICK_ENCODER if config.quick else None
    schedule = wsd_schedule(config)
    study_jobs.check_models(specs, lambda spec, data: study_runs.make_params(
        spec, train_steps=config.budgets[-1], eval_every=config.eval_every,
        loop_steps=config.loop_steps, optimizer_config=schedule.stable(),
        seed=1, data=data, encoder_overrides=encoder_overrides,
        params_override=config.params_override),
        study_prepare.data_shape(config))
    info, glue_dir = study_prepare.prepare_data(config)
    # Converted before any training, so a bad --glue_dir stops here.
    data = glue_data.convert(glue_dir, config.glue_task, info.vocab_file,
                             os.path.join(config.runs_dir, "probe_records"),
                             max_seq_length=study_finetune.PROBE_SEQ_LENGTH)
    floor = unigram.unigram_cross_entropy(
        info.train_input_path, info.validation_input_path, info.vocab_size)
    logging.info("study: the unigram floor is %.3f nats per masked target.",
                 floor.cross_entropy)
    watch.check("preparing the data, the probe and the floor")
    # Every run's config is built and checked before the first one trains.
    largest = config.budgets[-1]

    def params_of(spec, train_steps, seed, budget=None, eval_every=None,
                  schedule_steps=None):
        params = study_runs.make_params(
            spec, train_steps=train_steps,
            eval_every=eval_every or config.eval_every,
            loop_steps=config.loop_steps,
            optimizer_config=(schedule.stable() if budget is None
                              else schedule.branch(budget)),
            seed=seed, data=info, encoder_overrides=encoder_overrides,
            params_override=config.params_override)
        if schedule_steps and hasattr(params.task, "keep_k_schedule_steps"):
            # A keep_k schedule's fractions: of the run at BERT's largest
            # compute, the same for the stable run and every branch.
            params.task.keep_k_schedule_steps = schedule_steps
        return params

    if config.carry_dir:  # before the plan checks every run's record
        restored = carry.restore(config.carry_dir, config.runs_dir, [
            (spec.name, seed) for spec in specs
            for seed in range(1, config.seeds + 1)])
        logging.info("study: %d finished (model, seed) pairs restored from "
                     "--carry_dir=%s.", len(restored), config.carry_dir)
    planned = study_jobs.plan_jobs(config, specs, params_of,
                                   info.manifest_path, schedule)
    jobs, plans = planned.jobs, planned.plans
    # A zero-shot probe fine-tunes nothing (its reading is an evaluation).
    zero_shot = probe_tasks.zero_shot(config)
    finetune_flops = (0 if zero_shot
                      else _finetune_flops(jobs[0].params, config))
    progress = StudyProgress(
        sum(study_runs.flops_per_step(job.params) * job.steps
            for job in jobs)
        + finetune_flops * config.finetune_seeds
        * (len(specs) * config.seeds + 1),
        os.path.join(config.runs_dir, "timings.json"))
    # Building or finding the data and probe, the floor and the checks are
    # part of the study's time too (counted if this invocation trains).
    progress.preparing(time.time() - started)
    rows, exports = [], {}
    # Per (model, seed): its annealed runs at BERT's budgets' compute,
    # (BERT's budget, run directory, training FLOPs), by budget. BERT's plan
    # holds those compute points (shares of its largest) and budgets.
    at_bert = dict(zip(plans[specs[0].name].shares,
                       plans[specs[0].name].budgets))
    points = {}
    probe_key = study_finetune.probe_id(config, glue_dir, info.vocab_file)
    finetune_dir = os.path.join(config.runs_dir, "finetune", probe_key)
    finetunes, predictions = [], {}
    dev_documents = study_predictions.dev_documents(glue_dir,
                                                    config.glue_task)

    def read_zero_shot(name, seed, check=True):
        """Reads the probe from (name, seed) at each of its points (a
        random model: once); returns the readings' directories. A SIGTERM
        is acted on after each reading, or (`check` False) by the caller."""
        result_dirs = []
        for budget, model_dir, flops in points.get((name, seed), [(
                largest, None, 0.0)]):
            final = budget == largest  # the table's reading
            logging.info("study: reading the %s probe from %s seed %d%s.",
                         config.probe, name, seed, "" if not model_dir
                         else f" at BERT's {budget}-step compute")
            result_dirs.append(os.path.join(
                finetune_dir, f"{name}-seed{seed}" + (
                    "" if final else f"-at-bert-{budget}")))
            result = study_finetune.score_run(
                model_dir, jobs[0].params, glue_dir, info.vocab_file,
                model_dir and study_finetune.checkpoint_settings(
                    model_dir, info.vocab_file),
                result_dirs[-1], probe_key, dev_documents=dev_documents)
            finetunes.append(dict(model=name, pretrain_seed=seed,
                                  finetune_seed=0, train_flops=flops,
                                  dev_accuracy=result.accuracy))
            if final:
                predictions.setdefault(name, []).append(result.predictions)
            what = f"reading the probe from {name} seed {seed}" + (
                f" at BERT's {budget}-step compute" if model_dir else "")
            progress.finished(what, 0, not result.reused)  # its minutes
            if check:
                watch.check(what)
        return result_dirs

    units = {}  # each (model, seed)'s runs, in order
    for job in jobs:
        units.setdefault((job.spec.name, job.seed), []).append(job)
    for job in jobs:
        spec, seed = job.spec, job.seed
        was_done = study_runs.is_done(job.model_dir,
                                      job.params.trainer.train_steps)
        flops = study_runs.flops_per_step(job.params)
        what = (f"pretraining {spec.name} seed {seed}" if job.fork is None
                else f"decaying {spec.name} seed {seed} to "
                f"{job.phase.budget}")
        latest, phase = job.latest, job.phase
        if job.fork is not None and not was_done:
            planned_steps = job.steps  # start_branch may fork earlier
            latest, phase = study_jobs.start_branch(job, jobs)
            progress.total += flops * (job.steps - planned_steps)
        logging.info("study: %s (%d steps)%s.", what, job.steps,
                     ", already done" if was_done else "")
        rows += study_runs.pretrain(spec, seed, job.params, job.model_dir,
                                    latest, floor.cross_entropy,
                                    job.settings, phase)
        progress.finished(what, flops * job.steps, not was_done)
        unit = units[spec.name, seed]
        # The pair's last run: a SIGTERM is acted on once its probe is read
        # and its results kept (a minute or two at the frontier's size), so
        # a machine stopped then loses nothing of the pair.
        last = zero_shot and job is unit[-1]
        if not last:
            watch.check(what)
        plan = plans[spec.name]
        share = (None if job.fork is None
                 else plan.shares[plan.budgets.index(job.phase.budget)])
        if share in at_bert:
            # Exact, stage by stage, as evaluations.csv counts them.
            points.setdefault((spec.name, seed), []).append((
                at_bert[share], job.model_dir,
                study_runs.train_flops_at(job.params, job.phase.budget)))
        if last:  # the export (a minute) comes after the pair is kept
            result_dirs = read_zero_shot(spec.name, seed, check=False)
            if config.carry_dir:
                carry.keep(config.carry_dir, config.runs_dir, spec.name,
                           seed, [j.model_dir for j in unit], result_dirs)
            watch.check(f"{what}, reading the probe from it")
        if job.fork is not None and job.phase.budget == plan.final_budget:
            exports[spec.name, seed] = _export(config, spec, seed, job,
                                               info.vocab_file)
            watch.check(f"exporting {spec.name} seed {seed}")

    if zero_shot:
        read_zero_shot("random_init", 0)
    else:
        encoder_config = os.path.join(exports[specs[0].name, 1][0],
                                      "encoder.yaml")
        pretrained = [(name, seed, exports[name, seed])
                      for name, seed in sorted(exports, key=lambda k: (
                          [s.name for s in specs].index(k[0]), k[1]))]
        for name, seed, export in pretrained + [
                ("random_init", 0, ("", None))]:
            if export is None:
                raise UserError(
                    f"{name} seed {seed} has no checkpoint (its results "
                    "came from a --carry_dir), and fine-tuning the probe "
                    "starts from one; use another --runs_dir.")
            init, init_settings = export
            final_flops = max((f for _, _, f in points.get((name, seed),
                                                           [])), default=0.0)
            for ft_seed in range(1, config.finetune_seeds + 1):
                result_dir = os.path.join(finetune_dir,
                                          f"{name}-seed{seed}-ft{ft_seed}")
                logging.info("study: fine-tuning %s seed %d/%d.", name, seed,
                             ft_seed)
                result = study_finetune.finetune_run(
                    config, data, encoder_config, init, init_settings,
                    ft_seed, result_dir, probe_key,
                    dev_documents=dev_documents)
                finetunes.append(dict(model=name, pretrain_seed=seed,
                                      finetune_seed=ft_seed,
                                      train_flops=final_flops,
                                      dev_accuracy=result.accuracy))
                predictions.setdefault(name, []).append(result.predictions)
                what = f"fine-tuning {name} seed {seed}/{ft_seed}"
                progress.finished(what, finetune_flops, not result.reused)
                watch.check(what)

    # The probe's rows: dev accuracies with document-bootstrap intervals,
    # each gap paired with BERT's on the same resampled documents.
    words = bag_of_words.bag_of_words_row(glue_dir, config.glue_task, seed=0)
    base = specs[0].name
    predictions["bag_of_words"] = [cloze.pairwise(words.predictions)
                                   if zero_shot else words.predictions]
    predictions["majority"] = [probe_stats.majority(predictions[base])]
    probe_rows = probe_stats.probe_table(predictions, base)
    counts, _ = probe_stats.measures_pretraining(predictions[base], {
        name: predictions[name]
        for name in ("random_init", "bag_of_words", "majority")})
    order = [spec.name for spec in specs]  # the tables' order: by model
    rows.sort(key=lambda row: (order.index(row["model"]), row["seed"]))
    # Read as each (model, seed) finished; reported by model, the controls
    # last (a stable sort keeps each reading's budgets in order).
    finetunes.sort(key=lambda row: (
        order.index(row["model"]) if row["model"] in order else len(order),
        row["pretrain_seed"]))
    return study_report.write_study(
        config.output_dir, specs=specs, rows=rows, finetunes=finetunes,
        probe_rows=probe_rows, probe_counts=counts,
        floor=floor, config=config, flop_ratios=planned.flop_ratios,
        scaled_ratios=planned.scaled_ratios,
        num_validation=info.num_validation_examples,
        data_note=_data_note(info, jobs),
        probe_note=study_prepare.probe_note(config, glue_dir),
        command=command, wall_minutes=progress.minutes)


def _data_note(info, jobs):
    """How much of the training records the longest run read."""
    read = max(job.params.trainer.train_steps
               * job.params.task.train_data.global_batch_size
               for job in jobs)
    return (f"Training records: {info.num_train_examples} sequences of "
            f"{info.seq_length} pieces (vocabulary {info.vocab_size}); the "
            f"longest run read {read} of them "
            f"({read / info.num_train_examples:.2f} passes).")


def _export(config, spec, seed, job, vocab_file):
    """The plain BERT export of a model annealed at BERT's largest compute
    (`export_run`): its directory and settings; None for a run carried
    without its checkpoints (`carry.py`), read but never exported here."""
    if tf.train.latest_checkpoint(job.model_dir) is None:
        logging.info("study: %s seed %d has no checkpoint (its results came "
                     "from a --carry_dir); not exported.", spec.name, seed)
        return None
    logging.info("study: exporting %s, seed %d.", spec.name, seed)
    return study_finetune.export_run(config.runs_dir, spec, seed,
                                     job.model_dir, vocab_file)


def _finetune_flops(params, config):
    """Training FLOPs of one fine-tuning run (encoder only, for the ETA)."""
    return study_runs.flops_per_step(params) * config.finetune_epochs * (
        (study_prepare.QUICK_PROBE if config.quick else study_prepare.PROBE)["num_train"]
        / params.task.train_data.global_batch_size)

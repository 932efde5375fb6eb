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
3. **Pretraining.** Every model (default: BERT, token dropping, and token
   dropping with random selection, the paper's ablation) trains with every
   seed (initial weights and data order) through the real trainer
   (`study_runs.pretrain`). BERT trains `train_steps`; each token-dropping
   model continues to `train_steps / flop_ratio` steps, so its last
   evaluation is at BERT's training compute (equal compute) and its
   evaluation at `train_steps` is the equal-steps point. All share one
   learning-rate schedule (warmup, then constant), so no curve is annealed
   earlier than another.
4. **The probe.** Each pretrained model is exported with `export_bert` (the
   plain BERT checkpoint users fine-tune) and fine-tuned through Model
   Garden's `bert/sentence_prediction` with `finetune_seeds` seeds
   (`probe.py`); a randomly initialised encoder and the majority class are
   the floor rows.
5. **Report** (`report.py`): `evaluations.csv`, `finetuning.csv`,
   `loss_vs_flops.png`, `probe_accuracy.png` and `summary.md` in `output_dir`.

Everything lands in `runs_dir` as it is made, each result with the settings
that made it (`records.py`); rerunning the same command skips finished
steps and resumes an interrupted pretraining from its checkpoint, and a
rerun with other settings retrains nothing silently: a pretraining run made
with other settings stops it in one line, an export or fine-tuning made from
another run is redone. A SIGTERM stops the study after the step it came in
(a training run at its next loop boundary), everything resumable
(`stop.py`).
"""

import json
import math
import os
import time

import tensorflow as tf
from absl import logging

from token_dropping.data import glue as glue_data
from token_dropping.study import probe
from token_dropping.study import probe_data
from token_dropping.study import finetune as study_finetune
from token_dropping.study import records as study_records
from token_dropping.study import report as study_report
from token_dropping.study import runs as study_runs
from token_dropping.study import stop as study_stop
from token_dropping.study import unigram
from token_dropping.data import dataset_info
from token_dropping.data import default_dataset
from token_dropping.data import package_docs
from token_dropping.data import prepare_data_config
from token_dropping.common.errors import UserError
from token_dropping.common.errors import first_line
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
from token_dropping.study.stop import StudyStopped  # noqa: F401
# --quick's encoder and data: 3 layers (one dropped) of 32, sequences of 32.
_QUICK_ENCODER = dict(num_layers=3, hidden_size=32, num_attention_heads=2,
                      intermediate_size=64, token_keep_k=16)
_QUICK_DATA = dict(seq_length=32, max_predictions_per_seq=5, vocab_size=600)
# Every source, a larger held-out share: both labels of the source probe.
_QUICK_CORPUS = dict(max_documents_per_source=50, heldout_share=0.3)
_QUICK_PROBE = dict(num_train=160, num_dev=80)
_DATA = dict(seq_length=128, max_predictions_per_seq=20, vocab_size=8000)
_PROBE = dict(num_train=2000, num_dev=1000)
_WHOLE_SHUFFLE = 1_000_000  # examples: more than the default corpus makes


PREPARING = "preparing: data, probe, floor, checks"


class _Progress:
    """One log line per finished step of the study, with an ETA.

    Work is counted in FLOPs (pretraining runs and fine-tuning runs alike);
    the rate is this invocation's measured seconds per FLOP.
    """

    def __init__(self, total_flops, timings_path):
        self.total = total_flops
        self.done = 0.0
        self.measured_flops = 0.0
        self.start = self.last = time.time()
        self.path = timings_path
        self.pending = 0.0
        self.timings = {}
        self.steps = set()  # this study's steps, done now or before
        if tf.io.gfile.exists(timings_path):
            with tf.io.gfile.GFile(timings_path) as f:
                self.timings = json.load(f)

    @property
    def minutes(self):
        """Minutes this study's finished steps and the preparing took, over
        every invocation (a runs_dir shared by studies holds others' too)."""
        return sum(self.timings.get(name, 0.0)
                   for name in self.steps | {PREPARING}) / 60

    def preparing(self, seconds):
        """This invocation's time before the first step (data, probe, floor,
        checks); counted with its first measured step, so rerunning a
        finished study adds nothing."""
        self.pending = seconds

    def _save(self):
        with tf.io.gfile.GFile(self.path, "w") as f:
            json.dump(self.timings, f, indent=1)

    def finished(self, what, flops_of_step, measured=True):
        now = time.time()
        self.done += flops_of_step
        self.steps.add(what)
        if measured and self.pending:
            self.timings[PREPARING] = (self.timings.get(PREPARING, 0.0)
                                       + self.pending)
            self.pending = 0.0
        if measured:
            self.measured_flops += flops_of_step
            self.timings[what] = self.timings.get(what, 0.0) + now - self.last
            self._save()
        self.last = now
        elapsed = now - self.start
        left = ""
        if self.measured_flops:
            eta = elapsed / self.measured_flops * (self.total - self.done)
            left = f"; about {eta / 60:.0f} min left"
        logging.info("study: %s done (%.0f%% of the study's FLOPs); %.1f min "
                     "elapsed%s.", what, 100 * self.done / self.total,
                     elapsed / 60, left)


def _prepare_data(config):
    """Builds (or finds) the pretraining records and the probe's GLUE dir."""
    if config.data_dir:
        info = dataset_info.DatasetInfo.from_manifest(os.path.join(
            config.data_dir, dataset_info.MANIFEST_FILENAME))
        if info.data_format != dataset_info.STATIC_FORMAT:
            raise UserError(f"--data_dir={config.data_dir!r} holds "
                            f"{info.data_format} records; the study reads "
                            "static ones (--output_format=static).")
        return info, config.glue_dir
    corpus_kwargs = _QUICK_CORPUS if config.quick else {}
    corpus = package_docs.PackageDocsCorpus(**corpus_kwargs)
    text = corpus.write_text_files(os.path.join(config.runs_dir, "corpus"))
    shape = _QUICK_DATA if config.quick else _DATA
    data_config = prepare_data_config.PrepareDataConfig(
        input_files=text.input_files, dupe_factor=2,
        validation_fraction=0.02 if not config.quick else 0.1,
        # The corpus files come package by package; a window shuffle would
        # leave the stream in that order, so a longer run (token dropping at
        # equal compute) would see packages a shorter one never saw. The
        # study shuffles the whole training set (about 150 MB held).
        shuffle_buffer_size=_WHOLE_SHUFFLE,
        num_workers=min(2, os.cpu_count() or 1), **shape)
    data_dir = os.path.join(config.runs_dir, "data")
    try:
        info = default_dataset.prepare_data(data_config, output_dir=data_dir)
    except ValueError as e:
        raise UserError(
            f"--runs_dir={config.runs_dir!r} holds records built with other "
            f"settings ({first_line(e)}); use a new --runs_dir, or delete "
            f"{data_dir} and the runs trained on it "
            f"({os.path.join(config.runs_dir, 'pretrain')}).") from None
    if info.num_train_examples > _WHOLE_SHUFFLE:
        logging.warning(
            "study: %d training examples, more than the %d shuffled together:"
            " the records keep some of the corpus's order.",
            info.num_train_examples, _WHOLE_SHUFFLE)
    glue_dir = config.glue_dir
    if not glue_dir:
        glue_dir = os.path.join(config.runs_dir, "probe")
        _build_probe(config, text, glue_dir)
    return info, glue_dir


def _build_probe(config, text, glue_dir):
    """The built probe (`config.probe`) from the held-out documents."""
    counts = _QUICK_PROBE if config.quick else _PROBE
    if config.probe == "acceptability":
        probe_data.build_probe_task(text.heldout_file, glue_dir, seed=0,
                                    **counts)
    else:
        probe_data.build_source_task(text.heldout_file, text.heldout_sources(),
                                     glue_dir, seed=0, **counts)


def _probe_note(config, glue_dir):
    """What the probe is, for the summary."""
    if config.glue_dir:
        return (f"Probe: `{os.path.basename(glue_dir.rstrip('/'))}` "
                f"(GLUE {config.glue_task}).")
    if config.probe == "acceptability":
        return ("Probe: acceptability, real held-out sentences against the "
                "same sentences with two adjacent words swapped or one word "
                "dropped (`probe_data.build_probe_task`).")
    return ("Probe: source, whether a sentence of a held-out document comes "
            "from Python's standard library documentation or from a "
            "third-party package's docstrings (`probe_data."
            "build_source_task`; labels from where the text is, not from "
            "any model).")


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
    info, glue_dir = _prepare_data(config)
    # Converted before any training, so a bad --glue_dir stops here.
    data = glue_data.convert(glue_dir, config.glue_task, info.vocab_file,
                             os.path.join(config.runs_dir, "probe_records"),
                             max_seq_length=study_finetune.PROBE_SEQ_LENGTH)
    floor = unigram.unigram_cross_entropy(
        info.train_input_path, info.validation_input_path, info.vocab_size)
    logging.info("study: the unigram floor is %.3f nats per masked target.",
                 floor.cross_entropy)
    watch.check("preparing the data, the probe and the floor")
    encoder_overrides = _QUICK_ENCODER if config.quick else None

    # Every run's config is built and checked before the first one trains.
    def params_of(spec, train_steps, seed):
        return study_runs.make_params(
            spec, train_steps=train_steps, eval_every=config.eval_every,
            warmup_steps=config.warmup_steps,
            learning_rate=config.learning_rate, seed=seed, data=info,
            encoder_overrides=encoder_overrides,
            params_override=config.params_override)

    base_params = params_of(specs[0], config.train_steps, 1)
    base_flops = study_runs.flops_per_step(base_params)
    runs, flop_ratios = [], {}  # runs: (spec, seed, params, dir, latest,
    for spec in specs:          # settings)
        flop_ratios[spec.name] = study_runs.flops_per_step(
            params_of(spec, config.train_steps, 1)) / base_flops
        steps = equal_compute_steps(config.train_steps,
                                    flop_ratios[spec.name])
        for seed in range(1, config.seeds + 1):
            params = params_of(spec, steps, seed)
            model_dir = os.path.join(config.runs_dir, "pretrain",
                                     f"{spec.name}-seed{seed}")
            what = f"{spec.name} (seed {seed})"
            try:
                latest = study_runs.resolve(params, model_dir)
            except UserError as e:
                raise UserError(f"{what}: {e}") from None
            settings = study_records.pretraining_settings(
                spec, seed, params, info.manifest_path)
            study_records.check_pretraining(
                what, model_dir, settings,
                reused=bool(latest) or study_runs.is_done(model_dir))
            runs.append((spec, seed, params, model_dir, latest, settings))

    finetune_flops = _finetune_flops(base_params, config)
    progress = _Progress(
        sum(study_runs.flops_per_step(p) * p.trainer.train_steps
            for _, _, p, *_ in runs)
        + finetune_flops * config.finetune_seeds * (len(runs) + 1),
        os.path.join(config.runs_dir, "timings.json"))
    # Building or finding the data and probe, the floor and the checks are
    # part of the study's time too (counted if this invocation trains).
    progress.preparing(time.time() - started)
    rows, exports = [], {}
    for spec, seed, params, model_dir, latest, settings in runs:
        was_done = study_runs.is_done(model_dir)
        logging.info("study: pretraining %s, seed %d (%d steps)%s.",
                     spec.name, seed, params.trainer.train_steps,
                     ", already done" if was_done else "")
        rows += study_runs.pretrain(spec, seed, params, model_dir, latest,
                                    floor.cross_entropy, settings)
        progress.finished(f"pretraining {spec.name} seed {seed}",
                          study_runs.flops_per_step(params)
                          * params.trainer.train_steps, not was_done)
        watch.check(f"pretraining {spec.name} seed {seed}")
        logging.info("study: exporting %s, seed %d.", spec.name, seed)
        exports[spec.name, seed] = study_finetune.export_run(
            config.runs_dir, spec, seed, model_dir, info.vocab_file)
        watch.check(f"exporting {spec.name} seed {seed}")

    encoder_config = os.path.join(exports[specs[0].name, 1][0],
                                  "encoder.yaml")
    probe_key = study_finetune.probe_id(config, glue_dir, info.vocab_file)
    finetune_dir = os.path.join(config.runs_dir, "finetune", probe_key)
    finetunes = []
    pretrained = [(spec.name, seed, exports[spec.name, seed])
                  for spec, seed, *_ in runs]
    for name, seed, (init, init_settings) in pretrained + [
            ("random_init", 0, ("", None))]:
        for ft_seed in range(1, config.finetune_seeds + 1):
            result_dir = os.path.join(finetune_dir,
                                      f"{name}-seed{seed}-ft{ft_seed}")
            logging.info("study: fine-tuning %s seed %d/%d.", name, seed,
                         ft_seed)
            accuracy, was_done = study_finetune.finetune_run(
                config, data, encoder_config, init, init_settings, ft_seed,
                result_dir, probe_key)
            finetunes.append(dict(model=name, pretrain_seed=seed,
                                  finetune_seed=ft_seed,
                                  dev_accuracy=accuracy))
            what = f"fine-tuning {name} seed {seed}/{ft_seed}"
            progress.finished(what, finetune_flops, not was_done)
            watch.check(what)

    return study_report.write_study(
        config.output_dir, specs=specs, rows=rows, finetunes=finetunes,
        majority=probe.majority_accuracy(probe.dev_labels(data)),
        floor=floor, config=config, flop_ratios=flop_ratios,
        num_validation=info.num_validation_examples,
        data_note=_data_note(info, runs),
        probe_note=_probe_note(config, glue_dir),
        command=command, wall_minutes=progress.minutes)


def _data_note(info, runs):
    """How much of the training records the longest run read."""
    read = max(p.trainer.train_steps * p.task.train_data.global_batch_size
               for _, _, p, *_ in runs)
    return (f"Training records: {info.num_train_examples} sequences of "
            f"{info.seq_length} pieces (vocabulary {info.vocab_size}); the "
            f"longest run read {read} of them "
            f"({read / info.num_train_examples:.2f} passes).")


def equal_compute_steps(train_steps, ratio):
    """Steps at which a model costing `ratio` of a baseline step has spent the
    baseline's `train_steps` steps (rounded up). Model Garden evaluates at
    every `eval_every` and after the last step, so the last evaluation of a
    longer run is at equal compute."""
    return int(math.ceil(train_steps / ratio - 1e-9))


def _finetune_flops(params, config):
    """Training FLOPs of one fine-tuning run (encoder only, for the ETA)."""
    return study_runs.flops_per_step(params) * config.finetune_epochs * (
        (_QUICK_PROBE if config.quick else _PROBE)["num_train"]
        / params.task.train_data.global_batch_size)

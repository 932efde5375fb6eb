"""tools/study.py: the whole pipeline at --quick size, resuming, bad input."""

import csv
import dataclasses
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from checkpoint_values import assert_same_values
from checkpoint_values import checkpoint_values
from token_dropping.study import annealing
from token_dropping.study import driver as study
from token_dropping.study import prepare as study_prepare
from token_dropping.study import runs as study_runs
from token_dropping.data import dataset_info
from token_dropping.train import driver as training
from token_dropping.study import timing as study_timing
from token_dropping.study import report as study_report
from token_dropping.common.errors import UserError
from token_dropping.train.warmup_stable_decay import WarmupStableDecay
from in_process import tool_in_process

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STUDY = os.path.join(ROOT, "tools", "study.py")


@pytest.mark.parametrize("kwargs,message", [
    (dict(budgets=(700, 400)), "--budgets=700,400 must be at least two "
     "different step counts, ascending"),
    (dict(budgets=(0, 400)), "--budgets=0 must be a positive integer"),
    (dict(eval_every=15), "--eval_every=15 is not a multiple of the stable "
     "runs' loop of 10 steps"),
    (dict(reach_from=1.5), "--reach_from=1.5 must be in (0, 1]"),
    (dict(decay_fraction=0.0), "--decay_fraction=0.0 must be in (0, 1]"),
    (dict(seeds=True), "--seeds=True must be a positive integer"),
    (dict(size="huge"), "--size='huge' is not one of tiny, mini, base, large"),
    (dict(models=("bert",)), "needs at least two different models"),
    (dict(models=("bert", "bogus")), "'bogus' is neither one of bert, "
     "token_drop, token_drop_random nor a registered experiment (bert_base, "
     "bert_large, bert_mini, bert_tiny, token_drop_bert/pretraining, "),
    (dict(learning_rate=float("nan")), "--learning_rate=nan must be a"),
    (dict(warmup_steps=1000), "--budgets: total_steps=400: its decay would "
     "start at step 360, inside the warmup of 1000 steps"),
    (dict(glue_task="mnli"), "--glue_task='mnli' is not one of cola, sst2"),
    (dict(probe="cola"), "--probe='cola' is not one of source, acceptability"),
    (dict(glue_dir="/nonexistent/glue"), "--glue_dir='/nonexistent/glue' is"),
    (dict(data_dir="/nonexistent/data", glue_dir="/"),
     "--data_dir='/nonexistent/data' has no manifest.json"),
    # Checked at each experiment's own shape, before the corpus is built.
    (dict(sweep=("token_keep_k=32,abc",)), "token_drop.token_keep_k=abc: "
     "task.model.encoder.any.token_keep_k='abc' must be an integer."),
    (dict(params_override="runtime.num_gpu=1"), "--params_override="
     "'runtime.num_gpu=1': runtime.num_gpu is not a setting of this "
     "experiment; there are all_reduce_alg,"),
    (dict(params_override="runtime.num_gpus 1"), "--params_override="
     "'runtime.num_gpus 1' is neither comma-separated KEY=VALUE pairs"),
    # What the study sets in every run: a 3-step stable run failed after
    # the data was built, a seq_length after the probe was.
    (dict(params_override="trainer.train_steps=3"), "--params_override "
     "sets trainer.train_steps, which the study sets in every run; use "
     "--budgets."),
    (dict(params_override="trainer.optimizer_config.learning_rate.type="
          "constant"), "--params_override sets trainer.optimizer_config."
     "learning_rate.type, which the study sets in every run; use "
     "--learning_rate, --warmup_steps and --decay_fraction."),
    (dict(params_override="task.train_data.seq_length=16"),
     "--params_override sets task.train_data.seq_length, which the study "
     "sets in every run; use --data_dir's dataset."),
])
def test_bad_arguments_are_refused_before_anything_runs(kwargs, message,
                                                         tmp_path):
    config = study.StudyConfig(output_dir=str(tmp_path / "out"),
                               runs_dir=str(tmp_path / "runs"), **kwargs)
    with pytest.raises(UserError, match=re.escape(message)):
        study.run_study(config)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "runs").exists()


def test_own_records_need_a_glue_probe(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "manifest.json").write_text("{}")
    config = study.StudyConfig(output_dir=str(tmp_path / "out"),
                               runs_dir=str(tmp_path / "runs"),
                               data_dir=str(tmp_path / "data"))
    with pytest.raises(UserError, match="give --glue_dir"):
        study.run_study(config)


def test_records_of_other_settings_in_runs_dir_are_one_line(tmp_path,
                                                            monkeypatch):
    def existing(*unused, **unused_kwargs):  # what the data builder raises
        raise ValueError("output_dir='runs/data' already holds a different "
                         "dataset (source 'text_files', seq_length=32).")
    monkeypatch.setattr(study_prepare.default_dataset, "prepare_data",
                        existing)
    config = study.StudyConfig(output_dir=str(tmp_path / "out"),
                               runs_dir=str(tmp_path / "runs"), quick=True)
    with pytest.raises(UserError, match=r"--runs_dir='.*runs' holds records "
                       r"built with other settings \(output_dir=.*\); use a "
                       r"new --runs_dir, or delete .*data and the runs") as e:
        study_prepare.prepare_data(config)
    assert "\n" not in str(e.value)


def test_cli_bad_input_is_one_clear_line(tmp_path):
    # PYTHONPATH: this checkout's package, not an installed one.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, STUDY, f"--output_dir={tmp_path / 'out'}",
         f"--runs_dir={tmp_path / 'runs'}", "--budgets=700,400"],
        capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == ("study.py: error: --budgets=700,400 must be at least two "
                    "different step counts, ascending (BERT's annealed "
                    "runs), e.g. 400,700,1200."), last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    # A check in the tool's main: its main in this process (the case above
    # ran the command line).
    result = tool_in_process(
        "study.py", f"--output_dir={tmp_path / 'out'}",
        f"--runs_dir={tmp_path / 'runs'}", "--probe=source",
        f"--glue_dir={tmp_path}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(
        "study.py: error: --probe chooses the built probe; with --glue_dir")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    """`tools/study.py --quick`'s pipeline, once for this module."""
    root = tmp_path_factory.mktemp("study")
    config = study.StudyConfig(output_dir=str(root / "out"),
                               runs_dir=str(root / "runs"), quick=True)
    return config, study.run_study(config, command="python tools/study.py "
                                   "--quick")


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # the whole pipeline: about 2.5 minutes
def test_quick_study_writes_every_output(quick_study):
    config, result = quick_study
    for name in study_report.FILES:
        path = os.path.join(config.output_dir, name)
        assert os.path.getsize(path) > 0, name
    evaluations = _read_csv(os.path.join(config.output_dir,
                                         "evaluations.csv"))
    assert tuple(evaluations[0]) == study_report.EVAL_COLUMNS
    runs = {(r["model"], r["seed"]) for r in evaluations}
    assert runs == {(m, s) for m in study.DEFAULT_MODELS for s in ("1", "2")}
    budgets = {m: sorted({int(r["budget"]) for r in evaluations
                          if r["model"] == m and r["phase"] == "decay"})
               for m in study.DEFAULT_MODELS}
    assert budgets["bert"] == [10, 20]
    # Token dropping is annealed at BERT's budgets' FLOPs: 10 / ratio
    # rounded down (the frontier's first point), 20 / ratio rounded up.
    ratio = result.table[1]["flop_ratio"]
    assert budgets["token_drop"] == [math.floor(10 / ratio),
                                     math.ceil(20 / ratio)]
    assert 0.5 < ratio < 1
    for row in evaluations:
        assert 0 < float(row["val_mlm_loss"]) < 20
        assert 0 <= float(row["val_mlm_accuracy"]) <= 1
        assert float(row["train_flops"]) > 0
        if row["phase"] == "decay":  # annealed: evaluated at its budget
            assert row["step"] == row["budget"]
            assert float(row["learning_rate"]) == 0.0
        else:
            assert row["phase"] == "stable" and row["budget"] == ""
            assert float(row["learning_rate"]) == pytest.approx(1e-3)
    # The stable runs are evaluated every --eval_every steps to their last
    # decay start (BERT's: 18 of 20, the last 10% rounded to the 2-step
    # loop).
    assert sorted(int(r["step"]) for r in evaluations
                  if r["model"] == "bert" and r["seed"] == "1"
                  and r["phase"] == "stable") == [4, 8, 12, 16, 18]
    finetunes = _read_csv(os.path.join(config.output_dir, "finetuning.csv"))
    assert tuple(finetunes[0]) == study_report.FINETUNE_COLUMNS
    assert {r["model"] for r in finetunes} == {*study.DEFAULT_MODELS,
                                               "random_init"}
    assert all(0 <= float(r["dev_accuracy"]) <= 1 for r in finetunes)
    # The zero-shot probe is read from each annealed run at BERT's budgets'
    # compute (for the probe plot), the random model once.
    for model in study.DEFAULT_MODELS:
        for seed in ("1", "2"):
            annealed = sorted(
                float(r["train_flops"]) for r in evaluations
                if r["model"] == model and r["seed"] == seed
                and r["phase"] == "decay"
                and int(r["budget"]) in budgets[model])
            read = sorted(float(r["train_flops"]) for r in finetunes
                          if r["model"] == model
                          and r["pretrain_seed"] == seed)
            assert read == pytest.approx(annealed) and len(read) == 2
    assert [float(r["train_flops"]) for r in finetunes
            if r["model"] == "random_init"] == [0.0]
    # The table's probe accuracy is the readings at BERT's largest compute.
    for entry in result.table:
        finals = [r for r in finetunes if r["model"] == entry["model"]]
        largest = max(float(r["train_flops"]) for r in finals)
        assert entry["probe"]["accuracy"].mean == pytest.approx(np.mean([
            float(r["dev_accuracy"]) for r in finals
            if float(r["train_flops"]) == largest]), abs=1e-4)
    assert len(result.table) == len(study.DEFAULT_MODELS)
    with open(os.path.join(config.runs_dir, "timings.json")) as f:
        timings = json.load(f)  # the summary's minutes count the data too
    assert timings["preparing: data, probe, floor, checks"] > 0
    summary = result.summary
    assert "python tools/study.py --quick" in summary
    assert "| randomly initialised encoder" in summary
    assert "| majority class" in summary


@pytest.mark.slow  # the whole pipeline: about 2.5 minutes
def test_rerun_skips_what_is_done_and_resumes_an_interrupted_run(
        quick_study):
    config, first = quick_study
    run = os.path.join(config.runs_dir, "pretrain", "bert-seed1",
                       "decay-20")
    # Interrupt bert-seed1's decay to 20 before its end: the step-20
    # checkpoint, the row and the done mark are gone; its fork is left.
    rows = [line for line in open(os.path.join(run, "evaluations.jsonl"))]
    assert [json.loads(line)["step"] for line in rows] == [20]
    before = checkpoint_values(os.path.join(run, "ckpt-20"))
    with open(os.path.join(run, "evaluations.jsonl"), "w") as f:
        f.write("")
    os.remove(os.path.join(run, "study_done.json"))
    for name in os.listdir(run):
        if name.startswith("ckpt-20"):
            os.remove(os.path.join(run, name))
    with open(os.path.join(run, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckpt-18"\n'
                'all_model_checkpoint_paths: "ckpt-18"\n')
    other = os.path.join(config.runs_dir, "pretrain", "token_drop-seed1",
                         "evaluations.jsonl")
    untouched = open(other).read()

    second = study.run_study(config)

    resumed = [line for line in open(os.path.join(run, "evaluations.jsonl"))]
    assert [json.loads(line)["step"] for line in resumed] == [20]
    assert os.path.exists(os.path.join(run, "study_done.json"))
    # Exact resumes: the redone decay ends where the first one did.
    assert_same_values(checkpoint_values(os.path.join(run, "ckpt-20")), before)
    assert json.loads(resumed[0])["val_mlm_loss"] == pytest.approx(
        json.loads(rows[0])["val_mlm_loss"], rel=1e-5)
    assert open(other).read() == untouched  # finished runs are not retrained
    assert [e["model"] for e in second.table] == [e["model"]
                                                  for e in first.table]


@pytest.mark.slow  # the whole pipeline: about 2.5 minutes
def test_a_decay_branch_equals_the_straight_run_with_its_schedule(
        quick_study, tmp_path):
    """bert-seed1 annealed at 20 (the stable run to 18, its checkpoint
    forked, decayed to 20 in another process state) against one run trained
    straight to 20 with the branch's schedule throughout."""
    config, _ = quick_study
    config = study.resolve_config(config)
    info = dataset_info.DatasetInfo.from_manifest(os.path.join(
        config.runs_dir, "data", dataset_info.MANIFEST_FILENAME))
    spec = study.model_specs(config)[0]
    schedule = study.wsd_schedule(config)
    params = study_runs.make_params(
        spec, train_steps=20, eval_every=20, loop_steps=config.loop_steps,
        optimizer_config=schedule.branch(20), seed=1, data=info,
        encoder_overrides=study_prepare.QUICK_ENCODER)
    straight = str(tmp_path / "straight")
    training.train(params, mode="train", model_dir=straight,
                   latest=study_runs.resolve(params, straight))
    branch = os.path.join(config.runs_dir, "pretrain", "bert-seed1",
                          "decay-20", "ckpt-20")
    assert_same_values(checkpoint_values(os.path.join(straight, "ckpt-20")),
                 checkpoint_values(branch))


@pytest.mark.slow  # the whole pipeline, one seed, twice: about 3 minutes
def test_a_lower_reach_from_adds_branches_without_retraining(tmp_path,
                                                             caplog):
    """A quick study with one seed, then again with --reach_from=0.9:
    token dropping gets budgets whose decay starts its stable run passed
    without keeping a checkpoint. The stable run is not retrained; each new
    branch starts from an earlier fork, and equals a run trained straight
    to its budget with its schedule."""
    runs = str(tmp_path / "runs")
    config = study.StudyConfig(output_dir=str(tmp_path / "out"),
                               runs_dir=runs, quick=True, seeds=1)
    study.run_study(config)
    stable = os.path.join(runs, "pretrain", "token_drop-seed1")
    before = sorted(os.listdir(stable))
    rows = open(os.path.join(stable, "evaluations.jsonl")).read()
    lower = dataclasses.replace(config, reach_from=0.9)
    with caplog.at_level("INFO", logger="absl"):
        study.run_study(lower)

    assert open(os.path.join(stable, "evaluations.jsonl")).read() == rows
    new = sorted(set(os.listdir(stable)) - set(before))
    assert new and all(n.startswith("decay-") for n in new), new
    lower = study.resolve_config(lower)
    schedule = study.wsd_schedule(lower)
    info = dataset_info.DatasetInfo.from_manifest(os.path.join(
        runs, "data", dataset_info.MANIFEST_FILENAME))
    spec = study.model_specs(lower)[1]
    assert spec.name == "token_drop"
    budget = int(new[0][len("decay-"):])
    start = schedule.decay_start(budget)
    assert not annealing.has_fork(stable, start)
    fork = annealing.latest_fork(stable, start)
    # The progress line counts the steps the branch trains from its fork.
    assert (f"decaying token_drop seed 1 to {budget} ({budget - fork} "
            "steps).") in caplog.text
    params = study_runs.make_params(
        spec, train_steps=budget, eval_every=budget,
        loop_steps=lower.loop_steps, optimizer_config=schedule.branch(budget),
        seed=1, data=info, encoder_overrides=study_prepare.QUICK_ENCODER)
    straight = str(tmp_path / "straight")
    training.train(params, mode="train", model_dir=straight,
                   latest=study_runs.resolve(params, straight))
    assert_same_values(
        checkpoint_values(os.path.join(straight, f"ckpt-{budget}")),
        checkpoint_values(os.path.join(stable, new[0], f"ckpt-{budget}")))


@pytest.mark.slow  # the whole pipeline: about 2.5 minutes
def test_probe_sentences_are_held_out_of_pretraining(quick_study):
    config, _ = quick_study
    corpus = os.path.join(config.runs_dir, "corpus")
    pretrain = set()
    for name in os.listdir(corpus):
        if name.startswith("pretrain-"):
            with open(os.path.join(corpus, name)) as f:
                pretrain.update(line.strip() for line in f)
    with open(os.path.join(corpus, "heldout.txt")) as f:
        heldout = {line.strip() for line in f}
    real, every = [], []
    for split in ("train.tsv", "dev.tsv"):
        with open(os.path.join(config.runs_dir, "probe", split)) as f:
            rows = [line.rstrip("\n").split("\t") for line in f]
        # The word-order task: label 1 is a sentence as written, label 0
        # the same sentence with two adjacent words swapped.
        real += [sentence for _, label, _, sentence in rows if label == "1"]
        every += [sentence for _, _, _, sentence in rows]
    assert len(real) >= 100 and len(every) >= 200
    with open(os.path.join(config.runs_dir, "data", "manifest.json")) as f:
        sources = json.load(f)["source"]["files"]
    assert sources and all(os.path.basename(f["path"]).startswith("pretrain-")
                           for f in sources)
    # The records are built from the pretraining files only, and no probe
    # sentence is in them; every one comes from a held-out document.
    assert not set(every) & pretrain
    assert set(real) <= heldout


@pytest.mark.slow  # the whole pipeline: about 2.5 minutes
def test_another_probe_gets_its_own_finetunings_and_a_rerun_adds_no_time(
        quick_study):
    # Last in the file: it leaves the acceptability probe in runs/probe.
    config, _ = quick_study
    finetune_dir = os.path.join(config.runs_dir, "finetune")
    (cloze_id,) = os.listdir(finetune_dir)
    other = dataclasses.replace(config, probe="acceptability",
                                output_dir=config.output_dir + "_acc")
    study.run_study(other)
    acceptability_id = (set(os.listdir(finetune_dir)) - {cloze_id}).pop()
    # The cloze probe is read from each model x 2 seeds at BERT's 2
    # budgets' compute, the fine-tuned one at the largest (1 fine-tuning
    # seed each); and the random encoder once.
    for probe_id, budgets in ((cloze_id, 2), (acceptability_id, 1)):
        assert len(os.listdir(os.path.join(finetune_dir, probe_id))) == (
            len(study.DEFAULT_MODELS) * 2 * budgets + 1)
    with open(os.path.join(other.runs_dir, "probe", "probe.json")) as f:
        assert json.load(f)["task"] == "acceptability"
    timings_path = os.path.join(config.runs_dir, "timings.json")
    before = open(timings_path).read()
    study.run_study(other)  # all done: nothing measured, nothing added
    assert open(timings_path).read() == before


def test_a_finished_runs_flops_are_counted_stage_by_stage(tmp_path):
    # A run recorded as steps x the average step (as the study did before):
    # its rows come back with each stage's steps counted, so a schedule that
    # drops nothing for the first 10% is charged BERT's cost there.
    from official.core import exp_factory
    import token_dropping  # noqa: F401  (registers the experiments)
    from token_dropping.model import flops
    from token_dropping.study import runs as study_runs
    params = exp_factory.get_exp_config("token_drop_bert_tiny_full_ends")
    params.trainer.train_steps = 1000
    average = flops.config_train_flops(params.task)
    with open(tmp_path / study_runs.EVALUATIONS, "w") as f:
        for step in (100, 500, 1000):
            f.write(json.dumps(dict(step=step, train_flops=step * average,
                                    val_mlm_loss=6.0)) + "\n")
    (tmp_path / study_runs.DONE).write_text('{"steps": 1000}')
    spec = study_runs.ModelSpec("full_ends", "token_drop_bert_tiny_full_ends",
                                "full ends")
    rows = study_runs.pretrain(spec, 1, params, str(tmp_path), None, 7.0)
    bert = flops.config_train_flops(
        exp_factory.get_exp_config("bert_tiny").task)
    vanilla = flops.config_train_flops(
        exp_factory.get_exp_config("token_drop_bert_tiny").task)
    assert [r["train_flops"] for r in rows] == pytest.approx(
        [100 * bert, 100 * bert + 400 * vanilla, 200 * bert + 800 * vanilla])
    assert rows[0]["train_flops"] > 100 * average * 1.1


def test_a_run_started_again_from_step_0_is_a_new_run(tmp_path,
                                                     monkeypatch):
    # A stable run stopped before its first checkpoint, with a record, a
    # kept fork and a finished branch of other settings: started again, it
    # records this run's settings under a new id, and the fork and branch
    # of weights that are gone are removed (the finished branch was reused
    # as this run's).
    from official.core import exp_factory
    import token_dropping  # noqa: F401  (registers the experiments)
    from token_dropping.study import annealing
    from token_dropping.study import records as study_records
    from token_dropping.study import runs as study_runs
    from token_dropping.train import driver as training
    model_dir = str(tmp_path)
    study_records.write(model_dir, dict(settings={"lr": 0.002}, run_id="old"))
    fork = annealing.fork_path(model_dir, 6)
    os.makedirs(os.path.dirname(fork))
    with open(fork + ".json", "w") as f:
        json.dump(dict(step=6, wall_seconds=1.0), f)
    assert annealing.kept_forks(model_dir) == [6]
    branch = annealing.branch_dir(model_dir, 8)  # finished, from the fork
    os.makedirs(branch)
    with open(os.path.join(branch, study_runs.DONE), "w") as f:
        json.dump(dict(steps=8), f)
    assert study_runs.is_done(branch, 8)

    class Stopped(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stopped  # killed in the first loop, again
    monkeypatch.setattr(training, "train", stop)
    params = exp_factory.get_exp_config("bert_tiny")
    params.trainer.train_steps = 10
    spec = study_runs.ModelSpec("bert", "bert_tiny", "BERT")
    with pytest.raises(Stopped):
        study_runs.pretrain(spec, 1, params, model_dir, None, 7.0,
                            settings={"lr": 0.001},
                            phase=study_runs.Phase(None, forks=(6,)))
    record = study_records.read(model_dir)
    assert record["settings"] == {"lr": 0.001}
    assert record["run_id"] != "old"
    assert annealing.kept_forks(model_dir) == []
    assert not os.path.exists(branch)


def test_the_summary_minutes_count_only_this_studys_steps(tmp_path):
    # A runs_dir shared with an earlier study holds that study's timings too.
    path = tmp_path / "timings.json"
    path.write_text(json.dumps({
        study_timing.PREPARING: 60.0, "pretraining bert seed 1": 120.0,
        "pretraining other seed 1": 600.0}))
    progress = study_timing.StudyProgress(2.0, str(path))
    progress.finished("pretraining bert seed 1", 1.0, measured=False)
    progress.finished("pretraining new seed 1", 1.0, measured=True)
    new = json.loads(path.read_text())["pretraining new seed 1"]
    assert progress.minutes == pytest.approx((60.0 + 120.0 + new) / 60)


class _Prepared(Exception):
    """Raised instead of building data: the checks before it have passed."""


def _stop_at_data(monkeypatch):
    seen = []

    def prepare(config):
        seen.append(config)
        raise _Prepared()
    monkeypatch.setattr(study.study_prepare, "prepare_data", prepare)
    return seen


def test_explicit_steps_and_seeds_win_over_quick(tmp_path, monkeypatch):
    seen = _stop_at_data(monkeypatch)
    config = study.StudyConfig(output_dir=str(tmp_path / "out"),
                               runs_dir=str(tmp_path / "runs"), quick=True,
                               seeds=1, budgets=(20, 40), eval_every=20,
                               finetune_epochs=2)
    with pytest.raises(_Prepared):
        study.run_study(config)
    (used,) = seen
    assert (used.seeds, used.budgets, used.eval_every,
            used.finetune_epochs) == (1, (20, 40), 20, 2)
    # What was not given comes from --quick, not from the full study.
    assert (used.warmup_steps, used.finetune_seeds) == (2, 1)
    # An explicit value that does not fit --quick's others is one line.
    config = dataclasses.replace(config, eval_every=5)
    with pytest.raises(UserError, match=re.escape(
            "--eval_every=5 is not a multiple of the stable runs' loop of 2")):
        study.run_study(config)


def test_models_must_be_pretraining_with_one_bert(tmp_path, monkeypatch):
    _stop_at_data(monkeypatch)
    base = study.StudyConfig(output_dir=str(tmp_path / "out"),
                             runs_dir=str(tmp_path / "runs"), quick=True)
    for models, message in [
            # A fine-tuning experiment, not a pretraining one.
            (("bert", "bert/sentence_prediction"),
             "--models: 'bert/sentence_prediction' is "),
            (("token_drop", "token_drop_random"),
             "has 0 BERT models (none); the study needs exactly one"),
            (("bert", "bert_tiny"), "has 2 BERT models (bert, bert_tiny)"),
            # bert at the study's size (mini) is bert_mini.
            (("bert", "bert_mini"), "--models: 'bert_mini' is the model "
             "'bert' under another name")]:
        with pytest.raises(UserError, match=re.escape(message)) as e:
            study.run_study(dataclasses.replace(base, models=models))
        assert "\n" not in str(e.value)


def test_the_baseline_is_bert_whatever_the_order():
    config = study.StudyConfig(models=("token_drop", "bert",
                                       "token_drop_random"))
    specs = study.model_specs(config)
    assert [s.name for s in specs] == ["bert", "token_drop",
                                       "token_drop_random"]
    assert specs[0].label == "BERT (baseline)" and specs[0].is_baseline
    assert not any(s.is_baseline for s in specs[1:])


@pytest.mark.parametrize("variant", ["random_ltd", "full_ends"])
def test_schedule_variants_fit_quick_shapes(variant):
    import types
    from token_dropping.study import runs as study_runs
    experiment = f"token_drop_bert_mini_{variant}"
    spec = study_runs.ModelSpec(variant, experiment, variant)
    data = types.SimpleNamespace(
        train_input_path="train-*", validation_input_path="validation-*",
        **study_prepare._QUICK_DATA)
    params = study_runs.make_params(
        spec, train_steps=24, eval_every=12, loop_steps=2,
        optimizer_config=WarmupStableDecay(1e-3, 2).stable(), seed=1,
        data=data, encoder_overrides=study_prepare.QUICK_ENCODER)
    stages = [(s.start_fraction, s.token_keep_k)
              for s in params.task.model.encoder.any.keep_k_schedule]
    # The experiment's stages (sequences of 128, keep 64) mapped onto
    # --quick's (32, keep 16): the whole sequence stays the whole sequence,
    # token_keep_k stays token_keep_k, the boundaries stay.
    if variant == "full_ends":
        assert stages == [(0.0, 32), (0.1, 16), (0.9, 32)]
    else:
        assert stages[0] == (0.0, 16) and stages[-1] == (0.875, 32)
        assert len(stages) == 8
        keeps = [k for _, k in stages]
        assert keeps == sorted(keeps)
    assert study_runs.flops_per_step(params) > 0


def test_the_models_are_checked_at_the_shape_of_data_dir_records(tmp_path):
    """Records longer than the experiment's (here 256 against mini's 128):
    keeping 192 fits them, so the check before the data step (at the
    shape the study will train at) must not refuse it."""
    from data_testdata import bert_format, small_config, tiny_documents
    from data_testdata import write_text
    from token_dropping.data import build_pretraining_data
    from token_dropping.study import jobs as study_jobs
    corpus = write_text(tmp_path / "docs.txt",
                        bert_format(tiny_documents(40, seed=3)))
    info = build_pretraining_data(small_config(corpus, seq_length=256),
                                  str(tmp_path / "data"))
    config = study.StudyConfig(data_dir=str(tmp_path / "data"),
                               sweep=("token_keep_k=192",))
    shape = study_prepare.data_shape(config)
    assert shape == dict(seq_length=256, max_predictions_per_seq=5,
                         vocab_size=info.vocab_size)
    specs = study.model_specs(config)
    schedule = WarmupStableDecay(learning_rate=1e-3, warmup_steps=10,
                                 decay_fraction=0.2)
    study_jobs.check_models(specs, lambda spec, data: study_runs.make_params(
        spec, train_steps=100, eval_every=50, loop_steps=10,
        optimizer_config=schedule.stable(), seed=1, data=data), shape)
    with pytest.raises(UserError, match="token_keep_k=192 exceeds task."
                       "train_data.seq_length=128"):
        study_jobs.check_models(specs, lambda spec, data: study_runs.make_params(
            spec, train_steps=100, eval_every=50, loop_steps=10,
            optimizer_config=schedule.stable(), seed=1, data=data))

"""A study rerun into the same runs dir reuses only what its settings made.

One tiny study (--quick shapes, BERT and token dropping, one seed each, one
fine-tuning seed), then reruns into its runs dir: with another learning rate,
with the models in the other order, after a stop during an evaluation, and
after its BERT run was deleted. The tests run in file order.
"""

import dataclasses
import glob
import json
import os
import re
import shutil

import pytest

from token_dropping.common.errors import UserError
from token_dropping.study import driver as study


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("reuse")
    config = study.StudyConfig(
        output_dir=str(root / "out"), runs_dir=str(root / "runs"),
        quick=True, models=("bert", "token_drop"), seeds=1,
        finetune_seeds=1)
    return config, study.run_study(config)


def _lines(path):
    with open(path) as f:
        return f.readlines()


def _steps(run_dir):
    return [json.loads(line)["step"]
            for line in _lines(os.path.join(run_dir, "evaluations.jsonl"))]


@pytest.mark.slow  # a whole tiny study, then reruns: several minutes
def test_another_learning_rate_is_refused_in_one_line(tiny):
    config, _ = tiny
    before = open(os.path.join(config.output_dir, "evaluations.csv")).read()
    other = dataclasses.replace(config, learning_rate=0.01,
                                output_dir=config.output_dir + "_lr")
    run = os.path.join(config.runs_dir, "pretrain", "bert-seed1")
    key = "trainer.optimizer_config.learning_rate.constant.learning_rate"
    with pytest.raises(UserError, match=re.escape(
            f"bert (seed 1): {run} was trained with {key}=0.001, this study "
            f"asks for {key}=0.01; use another --runs_dir, or delete {run} "
            "to retrain it")) as e:
        study.run_study(other)
    assert "\n" not in str(e.value)
    assert not os.path.exists(other.output_dir)
    assert open(os.path.join(config.output_dir,
                             "evaluations.csv")).read() == before


@pytest.mark.slow
def test_finished_branches_of_another_decay_are_refused_in_one_line(tiny):
    """A decay branch's schedule is not its stable run's: another
    --decay_fraction leaves the stable run's settings as they were, and its
    finished branches must not be reused under the new label."""
    config, _ = tiny
    other = dataclasses.replace(config, decay_fraction=0.2,
                                output_dir=config.output_dir + "_decay")
    # Decay to 10 (1 step at 0.1, aligned to the 2-step loop) is 2 steps at
    # either fraction; decay to 20 is 2 steps, then 4.
    branch = os.path.join(config.runs_dir, "pretrain", "bert-seed1",
                          "decay-20")
    key = "trainer.optimizer_config.learning_rate.power_linear."
    with pytest.raises(UserError, match=re.escape(
            f"bert (seed 1, decay to 20): {branch} was trained with "
            f"{key}linear_decay_fraction=0.1, this study asks for "
            f"{key}linear_decay_fraction=0.2; use another --runs_dir, or "
            f"delete {branch} to retrain it")) as e:
        study.run_study(other)
    assert "\n" not in str(e.value)
    assert not os.path.exists(other.output_dir)


@pytest.mark.slow
def test_the_models_in_another_order_are_the_same_study(tiny):
    config, first = tiny
    runs = os.path.join(config.runs_dir, "pretrain")
    before = {name: _lines(os.path.join(runs, name, "evaluations.jsonl"))
              for name in os.listdir(runs)}
    second = study.run_study(dataclasses.replace(
        config, models=("token_drop", "bert"),
        output_dir=config.output_dir + "_order"))
    # BERT is the baseline, annealed at 10 and 20 steps and labelled so;
    # token dropping keeps its budgets (equal compute), and nothing was
    # retrained.
    by_model = {e["model"]: e for e in second.table}
    assert "comparisons" not in by_model["bert"]  # it is the baseline
    assert "comparisons" in by_model["token_drop"]
    assert by_model["bert"]["budgets"] == [10, 20]
    assert by_model["bert"]["label"] == "BERT (baseline)"
    assert by_model["token_drop"]["final_steps"] == first.table[1][
        "final_steps"] > 20
    assert by_model["token_drop"]["loss"].mean == first.table[1][
        "loss"].mean
    assert {name: _lines(os.path.join(runs, name, "evaluations.jsonl"))
            for name in os.listdir(runs)} == before


def _stop_at(run_dir, step, keep_checkpoint_rows_below):
    """What a run stopped during the evaluation at `step` leaves: the
    checkpoint at `step` (the later ones gone), rows below it only."""
    rows = [line for line in _lines(os.path.join(run_dir,
                                                 "evaluations.jsonl"))
            if json.loads(line)["step"] < keep_checkpoint_rows_below]
    with open(os.path.join(run_dir, "evaluations.jsonl"), "w") as f:
        f.writelines(rows)
    os.remove(os.path.join(run_dir, "study_done.json"))
    for path in glob.glob(os.path.join(run_dir, "ckpt-*")):
        if int(re.search(r"ckpt-(\d+)", path).group(1)) > step:
            os.remove(path)
    with open(os.path.join(run_dir, "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "ckpt-{step}"\n'
                f'all_model_checkpoint_paths: "ckpt-{step}"\n')
    return rows


@pytest.mark.slow
def test_an_evaluation_missed_by_a_stop_is_measured_on_resume(tiny):
    config, _ = tiny
    # The stable run, evaluated every 4 steps to its last decay start;
    # checkpointed at the first loop's end (step 2) and every 4 steps after.
    run = os.path.join(config.runs_dir, "pretrain", "token_drop-seed1")
    steps = _steps(run)
    last = steps[-1]
    assert steps[:5] == [4, 8, 12, 16, 20]
    (between,) = [int(re.search(r"ckpt-(\d+)\.index", p).group(1))
                  for p in glob.glob(os.path.join(run, "ckpt-*.index"))
                  if not p.endswith(f"ckpt-{last}.index")]
    assert between % 4 == 2
    # Stopped after the checkpoint between two evaluations: the resumed run
    # evaluates at the next multiple of 4, as the uninterrupted one did.
    kept = _stop_at(run, between, keep_checkpoint_rows_below=between)
    study.run_study(config)
    assert _steps(run) == steps
    assert _lines(os.path.join(run, "evaluations.jsonl"))[0] == kept[0]
    # Stopped during the final evaluation, after the last checkpoint.
    kept = _stop_at(run, last, keep_checkpoint_rows_below=last)
    result = study.run_study(config)
    assert _steps(run) == steps
    assert _lines(os.path.join(run, "evaluations.jsonl"))[:-1] == kept
    assert os.path.exists(os.path.join(run, "study_done.json"))
    assert len(result.table) == 2


@pytest.mark.slow
def test_a_deleted_run_is_retrained_with_a_new_export_and_reading(tiny):
    # What the study's message says to do with a run of other settings.
    # The default probe (cloze) is read, not fine-tuned: one result per
    # pretraining run, named without a fine-tuning seed.
    config, _ = tiny
    run = os.path.join(config.runs_dir, "pretrain", "bert-seed1")
    (probe_dir,) = glob.glob(os.path.join(config.runs_dir, "finetune", "*"))
    token_drop_result = os.path.join(probe_dir, "token_drop-seed1",
                                     "result.json")
    untouched = os.path.getmtime(token_drop_result)
    # The probe is also read at BERT's smaller budget's compute.
    early = os.path.join(probe_dir, "bert-seed1-at-bert-10", "result.json")
    assert os.path.exists(early)
    shutil.rmtree(run)
    study.run_study(config)
    retrained = os.path.getmtime(os.path.join(run, "decay-20",
                                              "ckpt-20.index"))
    export = os.path.join(config.runs_dir, "export", "bert-seed1")
    # The export and the reading are of the new run, made after it.
    assert os.path.getmtime(os.path.join(export, "encoder.yaml")) > retrained
    result = os.path.join(probe_dir, "bert-seed1", "result.json")
    assert os.path.getmtime(result) > retrained
    assert os.path.getmtime(early) > os.path.getmtime(
        os.path.join(run, "decay-10", "ckpt-10.index"))
    # What depends on other runs is reused.
    assert os.path.getmtime(token_drop_result) == untouched

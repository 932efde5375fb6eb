"""--carry_dir: a study's finished results travel without checkpoints.

`keep` and `restore` on hand-made run directories, then a quick study kept
in a carry dir and rerun on a fresh runs dir: it trains nothing and writes
the same tables, refuses other settings in one line, and trains again only a
unit whose list is missing, to the same numbers.
"""

import csv
import dataclasses
import glob
import json
import os
import re
import shutil

import pytest

from token_dropping.common.errors import UserError
from token_dropping.study import carry
from token_dropping.study import driver as study


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _fake_unit(runs, model, seed):
    """A finished (model, seed) as the study leaves it, checkpoints too."""
    stable = os.path.join(runs, "pretrain", f"{model}-seed{seed}")
    branch = os.path.join(stable, "decay-20")
    reading = os.path.join(runs, "finetune", "abc", f"{model}-seed{seed}")
    for run in (stable, branch):
        _write(os.path.join(run, "study_settings.json"),
               json.dumps(dict(settings=dict(run=run), run_id="carried")))
        _write(os.path.join(run, "evaluations.jsonl"), '{"step": 20}\n')
        _write(os.path.join(run, "study_done.json"), '{"steps": 20}')
        _write(os.path.join(run, "ckpt-20.index"), "weights")
    _write(os.path.join(stable, "forks", "ckpt-18.json"), "{}")
    for name in ("study_settings.json", "dev_predictions.tsv", "result.json"):
        _write(os.path.join(reading, name), name)
    _write(os.path.join(reading, "run", "ckpt-5.index"), "weights")
    return [stable, branch], [reading]


def _files(root):
    return sorted(os.path.relpath(p, root) for p in glob.glob(
        os.path.join(root, "**"), recursive=True) if os.path.isfile(p))


def test_keep_then_restore_copies_results_and_no_checkpoint(tmp_path):
    runs, carried, fresh = (str(tmp_path / d) for d in ("runs", "carry",
                                                        "fresh"))
    run_dirs, reading_dirs = _fake_unit(runs, "bert", 1)
    _write(os.path.join(runs, "timings.json"),
           '{"pretraining bert seed 1": 1.0}')
    carry.keep(carried, runs, "bert", 1, run_dirs, reading_dirs)

    assert carry.restore(carried, fresh, [("bert", 1), ("bert", 2)]) == [
        ("bert", 1)]
    assert not [n for n in os.listdir(fresh) if n.startswith(".restoring")]
    restored = _files(fresh)
    assert restored == sorted(
        f for f in _files(runs) if "ckpt-" not in f), restored
    for name in restored:
        read = json.load if name == "timings.json" else lambda f: f.read()
        with open(os.path.join(fresh, name)) as new, open(
                os.path.join(runs, name)) as old:
            assert read(new) == read(old), name
    with open(os.path.join(carried, "units", "bert-seed1.json")) as f:
        listed = json.load(f)["files"]
    # Each run's done marker and each reading's result come after the rest
    # of its directory's files (a restore stopped half way is unfinished).
    for done in ("study_done.json", "result.json"):
        for i, name in enumerate(listed):
            if name.endswith(done):
                folder = os.path.dirname(name)
                assert all(os.path.dirname(n) != folder
                           for n in listed[i + 1:]), listed


def test_restore_skips_a_unit_without_its_list_or_already_there(tmp_path,
                                                                caplog):
    runs, carried, fresh = (str(tmp_path / d) for d in ("runs", "carry",
                                                        "fresh"))
    for seed in (1, 2, 3):
        carry.keep(carried, runs, "bert", seed, *_fake_unit(runs, "bert",
                                                            seed))
    os.remove(os.path.join(carried, "units", "bert-seed2.json"))
    own = os.path.join(fresh, "pretrain", "bert-seed3", "study_settings.json")
    _write(own, '{"settings": {}, "run_id": "made here"}')

    with caplog.at_level("WARNING", logger="absl"):
        assert carry.restore(carried, fresh, [("bert", 1), ("bert", 2),
                                              ("bert", 3)]) == [("bert", 1)]
    assert not os.path.exists(os.path.join(fresh, "pretrain", "bert-seed2"))
    assert open(own).read() == '{"settings": {}, "run_id": "made here"}'
    # Its own run replaces the carried one when it finishes: said once.
    assert caplog.text.count("has its own run of bert-seed3") == 1
    assert not os.path.exists(os.path.join(
        fresh, "pretrain", "bert-seed3", "study_done.json"))


def test_a_listed_file_missing_from_the_carry_is_one_line(tmp_path):
    """A carry dir copied in part (a file git ignored, say) restores none of
    the unit, and says which file."""
    runs, carried, fresh = (str(tmp_path / d) for d in ("runs", "carry",
                                                        "fresh"))
    carry.keep(carried, runs, "bert", 1, *_fake_unit(runs, "bert", 1))
    lost = os.path.join(carried, "results", "pretrain", "bert-seed1",
                        "decay-20", "evaluations.jsonl")
    os.remove(lost)
    with pytest.raises(UserError, match=re.escape(
            "bert-seed1 lists results/pretrain/bert-seed1/decay-20/"
            "evaluations.jsonl, which is missing (so are 0 more of the 9 files "
            "it lists)")) as e:
        carry.restore(carried, fresh, [("bert", 1)])
    assert "\n" not in str(e.value)
    assert not os.path.exists(fresh)


def test_an_interrupted_restore_is_finished_by_the_next(tmp_path):
    runs, carried, fresh = (str(tmp_path / d) for d in ("runs", "carry",
                                                        "fresh"))
    carry.keep(carried, runs, "bert", 1, *_fake_unit(runs, "bert", 1))
    carry.restore(carried, fresh, [("bert", 1)])
    # As if stopped after its first files: the marker is still there.
    done = os.path.join(fresh, "pretrain", "bert-seed1", "study_done.json")
    os.remove(done)
    shutil.rmtree(os.path.join(fresh, "finetune"))
    _write(os.path.join(fresh, ".restoring-bert-seed1"), "")

    assert carry.restore(carried, fresh, [("bert", 1)]) == [("bert", 1)]
    assert os.path.exists(done)
    assert not os.path.exists(os.path.join(fresh, ".restoring-bert-seed1"))
    assert _files(fresh) == sorted(f for f in _files(runs) if "ckpt-" not in f)


def test_carried_timings_join_the_runs_dirs_own(tmp_path):
    runs, carried, fresh = (str(tmp_path / d) for d in ("runs", "carry",
                                                        "fresh"))
    """Only the restored units' steps join: another unit's time (a run of
    this runs_dir, still training) would count twice."""
    _write(os.path.join(runs, "timings.json"), json.dumps({
        "pretraining bert seed 1": 60.0, "decaying bert seed 1 to 20": 6.0,
        "reading the probe from bert seed 1 at BERT's 10-step compute": 1.0,
        "pretraining bert seed 10": 7.0, "pretraining bert seed 2": 5.0,
        "preparing: data, probe, floor, checks": 9.0}))
    carry.keep(carried, runs, "bert", 1, *_fake_unit(runs, "bert", 1))
    _write(os.path.join(fresh, "timings.json"), json.dumps({
        "pretraining bert seed 2": 30.0, "decaying bert seed 1 to 20": 3.0}))
    carry.restore(carried, fresh, [("bert", 1), ("bert", 2)])
    with open(os.path.join(fresh, "timings.json")) as f:
        assert json.load(f) == {
            "pretraining bert seed 1": 60.0,
            "decaying bert seed 1 to 20": 3.0,  # its own, kept
            "reading the probe from bert seed 1 at BERT's 10-step compute":
                1.0,
            "pretraining bert seed 2": 30.0}


def test_a_marker_without_its_list_is_removed(tmp_path, caplog):
    runs, carried, fresh = (str(tmp_path / d) for d in ("runs", "carry",
                                                        "fresh"))
    carry.keep(carried, runs, "bert", 1, *_fake_unit(runs, "bert", 1))
    _write(os.path.join(fresh, ".restoring-bert-seed1"), "")
    os.remove(os.path.join(carried, "units", "bert-seed1.json"))
    with caplog.at_level("WARNING", logger="absl"):
        assert carry.restore(carried, fresh, [("bert", 1)]) == []
    assert not os.path.exists(os.path.join(fresh, ".restoring-bert-seed1"))
    assert "restored in part from a carry dir that no longer lists it" in (
        caplog.text)


def test_the_committed_carry_dirs_restore_whole(tmp_path):
    """What the repository carries (docs/*/carried) restores every unit it
    lists: no listed file left out of the commit."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "..", "docs")
    carried = sorted(glob.glob(os.path.join(root, "*", "carried")))
    assert carried  # the frontier's remedies
    for number, carry_dir in enumerate(carried):
        units = [re.fullmatch(r"(.+)-seed(\d+)\.json", name).groups()
                 for name in os.listdir(os.path.join(carry_dir, "units"))]
        units = [(model, int(seed)) for model, seed in units]
        fresh = str(tmp_path / str(number))
        assert sorted(carry.restore(carry_dir, fresh, units)) == sorted(units)
        for model, seed in units:
            assert os.path.exists(os.path.join(
                fresh, "pretrain", f"{model}-seed{seed}", "study_done.json"))


def test_carry_dir_needs_a_zero_shot_probe(tmp_path):
    config = study.StudyConfig(output_dir=str(tmp_path / "out"),
                               runs_dir=str(tmp_path / "runs"),
                               probe="source", carry_dir=str(tmp_path / "c"))
    with pytest.raises(UserError, match=re.escape(
            f"--carry_dir={str(tmp_path / 'c')!r} keeps readings of a "
            "zero-shot probe (cloze)")):
        study.run_study(config)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "c").exists()


def _csv(config, name):
    with open(os.path.join(config.output_dir, name)) as f:
        return f.read()


def _refused_in_one_line(config, pattern):
    with pytest.raises(UserError, match=pattern) as e:
        study.run_study(config)
    assert "\n" not in str(e.value)


def _machine(tmp_path, number):
    path = tmp_path / f"machine{number}"
    path.mkdir()
    return path


def _numbers(config):
    with open(os.path.join(config.output_dir, "evaluations.csv")) as f:
        return [{k: v for k, v in row.items() if k != "wall_seconds"}
                for row in csv.DictReader(f)]


@pytest.mark.slow  # three quick studies of one seed: several minutes
def test_a_carried_study_continues_on_a_fresh_runs_dir(tmp_path, caplog,
                                                       monkeypatch):
    """Each study runs from its own project directory with the documented
    relative --runs_dir (a fresh machine): the records' fingerprint names
    the corpus files by the paths the command gave."""
    carried = str(tmp_path / "carry")
    first = study.StudyConfig(output_dir=str(tmp_path / "out1"),
                              runs_dir="runs", quick=True, seeds=1,
                              carry_dir=carried)
    monkeypatch.chdir(_machine(tmp_path, 1))
    study.run_study(first)
    assert sorted(os.listdir(os.path.join(carried, "units"))) == [
        "bert-seed1.json", "token_drop-seed1.json"]
    assert not [f for f in _files(carried) if "ckpt" in f]

    # A fresh machine: the same study trains nothing, exports nothing, and
    # writes the same tables.
    second = dataclasses.replace(first, output_dir=str(tmp_path / "out2"))
    monkeypatch.chdir(_machine(tmp_path, 2))
    with caplog.at_level("INFO", logger="absl"):
        study.run_study(second)
    pretraining = [line for line in caplog.messages
                   if re.match(r"study: (pretraining|decaying) .* \(\d+ "
                               r"steps\)", line)]
    assert pretraining and all(line.endswith(", already done.")
                               for line in pretraining), pretraining
    assert "study: exporting" not in caplog.text
    assert not glob.glob(os.path.join("runs", "pretrain", "**", "ckpt-*"),
                         recursive=True)
    for name in ("evaluations.csv", "finetuning.csv"):
        assert _csv(second, name) == _csv(first, name), name

    # Other settings meet the carried records: one line, nothing written.
    other = dataclasses.replace(second, learning_rate=0.01,
                                output_dir=str(tmp_path / "out_lr"))
    monkeypatch.chdir(_machine(tmp_path, 3))
    _refused_in_one_line(other, r"bert \(seed 1\): .* was trained with "
                         r"trainer.optimizer_config.* it came from "
                         r"--carry_dir=.*: use another --carry_dir")
    assert not os.path.exists(other.output_dir)

    # A larger budget needs the stable runs' checkpoints: one line, before
    # anything trains.
    larger = dataclasses.replace(second, budgets=(10, 20, 30),
                                 output_dir=str(tmp_path / "out_larger"))
    monkeypatch.chdir(_machine(tmp_path, 5))
    _refused_in_one_line(larger, r"bert \(seed 1\): runs/pretrain/bert-seed1 "
                         r"has no checkpoint, and this study trains it on to "
                         r"step \d+ \(a larger --budgets\); it came from "
                         r"--carry_dir")
    # A new branch (a lower --reach_from) needs a fork the carry has not.
    _refused_in_one_line(
        dataclasses.replace(larger, budgets=None, reach_from=0.9),
        r"token_drop \(seed 1, decay to \d+\): runs/pretrain/"
        r"token_drop-seed1 has no checkpoint to start this decay from; it "
        r"came from --carry_dir")
    # A fine-tuned probe starts from a checkpoint: refused before training,
    # also without --carry_dir on a runs_dir it filled before.
    _refused_in_one_line(
        dataclasses.replace(larger, budgets=None, carry_dir="",
                            probe="source"),
        r"bert \(seed 1\): runs/pretrain/bert-seed1 has no checkpoint, and "
        r"fine-tuning the probe starts from one; use --probe=cloze")
    assert not glob.glob(os.path.join("runs", "pretrain", "**", "ckpt-*"),
                         recursive=True)

    # A unit whose list is missing (its copy interrupted) trains again, the
    # same run: exact resumes and seeds.
    os.remove(os.path.join(carried, "units", "token_drop-seed1.json"))
    third = dataclasses.replace(first, output_dir=str(tmp_path / "out3"))
    monkeypatch.chdir(_machine(tmp_path, 4))
    caplog.clear()
    with caplog.at_level("INFO", logger="absl"):
        study.run_study(third)
    assert re.search(r"study: pretraining bert seed 1 \(\d+ steps\), "
                     r"already done\.", caplog.text)
    assert re.search(r"study: pretraining token_drop seed 1 \(\d+ steps\)\.",
                     caplog.text)
    assert os.path.exists(os.path.join(carried, "units",
                                       "token_drop-seed1.json"))
    assert _csv(third, "finetuning.csv") == _csv(first, "finetuning.csv")
    assert _numbers(third) == _numbers(first)  # but the training seconds

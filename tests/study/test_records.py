"""study/records.py: what made a study's result, and whether it is reused."""

import collections
import json

import pytest
from official.core import exp_factory

import token_dropping  # noqa: F401  (registers the experiments)
from token_dropping.common.errors import UserError
from token_dropping.study import records

Spec = collections.namedtuple("Spec", "experiment encoder")


def test_flatten_to_dotted_keys_as_json_reads_them():
    tree = {"task": {"model": {"layers": 2, "ids": (101, 102)}, "empty": {}},
            "seed": 1}
    assert records.flatten(tree) == {
        "task.model.layers": 2, "task.model.ids": [101, 102],  # a tuple: list
        "task.empty": {}, "seed": 1}


def test_first_difference_is_the_first_key_in_order_and_counts_all():
    old = {"b": 1, "a": [1, 2], "c": "x"}
    assert records.first_difference(old, dict(old)) == (None, 0)
    assert records.first_difference(old, {"b": 2, "a": (1, 2), "d": 0}) == (
        ("b", 1, 2), 3)  # a equal as JSON; b, c (now absent) and d differ
    assert records.first_difference({}, {"z": None}) == (None, 0)  # absent


def test_written_records_read_back_and_decide_reuse(tmp_path):
    directory = str(tmp_path / "bert_seed1")
    assert records.read(directory) is None
    settings = {"seed": 1, "trainer.train_steps": 10}
    record = dict(settings=settings, run_id="abc")
    records.write(directory, record)
    assert records.read(directory) == record
    with open(tmp_path / "bert_seed1" / records.SETTINGS) as f:
        assert json.load(f) == record
    assert records.is_current(directory, settings)
    assert not records.is_current(directory, dict(settings, seed=2))
    assert not records.is_current(str(tmp_path / "none"), settings)


def test_check_pretraining_refuses_other_settings_in_one_line(tmp_path):
    directory = str(tmp_path / "run")
    settings = {"seed": 1, "trainer.train_steps": 10, "task.x": "a"}
    # Nothing to reuse: a fresh run, whatever is (not) there.
    assert records.check_pretraining("bert (seed 1)", directory, settings,
                                     reused=False) is None
    with pytest.raises(UserError, match=(
            r"^bert \(seed 1\): .*run has a checkpoint but no "
            r"study_settings.json \(made by an older study\)")):
        records.check_pretraining("bert (seed 1)", directory, settings, True)
    records.write(directory, dict(settings=settings, run_id="abc"))
    assert records.check_pretraining("bert (seed 1)", directory, settings,
                                     True)["run_id"] == "abc"
    with pytest.raises(UserError) as error:
        records.check_pretraining(
            "bert (seed 1)", directory,
            dict(settings, seed=2, **{"trainer.train_steps": 20}), True)
    assert str(error.value) == (
        f"bert (seed 1): {directory} was trained with seed=1, this study "
        "asks for seed=2 (and 1 more settings); use another --runs_dir, or "
        f"delete {directory} to retrain it (its export and fine-tunings are "
        "then redone).")


def test_data_fingerprint(tmp_path):
    with_one = tmp_path / "a.json"
    with_one.write_text(json.dumps({"fingerprint": "f00d", "x": 1}))
    assert records.data_fingerprint(str(with_one)) == "f00d"
    # Without one: a hash of the content, not of its layout.
    plain, same, other = (tmp_path / n for n in ("b.json", "c.json", "d.json"))
    plain.write_text(json.dumps({"x": 1, "y": [1, 2]}))
    same.write_text(json.dumps({"y": [1, 2], "x": 1}, indent=3))
    other.write_text(json.dumps({"x": 1, "y": [2, 1]}))
    fingerprint = records.data_fingerprint(str(plain))
    assert len(fingerprint) == 64
    assert records.data_fingerprint(str(same)) == fingerprint
    assert records.data_fingerprint(str(other)) != fingerprint


def test_pretraining_settings_leave_out_paths_and_execution(tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"fingerprint": "f00d"}))
    params = exp_factory.get_exp_config("token_drop_bert_tiny")
    params.override({"task": {"train_data": {"input_path": "/data/a"}},
                     "runtime": {"num_gpus": 8}})
    settings = records.pretraining_settings(
        Spec("token_drop_bert_tiny", {"token_keep_k": 64}), 3, params,
        str(manifest))
    assert (settings["experiment"], settings["seed"],
            settings["encoder_overrides"], settings["data_fingerprint"]) == (
        "token_drop_bert_tiny", 3, {"token_keep_k": 64}, "f00d")
    assert settings["trainer.train_steps"] == params.trainer.train_steps
    assert not set(settings) & records.NOT_SETTINGS
    assert {k for k in settings if k.startswith("runtime.")} == \
        records.RUNTIME_SETTINGS


def test_the_schedule_steps_count_only_with_a_schedule():
    # The study sets keep_k_schedule_steps to a model's largest budget; a
    # larger budget must not make a run without a keep_k schedule "other".
    plain = {"task.keep_k_schedule_steps": 1564,
             "task.model.encoder.any.keep_k_schedule": [], "seed": 1}
    assert records.first_difference(
        plain, dict(plain, **{"task.keep_k_schedule_steps": 2346})) == (
            None, 0)
    stages = [{"start_fraction": 0.0, "token_keep_k": 128}]
    scheduled = dict(plain, **{"task.model.encoder.any.keep_k_schedule":
                               stages})
    assert records.first_difference(
        scheduled, dict(scheduled, **{"task.keep_k_schedule_steps": 2346})
    ) == (("task.keep_k_schedule_steps", 1564, 2346), 1)


def test_the_random_model_reading_is_redone_for_another_architecture(
        tmp_path, monkeypatch):
    # The random-model control is read from a random model of the
    # baseline's architecture: another architecture is another reading
    # (it was reused whatever the model).
    from official.core import exp_factory
    import token_dropping  # noqa: F401  (registers the experiments)
    from token_dropping.study import cloze
    from token_dropping.study import finetune as study_finetune
    from token_dropping.study import predictions as study_predictions
    calls = []

    def score(model_dir, params, glue_dir, vocab_file, dev_documents):
        calls.append(params.task.model.mlm_initializer_range)
        return study_predictions.DevPredictions(
            index=(0, 1), documents=("a", "b"), labels=(0, 1),
            predicted=(0, 0), probability=(0.5, 0.5))
    monkeypatch.setattr(cloze, "score", score)
    params = exp_factory.get_exp_config("bert_tiny")

    def read():
        return study_finetune.score_run(
            None, params, "", "", None, str(tmp_path / "random_init"),
            "probe-key", dev_documents=("a", "b"))
    assert not read().reused
    assert read().reused and len(calls) == 1
    params.task.model.mlm_initializer_range = 0.5
    assert not read().reused
    assert calls == [0.02, 0.5]

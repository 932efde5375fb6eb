"""`--sweep`: parsing, the models it makes, their configs and FLOP ratios,
and one-line refusals before anything is built."""

import itertools
import re

import pytest

from token_dropping.common.errors import UserError
from token_dropping.model import flops
from token_dropping.study import driver as study
from token_dropping.study import runs as study_runs
from token_dropping.study import sweep
from helpers import study_params
from in_process import tool_in_process


def test_parse_reads_fields_and_typed_values():
    axes = sweep.parse(["token_keep_k=32,64,96", "drop_layers=3-6,2-7",
                        "selection=random,mlm_loss",
                        "token_loss_beta=0.9"])
    assert axes == (("token_keep_k", (32, 64, 96)),
                    ("drop_layers", ((3, 6), (2, 7))),
                    ("selection", ("random", "mlm_loss")),
                    ("token_loss_beta", (0.9,)))


def test_points_are_the_product_of_the_axes_in_flag_order():
    axes = sweep.parse(["token_keep_k=32,64", "drop_layers=2-5,3-6,1-6"])
    got = sweep.points(axes)
    expected = [(k, layers) for k, layers in itertools.product(
        (32, 64), ((2, 5), (3, 6), (1, 6)))]
    assert [name for name, _ in got] == [
        f"token_keep_k={k}.drop_layers={a}-{b}" for k, (a, b) in expected]
    assert [overrides for _, overrides in got] == [
        (("token_keep_k", k), ("drop_start_layer", a), ("drop_end_layer", b))
        for k, (a, b) in expected]


def test_expand_keeps_bert_and_replaces_each_token_dropping_model():
    config = study.StudyConfig(
        models=("token_drop_random", "bert", "token_drop"),
        sweep=("token_keep_k=32,96",))
    specs = study.model_specs(config)
    assert [s.name for s in specs] == [
        "bert", "token_drop_random.token_keep_k=32",
        "token_drop_random.token_keep_k=96", "token_drop.token_keep_k=32",
        "token_drop.token_keep_k=96"]
    # The model's own overrides stay; the sweep's come after them.
    assert specs[1].encoder == (("selection", "random"),
                                ("token_keep_k", 32))
    assert specs[1].label == ("token dropping, random selection, "
                              "token_keep_k=32")
    assert specs[0].is_baseline and not any(s.is_baseline
                                            for s in specs[1:])




def test_a_sweep_point_trains_its_values_and_costs_what_flops_says():
    specs = study.model_specs(study.StudyConfig(sweep=(
        "token_keep_k=32,96", "drop_layers=2-6")))
    ratios = {}
    base = study_runs.flops_per_step(study_params(specs[0]))
    for spec in specs[1:]:
        params = study_params(spec)
        encoder = params.task.model.encoder.any
        keep = dict(spec.encoder)["token_keep_k"]
        assert (encoder.token_keep_k, encoder.drop_start_layer,
                encoder.drop_end_layer) == (keep, 2, 6)
        ratios[keep] = study_runs.flops_per_step(params) / base
        # The same ratio from the FLOP model given bert_mini's sizes by
        # hand: the sweep's values reach what the study counts.
        sizes = dict(seq_length=128, hidden_size=96, num_layers=8,
                     inner_dim=384, vocab_size=8000,
                     max_predictions_per_seq=20)
        assert ratios[keep] == pytest.approx(
            flops.train_flops(**sizes, token_keep_k=keep,
                              drop_start_layer=2, drop_end_layer=6)
            / flops.train_flops(**sizes))
    assert ratios[32] < ratios[96] < 1


@pytest.mark.parametrize("flag, message", [
    ("token_keep_k", "--sweep='token_keep_k' must be FIELD=VALUE,VALUE,..."),
    ("token_keep_k=32,", "--sweep='token_keep_k=32,' must be FIELD=VALUE"),
    ("keep=32", "--sweep='keep=32': 'keep' is not a field of the "
     "token-dropping encoder"),
    ("drop_layers=3to6", "--sweep=drop_layers: '3to6' is not a layer range"),
    ("token_keep_k=32,32", "--sweep='token_keep_k=32,32' repeats a value."),
    # The same number written twice: two points of one name and config.
    ("token_keep_k=8,+8", "--sweep='token_keep_k=8,+8' repeats a value."),
    ("drop_layers=1-7,01-7", "--sweep='drop_layers=1-7,01-7' repeats a "
     "value."),
    ("token_keep_k=[1]", "--sweep=token_keep_k: '[1]' is not a number"),
])
def test_a_bad_sweep_is_one_line_naming_it(flag, message):
    with pytest.raises(UserError) as e:
        sweep.parse([flag])
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_a_field_swept_twice_is_refused():
    for flags in (["token_keep_k=32", "token_keep_k=64"],
                  ["drop_layers=2-6", "drop_start_layer=1"]):
        with pytest.raises(UserError, match="swept twice"):
            sweep.parse(flags)


def test_the_tool_refuses_a_bad_sweep_before_anything_is_written(tmp_path):
    result = tool_in_process(
        "study.py", f"--output_dir={tmp_path / 'out'}",
        f"--runs_dir={tmp_path / 'runs'}", "--quick", "--sweep=keep=8,16")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "study.py: error: --sweep='keep=8,16': 'keep' is not a field of the "
        "token-dropping encoder (drop_layers or one of " + ", ".join(sorted(
            sweep._fields())) + ").")
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "out").exists()


def test_a_value_the_encoder_refuses_stops_the_study_naming_the_model(
        tmp_path):
    result = tool_in_process(
        "study.py", f"--output_dir={tmp_path / 'out'}",
        f"--runs_dir={tmp_path / 'runs'}", "--quick",
        "--sweep=token_keep_k=8,999")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "study.py: error: token_drop.token_keep_k=999: token_keep_k=999 "
        "exceeds task.train_data.seq_length=32; choose token_keep_k <= "
        "task.train_data.seq_length (the paper keeps half).")
    # Checked at the shape the data will have, before it is built.
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "out").exists()


def test_a_point_named_in_models_is_the_sweeps_model():
    # `--models=...,token_drop.token_keep_k=32.drop_layers=1-7` is the same
    # model (name, label, encoder) as that point of a --sweep.
    swept = study.model_specs(study.StudyConfig(sweep=(
        "token_keep_k=32", "drop_layers=1-7")))[1]
    named = study.model_specs(study.StudyConfig(models=(
        "bert", "token_drop.token_keep_k=32.drop_layers=1-7",
        "token_drop_random.token_loss_beta=0.9")))
    assert named[1] == swept
    assert named[2].encoder == (("selection", "random"),
                                ("token_loss_beta", 0.9))
    assert named[2].name == "token_drop_random.token_loss_beta=0.9"
    assert sweep.split_name("token_drop") == ("token_drop", ())


@pytest.mark.parametrize("name, message", [
    ("token_drop.keep=8", "--sweep='keep=8': 'keep' is not a field"),
    ("token_drop.token_keep_k=8,16", "--models='token_drop.token_keep_k="
     "8,16': 'token_keep_k' has 2 values; a model takes one"),
    ("bert.token_keep_k=8", "--models: 'bert.token_keep_k=8' sets "
     "token-dropping fields on BERT"),
    ("bogus.token_keep_k=8", "--models: 'bogus' is neither one of"),
    # Spelled otherwise, one model would be two models' runs and rows.
    ("token_drop.token_keep_k=+8", "--models='token_drop.token_keep_k=+8':"
     " write it token_drop.token_keep_k=8, the name its runs"),
    ("token_drop.drop_layers=01-7", "--models='token_drop.drop_layers="
     "01-7': write it token_drop.drop_layers=1-7,"),
])
def test_a_bad_point_in_models_is_one_line(tmp_path, name, message):
    config = study.StudyConfig(output_dir=str(tmp_path / "out"),
                               runs_dir=str(tmp_path / "runs"),
                               models=("bert", name))
    with pytest.raises(UserError) as e:
        study.check_config(config)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


@pytest.mark.parametrize("models", [
    ("bert", "token_drop.token_keep_k=32"),
    # Would make token_drop.token_keep_k=32 twice.
    ("bert", "token_drop", "token_drop.token_keep_k=32"),
    ("bert", "token_drop.drop_start_layer=2"),
])
def test_a_model_that_sets_a_swept_field_is_refused(tmp_path, models):
    config = study.StudyConfig(output_dir=str(tmp_path / "out"),
                               runs_dir=str(tmp_path / "runs"),
                               models=models,
                               sweep=("token_keep_k=16,32", "drop_layers=1-7"))
    with pytest.raises(UserError) as e:
        study.check_config(config)
    assert str(e.value).startswith(f"--models={models[-1]!r} sets ")
    assert str(e.value).endswith(", which --sweep sweeps; give a model "
                                 "that leaves it unset.")


def test_a_variant_that_fixes_a_swept_field_is_refused(tmp_path):
    # token_drop_random is selection=random: sweeping selection would make
    # token_drop_random.selection=mlm_loss (two selections) and
    # token_drop.selection=random (token_drop_random, again).
    config = study.StudyConfig(output_dir=str(tmp_path / "out"),
                               runs_dir=str(tmp_path / "runs"),
                               models=("bert", "token_drop",
                                       "token_drop_random"),
                               sweep=("selection=random,mlm_loss",))
    with pytest.raises(UserError, match=re.escape(
            "--models='token_drop_random' sets selection, which --sweep "
            "sweeps")):
        study.check_config(config)


@pytest.mark.parametrize("models, same", [
    (("token_drop.token_keep_k=32.drop_layers=1-7",
      "token_drop.drop_layers=1-7.token_keep_k=32"),
     "token_drop.token_keep_k=32.drop_layers=1-7"),
    (("token_drop.drop_layers=1-7",
      "token_drop.drop_start_layer=1.drop_end_layer=7"),
     "token_drop.drop_layers=1-7"),
])
def test_one_model_under_two_names_is_refused(tmp_path, models, same):
    config = study.StudyConfig(output_dir=str(tmp_path / "out"),
                               runs_dir=str(tmp_path / "runs"),
                               models=("bert",) + models)
    with pytest.raises(UserError) as e:
        study.check_config(config)
    assert str(e.value) == (f"--models: {models[1]!r} is the model {same!r} "
                            "under another name; give it once.")

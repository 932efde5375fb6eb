"""tools/train.py end to end, the task under MirroredStrategy, bad input."""

import glob
import os
import re
import shutil
from functools import partial

import numpy as np
import pytest
import tensorflow as tf
from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import task_factory
from official.core import train_utils

import token_dropping  # noqa: F401  (registers the experiments)
from token_dropping.train import driver as training
from token_dropping.train import run_data
from token_dropping.common.errors import UserError
from token_dropping.train.task import per_prediction_losses
from token_dropping.model.importance import TokenImportance
from helpers import ROOT, event_tags, importance_in, overrides
from helpers import mirrored_task, shrunk_tiny_config, train_py
from in_process import tool_in_process

def test_train_and_eval_end_to_end_then_resume(records, tmp_path):
    model_dir = str(tmp_path / "run")
    first = train_py("--experiment=token_drop_bert_tiny",
                     "--mode=train_and_eval", f"--model_dir={model_dir}",
                     f"--params_override={overrides(records, 4)}")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "(full sequences, no dropping): MLM loss" in first.stdout
    assert "step 4/4" in first.stderr  # the progress line
    latest = tf.train.latest_checkpoint(model_dir)
    assert latest.endswith("ckpt-4")
    table = importance_in(latest)
    assert table.shape == (200,)
    assert (table != 10.0).any() and (table[[0, 101, 102, 103]] == 10.0).all()

    tags = event_tags(os.path.join(model_dir, "train"))
    for tag in ("token_dropping/importance", "token_dropping/flop_ratio",
                "token_dropping/most_dropped", "token_dropping/most_kept",
                "token_dropping/dropped_percent", "lm_example_loss"):
        assert tag in tags, f"{tag} not in {sorted(tags)}"
    assert "lm_example_loss" in event_tags(os.path.join(model_dir,
                                                        "validation"))

    # The same command with more steps continues from step 4 (train.py's
    # main in this process, with absl's log lines: no second process start).
    more_steps = overrides(records, 6, decay_steps=4)
    second = tool_in_process("train.py", "--experiment=token_drop_bert_tiny",
                             "--mode=train_and_eval",
                             f"--model_dir={model_dir}",
                             f"--params_override={more_steps}")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Resuming from" in second.stderr and "(step 4 of 6)" in second.stderr
    assert "step 6/6" in second.stderr and "step 2/6" not in second.stderr
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-6")
    # The importance table was restored, not restarted: every id measured in
    # steps 1-4 is still measured, and ids not seen in steps 5-6 kept their
    # step-4 value exactly (a fresh table would hold 10.0 there).
    resumed = importance_in(tf.train.latest_checkpoint(model_dir))
    assert ((table != 10.0) <= (resumed != 10.0)).all()
    assert ((table != 10.0) & (resumed == table)).any()


def test_baseline_experiment_trains_plain_bert(records, tmp_path):
    shrink = overrides(records, 2).replace("encoder.any.", "encoder.bert_v2.")
    shrink = shrink.replace("task.model.encoder.bert_v2.token_keep_k=16,", "")
    # train.py's main in this process (test_train_and_eval_end_to_end_then_
    # resume runs its command line).
    result = tool_in_process("train.py", "--experiment=bert_tiny",
                             "--mode=train", f"--model_dir={tmp_path / 'bert'}",
                             f"--params_override={shrink}")
    assert result.returncode == 0, result.stderr[-3000:]
    reader = tf.train.load_checkpoint(str(tmp_path / "bert"))
    assert not any("importance" in k
                   for k in reader.get_variable_to_shape_map())


@pytest.mark.parametrize("args,message,cli", [
    (["--experiment=token_drop_bert_huge"],
     "--experiment='token_drop_bert_huge' is not a registered experiment",
     True),
    (["--experiment=token_drop_bert_tiny", "--params_override=task: [oops"],
     "not valid YAML", False),
    (["--experiment=token_drop_bert_tiny",
      "--params_override=task.no_such_field=1"], "no_such_field", False),
    (["--experiment=token_drop_bert_tiny",
      "--params_override=task.model.encoder.any.token_keep_k=600,"
      "task.train_data.input_path=dummy,task.validation_data.input_path=dummy"],
     "token_keep_k=600 exceeds task.train_data.seq_length=128", False),
    (["--experiment=token_drop_bert_tiny",
      "--params_override=task.train_data.input_path=/nonexistent/x-*,"
      "task.validation_data.input_path=/nonexistent/y"],
     "no file matches '/nonexistent/x-*'", False),
])
def test_bad_input_is_one_clear_line(args, message, cli, tmp_path):
    """One case through the real command line (a process start each); the
    others through train.py's main in this process: the same flags, checks
    and error line."""
    model_dir = tmp_path / "run"
    args = [a for a in args]
    if not any(a.startswith("--mode") for a in args):
        args.append("--mode=train_and_eval")
    result = (train_py if cli else partial(tool_in_process, "train.py"))(
        *args, f"--model_dir={model_dir}")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: ") and message in last, last
    assert "Traceback" not in result.stderr
    assert not model_dir.exists()  # nothing written, nothing to corrupt


def test_unknown_mode_is_refused_by_the_flag_parser(tmp_path):
    # absl's parser as app.run calls it, in this process (the command line's
    # own error path: test_bad_input_is_one_clear_line).
    result = tool_in_process("train.py", "--experiment=token_drop_bert_tiny",
                             "--mode=fly", f"--model_dir={tmp_path / 'run'}")
    assert result.returncode == 1
    assert "flag --mode=fly: value should be one of <train|" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_bad_input_leaves_an_existing_checkpoint_alone(run, records,
                                                      tmp_path):
    # A copy of the session's 2-step run (conftest `run`), so a failure here
    # cannot touch what other tests read; train.py's main in this process
    # (test_bad_input_is_one_clear_line checks its command line).
    model_dir = tmp_path / "run"
    shutil.copytree(run["model_dir"], model_dir)
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-2")
    before = {p: os.path.getmtime(p) for p in glob.glob(f"{model_dir}/*")}
    bad = tool_in_process("train.py", "--experiment=token_drop_bert_tiny",
                          "--mode=train", f"--model_dir={model_dir}",
                          "--params_override=" + overrides(
                              records, 4, "task.model.encoder.any."
                              "token_keep_k=64"))
    assert bad.returncode != 0 and "token_keep_k=64 exceeds" in bad.stderr
    # Another architecture in the same model_dir: refused before params.yaml
    # is overwritten, naming the setting its params.yaml records.
    wider_override = "--params_override=" + overrides(
        records, 2, "task.model.encoder.any.hidden_size=32")
    wider = tool_in_process("train.py", "--experiment=token_drop_bert_tiny",
                            "--mode=train", f"--model_dir={model_dir}",
                            wider_override)
    last = wider.stderr.strip().splitlines()[-1]
    assert wider.returncode != 0 and "Traceback" not in wider.stderr, last
    assert ("holds a run trained with task.model.encoder.any.hidden_size=16"
            in last and "asks for task.model.encoder.any.hidden_size=32"
            in last), last
    assert {p: os.path.getmtime(p)
            for p in glob.glob(f"{model_dir}/*")} == before
    # A checkpoint with no params.yaml (copied in): the variable and both
    # shapes are named, before params.yaml is written.
    copied = tmp_path / "copied"
    shutil.copytree(run["model_dir"], copied)
    os.remove(copied / "params.yaml")
    wider = tool_in_process("train.py", "--experiment=token_drop_bert_tiny",
                            "--mode=train", f"--model_dir={copied}",
                            wider_override)
    last = wider.stderr.strip().splitlines()[-1]
    assert wider.returncode != 0 and "Traceback" not in wider.stderr, last
    assert re.search(r"does not fit this configuration: encoder/.*has shape "
                     r"\[.*16.*\] there but \[.*32.*\] here", last), last
    assert not (copied / "params.yaml").exists()


@pytest.mark.parametrize("name", [
    "token_drop_bert_base", "token_drop_bert_large", "token_drop_bert_tiny",
    "bert_base", "bert_large", "bert_tiny", "token_drop_bert/pretraining"])
def test_registered_experiments_validate(name):
    config = exp_factory.get_exp_config(name)
    config.validate()
    assert config.task.train_data.use_next_sentence_label is False


def test_registered_experiments_are_ours_known_to_model_garden():
    # Model Garden's own registered beside ours are not listed as ours.
    import token_dropping.train.finetuning_experiments  # noqa: F401
    sizes = ("base", "large", "mini", "tiny")
    ours = ({f"token_drop_bert_{s}" for s in sizes}
            | {f"token_drop_bert_{s}_{v}" for s in sizes
               for v in ("random_ltd", "full_ends", "sctd")}
            | {f"bert_{s}" for s in sizes} | {"token_drop_bert/pretraining"})
    assert training.registered_experiments() == sorted(ours)
    for name in ours:
        assert isinstance(exp_factory.get_exp_config(name),
                          cfg.ExperimentConfig), name


def test_paper_recipe():
    config = exp_factory.get_exp_config("token_drop_bert_base")
    encoder = config.task.model.encoder.any
    assert (encoder.num_layers, encoder.hidden_size, encoder.token_keep_k) == (
        12, 768, 256)
    assert config.task.train_data.seq_length == 512
    assert config.task.train_data.max_predictions_per_seq == 76
    assert config.task.train_data.global_batch_size == 512
    assert config.trainer.train_steps == 1_000_000
    opt = config.trainer.optimizer_config
    assert opt.optimizer.type == "adamw"
    assert opt.optimizer.adamw.weight_decay_rate == 0.01
    assert opt.learning_rate.polynomial.initial_learning_rate == 1e-4
    assert opt.warmup.polynomial.warmup_steps == 10_000
    assert config.runtime.enable_xla
    large = exp_factory.get_exp_config("token_drop_bert_large")
    assert large.task.model.encoder.any.num_layers == 24
    baseline = exp_factory.get_exp_config("bert_base")
    assert baseline.task.model.encoder.type == "bert_v2"
    assert baseline.trainer.as_dict() == config.trainer.as_dict()


def test_upstream_yamls_load_onto_the_base_experiment():
    options = train_utils.ParseConfigOptions(
        experiment="token_drop_bert_base",
        config_file=[os.path.join(ROOT, "experiments", f) for f in (
            "bert_en_uncased_base_token_drop.yaml",
            "wiki_books_pretrain_sequence_pack.yaml")],
        params_override="task.model.encoder.any.token_keep_k=128")
    config = train_utils.parse_configuration(options, print_return=False)
    encoder = config.task.model.encoder.any
    assert encoder.token_keep_k == 128  # the override wins over the YAML
    assert tuple(encoder.token_allow_list) == (100, 101, 102, 103)
    assert tuple(encoder.token_deny_list) == (0,)
    assert encoder.type_vocab_size == 2
    assert config.task.train_data.input_path.startswith("/path-to-packed-data")
    assert config.trainer.checkpoint_interval == 20000

    nsp = train_utils.parse_configuration(train_utils.ParseConfigOptions(
        experiment="token_drop_bert_base",
        config_file=[os.path.join(ROOT, "experiments",
                                  "wiki_books_pretrain.yaml")]),
        print_return=False)
    assert nsp.task.train_data.use_next_sentence_label is True
    assert nsp.task.model.cls_heads[0].name == "next_sentence"


def test_task_train_step_under_mirrored_strategy(records):
    config = shrunk_tiny_config(records[0])
    strategy, task, model, optimizer, metrics, batch = mirrored_task(config)
    # The reference: one device, the whole global batch (both replicas'
    # halves), the same initial weights and table.
    whole = {k: tf.concat(strategy.experimental_local_results(v), axis=0)
             for k, v in batch.items()}
    reference = TokenImportance(
        vocab_size=200, init_value=10.0,
        beta=config.task.model.encoder.any.token_loss_beta)
    with strategy.scope():  # builds the model's variables where they belong
        losses = per_prediction_losses(whole, model(whole, training=True))
    reference.update(whole["masked_lm_ids"], losses,
                     whole["masked_lm_weights"])

    @tf.function
    def step(batch):
        return strategy.run(task.train_step,
                            args=(batch, model, optimizer, metrics))

    step(batch)
    encoder = model.encoder_network
    tables = [t.numpy() for t in
              strategy.experimental_local_results(encoder.importance)]
    np.testing.assert_array_equal(tables[0], tables[1])
    # Each replica's own half alone would miss the other half's ids.
    np.testing.assert_allclose(tables[0], reference.table.numpy(), rtol=1e-6)
    assert (tables[0] != 10.0).any()
    results = {m.name: float(m.result()) for m in metrics}
    assert 0.0 < results["dropped_token_fraction"] < 1.0
    assert np.isfinite(results["lm_example_loss"])


def test_task_selects_once_per_step_and_its_metrics_describe_that_draw(
        records):
    config = shrunk_tiny_config(records[0])
    config.task.model.encoder.any.selection = "random"
    task = task_factory.get_task(config.task)
    model = task.build_model()
    optimizer = train_utils.create_optimizer(task, config)
    metrics = task.build_metrics(training=True)
    batch = next(iter(task.build_inputs(config.task.train_data)))
    encoder = model.encoder_network
    draws = []
    select = encoder.kept_positions
    encoder.kept_positions = lambda *args: draws.append(select(*args)) or (
        draws[-1])
    task.train_step(batch, model, optimizer, metrics)
    assert len(draws) == 1  # the forward pass's selection, not a second one
    kept = draws[0].numpy()
    real = batch["input_mask"].numpy()
    is_kept = np.zeros_like(real)
    np.put_along_axis(is_kept, kept, 1, axis=1)
    expected = 1.0 - (is_kept * real).sum() / real.sum()
    results = {m.name: float(m.result()) for m in metrics}
    assert results["dropped_token_fraction"] == pytest.approx(expected)


def test_task_train_step_compiles_with_xla(records):
    """What Model Garden does with enable_xla on GPU: jit the task's step."""
    config = shrunk_tiny_config(records[0])
    task = task_factory.get_task(config.task)
    model = task.build_model()
    optimizer = train_utils.create_optimizer(task, config)
    metrics = task.build_metrics(training=True)
    batch = next(iter(task.build_inputs(config.task.train_data)))
    model(batch)  # build the variables outside the compiled step
    # jit_compile=True raises if any op of the step cannot be compiled.
    step = tf.function(task.train_step, jit_compile=True)
    logs = step(batch, model, optimizer, metrics)
    assert np.isfinite(float(logs["loss"]))
    assert (model.encoder_network.importance.numpy() != 10.0).any()


def test_special_ids_and_vocab_come_from_the_records_manifest(tmp_path):
    from token_dropping import data
    # A vocab in another layout: [PAD] is 3, [CLS] 0, [SEP] 1, [MASK] 2, [UNK] 4.
    words = "the cat sat on a mat and dog ran far away".split()
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]"]
                               + words) + "\n")
    text = tmp_path / "corpus.txt"
    rng = np.random.RandomState(0)  # distinct documents (they are de-duplicated)
    text.write_text("\n\n".join(
        "\n".join(" ".join(rng.choice(words, size=8)) + "." for _ in range(3))
        for _ in range(60)))
    info = data.build_pretraining_data(data.PrepareDataConfig(
        input_files=str(text), vocab_file=str(vocab), seq_length=32,
        max_predictions_per_seq=5, num_train_shards=1), str(tmp_path / "out"))

    config = exp_factory.get_exp_config("token_drop_bert_tiny")
    config.override({"task": {
        "model": {"encoder": {"any": {"vocab_size": 200}}},
        "train_data": dict(input_path=info.train_input_path, seq_length=32,
                           max_predictions_per_seq=5),
        "validation_data": dict(input_path=info.validation_input_path,
                                seq_length=32, max_predictions_per_seq=5)}})
    run_data.resolve_data(config, "train_and_eval")
    encoder = config.task.model.encoder.any
    assert tuple(encoder.token_allow_list) == (4, 0, 1, 2)  # UNK CLS SEP MASK
    assert tuple(encoder.token_deny_list) == (3,)
    assert config.task.vocab_file == info.vocab_file

    config.task.train_data.seq_length = 64
    with pytest.raises(UserError,
                       match="seq_length=64 but the records .* seq_length=32"):
        run_data.resolve_data(config, "train")

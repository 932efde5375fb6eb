"""tools/export_bert.py: a token-dropping run as an ordinary BERT, fine-tuned.

One shrunken token_drop_bert_tiny run (2 steps of the real tools/train.py) is
exported once through the real tools/export_bert.py; the tests check the
export against independent references: Model Garden's `BertEncoderV2` built
from bert_config.json, the pretraining encoder rebuilt from the run's
params.yaml by Model Garden's task factory, the values in the pretraining
checkpoint, and Model Garden's own fine-tuning tasks' `initialize`.
"""

import glob
import inspect
import json
import os
import shlex
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from absl import flags
from official.common import flags as tfm_flags
from official.core import exp_factory
from official.core import task_factory
from official.core import train_utils
from official.modeling import hyperparams
from official.nlp.modeling.networks import BertEncoderV2

import token_dropping  # noqa: F401  (registers the experiments)
# Model Garden's fine-tuning experiments (bert/sentence_prediction, ...).
import token_dropping.train.finetuning_experiments  # noqa: F401
from helpers import SHRINK_HIDDEN as HIDDEN
from helpers import SHRINK_SEQ as SEQ
from helpers import SHRINK_VOCAB as VOCAB
from helpers import ROOT, importance_in, padded_inputs, pretraining_model
from helpers import run_tool, write_vocab
from in_process import tool_in_process
from token_dropping.train import driver as training
from token_dropping.train import run_data
from token_dropping.train import run_vocab
from token_dropping.common.errors import UserError
from token_dropping.model.encoder import TokenDropBertEncoder
from token_dropping.export import run_reader
from token_dropping.export.bert import export_bert

# Keys in the trainer's checkpoint (root: BertPretrainerV2.checkpoint_items).
LAYER0_QUERY = ("_transformer_layers/0/_attention_layer/_query_dense/kernel"
                "/.ATTRIBUTES/VARIABLE_VALUE")
SHARED_EMBEDDINGS = "masked_lm/embedding_table/.ATTRIBUTES/VARIABLE_VALUE"


def write_glue_records(path, num_examples=12, seed=0):
    """Records as create_finetuning_data.py writes them for GLUE: the
    features Model Garden's SentencePredictionDataLoader parses."""
    rng = np.random.RandomState(seed)
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(num_examples):
            length = rng.randint(8, SEQ + 1)
            ids = np.zeros(SEQ, np.int64)
            ids[:length] = rng.randint(104, VOCAB, size=length)
            ids[0], ids[length - 1] = 101, 102  # [CLS] ... [SEP]
            mask = (np.arange(SEQ) < length).astype(np.int64)
            segments = ((np.arange(SEQ) >= length // 2) * mask).astype(
                np.int64)
            ints = lambda v: tf.train.Feature(
                int64_list=tf.train.Int64List(value=v))
            feature = dict(input_ids=ints(ids), input_mask=ints(mask),
                           segment_ids=ints(segments),
                           label_ids=ints([rng.randint(2)]))
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature)).SerializeToString())
    return path


@pytest.fixture(scope="module")
def reference(run):
    """The pretraining encoder (`pretraining_model`)."""
    return pretraining_model(run).encoder_network


def assert_same_outputs(actual, expected, atol=1e-5):
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(actual[key], expected[key], atol=atol,
                                   err_msg=key)


def test_export_layout_and_importance_artifact(run, exported):
    names = sorted(os.listdir(exported))
    assert names == sorted([
        "bert_config.json", "bert_model.ckpt.data-00000-of-00001",
        "bert_model.ckpt.index", "checkpoint", "encoder.yaml",
        "hf", "saved_model", "token_importance.npy", "token_importance.tsv",
        "vocab.txt"])
    assert not glob.glob(os.path.join(os.path.dirname(exported), ".*"))
    with open(os.path.join(exported, "vocab.txt")) as a, open(
            run["vocab"]) as b:
        assert a.read() == b.read()

    # The table equals the trained one and is absent from the BERT checkpoint.
    table = np.load(os.path.join(exported, "token_importance.npy"))
    np.testing.assert_array_equal(table, importance_in(run["checkpoint"]))
    assert table.shape == (VOCAB,) and (table != 10.0).any()
    keys = tf.train.load_checkpoint(
        os.path.join(exported, "bert_model.ckpt")).get_variable_to_shape_map()
    assert not [k for k in keys if "importance" in k]
    assert not [k for k in keys if k.startswith(("masked_lm", "optimizer"))]
    with open(os.path.join(exported, "token_importance.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    assert rows[0] == ["id", "piece", "importance"] and len(rows) == VOCAB + 1
    assert rows[1 + 101][:2] == ["101", "[CLS]"]
    assert float(rows[1 + 150][2]) == pytest.approx(table[150], rel=1e-5)


def test_bert_config_rebuilds_bert_encoder_v2(exported):
    with open(os.path.join(exported, "bert_config.json")) as f:
        config = json.load(f)
    arguments = inspect.signature(BertEncoderV2.__init__).parameters
    assert set(config) <= set(arguments)
    # Model Garden's "gelu" is the tanh approximation, registered as
    # "Text>gelu"; Keras's own "gelu" is the exact one (0.8413 at 1).
    assert config["inner_activation"] == "Text>gelu"
    block = BertEncoderV2(**config).transformer_layers[0]
    gelu = tf_keras.activations.get(block.get_config()["inner_activation"])
    assert float(gelu(tf.constant(1.0))) == pytest.approx(0.841192, abs=1e-6)
    assert (config["vocab_size"], config["hidden_size"],
            config["num_layers"], config["max_sequence_length"]) == (
                VOCAB, HIDDEN, 2, SEQ)


def test_exported_checkpoint_in_fresh_bert_encoder_v2_equals_pretraining(
        exported, reference):
    with open(os.path.join(exported, "bert_config.json")) as f:
        encoder = BertEncoderV2(**json.load(f))
    batch = padded_inputs()
    encoder(batch)  # variables exist, so every one must find its value
    tf.train.Checkpoint(encoder=encoder).read(
        os.path.join(exported, "bert_model.ckpt")
    ).assert_existing_objects_matched()
    expected = reference(batch, training=False)
    actual = encoder(batch, training=False)
    assert_same_outputs(actual, expected)
    for got, want in zip(actual["encoder_outputs"],
                         expected["encoder_outputs"]):
        np.testing.assert_allclose(got, want, atol=1e-5)
    # Dropping is a training-time change only: it does change the output.
    dropped = reference(batch, training=True)["sequence_output"]
    assert not np.allclose(dropped, expected["sequence_output"], atol=1e-5)


def test_saved_model_serves_the_same_outputs(exported, reference):
    batch = padded_inputs(seed=1)
    expected = reference(batch, training=False)
    loaded = tf.saved_model.load(os.path.join(exported, "saved_model"))
    serving = loaded.signatures["serving_default"]
    _, spec = serving.structured_input_signature
    assert {k: (v.dtype, v.shape.as_list()) for k, v in spec.items()} == {
        name: (tf.int32, [None, None]) for name in
        ("input_word_ids", "input_mask", "input_type_ids")}
    assert_same_outputs(serving(**batch), expected)
    assert_same_outputs(loaded(batch, training=False), expected)
    np.testing.assert_array_equal(serving(**batch)["default"],
                                  serving(**batch)["pooled_output"])
    with open(loaded.vocab_file.asset_path.numpy().decode()) as f:
        assert f.readline().strip() == "[PAD]"
    assert bool(loaded.do_lower_case.numpy())


def finetuning_task(experiment, exported, encoder_type, extra=None):
    params = exp_factory.get_exp_config(experiment)
    hyperparams.override_params_dict(
        params, os.path.join(exported, "encoder.yaml"), is_strict=True)
    if encoder_type != "bert_v2":  # the same sizes under another type
        sizes = params.task.model.encoder.bert_v2.as_dict()
        params.override({"task": {"model": {"encoder": {
            "type": encoder_type, encoder_type: sizes}}}}, is_strict=True)
    params.override({"task": dict(init_checkpoint=exported, **(extra or {}))},
                    is_strict=True)
    return task_factory.get_task(params.task)


@pytest.mark.parametrize("experiment,encoder_type,extra", [
    ("bert/sentence_prediction", "bert_v2", {"model": {"num_classes": 2}}),
    # Model Garden's default encoder type (its BertEncoder) loads it too.
    ("bert/sentence_prediction", "bert", {"model": {"num_classes": 3}}),
    ("bert/squad", "bert_v2", None),
])
def test_model_garden_finetuning_tasks_initialize_from_the_export(
        experiment, encoder_type, extra, exported, run):
    task = finetuning_task(experiment, exported, encoder_type, extra)
    model = task.build_model()
    encoder = model.checkpoint_items["encoder"]
    before = encoder.get_embedding_table().numpy()
    task.initialize(model)  # Model Garden's own init_checkpoint loading
    pretrained = tf.train.load_checkpoint(run["checkpoint"])
    np.testing.assert_array_equal(encoder.get_embedding_table().numpy(),
                                  pretrained.get_tensor(SHARED_EMBEDDINGS))
    assert not np.array_equal(before, pretrained.get_tensor(SHARED_EMBEDDINGS))
    # pylint: disable-next=protected-access
    query = encoder.transformer_layers[0]._attention_layer._query_dense
    np.testing.assert_array_equal(
        query.kernel.numpy(), pretrained.get_tensor(f"encoder/{LAYER0_QUERY}"))


def test_finetuning_smoke_run_through_train_py(exported, tmp_path):
    train = write_glue_records(str(tmp_path / "train.tf_record"), seed=0)
    valid = write_glue_records(str(tmp_path / "eval.tf_record"), seed=1)
    model_dir = str(tmp_path / "sst2")
    shrink = ",".join([
        f"task.init_checkpoint={exported}",
        f"task.train_data.input_path={train}",
        f"task.validation_data.input_path={valid}",
        f"task.train_data.seq_length={SEQ}",
        f"task.validation_data.seq_length={SEQ}",
        "task.train_data.global_batch_size=4",
        "task.validation_data.global_batch_size=4",
        "trainer.train_steps=2", "trainer.steps_per_loop=2",
        "trainer.summary_interval=2", "trainer.checkpoint_interval=2",
        "trainer.validation_interval=2", "trainer.validation_steps=2",
        "trainer.optimizer_config.learning_rate.polynomial.decay_steps=2",
        "trainer.optimizer_config.warmup.polynomial.warmup_steps=1"])
    # train.py's main in this process, with absl's log lines (the session's
    # `run` fixture and test_training run its command line).
    result = tool_in_process(
        "train.py", "--experiment=bert/sentence_prediction",
        "--mode=train_and_eval", f"--model_dir={model_dir}",
        "--config_file=experiments/glue_sst2_finetune.yaml",
        f"--config_file={os.path.join(exported, 'encoder.yaml')}",
        f"--params_override={shrink}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Finished loading pretrained checkpoint from {exported}" in (
        result.stderr)
    validation = [line for line in result.stdout.splitlines()
                  if line.startswith("Validation: ")]
    assert len(validation) == 1 and "cls_accuracy" in validation[0], (
        result.stdout)
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-2")


@pytest.mark.parametrize("experiment,yaml_file,num_classes", [
    ("bert/sentence_prediction", "glue_sst2_finetune.yaml", 2),
    ("bert/sentence_prediction", "glue_mnli_finetune.yaml", 3),
    ("bert/squad", "squad_v1_finetune.yaml", None),
])
def test_finetuning_yamls_load_with_the_usual_schedule(
        experiment, yaml_file, num_classes, exported):
    params = train_utils.parse_configuration(train_utils.ParseConfigOptions(
        experiment=experiment, config_file=[
            os.path.join(ROOT, "experiments", yaml_file),
            os.path.join(exported, "encoder.yaml")]), print_return=False)
    assert params.task.model.encoder.bert_v2.num_layers == 2  # the export's
    if num_classes:
        assert params.task.model.num_classes == num_classes
    trainer = params.trainer
    optimizer = trainer.optimizer_config
    assert params.task.train_data.global_batch_size == 32
    schedule = optimizer.learning_rate.polynomial
    assert 2e-5 <= schedule.initial_learning_rate <= 5e-5
    assert schedule.decay_steps == trainer.train_steps
    assert optimizer.warmup.polynomial.warmup_steps == round(
        trainer.train_steps / 10)
    assert trainer.summary_interval % trainer.steps_per_loop == 0


def test_finetuning_needs_data_the_default_corpus_is_for_pretraining():
    params = exp_factory.get_exp_config("bert/sentence_prediction")
    with pytest.raises(UserError, match=(
            "task.train_data.input_path is empty; fine-tuning needs its data"
            ": make records with tools/finetuning_data.py for GLUE")):
        run_data.resolve_data(params, "train")


def write_other_checkpoint(folder, **sizes):
    """A trainer-style checkpoint (root `encoder`) of another encoder size."""
    kwargs = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_layers=2,
                  num_attention_heads=2, inner_dim=32,
                  max_sequence_length=SEQ, type_vocab_size=2,
                  token_keep_k=16)
    kwargs.update(sizes)
    encoder = TokenDropBertEncoder(**kwargs)
    encoder(padded_inputs())
    return tf.train.Checkpoint(encoder=encoder).write(str(folder / "ckpt-1"))


def copy_run_without_checkpoint(run, folder, vocab_file=None):
    folder.mkdir()
    with open(os.path.join(run["model_dir"], "params.yaml")) as f:
        text = f.read()
    if vocab_file is not None:
        text = text.replace(f"vocab_file: {run['vocab']}",
                            f"vocab_file: '{vocab_file}'")
    (folder / "params.yaml").write_text(text)
    return str(folder)


BAD_INPUTS = [
    ("no_checkpoint", "has no checkpoint (ckpt-N): train first"),
    ("no_params", "params.yaml not found"),
    ("wider_vocab", "_embedding_layer/embeddings has shape [300, 16] in the "
     "checkpoint but [200, 16] in the encoder"),
    ("more_heads", "_transformer_layers/0/_attention_layer/_key_dense/bias "
     "has shape [4, 4] in the checkpoint but [2, 8] in the encoder"),
    ("deeper", "the checkpoint has 16 encoder variables it lacks, e.g. "
     "_transformer_layers/2/"),
    ("corrupt", "ckpt-9 is damaged or cut short"),
    ("index_file", "ckpt-2.index' is one of a checkpoint's files; give its "
     "prefix, --checkpoint="),
    ("data_file", "ckpt-2.data-00000-of-00001' is one of a checkpoint's "
     "files; give its prefix, --checkpoint="),
    ("no_vocab", "No vocabulary: the run's params.yaml has no "
     "task.vocab_file; pass --vocab_file"),
    ("missing_vocab", "vocab file '/nonexistent/vocab.txt' not found"),
    ("smaller_vocab", "has 150 pieces but the encoder's embedding has "
     "vocab_size=200: not this model's vocab"),
    ("vocab_without_mask", "has no [MASK] token; a WordPiece vocab for BERT "
     "needs all of [PAD], [UNK], [CLS], [SEP], [MASK]"),
    ("vocab_ids_moved", "has [CLS] at id 1, but the run's token_allow_list "
     "is [100, 101, 102, 103]: not the vocab the run was trained with"),
    ("binary_vocab", "is not UTF-8 text (invalid start byte); give a "
     "WordPiece vocab"),
    ("not_empty", "is not empty; pass --overwrite to replace it"),
    ("parent_is_file", "/out/bert' is under '"),
]
# Vocabularies that do not fit the run (write_vocab's `edit`).
VOCAB_EDITS = {
    "smaller_vocab": lambda pieces: pieces.__delitem__(slice(150, None)),
    "vocab_without_mask": lambda pieces: pieces.__setitem__(103, "masked"),
    "vocab_ids_moved": lambda pieces: pieces.insert(1, pieces.pop(101)),
}


@pytest.mark.parametrize("case,message", BAD_INPUTS,
                         ids=[case for case, _ in BAD_INPUTS])
def test_bad_input_is_one_clear_error_and_writes_nothing(case, message, run,
                                                         tmp_path):
    model_dir, kwargs = run["model_dir"], {}
    output_dir = tmp_path / "out" / "bert"
    if case == "no_checkpoint":
        model_dir = copy_run_without_checkpoint(run, tmp_path / "run")
    elif case == "no_params":
        (tmp_path / "empty").mkdir()
        model_dir = str(tmp_path / "empty")
    elif case in ("wider_vocab", "more_heads", "deeper"):
        sizes = {"wider_vocab": dict(vocab_size=300),
                 "more_heads": dict(num_attention_heads=4),
                 "deeper": dict(num_layers=3)}[case]
        kwargs["checkpoint"] = write_other_checkpoint(tmp_path, **sizes)
    elif case == "corrupt":
        (tmp_path / "ckpt-9.index").write_bytes(b"not a checkpoint")
        kwargs["checkpoint"] = str(tmp_path / "ckpt-9")
    elif case == "index_file":
        kwargs["checkpoint"] = run["checkpoint"] + ".index"
        message += run["checkpoint"] + "."
    elif case == "data_file":
        kwargs["checkpoint"] = run["checkpoint"] + ".data-00000-of-00001"
        message += run["checkpoint"] + "."
    elif case == "no_vocab":
        model_dir = copy_run_without_checkpoint(run, tmp_path / "run", "")
        kwargs["checkpoint"] = run["checkpoint"]
    elif case == "missing_vocab":
        kwargs["vocab_file"] = "/nonexistent/vocab.txt"
    elif case in VOCAB_EDITS:
        kwargs["vocab_file"] = write_vocab(str(tmp_path / "vocab.txt"),
                                           VOCAB_EDITS[case])
    elif case == "binary_vocab":
        (tmp_path / "vocab.bin").write_bytes(b"[PAD]\n\xff\xfe\x00\n" * 100)
        kwargs["vocab_file"] = str(tmp_path / "vocab.bin")
    elif case == "not_empty":
        output_dir.mkdir(parents=True)
        (output_dir / "keep.txt").write_text("mine")
    elif case == "parent_is_file":
        (tmp_path / "out").write_text("mine")
    with pytest.raises(UserError) as error:
        export_bert(model_dir, str(output_dir), **kwargs)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    if case == "not_empty":
        assert os.listdir(output_dir) == ["keep.txt"]
    elif case == "parent_is_file":
        assert str(error.value).endswith("which is a file, not a directory.")
        assert (tmp_path / "out").read_text() == "mine"
    else:
        assert not (tmp_path / "out").exists()


def test_overwrite_replaces_an_export_and_leaves_no_partial(run, tmp_path):
    output_dir = tmp_path / "bert"
    output_dir.mkdir()
    (output_dir / "stale.txt").write_text("old")
    result = export_bert(run["model_dir"], str(output_dir), overwrite=True)
    assert result.global_step == 2
    assert result.source_checkpoint == run["checkpoint"]
    assert not (output_dir / "stale.txt").exists()
    assert (output_dir / "saved_model" / "saved_model.pb").exists()
    assert os.listdir(tmp_path) == ["bert"]
    # The run itself can never be the output.
    with pytest.raises(UserError, match="is --model_dir="):
        export_bert(run["model_dir"], run["model_dir"], overwrite=True)


@pytest.mark.parametrize("where", ["link", "inside", "parent",
                                   "vocab_folder", "checkpoint_run"])
def test_an_output_on_what_the_export_reads_is_refused_untouched(
        run, tmp_path, where):
    # A copy of the run, so a failure here cannot empty the shared one.
    model_dir = tmp_path / "runs" / "run"
    shutil.copytree(run["model_dir"], model_dir)
    vocab = tmp_path / "data" / "vocab.txt"
    vocab.parent.mkdir()
    shutil.copy(run["vocab"], vocab)
    other = tmp_path / "other"
    shutil.copytree(run["model_dir"], other)
    kwargs = dict(vocab_file=str(vocab))
    output_dir, relation = {
        "link": (tmp_path / "link", "is --model_dir="),
        "inside": (model_dir / "export", "is inside --model_dir="),
        "parent": (tmp_path / "runs", "contains --model_dir="),
        "vocab_folder": (vocab.parent, "contains --vocab_file="),
        "checkpoint_run": (other, "contains --checkpoint="),
    }[where]
    if where == "link":
        os.symlink(model_dir, output_dir)
    if where == "checkpoint_run":
        kwargs["checkpoint"] = os.path.join(
            other, os.path.basename(run["checkpoint"]))
    before = {d: sorted(os.listdir(d)) for d in (model_dir, vocab.parent,
                                                 other)}
    with pytest.raises(UserError, match=relation) as e:
        export_bert(str(model_dir), str(output_dir), overwrite=True,
                    **kwargs)
    assert "\n" not in str(e.value)
    assert {d: sorted(os.listdir(d)) for d in before} == before
    assert not [n for n in os.listdir(output_dir.parent) if "partial" in n]


@pytest.mark.parametrize("edit,key,recorded", [
    ("        hidden_activation: gelu",
     "task.model.encoder.any.hidden_activation", "relu"),
    ("    mlm_activation: gelu", "task.model.mlm_activation", "relu"),
    ("vocab", "task.vocab_file", None),
])
def test_a_checkpoint_of_another_run_that_describes_it_otherwise_is_refused(
        edit, key, recorded, run, tmp_path):
    """Another run's checkpoint of the same shapes, exported with this run's
    params.yaml, would be written out with the wrong activation or vocab."""
    if edit == "vocab":
        vocab = write_vocab(str(tmp_path / "other_vocab.txt"),
                            edit=lambda pieces: pieces.__setitem__(
                                VOCAB - 1, "other"))
        model_dir = copy_run_without_checkpoint(run, tmp_path / "mine",
                                                vocab_file=vocab)
        recorded, theirs = vocab, run["vocab"]
    else:
        model_dir = copy_run_without_checkpoint(run, tmp_path / "mine")
        path = os.path.join(model_dir, "params.yaml")
        with open(path) as f:
            text = f.read()
        assert text.count(edit + "\n") == 1
        with open(path, "w") as f:
            f.write(text.replace(edit + "\n",
                                 edit.replace("gelu", recorded) + "\n"))
        theirs = "gelu"
    output_dir = tmp_path / "out"
    with pytest.raises(UserError) as e:
        export_bert(model_dir, str(output_dir), checkpoint=run["checkpoint"])
    assert str(e.value) == (
        f"--checkpoint={run['checkpoint']} is from the run in "
        f"{run['model_dir']}, trained with {key}={theirs!r}, but "
        f"--model_dir={model_dir} records {key}={recorded!r}; export it with "
        f"--model_dir={run['model_dir']}"
        + (" or give the vocab with --vocab_file." if edit == "vocab" else "."))
    assert not output_dir.exists()


def _edited_copy(run, folder, old, new, vocab_file=None):
    model_dir = copy_run_without_checkpoint(run, folder, vocab_file)
    path = os.path.join(model_dir, "params.yaml")
    with open(path) as f:
        text = f.read()
    assert old in text
    with open(path, "w") as f:
        f.write(text.replace(old, new, 1))
    return model_dir


def test_a_checkpoint_of_a_run_that_describes_it_alike_is_taken(run,
                                                                tmp_path):
    """A copy of the run's settings; another dropout rate (not in the
    weights); another vocab file of the same pieces, or a vocab given with
    --vocab_file; a params.yaml the check cannot read (a fine-tuning run's,
    another version's): the checkpoint is taken as the user says."""
    same_vocab = tmp_path / "same_vocab.txt"
    shutil.copy(run["vocab"], same_vocab)
    other_vocab = write_vocab(str(tmp_path / "other_vocab.txt"),
                              edit=lambda pieces: pieces.__setitem__(VOCAB - 1, "x"))
    cases = [
        (copy_run_without_checkpoint(run, tmp_path / "copy"), None),
        (_edited_copy(run, tmp_path / "dropout", "  dropout_rate: 0.0\n",
                      "  dropout_rate: 0.3\n"), None),
        (copy_run_without_checkpoint(run, tmp_path / "moved_vocab",
                                     str(same_vocab)), None),
        (copy_run_without_checkpoint(run, tmp_path / "given_vocab",
                                     other_vocab), run["vocab"]),
        (_edited_copy(run, tmp_path / "newer", "task:\n",
                      "task:\n  a_newer_field: 1\n"), None),
        (_edited_copy(run, tmp_path / "bad_yaml", "task:\n", "task: [\n"),
         None),
    ]
    for model_dir, given in cases:
        run_reader.check_checkpoint_run(model_dir, run["checkpoint"], given)
    # The other way round: the run's own folder holds the checkpoint, the
    # unreadable params.yaml is --model_dir's (export_bert reports that).
    run_reader.check_checkpoint_run(cases[-1][0], run["checkpoint"], None)
    # And the check does compare: relu in place of gelu is refused.
    relu = _edited_copy(run, tmp_path / "relu", "hidden_activation: gelu",
                        "hidden_activation: relu")
    with pytest.raises(UserError, match="hidden_activation='gelu'"):
        run_reader.check_checkpoint_run(relu, run["checkpoint"], None)


def test_a_checkpoint_cut_short_is_one_line_and_writes_nothing(run,
                                                               tmp_path):
    model_dir = tmp_path / "run"
    shutil.copytree(run["model_dir"], model_dir)
    latest = tf.train.latest_checkpoint(str(model_dir))
    assert latest.startswith(str(model_dir))
    (data,) = glob.glob(f"{latest}.data-*")
    with open(data, "rb") as f:
        content = f.read()
    with open(data, "wb") as f:
        f.write(content[:len(content) // 2])
    output_dir = tmp_path / "out"
    with pytest.raises(UserError) as e:
        export_bert(str(model_dir), str(output_dir))
    assert str(e.value) == (
        f"checkpoint {latest} is damaged or cut short (Read less bytes than "
        "requested); no earlier checkpoint there reads whole. Pass "
        "--checkpoint=... to export another one."), str(e.value)
    assert not output_dir.exists()


def test_cli_bad_input_is_one_line_without_traceback(run, tmp_path):
    output_dir = tmp_path / "bert"
    output_dir.mkdir()
    (output_dir / "keep.txt").write_text("mine")
    result = run_tool("export_bert.py", f"--model_dir={run['model_dir']}",
                      f"--output_dir={output_dir}")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == (f"export_bert.py: error: --output_dir='{output_dir}' is "
                    "not empty; pass --overwrite to replace it."), last
    assert "Traceback" not in result.stderr
    assert os.listdir(output_dir) == ["keep.txt"]
    shutil.rmtree(output_dir)


def test_the_printed_finetune_command_parses_with_its_mode(run, tmp_path,
                                                          monkeypatch):
    """The `Fine-tune:` line parses with train.py's flags into a config (a
    mode included: train.py has no default one), its `...` data paths
    filled in as a user would. (The shrunken run's 32 positions are too few
    for the YAML's sequences: check_params would refuse them, rightly.)"""
    output_dir = str(tmp_path / "bert")
    result = tool_in_process(
        "export_bert.py", f"--model_dir={run['model_dir']}",
        f"--output_dir={output_dir}", "--nohuggingface")
    assert result.returncode == 0, result.stderr[-3000:]
    [line] = [line for line in result.stdout.splitlines()
              if line.startswith("Fine-tune: ")]
    tool, *argv = shlex.split(line[len("Fine-tune: python "):])
    assert tool == "tools/train.py", line
    argv = [a.replace("=...", "=/data/records") for a in argv]
    monkeypatch.chdir(ROOT)  # the command's experiments/ path
    if "experiment" not in flags.FLAGS:
        tfm_flags.define_flags()
    try:
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["train.py", *argv])
        params = training.params_from_flags(flags.FLAGS)
        assert flags.FLAGS.mode == "train_and_eval"
        assert params.task.init_checkpoint == output_dir
    finally:
        flags.FLAGS.unparse_flags()


def test_the_runs_own_records_decide_lower_case_and_a_smaller_vocab_exports(
        run, tmp_path):
    """An uncased 150-piece vocab under `showcased_models/` (its path says
    "cased") for a 200-row model, records whose manifest says
    do_lower_case=true: training accepted it, so export does, uncased."""
    model_dir = tmp_path / "run"
    shutil.copytree(run["model_dir"], model_dir)
    vocab = tmp_path / "showcased_models" / "vocab.txt"
    vocab.parent.mkdir()
    write_vocab(str(vocab), VOCAB_EDITS["smaller_vocab"])
    records = tmp_path / "records"
    records.mkdir()
    train = os.path.join(os.path.dirname(run["vocab"]), "train.tfrecord")
    shutil.copy(train, records / "train.tfrecord")
    (records / "manifest.json").write_text(json.dumps(
        {"config": {"do_lower_case": True}}))
    params = (model_dir / "params.yaml").read_text()
    assert run["vocab"] in params and train in params
    (model_dir / "params.yaml").write_text(params.replace(
        run["vocab"], str(vocab)).replace(train,
                                          str(records / "train.tfrecord")))
    run_vocab.record(str(model_dir), str(vocab))  # as that run kept it
    result = export_bert(str(model_dir), str(tmp_path / "out"))
    assert result.do_lower_case is True
    assert result.do_lower_case_source == (
        f"the run's dataset manifest {records / 'manifest.json'}")
    loaded = tf.saved_model.load(result.saved_model)
    assert bool(loaded.do_lower_case.numpy()) is True
    with open(os.path.join(result.huggingface,
                           "tokenizer_config.json")) as f:
        assert json.load(f)["do_lower_case"] is True
    with open(result.vocab_file) as f:
        assert len(f.read().splitlines()) == 150
    # The run's own vocab given again, spelled another way, is the run's.
    spelled = str(vocab.parent / ".." / "showcased_models" / "vocab.txt")
    again = export_bert(str(model_dir), str(tmp_path / "again"),
                        vocab_file=spelled, huggingface=False)
    with open(again.vocab_file) as f:
        assert len(f.read().splitlines()) == 150


def test_lower_case_is_guessed_only_when_nothing_records_it(run, caplog):
    from token_dropping.export import bert
    from token_dropping.export import run_reader
    params, _ = run_reader.read_run_params(run["model_dir"])  # no manifest
    for path, guess in (("/m/showcased_models/vocab.txt", True),
                        ("/m/cased_L-12_H-768_A-12/vocab.txt", False),
                        ("/m/multi_cased_L-12/vocab.txt", False),
                        ("/m/uncased_L-12_H-768_A-12/vocab.txt", True)):
        caplog.clear()
        with caplog.at_level("WARNING"):
            value, source = bert._lower_case(None, path, params)  # pylint: disable=protected-access
        assert value is guess, path
        assert source.startswith("a guess from the vocab's name"), source
        assert f"do_lower_case={guess}: a guess" in caplog.text
    assert bert._lower_case(False, "/m/uncased/vocab.txt", params) == (  # pylint: disable=protected-access
        False, "--do_lower_case")

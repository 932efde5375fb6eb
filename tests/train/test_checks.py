"""tools/train.py refuses what would go wrong silently, in one line, early.

Each case goes through the same two calls as tools/train.py
(`params_from_flags`, then `run`), with Model Garden's real absl flags.
"""

import re
import socket

import pytest
import tensorflow as tf
from absl import flags
from absl import logging
from official.common import flags as tfm_flags

import token_dropping  # noqa: F401  (registers the experiments)
from token_dropping import data
from token_dropping.train import driver as training
from token_dropping.common.errors import UserError

if "experiment" not in flags.FLAGS:
    tfm_flags.define_flags()

DUMMY = "task.train_data.input_path=dummy,task.validation_data.input_path=dummy"


def resolve(*args, mode="train_and_eval", model_dir=None, tmp_path=None):
    """What tools/train.py does before training: parse, then check all."""
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train.py", "--experiment=token_drop_bert_tiny",
                 f"--mode={mode}", *args])
    params = training.params_from_flags(flags.FLAGS)
    model_dir = model_dir or str(tmp_path / "run")
    training.resolve(params, flags.FLAGS.mode, model_dir)
    return params


def test_one_split_set_and_the_other_empty_is_refused(records, tmp_path):
    with pytest.raises(UserError, match=(
            r"task.validation_data.input_path is empty but task.train_data."
            r"input_path=.* is set, and --mode=train_and_eval reads both")):
        resolve(f"--params_override=task.train_data.input_path={records[0]}",
                tmp_path=tmp_path)
    # Training alone needs no validation data.
    params = resolve(
        f"--params_override=task.train_data.input_path={records[0]},"
        "task.train_data.seq_length=32,task.train_data."
        "max_predictions_per_seq=5,task.model.encoder.any.vocab_size=200,"
        "task.model.encoder.any.token_keep_k=16",
        mode="train", tmp_path=tmp_path)
    assert params.task.validation_data.input_path == ""


def test_tpu_flag_means_tpu_strategy(tmp_path):
    params = resolve("--tpu=my-tpu", f"--params_override={DUMMY}",
                     tmp_path=tmp_path)
    assert params.runtime.distribution_strategy == "tpu"
    assert params.runtime.tpu == "my-tpu"
    with pytest.raises(UserError, match="asks for a TPU but runtime."
                       "distribution_strategy='multi_worker_mirrored'"):
        resolve("--tpu=my-tpu", "--params_override=runtime."
                f"distribution_strategy=multi_worker_mirrored,{DUMMY}",
                tmp_path=tmp_path)


def test_unreachable_tpu_is_one_error_and_writes_nothing(tmp_path):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train.py", "--experiment=token_drop_bert_tiny",
                 "--mode=train", f"--tpu=grpc://127.0.0.1:{port}",
                 f"--params_override={DUMMY}"])
    params = training.params_from_flags(flags.FLAGS)
    with pytest.raises(UserError, match=f"--tpu='grpc://127.0.0.1:{port}': "
                       "cannot reach the TPU"):
        training.run(params, mode="train", model_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override,message", [
    ("task.model.encoder.any.token_keep_k=abc",
     "task.model.encoder.any.token_keep_k='abc' must be an integer"),
    ("runtime.distribution_strategy=bogus",
     "runtime.distribution_strategy='bogus' is not one of mirrored"),
    ("runtime.distribution_strategy=tpu",
     "runtime.distribution_strategy=tpu needs --tpu"),
    ("task.model.encoder.type=bert",
     "task.model.encoder.type='bert' is a plain encoder"),
    ("trainer.train_steps=1e3", "trainer.train_steps=1000.0 must be an "
     "integer"),
    ("task.consistency_interval=-1", "task.consistency_interval=-1 must be 0 "
     "(off) or a number of steps"),
    ("task.consistency_full_mlm_share=1.5",
     "task.consistency_full_mlm_share=1.5 must be a share in [0, 1]"),
    ("task.model.encoder.any.selection=per_layer",
     "selection='per_layer' is not one of 'mlm_loss', 'random', 'mixed', "
     "'random_per_layer'"),
    ("trainer.validation_steps=0", "trainer.validation_steps=0 must be -1 "
     "(the whole validation set) or at least 1."),
    ("task.train_data.seq_length=256", "task.train_data.seq_length=256 "
     "exceeds the encoder's max_position_embeddings=128."),
    ("task.validation_data.max_predictions_per_seq=200",
     "task.validation_data.max_predictions_per_seq=200 exceeds "
     "seq_length=128."),
    # Validation runs the full model unless it drops at inference too.
    ("task.model.encoder.any.drop_at_inference=true,"
     "task.validation_data.seq_length=32",
     "token_keep_k=64 exceeds task.validation_data.seq_length=32"),
])
def test_bad_values_are_one_line(override, message, tmp_path):
    with pytest.raises(UserError, match=re.escape(message)):
        resolve(f"--params_override={override},{DUMMY}", tmp_path=tmp_path)


def _encoder_only_checkpoint(folder):
    """An export's layout: `bert_model.ckpt` (root `encoder`, no
    global_step), named in the folder's `checkpoint` file."""
    path = tf.train.Checkpoint(encoder=tf.Variable(1.0)).write(
        str(folder / "bert_model.ckpt"))
    tf.compat.v1.train.update_checkpoint_state(str(folder), path)
    return path


def test_a_model_dir_holding_an_export_is_refused(tmp_path):
    """Model Garden's trainer read its global_step: a ValueError traceback."""
    folder = tmp_path / "export"
    folder.mkdir()
    _encoder_only_checkpoint(folder)
    with pytest.raises(UserError) as error:
        resolve(f"--params_override={DUMMY}", model_dir=str(folder))
    assert str(error.value) == (
        f"--model_dir={folder} holds bert_model.ckpt, which is not a "
        "training checkpoint of tools/train.py (no global_step; an export of "
        "export_bert.py, say); use a new --model_dir, and "
        f"task.init_checkpoint={folder} to start from it.")


def test_init_checkpoint_must_name_a_checkpoint(tmp_path):
    """A fresh run reads it after params.yaml is written (a NotFoundError
    traceback); a folder holding one, or a prefix, is taken."""
    folder = tmp_path / "export"
    folder.mkdir()
    prefix = _encoder_only_checkpoint(folder)
    for good in (str(folder), prefix):
        resolve(f"--params_override=task.init_checkpoint={good},{DUMMY}",
                tmp_path=tmp_path)
    for bad in (str(tmp_path / "missing"), str(tmp_path), prefix + ".index"):
        with pytest.raises(UserError) as error:
            resolve(f"--params_override=task.init_checkpoint={bad},{DUMMY}",
                    tmp_path=tmp_path)
        assert str(error.value).startswith(
            f"task.init_checkpoint={bad!r}: no checkpoint there; give a "
            "folder holding one")
    assert not (tmp_path / "run").exists()


def test_a_short_validation_length_is_fine_without_dropping_at_inference(
        tmp_path):
    resolve("--params_override=task.validation_data.seq_length=32,"
            f"{DUMMY}", tmp_path=tmp_path)


def test_the_token_dropping_encoder_with_plain_bert_task_is_refused(
        tmp_path):
    """Model Garden's masked LM task would fail mid-run building `any`
    (a TypeError from its encoder factory)."""
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train.py", "--experiment=bert_tiny", "--mode=train",
                 "--params_override=task.model.encoder.type=any,"
                 f"{DUMMY}"])
    params = training.params_from_flags(flags.FLAGS)
    with pytest.raises(UserError) as error:
        training.resolve(params, "train", str(tmp_path / "run"))
    assert str(error.value).startswith(
        "task.model.encoder.type='any' is the token-dropping encoder, which "
        "this experiment's task (MaskedLMConfig) does not build")


@pytest.mark.parametrize("stages,message", [
    ("[{start_fraction: 0.1, token_keep_k: 64}]",
     "task.model.encoder.any.keep_k_schedule starts at 0.1"),
    ("[{start_fraction: 0.0, token_keep_k: 64}, "
     "{start_fraction: 0.5, token_keep_k: 200}]",
     "task.model.encoder.any.keep_k_schedule token_keep_k=200 exceeds "
     "task.train_data.seq_length=128"),
])
def test_bad_keep_k_schedule_is_one_line(stages, message, tmp_path):
    config = tmp_path / "schedule.yaml"
    config.write_text("task:\n  model:\n    encoder:\n      any:\n"
                      f"        keep_k_schedule: {stages}\n")
    with pytest.raises(UserError, match=message):
        resolve(f"--config_file={config}", f"--params_override={DUMMY}",
                tmp_path=tmp_path)
    assert not (tmp_path / "run").exists()


def test_schedule_fractions_refer_to_the_run_steps(tmp_path):
    config = tmp_path / "schedule.yaml"
    config.write_text("task:\n  model:\n    encoder:\n      any:\n"
                      "        keep_k_schedule: [{start_fraction: 0.0, "
                      "token_keep_k: 128}, {start_fraction: 0.5, "
                      "token_keep_k: 64}]\n")
    params = resolve(f"--config_file={config}", "--params_override="
                     f"trainer.train_steps=300,{DUMMY}", tmp_path=tmp_path)
    assert params.task.keep_k_schedule_steps == 300


def test_model_dir_that_is_or_is_under_a_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for model_dir, message in ((afile, "is a file"),
                               (afile / "run", "which is a file")):
        with pytest.raises(UserError, match=f"--model_dir='{model_dir}' "
                           f".*{message}"):
            resolve(f"--params_override={DUMMY}", model_dir=str(model_dir))


def test_eval_without_a_checkpoint_is_refused(tmp_path):
    with pytest.raises(UserError, match="--mode=eval needs a checkpoint"):
        resolve(f"--params_override={DUMMY}", mode="eval", tmp_path=tmp_path)


def _example(features):
    return tf.train.Example(features=tf.train.Features(
        feature=features)).SerializeToString()


def test_text_records_for_the_masked_record_task(tmp_path):
    path = str(tmp_path / "text.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(_example({"text": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[b"some words"]))}))
    with pytest.raises(UserError, match="are raw text .*--output_format="
                       "static"):
        resolve(f"--params_override=task.train_data.input_path={path}",
                mode="train", tmp_path=tmp_path)


def test_records_that_do_not_fit_the_config(records, tmp_path):
    both = (f"task.train_data.input_path={records[0]},"
            f"task.validation_data.input_path={records[1]}")
    with pytest.raises(UserError, match=(
            r"task.train_data.seq_length=128 but the records in .* have 32 "
            r"values of input_word_ids; set task.train_data.seq_length=32")):
        resolve(f"--params_override={both}", tmp_path=tmp_path)
    shape = ("task.train_data.seq_length=32,task.validation_data.seq_length="
             "32,task.train_data.max_predictions_per_seq=5,task."
             "validation_data.max_predictions_per_seq=5,task.model.encoder."
             "any.token_keep_k=16")
    with pytest.raises(UserError, match=(
            r"hold token id 1[5-9]\d but the encoder's vocab_size=150")):
        resolve(f"--params_override={both},{shape},"
                "task.model.encoder.any.vocab_size=150", tmp_path=tmp_path)


@pytest.fixture(scope="module")
def odd_vocab_records(tmp_path_factory):
    """Records whose vocab puts [PAD] at 3 and [CLS] [SEP] [MASK] at 0-2."""
    folder = tmp_path_factory.mktemp("odd_vocab")
    words = "the cat sat on a mat and dog ran far away".split()
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]"]
                               + words) + "\n")
    text = folder / "corpus.txt"
    text.write_text("\n\n".join(
        "\n".join(f"{words[(d + s) % 11]} {words[(d * s) % 11]} "
                  f"{words[(d + 2 * s) % 11]} {words[d % 11]}."
                  for s in range(3)) + f" {d}"
        for d in range(60)))
    return data.build_pretraining_data(data.PrepareDataConfig(
        input_files=str(text), vocab_file=str(vocab), seq_length=32,
        max_predictions_per_seq=5, num_train_shards=1), str(folder / "out"))


def test_an_explicit_allow_list_wins_over_the_manifest(odd_vocab_records,
                                                       tmp_path):
    info = odd_vocab_records
    base = (f"task.train_data.input_path={info.train_input_path},"
            f"task.validation_data.input_path={info.validation_input_path},"
            "task.train_data.seq_length=32,task.validation_data.seq_length="
            "32,task.train_data.max_predictions_per_seq=5,task."
            "validation_data.max_predictions_per_seq=5,task.model.encoder."
            "any.token_keep_k=16,task.model.encoder.any.vocab_size=200")
    filled = resolve(f"--params_override={base}", tmp_path=tmp_path)
    encoder = filled.task.model.encoder.any
    assert tuple(encoder.token_allow_list) == (4, 0, 1, 2)  # from the manifest
    assert tuple(encoder.token_deny_list) == (3,)

    warnings = []
    logging.get_absl_logger().addFilter(
        lambda record: warnings.append(record.getMessage()) or True)
    explicit = resolve(
        f"--params_override={base},task.model.encoder.any.token_allow_list="
        "[0,1,2,4,5]", tmp_path=tmp_path)
    encoder = explicit.task.model.encoder.any
    assert tuple(encoder.token_allow_list) == (0, 1, 2, 4, 5)  # the user's
    assert tuple(encoder.token_deny_list) == (3,)  # default: the manifest's
    assert any("token_allow_list=(0, 1, 2, 4, 5) differs from the special "
               "tokens" in w for w in warnings), warnings


def _cut_short(prefix):
    data = tf.io.gfile.glob(f"{prefix}.data-*")[0]
    with open(data, "rb") as f:
        content = f.read()
    with open(data, "wb") as f:
        f.write(content[:len(content) // 2])


def test_a_checkpoint_cut_short_is_one_line_naming_the_usable_ones(tmp_path):
    model_dir = tmp_path / "run"
    checkpoint = tf.train.Checkpoint(
        table=tf.Variable(tf.range(1000.0)), step=tf.Variable(0))
    manager = tf.train.CheckpointManager(checkpoint, str(model_dir),
                                         max_to_keep=5)
    paths = [manager.save() for _ in range(4)]
    _cut_short(paths[3])
    _cut_short(paths[1])  # not usable either
    with pytest.raises(UserError) as e:
        resolve(f"--params_override={DUMMY}", model_dir=str(model_dir))
    message = str(e.value)
    assert message.startswith(f"checkpoint {paths[3]} is damaged or cut short "
                              "(Read less bytes than requested); earlier "
                              f"checkpoints that read whole: {paths[2]}, "
                              f"{paths[0]}. To resume from ckpt-3, "), message
    assert "\n" not in message
    assert f"set model_checkpoint_path in {model_dir}/checkpoint" in message


def test_a_smaller_records_vocab_is_a_warning_with_both_sizes(
        odd_vocab_records, tmp_path):
    info = odd_vocab_records
    warnings = []
    logging.get_absl_logger().addFilter(
        lambda record: warnings.append(record.getMessage()) or True)
    resolve(f"--params_override=task.train_data.input_path="
            f"{info.train_input_path},task.validation_data.input_path="
            f"{info.validation_input_path},task.train_data.seq_length=32,"
            "task.validation_data.seq_length=32,task.train_data."
            "max_predictions_per_seq=5,task.validation_data."
            "max_predictions_per_seq=5,task.model.encoder.any.token_keep_k=16,"
            "task.model.encoder.any.vocab_size=200", tmp_path=tmp_path)
    assert any(f"task.vocab_file={info.vocab_file} has 16 pieces but "
               "task.model.encoder.any.vocab_size=200: the ids fit" in w
               for w in warnings), warnings


def test_a_vocab_file_larger_than_the_model_is_refused(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(f"piece{i}\n" for i in range(300)))
    with pytest.raises(UserError, match=(
            rf"task.vocab_file='{vocab}' has 300 pieces but task.model."
            r"encoder.any.vocab_size=200: ids up to 299 cannot fit; set "
            r"task.model.encoder.any.vocab_size=300\.")):
        resolve(f"--params_override={DUMMY},task.vocab_file={vocab},"
                "task.model.encoder.any.vocab_size=200", tmp_path=tmp_path)


@pytest.mark.parametrize("content", ['{"format": "bert_pretrain_v2", "spl',
                                     '{"format": "bert_pretrain_v2"}', "[]"],
                         ids=["cut_short", "incomplete", "not_an_object"])
def test_a_damaged_manifest_is_one_line_naming_it(odd_vocab_records,
                                                  tmp_path, content):
    import shutil  # pylint: disable=import-outside-toplevel
    folder = tmp_path / "data"
    shutil.copytree(odd_vocab_records.output_dir, folder)
    (folder / "manifest.json").write_text(content)
    train = odd_vocab_records.train_input_path.replace(
        odd_vocab_records.output_dir, str(folder))
    with pytest.raises(UserError, match=(
            rf"^{folder}/manifest.json is damaged \(.*\); remove it and "
            r"prepare the dataset again \(tools/prepare_data.py\)\.$")):
        resolve(f"--params_override=task.train_data.input_path={train},"
                f"task.validation_data.input_path={train}",
                tmp_path=tmp_path)

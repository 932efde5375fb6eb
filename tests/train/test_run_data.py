"""train/run_data.py: the data step's branches, called directly.

The manifest, the default corpus and most record checks are exercised
through the driver in tests/train/test_checks.py and test_training.py; here
the branches those leave out, each against records written in the test.
"""

import pytest
import tensorflow as tf
from official.core import exp_factory

import token_dropping  # noqa: F401  (registers the experiments)
from helpers import write_records
from token_dropping.common.errors import UserError
from token_dropping.train import finetuning_experiments  # noqa: F401
from token_dropping.train.run_data import resolve_data

SHAPE = dict(seq_length=32, max_predictions_per_seq=5)


def tiny(train_path, validation_path="", **data):
    """token_drop_bert_tiny reading 32-token records of ids below 200."""
    params = exp_factory.get_exp_config("token_drop_bert_tiny")
    params.override({"task": {
        "model": {"encoder": {"any": {"vocab_size": 200}}},
        "train_data": dict(SHAPE, input_path=train_path, **data),
        "validation_data": dict(SHAPE, input_path=validation_path)}})
    return params


def write_v1_records(path):
    """One record with Model Garden's v1 feature names."""
    ints = lambda n: tf.train.Feature(
        int64_list=tf.train.Int64List(value=[1] * n))
    feature = dict(input_ids=ints(32), input_mask=ints(32),
                   segment_ids=ints(32), masked_lm_positions=ints(5),
                   masked_lm_ids=ints(5), masked_lm_weights=tf.train.Feature(
                       float_list=tf.train.FloatList(value=[1.0] * 5)))
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(tf.train.Example(features=tf.train.Features(
            feature=feature)).SerializeToString())
    return path


def test_every_pattern_of_a_comma_separated_path_must_match(tmp_path):
    good = write_records(str(tmp_path / "train.tfrecord"))
    missing = str(tmp_path / "nothing-*")
    with pytest.raises(UserError, match=(
            r"^task.train_data.input_path: no file matches '.*nothing-\*'. "
            r"Build records with tools/prepare_data.py")):
        resolve_data(tiny(f"{good},{missing}"), "train")
    resolve_data(tiny(f"{good},{good}"), "train")  # both match: fine


def test_a_directory_as_input_path_names_the_files_to_give(tmp_path):
    """tf.data read it mid-run: "Is a directory [Op:IteratorGetNext]"."""
    folder = tmp_path / "data"
    folder.mkdir()
    write_records(str(folder / "train-00000-of-00001.tfrecord"))
    with pytest.raises(UserError) as error:
        resolve_data(tiny(str(folder)), "train")
    assert str(error.value) == (
        f"task.train_data.input_path: {str(folder)!r} matches the directory "
        f"{str(folder)!r}; name the record files in it, e.g. "
        f"{folder}/train-*.")


def test_the_first_file_of_the_first_pattern_is_the_one_checked(tmp_path):
    good = write_records(str(tmp_path / "a.tfrecord"))
    empty = str(tmp_path / "b.tfrecord")
    with tf.io.TFRecordWriter(empty):
        pass
    with pytest.raises(UserError, match=r"b.tfrecord has no records"):
        resolve_data(tiny(f"{empty},{good}"), "train")
    resolve_data(tiny(f"{good},{empty}"), "train")  # the empty one not read
    # Within one pattern the matches are sorted: a.tfrecord comes first.
    resolve_data(tiny(str(tmp_path / "*.tfrecord")), "train")


def test_a_file_that_is_not_records_is_one_line(tmp_path):
    path = tmp_path / "notes.tfrecord"
    path.write_text("not a TFRecord file, just words\n")
    with pytest.raises(UserError, match=(
            r"^task.train_data.input_path: cannot read a record from "
            r".*notes.tfrecord: ")) as error:
        resolve_data(tiny(str(path)), "train")
    assert "\n" not in str(error.value)


def test_v1_feature_names_when_the_config_reads_them(tmp_path):
    path = write_v1_records(str(tmp_path / "v1.tfrecord"))
    resolve_data(tiny(path, use_v2_feature_names=False), "train")
    with pytest.raises(UserError, match=(
            r"lack the features \['input_type_ids', 'input_word_ids'\] this "
            r"experiment reads \(they have \['input_ids', 'input_mask',")):
        resolve_data(tiny(path), "train")  # the experiment's v2 names


def test_only_the_splits_the_mode_reads(tmp_path):
    good = write_records(str(tmp_path / "train.tfrecord"))
    params = tiny(good, validation_path=str(tmp_path / "no-such-*"))
    resolve_data(params, "train")  # validation_data is not read
    with pytest.raises(UserError, match=r"task.validation_data.input_path: "
                       r"no file matches"):
        resolve_data(params, "train_and_eval")


def test_fine_tuning_records_of_another_length_are_named(tmp_path):
    """Model Garden's parser failed mid-run ("Can't parse serialized
    Example") after params.yaml was written."""
    path = str(tmp_path / "sst2_train.tf_record")
    with tf.io.TFRecordWriter(path) as writer:
        ints = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(
            value=v))
        writer.write(tf.train.Example(features=tf.train.Features(feature=dict(
            input_ids=ints([101, 7, 102]), input_mask=ints([1, 1, 1]),
            segment_ids=ints([0, 0, 0]), label_ids=ints([1])))).
            SerializeToString())
    params = exp_factory.get_exp_config("bert/sentence_prediction")
    params.task.train_data.input_path = path
    params.task.train_data.seq_length = 16
    with pytest.raises(UserError) as error:
        resolve_data(params, "train")
    assert str(error.value) == (
        f"task.train_data.seq_length=16 but the records in {path} were made "
        "with max_seq_length=3; set task.train_data.seq_length=3 (or remake "
        "the records).")
    params.task.train_data.seq_length = 3
    resolve_data(params, "train")
    # A file that is not records (SQuAD's dev JSON) is the loader's.
    other = tmp_path / "dev.json"
    other.write_text('{"data": []}')
    params.task.train_data.input_path = str(other)
    resolve_data(params, "train")


def test_model_garden_fake_data_is_left_alone():
    params = tiny("dummy", validation_path="dummy")
    resolve_data(params, "train_and_eval")  # no glob, no default corpus
    assert params.task.train_data.input_path == "dummy"
    assert params.task.validation_data.input_path == "dummy"


def test_fine_tuning_needs_its_data():
    params = exp_factory.get_exp_config("bert/sentence_prediction")
    # GLUE's TSV files go through our tool: Model Garden's script reads GLUE
    # only from TFDS.
    advice = (r"records with tools/finetuning_data.py for GLUE, or Model "
              r"Garden's official/nlp/data/create_finetuning_data.py for "
              r"SQuAD \(docs/export.md, \"Fine-tuning on GLUE and SQuAD\"\)")
    with pytest.raises(UserError, match=(
            r"^task.train_data.input_path is empty; fine-tuning needs its "
            rf"data: make {advice} and pass --params_override=")):
        resolve_data(params, "train")
    params.task.train_data.input_path = "/no/such/dir/train-*"
    with pytest.raises(UserError, match=(
            rf"no file matches '/no/such/dir/train-\*'. Make {advice}\.$")):
        resolve_data(params, "train")

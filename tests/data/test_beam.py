"""--runner: the per-file build on Apache Beam's DirectRunner.

The reference is the local multi-process build (`num_workers=2`) of the same
files and seed: Beam runs the same worker functions, so its records must be
the same, byte for byte, split by split.
"""

import os
import sys

import pytest
import tensorflow as tf

from data_testdata import bert_format, read_manifest, shard_records
from data_testdata import small_config, tiny_documents, write_text
from token_dropping.data import beam_build
from token_dropping.data import build_pretraining_data

pytest.importorskip("apache_beam", reason="the beam extra is not installed")

_SHAPE = dict(dupe_factor=2, shuffle_buffer_size=16, num_train_shards=2,
              num_validation_shards=1, validation_fraction=0.2)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Three text files and their local two-process build."""
    root = tmp_path_factory.mktemp("beam")
    paths = [write_text(root / f"part-{i}.txt",
                        bert_format(tiny_documents(12, seed=i)))
             for i in range(3)]
    pattern = str(root / "part-*.txt")
    local = str(root / "local")
    build_pretraining_data(small_config(pattern, num_workers=2, **_SHAPE),
                           local)
    return pattern, paths, local


@pytest.mark.parametrize("options", [
    "",
    # Beam's SDK workers in two more processes, each starting TensorFlow.
    pytest.param("direct_num_workers=2,--direct_running_mode=multi_processing",
                 marks=pytest.mark.slow),
])
def test_direct_runner_gives_the_local_workers_records(inputs, tmp_path,
                                                       options):
    pattern, _, local = inputs
    config = small_config(pattern, runner="DirectRunner",
                          beam_pipeline_options=options, **_SHAPE)
    info = build_pretraining_data(config, str(tmp_path / "beam"))
    expected = shard_records(local)
    assert set(expected) == {"train-00000-of-00002.tfrecord",
                             "train-00001-of-00002.tfrecord",
                             "validation-00000-of-00001.tfrecord"}
    assert all(len(records) > 5 for records in expected.values())
    assert shard_records(info.output_dir) == expected
    beam_manifest, local_manifest = (read_manifest(info.output_dir),
                                     read_manifest(local))
    assert beam_manifest["splits"] == local_manifest["splits"]
    assert beam_manifest["fingerprint"] == local_manifest["fingerprint"]
    assert (beam_manifest["num_duplicate_documents"] ==
            local_manifest["num_duplicate_documents"])
    assert not [n for n in os.listdir(info.output_dir) if n.startswith(".")]


def test_output_without_folder_renames_gets_the_same_records(inputs):
    """Workers write through tf.io.gfile: `ram://` stands in for `gs://`."""
    pattern, _, local = inputs
    config = small_config(pattern, runner="DirectRunner", **_SHAPE)
    info = build_pretraining_data(config, "ram://beam/in_place")
    assert ".run-" in info.train_input_path
    for pattern_name, prefix in (("train_input_path", "train"),
                                 ("validation_input_path", "validation")):
        paths = sorted(tf.io.gfile.glob(getattr(info, pattern_name)))
        expected = {n: r for n, r in shard_records(local).items()
                    if n.startswith(prefix)}
        assert [[r.numpy() for r in tf.data.TFRecordDataset(p)]
                for p in paths] == list(expected.values())
    assert sorted(n.split(".run-")[0] for n in tf.io.gfile.listdir(
        "ram://beam/in_place")) == [
        "manifest.json", "special_tokens", "train-00000-of-00002",
        "train-00001-of-00002", "validation-00000-of-00001", "vocab"]


def test_a_complete_local_build_is_found_not_rebuilt(inputs):
    """The runner is not in the fingerprint: it does not change the records."""
    pattern, _, local = inputs
    before = os.path.getmtime(os.path.join(local, "manifest.json"))
    config = small_config(pattern, runner="DirectRunner", **_SHAPE)
    info = build_pretraining_data(config, local)
    assert info.output_dir == local
    assert os.path.getmtime(os.path.join(local, "manifest.json")) == before


@pytest.mark.parametrize("change, message", [
    (dict(runner="LocalRunner"), "runner='LocalRunner' is not one of "
     "DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, PortableRunner"),
    (dict(runner="DirectRunner", num_workers=2),
     "num_workers=2 and runner='DirectRunner' are both set"),
    (dict(beam_pipeline_options="direct_num_workers=2"),
     "needs a runner"),
    (dict(runner="DirectRunner", input_files=""),
     "runner='DirectRunner' needs input_files"),
    (dict(runner="DirectRunner", beam_pipeline_options="direct_num_workrs=2"),
     "direct_num_workrs is not an option of Apache Beam"),
    (dict(runner="DirectRunner", beam_pipeline_options="direct_num_workers=x"),
     "argument --direct_num_workers: invalid int value: 'x'"),
    (dict(runner="DirectRunner", beam_pipeline_options="a=1,,b=2"),
     "has an empty option"),
    (dict(runner="DirectRunner", beam_pipeline_options="runner=FlinkRunner"),
     "sets the runner; give it as runner"),
    (dict(runner="DataflowRunner", beam_pipeline_options="project=p"),
     "needs input_files and output_dir on Cloud Storage"),
])
def test_bad_runner_or_option_is_one_line_before_anything_is_written(
        inputs, tmp_path, change, message):
    pattern, _, _ = inputs
    config = small_config(**{"input_files": pattern, **change})
    with pytest.raises(ValueError, match=message) as raised:
        build_pretraining_data(config, str(tmp_path / "out"))
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_dataflow_reads_each_input_pattern_as_written():
    """Spaces after commas and a trailing comma name no local file."""
    config = small_config("gs://b/wiki/*.txt, gs://b/books.txt,",
                          runner="DataflowRunner",
                          beam_pipeline_options="project=p")
    beam_build.check(config, "gs://b/out")  # no error: all on Cloud Storage
    config = small_config("gs://b/wiki/*.txt, /home/me/books.txt",
                          runner="DataflowRunner",
                          beam_pipeline_options="project=p")
    with pytest.raises(ValueError, match="'/home/me/books.txt' is local"):
        beam_build.check(config, "gs://b/out")


def test_without_the_beam_extra_a_runner_says_how_to_install_it(
        inputs, tmp_path, monkeypatch):
    pattern, _, _ = inputs
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # Import fails.
    config = small_config(pattern, runner="DirectRunner")
    with pytest.raises(ValueError, match=(
            r"runner='DirectRunner' needs Apache Beam, which is not installed "
            r".*; install the extra: pip install token-dropping\[beam\]\.")):
        build_pretraining_data(config, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()

"""Output on file systems without folder renames (GCS): files written in place
under final names marked with a run id, the manifest last. Tested on the
`ram://` file system of tf.io.gfile, and on a local folder through the same
code."""

import os

import pytest
import tensorflow as tf

from data_testdata import bert_format, small_config, tiny_documents, write_text
from token_dropping.data import build_pretraining_data
from token_dropping.data import dataset_dir
from token_dropping.data import split_writer


def _config(path, **kwargs):
    settings = dict(dupe_factor=2, shuffle_buffer_size=16,
                    num_train_shards=2, validation_fraction=0.2)
    settings.update(kwargs)
    return small_config(path, **settings)


def _shards(pattern):
    """The records of each shard, in shard order."""
    return [[r.numpy() for r in tf.data.TFRecordDataset(path)]
            for path in sorted(tf.io.gfile.glob(pattern))]


def _corpus(tmp_path, seed=0):
    return write_text(tmp_path / "docs.txt",
                      bert_format(tiny_documents(30, seed=seed)))


def test_ram_output_has_the_records_of_a_local_build(tmp_path):
    config = _config(_corpus(tmp_path))
    local = build_pretraining_data(config, str(tmp_path / "local"))
    output_dir = "ram://prepared/in_place"
    remote = build_pretraining_data(config, output_dir)
    assert remote.train_input_path.startswith(output_dir + "/train-")
    assert ".run-" in remote.train_input_path
    for split in ("train_input_path", "validation_input_path"):
        assert (_shards(getattr(remote, split)) ==
                _shards(getattr(local, split)))
    with tf.io.gfile.GFile(remote.vocab_file) as f, open(local.vocab_file) as g:
        assert f.read() == g.read()
    assert remote.token_deny_list == local.token_deny_list
    # Found again, not rebuilt.
    again = build_pretraining_data(config, output_dir)
    assert again.train_input_path == remote.train_input_path

    # An input rewritten at the same path: built again, the old run removed.
    _corpus(tmp_path, seed=1)
    rebuilt = build_pretraining_data(_config(str(tmp_path / "docs.txt")),
                                     output_dir)
    assert rebuilt.train_input_path != remote.train_input_path
    names = tf.io.gfile.listdir(output_dir)
    run = rebuilt.train_input_path.split(".run-")[1][:12]
    assert sorted(n for n in names if f".run-{run}" not in n) == [
        "manifest.json"]
    assert len(names) == 1 + 2 + 1 + 2  # vocab, special tokens, 3 shards.
    tf.io.gfile.rmtree(output_dir)


@pytest.fixture
def in_place(monkeypatch):
    """Local folders written as on GCS."""
    monkeypatch.setattr(dataset_dir, "writes_in_place", lambda path: True)


def test_a_failed_in_place_build_leaves_its_files_out(tmp_path, in_place,
                                                      monkeypatch):
    config = _config(_corpus(tmp_path))
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    # A killed earlier run's files: ours by their run mark, so accepted.
    stale = output_dir / "train-00000-of-00002.run-0123456789ab.tfrecord"
    stale.write_bytes(b"")

    def fail(self):
        raise RuntimeError("disk full")
    monkeypatch.setattr(split_writer.SplitWriter, "close", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        build_pretraining_data(config, str(output_dir))
    assert os.listdir(output_dir) == [stale.name]

    monkeypatch.undo()
    monkeypatch.setattr(dataset_dir, "writes_in_place", lambda path: True)
    info = build_pretraining_data(config, str(output_dir))
    assert not stale.exists()
    assert len(tf.io.gfile.glob(info.train_input_path)) == 2
    assert "manifest.json" in os.listdir(output_dir)


def test_someone_elses_files_are_still_refused(tmp_path, in_place):
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    (output_dir / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="no manifest.json"):
        build_pretraining_data(_config(_corpus(tmp_path)), str(output_dir))
    assert os.listdir(output_dir) == ["notes.txt"]


def test_a_run_left_beside_a_complete_dataset_is_removed_when_reused(
        tmp_path, in_place):
    """A build killed after its manifest was written, before it removed the
    earlier run's files: DIR/train-* would read both runs' shards."""
    config = _config(_corpus(tmp_path))
    output_dir = tmp_path / "out"
    info = build_pretraining_data(config, str(output_dir))
    pattern = str(output_dir / "train-*")
    shards = sorted(tf.io.gfile.glob(pattern))
    stale = output_dir / "train-00000-of-00002.run-0123456789ab.tfrecord"
    stale.write_bytes(b"")
    again = build_pretraining_data(config, str(output_dir))
    assert again == info
    assert not stale.exists()
    assert sorted(tf.io.gfile.glob(pattern)) == shards

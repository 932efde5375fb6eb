"""common/checkpoint_graph.py: matching a checkpoint's object graph without
restoring, on a tiny tf.Module tree saved in the test."""

import os

import pytest
import tensorflow as tf

from token_dropping.common import checkpoint_graph as cg
from token_dropping.common.errors import UserError


def net(kernel=(2, 3), table=True, extra=False):
    """model/dense/{kernel,bias} and model/table."""
    root = tf.Module()
    root.dense = tf.Module()
    root.dense.kernel = tf.Variable(tf.zeros(kernel))
    root.dense.bias = tf.Variable(tf.zeros([kernel[1]]))
    if table:
        root.table = tf.Variable(tf.zeros([5]))
    if extra:
        root.dense.extra = tf.Variable(1.0)
    return root


@pytest.fixture
def saved(tmp_path):
    """(graph, reader, node id of `model`) of a checkpoint of `net()`."""
    path = tf.train.Checkpoint(model=net()).write(str(tmp_path / "ckpt"))
    reader = tf.train.load_checkpoint(path)
    graph = cg.object_graph(reader, path)
    return graph, reader, cg.follow(graph, cg.ROOT, ("model",))


def test_paths_and_keys_as_a_restore_finds_them(saved):
    graph, reader, model = saved
    found = cg.checkpoint_variables(graph, model)
    assert set(found) == {("dense", "kernel"), ("dense", "bias"), ("table",)}
    assert set(cg.python_variables(net())) == set(found)
    kernel = cg.follow(graph, model, ("dense", "kernel"))
    assert kernel == found[("dense", "kernel")]
    key = cg.variable_key(graph, kernel)
    assert key == "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    assert reader.get_variable_to_shape_map()[key] == [2, 3]
    assert cg.variable_key(graph, model) is None  # not a variable
    assert cg.follow(graph, model, ("dense", "nothing")) is None


def test_first_shape_mismatch(saved):
    graph, reader, model = saved
    assert cg.first_shape_mismatch(graph, reader, model, net()) is None
    assert cg.first_shape_mismatch(graph, reader, model, net(kernel=(2, 4))) \
        == (("dense", "bias"), [3], [4])  # sorted paths: bias before kernel
    # A variable the checkpoint lacks is no mismatch (a restore skips it).
    assert cg.first_shape_mismatch(graph, reader, model, net(extra=True)) \
        is None


def test_check_same_variables_names_the_first_difference(saved):
    graph, reader, model = saved
    cg.check_same_variables(graph, reader, model, net(), "encoder:")
    cg.check_same_variables(graph, reader, model, net(table=False),
                            "encoder:", ignore=("table",))
    for root, message in (
            (net(kernel=(2, 4)), "encoder: dense/bias has shape [3] in the "
             "checkpoint but [4] in the encoder."),
            (net(extra=True), "encoder: the checkpoint lacks 1 of its "
             "variables, e.g. dense/extra."),
            (net(table=False), "encoder: the checkpoint has 1 encoder "
             "variables it lacks, e.g. table.")):
        with pytest.raises(UserError) as error:
            cg.check_same_variables(graph, reader, model, root, "encoder:")
        assert str(error.value) == message


def test_a_name_based_checkpoint_is_one_line(tmp_path):
    prefix = str(tmp_path / "v1")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=["x"],
                      shape_and_slices=[""], tensors=[tf.constant(1.0)])
    with pytest.raises(UserError, match=r"^old.ckpt is not an object-based "
                       r"\(TF2\) checkpoint.$"):
        cg.object_graph(tf.train.load_checkpoint(prefix), "old.ckpt")


def test_a_cut_short_checkpoint_names_the_earlier_ones_that_read(tmp_path):
    root = tf.train.Checkpoint(model=net())
    manager = tf.train.CheckpointManager(root, str(tmp_path), max_to_keep=3)
    paths = [manager.save() for _ in range(3)]
    assert all(cg.unreadable(p) is None for p in paths)
    cg.check_readable(paths[-1], lambda earlier: "")  # reads whole
    cg.check_readable(None, lambda earlier: "")  # nothing to check
    data = paths[-1] + ".data-00000-of-00001"
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 2)
    assert cg.unreadable(paths[-1])
    told = []
    with pytest.raises(UserError) as error:
        cg.check_readable(paths[-1], lambda earlier: told.append(earlier)
                          or "Use an earlier one.")
    message = str(error.value)
    assert message.startswith(f"checkpoint {paths[-1]} is damaged or cut "
                              "short (")
    assert message.endswith(
        f"earlier checkpoints that read whole: {paths[1]}, {paths[0]}. "
        "Use an earlier one.")  # newest first
    assert told == [[paths[1], paths[0]]] and "\n" not in message

"""Walks a TF2 checkpoint's object graph the way a restore does.

`tf.train.Checkpoint.read` matches Python objects to saved values by their
attribute paths in the checkpoint's `TrackableObjectGraph`. These helpers do
the same matching without restoring, so a checkpoint that does not fit (a
different hidden size, a missing layer) is named with both shapes before a
training run overwrites `params.yaml` or an export writes anything.
`check_readable` reads every saved value once, so a checkpoint cut short
(TensorFlow's `IndexError: Read less bytes than requested`) or damaged is
one line naming it and the earlier checkpoints that read whole.
"""

import os

import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from token_dropping.common.errors import UserError
from token_dropping.common.errors import first_line

ROOT = 0  # node id of the object the checkpoint was saved from


# What TensorFlow's checkpoint reader raises for a cut-short or damaged file.
_READ_ERRORS = (IndexError, ValueError, tf.errors.OpError)


def unreadable(path):
    """Why checkpoint `path` cannot be read whole (one line), or None.

    Every value is read once through `tf.train.load_checkpoint`, which
    checks each against the sizes and checksums in the index.
    """
    try:
        reader = tf.train.load_checkpoint(path)
        for key in sorted(reader.get_variable_to_shape_map()):
            reader.get_tensor(key)
    except _READ_ERRORS as e:
        return first_line(e)
    return None


def check_readable(path, remedy):
    """Raises UserError if checkpoint `path` does not read whole, naming it,
    what failed and the earlier checkpoints of its directory (its
    `checkpoint` file, newest first) that do read.

    Args:
        path: str. A checkpoint prefix (`.../ckpt-8`); None checks nothing.
        remedy: callable(list of usable paths) -> str. What the user can do,
            e.g. "pass --checkpoint=... to export an earlier one".
    """
    if not path:
        return
    problem = unreadable(path)
    if problem is None:
        return
    state = tf.train.get_checkpoint_state(os.path.dirname(path))
    earlier = list(state.all_model_checkpoint_paths) if state else []
    earlier = [p for p in reversed(earlier[:earlier.index(path)]
                                   if path in earlier else earlier)
               if p != path and unreadable(p) is None]
    usable = (f"earlier checkpoints that read whole: {', '.join(earlier)}"
              if earlier else "no earlier checkpoint there reads whole")
    raise UserError(f"checkpoint {path} is damaged or cut short ({problem}); "
                    f"{usable}. {remedy(earlier)}")


def object_graph(reader, source):
    """The `TrackableObjectGraph` of a checkpoint (a `CheckpointReader`)."""
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    try:
        graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    except (tf.errors.NotFoundError, ValueError):
        raise UserError(f"{source} is not an object-based (TF2) "
                        "checkpoint.") from None
    return graph


def variable_key(graph, node_id):
    """The checkpoint key of a variable's value, or None for other objects."""
    for attribute in graph.nodes[node_id].attributes:
        if attribute.name == "VARIABLE_VALUE":
            return attribute.checkpoint_key
    return None


def follow(graph, node_id, path):
    """The object at `path` below `node_id`, as a restore finds it; or None."""
    for name in path:
        children = {c.local_name: c.node_id
                    for c in graph.nodes[node_id].children}
        if name not in children:
            return None
        node_id = children[name]
    return node_id


def checkpoint_variables(graph, node_id):
    """`{path: node_id}` of the variables under one object, each by its first
    path breadth first."""
    found, seen, queue = {}, {node_id}, [((), node_id)]
    while queue:
        path, node_id = queue.pop(0)
        if variable_key(graph, node_id):
            found[path] = node_id
        for child in graph.nodes[node_id].children:
            if child.node_id not in seen:
                seen.add(child.node_id)
                queue.append((path + (child.local_name,), child.node_id))
    return found


def python_variables(root):
    """`{path: variable}` under one Python object, each by its first path."""
    found, seen, queue = {}, {id(root)}, [((), root)]
    while queue:
        path, obj = queue.pop(0)
        if isinstance(obj, tf.Variable):
            found[path] = obj
            continue
        for name, child in tf.train.TrackableView.children(obj).items():
            if id(child) not in seen:
                seen.add(id(child))
                queue.append((path + (name,), child))
    return found


def first_shape_mismatch(graph, reader, node_id, root):
    """`(path, saved_shape, python_shape)` of the first variable of `root`
    whose saved value under `node_id` has another shape; None if all fit.

    Variables the checkpoint lacks are not mismatches (a restore leaves them
    as initialised); only a value that cannot be restored is.
    """
    shapes = reader.get_variable_to_shape_map()
    for path, variable in sorted(python_variables(root).items()):
        saved = follow(graph, node_id, path)
        key = variable_key(graph, saved) if saved is not None else None
        if key is not None and list(shapes[key]) != variable.shape.as_list():
            return path, list(shapes[key]), variable.shape.as_list()
    return None


def check_same_variables(graph, reader, node_id, root, prefix, ignore=()):
    """Raises UserError unless the object at `node_id` has exactly `root`'s
    variables, each with the same shape; top-level children named in
    `ignore` (e.g. the importance table) are left out.

    Each variable is looked up along its path the way a restore does; the
    checkpoint's other variables under `node_id` are the extra ones.
    """
    shapes = reader.get_variable_to_shape_map()
    missing, matched = [], set()
    for path, variable in sorted(python_variables(root).items()):
        saved = follow(graph, node_id, path)
        key = variable_key(graph, saved) if saved is not None else None
        if key is None:
            missing.append(path)
            continue
        matched.add(saved)
        if list(shapes[key]) != variable.shape.as_list():
            raise UserError(
                f"{prefix} {'/'.join(path)} has shape {list(shapes[key])} in "
                f"the checkpoint but {variable.shape.as_list()} in the "
                "encoder.")
    if missing:
        raise UserError(
            f"{prefix} the checkpoint lacks {len(missing)} of its variables, "
            f"e.g. {'/'.join(missing[0])}.")
    extra = sorted(path for path, saved in
                   checkpoint_variables(graph, node_id).items()
                   if saved not in matched and path[:1] not in
                   {(name,) for name in ignore})
    if extra:
        raise UserError(
            f"{prefix} the checkpoint has {len(extra)} encoder variables it "
            f"lacks, e.g. {'/'.join(extra[0])}.")

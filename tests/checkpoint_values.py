"""Comparing checkpoints by value: what "a resumed run equals the straight
run" means in the resume, multi-worker and study tests."""

import numpy as np
import tensorflow as tf


def checkpoint_values(path):
    """Every variable of the checkpoint at `path` but the save counter (the
    number of saves, which resuming changes by design); not the object
    graph, which names no values."""
    reader = tf.train.load_checkpoint(path)
    return {key: reader.get_tensor(key)
            for key in reader.get_variable_to_shape_map()
            if key.endswith("VARIABLE_VALUE")
            and not key.startswith("save_counter")}


def assert_same_values(values, reference, must_hold=("OPTIMIZER_SLOT",)):
    """The same variables, equal within float tolerance; `reference` holds a
    key containing each of `must_hold` (so the comparison covers them)."""
    assert sorted(values) == sorted(reference)
    for part in must_hold:
        assert any(part in key for key in reference), part
    for key, value in reference.items():
        np.testing.assert_allclose(values[key], value, rtol=1e-5, atol=1e-6,
                                   err_msg=key)

"""Test-session setup shared by every test.

The CPU is split into two logical devices before TensorFlow starts, so tests
can run `tf.distribute.MirroredStrategy` with two replicas on one machine.
Single-device code keeps using the first one.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402  (must follow the log-level setting)

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


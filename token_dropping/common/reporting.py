"""Writing measurements for people: CSV files and where they were measured.

Shared by the benchmark's report (`bench.report`) and the study's
(`study.report`); each turns its own plain data into tables and prose.
"""

import csv
import os
import platform

import tensorflow as tf


def describe_device():
    """A short name of the device the steps run on."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU: {model}, {os.cpu_count()} cores, no GPU"


def write_csv(path, rows, columns):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})


def describe_machine():
    """The device and TensorFlow version, for a study's summary."""
    return f"{describe_device()}; TensorFlow {tf.__version__}"

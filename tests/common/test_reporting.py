"""common/reporting.py: the CSV files and the machine line of the reports."""

import csv
import os

import tensorflow as tf

from token_dropping.common import reporting


def test_csv_has_the_columns_in_order_and_floats_to_six_digits(tmp_path):
    path = str(tmp_path / "rows.csv")
    rows = [dict(model="bert", seed=1, loss=2.0 / 3.0, flops=1.5e12),
            dict(model="drop", seed=2, loss=0.1, flops=123456789.0)]
    reporting.write_csv(path, rows, ["model", "seed", "loss", "flops"])
    with open(path, newline="") as f:
        lines = f.read().splitlines()
    assert lines == ["model,seed,loss,flops",
                     "bert,1,0.666667,1.5e+12",  # 6 significant digits
                     "drop,2,0.1,1.23457e+08"]


def test_csv_leaves_missing_columns_empty_and_ints_as_they_are(tmp_path):
    path = str(tmp_path / "rows.csv")
    reporting.write_csv(path, [dict(model="bert", step=10 ** 9)],
                        ["model", "step", "loss"])
    with open(path, newline="") as f:
        assert list(csv.DictReader(f)) == [
            dict(model="bert", step="1000000000", loss="")]


def test_machine_line_names_the_device_and_tensorflow():
    line = reporting.describe_machine()
    assert line.endswith(f"; TensorFlow {tf.__version__}")
    if not tf.config.list_physical_devices("GPU"):  # this test machine
        device = reporting.describe_device()
        assert line.startswith(device)
        assert device.startswith("CPU: ")
        assert device.endswith(f", {os.cpu_count()} cores, no GPU")

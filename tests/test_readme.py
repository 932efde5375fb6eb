"""Every command in the README's shell blocks parses, and says what it does.

Each `tools/*.py` command is parsed with its tool's own absl flags (not run);
each `tools/train.py` command also goes through `params_from_flags` and the
config checks, so an experiment, YAML file or override that no longer exists
fails here, and a `--tpu` command must resolve to TPUStrategy.
"""

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from absl import flags
from official.common import flags as tfm_flags

import token_dropping  # noqa: F401  (registers the experiments)
from token_dropping.train import checks as run_checks
from token_dropping.train import driver as training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if "experiment" not in flags.FLAGS:
    tfm_flags.define_flags()


def readme_commands():
    """`(tool, argv)` of every `tools/*.py` command in a ```sh block."""
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            match = re.match(r"^(?:\S*python\S*) (tools/\w+\.py)(.*)$", line)
            if match:
                commands.append((match.group(1), shlex.split(match.group(2))))
    return commands


def _with_variables(argv, export_dir):
    """$EXPORT, $DATA, ...: a real export folder's encoder.yaml for
    `--config_file=$EXPORT/encoder.yaml`, placeholders elsewhere."""
    return [re.sub(r"\$(\w+)", lambda m: export_dir if m.group(1) == "EXPORT"
                   else f"/data/{m.group(1).lower()}", a) for a in argv]


def test_the_readme_has_commands_for_every_tool():
    tools = {tool for tool, _ in readme_commands()}
    assert {"tools/train.py", "tools/prepare_data.py", "tools/export_bert.py",
            "tools/benchmark.py", "tools/study.py"} <= tools


def test_train_commands_parse_and_resolve(tmp_path):
    export_dir = str(tmp_path / "export")
    os.makedirs(export_dir)
    with open(os.path.join(export_dir, "encoder.yaml"), "w") as f:
        f.write("task:\n  model:\n    encoder:\n      type: bert_v2\n")
    commands = [argv for tool, argv in readme_commands()
                if tool == "tools/train.py"]
    assert len(commands) >= 5
    tpu_commands = 0
    for argv in commands:
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["train.py", *_with_variables(argv, export_dir)])
        params = training.params_from_flags(flags.FLAGS)
        run_checks.check_params(params, flags.FLAGS.mode)
        if flags.FLAGS.tpu:
            tpu_commands += 1
            assert params.runtime.distribution_strategy == "tpu", argv
        else:
            assert params.runtime.distribution_strategy != "tpu", argv
    assert tpu_commands >= 1


_PARSE = """
import importlib.util, json, sys
from absl import flags
spec = importlib.util.spec_from_file_location("tool", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
for argv in json.loads(sys.argv[2]):
    flags.FLAGS.unparse_flags()
    flags.FLAGS([sys.argv[1], *argv])
print("parsed", len(json.loads(sys.argv[2])))
"""


@pytest.mark.parametrize("tool", ["tools/prepare_data.py",
                                  "tools/export_bert.py",
                                  "tools/benchmark.py", "tools/study.py"])
def test_other_tool_commands_parse_with_their_flags(tool):
    commands = [_with_variables(argv, "/data/export")
                for name, argv in readme_commands() if name == tool]
    assert commands, tool
    done = subprocess.run(
        [sys.executable, "-c", _PARSE, os.path.join(ROOT, tool),
         json.dumps(commands)], capture_output=True, text=True, cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"parsed {len(commands)}" in done.stdout

"""What the README and the pages under docs/ tell a user to run exists.

Every `tools/*.py` command in a shell block (or an inline command of a
committed output) names a tool that exists and is parsed with that tool's own
flags (not run); each `tools/train.py` command also goes through
`params_from_flags` and the config checks, so an experiment, YAML file or
override that no longer exists fails here, and a `--tpu` command must resolve
to TPUStrategy. Links, repository paths, Python names and experiment names the
pages give resolve, and no page or committed output names a machine-local
path; the README stays a short guide whose code map is the package's tree and
whose headline figures are the committed results'. Nothing
here reads a sentence: rewording a page never fails a test.
"""

import glob
import importlib
import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from absl import flags
from official.common import flags as tfm_flags
from official.core import exp_factory

import token_dropping  # noqa: F401  (registers the experiments)
# What tools/train.py registers besides ours (bert/sentence_prediction, ...).
from token_dropping.train import finetuning_experiments  # noqa: F401
from token_dropping.train import checks as run_checks
from token_dropping.study import config as study_config
from token_dropping.study import sweep as study_sweep
from token_dropping.train import driver as training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "token_dropping")
README = os.path.join(ROOT, "README.md")
USER_TOOLS = {"tools/train.py", "tools/prepare_data.py", "tools/export_bert.py",
              "tools/finetuning_data.py", "tools/benchmark.py",
              "tools/study.py"}

if "experiment" not in flags.FLAGS:
    tfm_flags.define_flags()


def pages():
    """README.md and every markdown page under docs/, as repository paths."""
    found = glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)
    return ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in found)


def _text(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        return f.read()


def _code_spans(text):
    """Inline code spans outside fenced blocks."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.findall(r"`([^`\n]+)`", prose)


_COMMAND = re.compile(r"^(?:\w+=\S*\s+)*(?:\S*python3?\s+)?(tools/\w+\.py)"
                      r"(?:\s+(.*))?$")


def commands():
    """`(page, tool, argv)` of every `tools/*.py` command: the lines of
    ```sh/```bash blocks (a backslash-newline joins lines, as in a shell)
    and inline code spans that start with `python tools/`."""
    found = []
    for page in pages():
        text = _text(page)
        lines = []
        for block in re.findall(r"```(?:sh|bash|shell)\n(.*?)```", text,
                                flags=re.S):
            lines += block.replace("\\\n", "").splitlines()
        lines += [s for s in _code_spans(text) if s.startswith("python tools/")]
        for line in lines:
            line = re.split(r"(?:^|\s)#", line)[0].strip()
            match = _COMMAND.match(line)
            if match:
                found.append((page, match.group(1),
                              shlex.split(match.group(2) or "")))
    return found


def _with_variables(argv, export_dir):
    """$EXPORT, $DATA, ...: a real export folder's encoder.yaml for
    `--config_file=$EXPORT/encoder.yaml`, placeholders elsewhere."""
    return [re.sub(r"\$(\w+)", lambda m: export_dir if m.group(1) == "EXPORT"
                   else f"/data/{m.group(1).lower()}", a) for a in argv]


def _is_experiment(name):
    try:
        exp_factory.get_exp_config(name)
    except LookupError:
        return False
    return True


def test_the_pages_have_commands_for_every_tool_and_name_existing_tools():
    found = commands()
    assert USER_TOOLS <= {tool for _, tool, _ in found}
    missing = [(page, tool) for page, tool, _ in found
               if not os.path.isfile(os.path.join(ROOT, tool))]
    assert not missing, missing


def test_train_commands_parse_and_resolve(tmp_path):
    export_dir = str(tmp_path / "export")
    os.makedirs(export_dir)
    with open(os.path.join(export_dir, "encoder.yaml"), "w") as f:
        f.write("task:\n  model:\n    encoder:\n      type: bert_v2\n")
    train = [(page, argv) for page, tool, argv in commands()
             if tool == "tools/train.py"]
    assert len(train) >= 10
    tpu_commands = 0
    for page, argv in train:
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["train.py", *_with_variables(argv, export_dir)])
        params = training.params_from_flags(flags.FLAGS)
        run_checks.check_params(params, flags.FLAGS.mode)
        strategy = run_checks.strategy_name(params.runtime)
        if flags.FLAGS.tpu:
            tpu_commands += 1
            assert strategy == "tpu", (page, argv)
        else:
            assert strategy != "tpu", (page, argv)
    assert tpu_commands >= 2


# Loads each tool without running it, then parses each argv with its own
# parser: absl's flags (removed again before the next tool, whose flags may
# share names), or, for an argparse script, its main() stopped right after
# parse_args (no abbreviations: a flag is the name the script defines). One
# process for all tools: each start loads TensorFlow.
_PARSE = """
import argparse, importlib.util, json, os, sys
from absl import flags
class Parsed(Exception):
    pass
parse_args = argparse.ArgumentParser.parse_args
def parse_then_stop(self, args=None, namespace=None):
    parse_args(self, args, namespace)
    raise Parsed
argparse.ArgumentParser.parse_args = parse_then_stop
init = argparse.ArgumentParser.__init__
def init_without_abbreviations(self, *args, **kwargs):
    init(self, *args, **dict(kwargs, allow_abbrev=False))
argparse.ArgumentParser.__init__ = init_without_abbreviations
sys.path.insert(0, sys.argv[2])
for tool, commands in json.loads(sys.argv[1]).items():
    sys.path.insert(0, os.path.dirname(tool))
    before = set(flags.FLAGS)
    spec = importlib.util.spec_from_file_location("tool", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for argv in commands:
        print("parsing", tool, argv, flush=True)
        if hasattr(module, "argparse"):
            sys.argv = [tool, *argv]
            try:
                module.main()
            except Parsed:
                continue
            sys.exit(tool + ": main() did not parse its arguments")
        flags.FLAGS.unparse_flags()
        flags.FLAGS([tool, *argv])
    for name in set(flags.FLAGS) - before:
        delattr(flags.FLAGS, name)
    print("parsed", tool, len(commands), flush=True)
"""


def test_other_tool_commands_parse_with_their_flags():
    by_tool = {}
    for _, tool, argv in commands():
        if tool != "tools/train.py":
            by_tool.setdefault(os.path.join(ROOT, tool), []).append(
                _with_variables(argv, "/data/export"))
    assert len(by_tool) >= 5
    done = subprocess.run(
        [sys.executable, "-c", _PARSE, json.dumps(by_tool),
         os.path.join(ROOT, "tests")],
        capture_output=True, text=True, cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), check=False)
    assert done.returncode == 0, (done.stdout[-500:], done.stderr[-2000:])
    for tool, argvs in by_tool.items():
        assert f"parsed {tool} {len(argvs)}" in done.stdout


def test_study_commands_name_known_models():
    models = [(page, model) for page, tool, argv in commands()
              if tool == "tools/study.py" for arg in argv
              if arg.startswith("--models=")
              for model in arg.split("=", 1)[1].split(",")]
    assert len(models) >= 5
    # A point of a sweep (`token_drop.token_keep_k=32`): its model, and
    # settings the encoder has (split_name refuses others).
    names = [(page, study_sweep.split_name(m)[0]) for page, m in models]
    unknown = [(page, m) for page, m in names
               if m not in study_config.MODELS and not _is_experiment(m)]
    assert not unknown, unknown


def test_experiment_names_in_the_pages_are_registered():
    pattern = re.compile(r"(?:token_drop_)?bert_(?:tiny|mini|small|base|large)"
                         r"(?:_[a-z_]+)?")
    named = {(page, span) for page in pages() for span in
             _code_spans(_text(page)) if pattern.fullmatch(span)}
    assert len(named) >= 8
    unresolved = sorted(n for n in named if not _is_experiment(n[1]))
    assert not unresolved, unresolved


def _github_anchor(heading):
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page):
    return {_github_anchor(h) for h in
            re.findall(r"^#+ (.*)$", re.sub(r"```.*?```", "", _text(page),
                                             flags=re.S), flags=re.M)}


def test_links_resolve_to_files_and_headings():
    checked, broken = 0, []
    for page in pages():
        for target in re.findall(r"\]\(([^)\s]+)\)", _text(page)):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(page),
                                                     path)) if path else page
            checked += 1
            if not os.path.exists(os.path.join(ROOT, resolved)):
                broken.append((page, target))
            elif anchor and resolved.endswith(".md") and (
                    anchor not in _anchors(resolved)):
                broken.append((page, target))
    assert checked >= 30
    assert not broken, broken


def test_repository_paths_the_pages_name_exist():
    pattern = re.compile(r"(?:token_dropping|tools|tests|experiments|docs)/"
                         r"[\w./*{},-]*")
    checked, missing = 0, []
    for page in pages():
        for span in _code_spans(_text(page)):
            if not pattern.fullmatch(span):
                continue
            last = span.rsplit("/", 1)[1]
            if not (last == "" or "." in last or "*" in last):
                continue  # Not a file or folder: a TensorBoard tag.
            expanded = [span]
            while "{" in expanded[0]:  # docs/x.{json,md} -> docs/x.json, ...
                expanded = [re.sub(r"\{([^}]*)\}", choice, p, count=1)
                            for p in expanded for choice in
                            re.search(r"\{([^}]*)\}", p).group(1).split(",")]
            for path in expanded:
                checked += 1
                if not glob.glob(os.path.join(ROOT, path)):
                    missing.append((page, path))
    assert checked >= 20
    assert not missing, missing


def test_yaml_files_the_pages_name_exist():
    named = {(page, path) for page in pages()
             for path in re.findall(r"experiments/[\w.-]+\.yaml", _text(page))}
    assert len(named) >= 6
    unresolved = sorted(n for n in named
                        if not os.path.isfile(os.path.join(ROOT, n[1])))
    assert not unresolved, unresolved


def _resolves(dotted):
    """`token_dropping.a.b.Name`: the longest importable module prefix, then
    attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(value, name):
                return False
            value = getattr(value, name)
        return True
    return False


def test_python_names_the_pages_give_resolve():
    names = set()
    for page in pages():
        text = _text(page)
        for module, imported in re.findall(
                r"from (token_dropping[\w.]*) import ([\w, ]+)", text):
            names.update((page, f"{module}.{n.strip()}")
                         for n in imported.split(",") if n.strip())
        names.update((page, m) for m in re.findall(
            r"^\s*import (token_dropping[\w.]*)", text, flags=re.M))
        names.update((page, s) for s in _code_spans(text)
                     if re.fullmatch(r"token_dropping(\.\w+)+", s))
    assert len(names) >= 4
    unresolved = sorted(n for n in names if not _resolves(n[1]))
    assert not unresolved, unresolved


def _readme_section(title):
    text = _text("README.md")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text,
                      flags=re.M | re.S)
    assert match, title
    return match.group(1)


def test_the_readme_is_a_short_guide():
    with open(README, encoding="utf-8") as f:
        assert len(f.read().splitlines()) <= 200


def test_the_readme_code_map_is_the_package_tree():
    code_map = _readme_section("Code map")
    spans = re.findall(r"`([^`]+)`", code_map)
    subpackages = {name for name in os.listdir(PACKAGE) if os.path.isfile(
        os.path.join(PACKAGE, name, "__init__.py"))}
    listed = {m.group(1) for s in spans
              if (m := re.fullmatch(r"token_dropping/(\w+)/", s))}
    assert listed == subpackages
    modules = {s for s in spans if re.fullmatch(r"\w+/\w+\.py", s)
               and s.split("/")[0] in subpackages}
    unresolved = sorted(m for m in modules if not os.path.isfile(
        os.path.join(PACKAGE, m)))
    assert not unresolved, unresolved
    core = {f"model/{name}" for name in os.listdir(
        os.path.join(PACKAGE, "model")) if name.endswith(".py")
        and not name.startswith("_")}
    assert core <= modules


def test_the_readme_results_are_the_committed_results():
    results = _readme_section("Results at a glance")
    sources = "".join(_text(p) for p in pages() if re.fullmatch(
        r"docs/(study|study_remedies|frontier|frontier_reach|"
        r"frontier_remedies)/summary\.md"
        r"|docs/benchmark/\w+\.md", p))
    figures = re.findall(r"(?<![\d.])[+-]?\d+\.\d{3}(?![\d.])", results)
    assert len(figures) >= 4
    # The study's paragraph quotes the committed study's summary, the
    # frontier's the committed frontier's (its finer-grid reading and its
    # remedies).
    study = results[results.index("**Does it pay?**"):]
    frontier = study[study.index("**Which way of dropping pays most?**"):]
    study = study[:-len(frontier)]
    for paragraph, summary, known in (
            (study, ["docs/study/summary.md"], {"0.755", "0.767"}),
            (frontier, ["docs/frontier/summary.md",
                        "docs/frontier_reach/summary.md",
                        "docs/frontier_remedies/summary.md"], set())):
        quoted = set(re.findall(r"(?<![\d.])[+-]?\d+\.\d{2,3}(?![\d.])",
                                paragraph)) - known
        assert len(quoted) >= 4, summary
        # Whole numbers only: "0.77" is not quoted by "0.778".
        text = "".join(_text(path) for path in summary)
        assert not [f for f in quoted if not re.search(
            rf"(?<![\d.]){re.escape(f)}(?!\d)", text)], (summary, quoted)
    quoted = set(re.findall(r"(?<![\d.])[+-]?\d+\.\d{3}(?![\d.])", sources))
    unresolved = sorted(set(figures) - quoted)
    assert not unresolved, unresolved


def test_no_page_or_committed_output_names_a_machine_local_path():
    files = ["README.md"] + [
        os.path.relpath(p, ROOT) for p in glob.glob(
            os.path.join(ROOT, "docs", "**", "*"), recursive=True)
        if p.endswith((".md", ".json", ".csv"))]
    local = re.compile(r"(?<![\w.~])/(?:work|root|home|tmp|Users)/")
    found = [(path, line.strip()[:80]) for path in files
             for line in _text(path).splitlines() if local.search(line)]
    assert len(files) >= 15
    assert not found, found

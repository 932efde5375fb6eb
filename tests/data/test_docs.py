"""What the docs pages and the experiment YAMLs say about prepared data is true.

The default corpus's figures are checked against a real build in
`test_data_default_dataset.py` (slow); these checks read files only.
"""

import ast
import glob
import os
import re

import yaml

from token_dropping.data import dataset_info

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(ROOT, "tools", "prepare_data.py")
_FLAG = re.compile(r"(?<![\w-])--(?:no)?([a-z][a-z0-9_]*)")


def _tool_flags() -> set[str]:
    """The flags tools/prepare_data.py defines, read from its source."""
    tree = ast.parse(open(TOOL).read())
    names = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr.startswith("DEFINE_") and node.args and
                isinstance(node.args[0], ast.Constant)):
            names.add(node.args[0].value)
        if (isinstance(node, ast.Assign) and
                any(getattr(t, "id", "") == "_HELP" for t in node.targets)):
            names.update(k.value for k in node.value.keys)
    return names | {"helpfull", "help"}


def _comment_sentences(path):
    """The sentences of a YAML file's comments, joined over lines."""
    comments = " ".join(line.split("#", 1)[1].strip() for line in open(path)
                        if "#" in line)
    return re.split(r"(?<=[.;])\s", comments)


def _prepare_data_mentions():
    """(where, text) of every command in the README's and docs/ pages' shell
    blocks (joined over backslashes) and YAML comment sentence that names the
    tool."""
    pages = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(
        os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    for page in pages:
        text = open(page, encoding="utf-8").read()
        for block in re.findall(r"```(?:sh|bash)\n(.*?)```", text, re.S):
            for command in block.replace("\\\n", " ").splitlines():
                if "prepare_data.py" in command:
                    yield os.path.relpath(page, ROOT), command
    for path in sorted(glob.glob(os.path.join(ROOT, "experiments", "*.yaml"))):
        for sentence in _comment_sentences(path):
            if "prepare_data.py" in sentence:
                yield os.path.basename(path), sentence


def test_every_prepare_data_flag_the_docs_name_exists():
    flags = _tool_flags()
    assert {"output_dir", "input_files", "packed", "allow_undecodable"} <= flags
    mentions = list(_prepare_data_mentions())
    assert len(mentions) >= 6
    unknown = [(where, flag) for where, text in mentions
               for flag in _FLAG.findall(text) if flag not in flags]
    assert unknown == []


def test_yamls_that_read_next_sentence_labels_do_not_promise_our_records():
    # Our records have no next-sentence labels (the static format's features).
    assert "next_sentence_labels" not in dataset_info.STATIC_FEATURE_NAMES
    checked = 0
    for path in glob.glob(os.path.join(ROOT, "experiments", "*.yaml")):
        config = yaml.load(open(path), Loader=yaml.FullLoader)  # Has tuples.
        data = config.get("task", {}).get("train_data", {})
        if not data.get("use_next_sentence_label"):
            continue
        for sentence in _comment_sentences(path):
            if "prepare_data.py" in sentence:
                checked += 1
                assert "no next-sentence labels" in sentence, (
                    os.path.basename(path), sentence)
    assert checked  # wiki_books_pretrain.yaml says where our records go.

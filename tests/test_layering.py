"""The package's plan, enforced: each subpackage imports only from below.

    common  <  model, data  <  train  <  export, bench  <  study

`model/` is the paper (TensorFlow and Model Garden layers only); `common/`
is plumbing everyone may use. Read from the source with `ast`, so an import
inside a function counts too.
"""

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                       "token_dropping")
LEVEL = {"common": 0, "model": 1, "data": 1, "train": 2, "export": 3,
         "bench": 3, "study": 4}
# What a subpackage may import besides itself and `common`.
ALLOWED = {
    "common": set(),
    "model": set(),
    "data": set(),
    "train": {"model", "data"},
    "export": {"model", "data", "train"},
    "bench": {"model", "data", "train"},
    "study": {"model", "data", "train", "export"},
}


def imported_subpackages(path):
    """{subpackage of token_dropping that `path` imports: line}."""
    found = {}
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        modules = []
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "token_dropping":  # from token_dropping import x
                modules = [f"token_dropping.{a.name}" for a in node.names]
            else:
                modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        for module in modules:
            parts = module.split(".")
            if parts[0] == "token_dropping" and len(parts) > 1:
                found.setdefault(parts[1], node.lineno)
    return found


def subpackage_files():
    for sub in sorted(LEVEL):
        folder = os.path.join(PACKAGE, sub)
        for root, _, files in os.walk(folder):
            for name in sorted(files):
                if name.endswith(".py"):
                    yield sub, os.path.join(root, name)


def test_every_subpackage_has_a_level():
    subs = {d for d in os.listdir(PACKAGE)
            if os.path.isfile(os.path.join(PACKAGE, d, "__init__.py"))}
    assert subs == set(LEVEL)
    top = sorted(f for f in os.listdir(PACKAGE) if f.endswith(".py"))
    assert top == ["__init__.py"], "modules belong in a subpackage"


@pytest.mark.parametrize("sub,path", list(subpackage_files()),
                         ids=lambda v: os.path.relpath(v, PACKAGE)
                         if isinstance(v, str) and v.endswith(".py") else v)
def test_imports_point_down(sub, path):
    bad = {target: line for target, line in imported_subpackages(path).items()
           if target not in ALLOWED[sub] | {sub, "common"}}
    assert not bad, (f"{os.path.relpath(path, PACKAGE)} imports "
                     f"{sorted(bad)} (lines {sorted(bad.values())}); "
                     f"{sub}/ may import only {sorted(ALLOWED[sub])} and common/")


def test_the_checker_sees_an_upward_import(tmp_path):
    path = tmp_path / "upward.py"
    path.write_text("def f():\n    from token_dropping.study import driver\n"
                    "from token_dropping import train\n")
    assert imported_subpackages(str(path)) == {"study": 2, "train": 3}


def test_no_module_over_400_lines():
    long = [(os.path.relpath(p, PACKAGE), n) for _, p in subpackage_files()
            if (n := sum(1 for _ in open(p, encoding="utf-8"))) > 400]
    assert not long

"""PackageDocsCorpus on small fake package roots, and (slow) on the real ones.

The files are read back with `TextFileCorpus`, the reader
`tools/prepare_data.py` uses, and the hold-out rule is checked against an
independent sha256 computation.
"""

import hashlib
import importlib.metadata
import json
import os

import pytest

from token_dropping.data import DefaultCorpus
from token_dropping.data import TextFileCorpus
from token_dropping.data import package_docs
from token_dropping.data.package_docs import PackageDocsCorpus

SHARED = "Copyright the shared authors, who wrote every one of these files."
STDLIB_SENTENCE = "The standard library says this sentence first of all."


def _module(topic, shared=True):
    """A small module with docstrings and a comment block about `topic`."""
    licence = f"# {SHARED}\n" if shared else ""
    return f'''{licence}"""Tools that handle the {topic} in several ways.

They read the {topic} from a file and write it back again.
"""

# The {topic} is cached here so that it is read only once per run.
CACHE = {{}}


def handle(value):
    """Return the {topic} handled for the given value of the input."""
    return value
'''


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """Fake packages `alpha` and `beta` and a fake standard library."""
    stdlib = tmp_path / "stdlib"
    stdlib.mkdir()
    (stdlib / "shelf.py").write_text(
        f'"""{STDLIB_SENTENCE}\n\nIt is about shelves and the books on them."""\n')
    found = {}
    for package, topics in (("alpha", ("river", "mountain", "forest",
                                       "desert", "lake", "glacier")),
                            ("beta", ("river", "ocean", "island", "valley"))):
        root = tmp_path / "site" / package
        (root / "sub").mkdir(parents=True)
        (root / "__init__.py").write_text(f'"""{STDLIB_SENTENCE}"""\n')
        for i, topic in enumerate(topics):
            folder = root / "sub" if i % 2 else root
            (folder / f"{topic}.py").write_text(_module(topic))
        found[package] = [str(root)]
    monkeypatch.setattr(package_docs, "package_roots", lambda p: found[p])
    monkeypatch.setattr(package_docs, "package_version",
                        lambda package, distributions=None: "1.0")
    return str(stdlib)


def _corpus(stdlib, **kwargs):
    kwargs.setdefault("packages", ("alpha", "beta"))
    kwargs.setdefault("heldout_share", 0.5)
    return PackageDocsCorpus(stdlib_dir=stdlib, **kwargs)


def _read(path):
    """The documents of one written file, read the way prepare_data reads."""
    return list(TextFileCorpus(path, "sentence_per_line").documents())


def _sentences(paths):
    return {s for path in paths for document in _read(path) for s in document}


def test_writes_are_byte_identical_and_read_back_as_documents(roots, tmp_path):
    first = _corpus(roots).write_text_files(str(tmp_path / "a"))
    second = _corpus(roots).write_text_files(str(tmp_path / "b"))
    names = sorted(os.listdir(first.output_dir))
    assert names == sorted(os.listdir(second.output_dir)) == [
        "corpus.json", "heldout.txt", "pretrain-alpha.txt",
        "pretrain-beta.txt", "pretrain-stdlib.txt"]
    for name in names:
        with open(os.path.join(first.output_dir, name), "rb") as a, open(
                os.path.join(second.output_dir, name), "rb") as b:
            assert a.read() == b.read(), name
    documents = list(_corpus(roots).documents())
    for source in ("stdlib", "alpha", "beta"):
        assert _read(os.path.join(first.output_dir,
                                  f"pretrain-{source}.txt")) == [
            d.sentences for d in documents
            if d.source == source and not d.heldout]
    assert _read(first.heldout_file) == [
        d.sentences for d in documents if d.heldout]
    assert first.heldout_sources() == [d.source for d in documents
                                       if d.heldout]
    assert {"stdlib", "alpha"} <= set(first.heldout_sources())
    with open(first.manifest_file) as f:
        manifest = json.load(f)
    assert manifest["corpus"] == _corpus(roots).describe()
    assert manifest["files"]["heldout.txt"]["num_documents"] == sum(
        d.heldout for d in documents) > 0
    assert first.input_files.split(",") == list(first.pretrain_files)


def test_stdlib_documents_are_the_default_corpus(roots):
    ours = [d.sentences for d in _corpus(roots).documents()
            if d.source == "stdlib"]
    assert ours == list(DefaultCorpus(stdlib_dir=roots).documents())
    keys = [d.key for d in _corpus(roots).documents()]
    assert "stdlib/shelf.py" in keys and "alpha/sub/mountain.py" in keys
    assert any(k.startswith("pydoc/") for k in keys)


def test_a_cap_per_source_keeps_each_sources_first_documents(roots):
    everything = list(_corpus(roots).documents())
    capped = list(_corpus(roots, max_documents_per_source=2).documents())
    # The first source reads exactly as uncapped; later ones dedupe against
    # less text, so a document emptied by the dedupe may come back.
    assert capped[:2] == everything[:2]
    assert [d.source for d in capped] == ["stdlib"] * 2 + ["alpha"] * 2 + [
        "beta"] * 2
    assert all(d.key.startswith(f"{d.source}/") for d in capped[2:])
    assert len(everything) > 6
    assert _corpus(roots, max_documents_per_source=2).describe()[
        "max_documents_per_source"] == 2
    assert "max_documents_per_source" not in _corpus(roots).describe()


def test_heldout_sentences_never_occur_in_pretraining(roots, tmp_path):
    # The shared line is in held-out and in pretraining files of both
    # packages, so only the corpus-wide dedupe keeps it out of one side.
    keys = [f"{p}/{t}.py" for p, t in (("alpha", "river"), ("alpha", "lake"),
                                       ("beta", "river"))]
    keys += ["alpha/sub/mountain.py", "alpha/sub/desert.py",
             "alpha/sub/glacier.py", "beta/sub/ocean.py", "beta/sub/valley.py"]
    assert len({package_docs.is_heldout(k, 0.5) for k in keys}) == 2
    files = _corpus(roots).write_text_files(str(tmp_path / "out"))
    heldout = _sentences([files.heldout_file])
    pretrain = _sentences(files.pretrain_files)
    assert heldout and pretrain and not heldout & pretrain


def test_heldout_rule_is_sha256_of_the_key_alone(roots):
    def reference(key, share):
        return int(hashlib.sha256(key.encode()).hexdigest(), 16) % 1000 < (
            share * 1000)

    documents = list(_corpus(roots, heldout_share=0.3).documents())
    assert [d.heldout for d in documents] == [
        reference(d.key, 0.3) for d in documents]
    assert 0 < sum(d.heldout for d in documents) < len(documents)
    # Order and the other documents do not matter: beta read alone.
    beta_alone = {d.key: d.heldout for d in _corpus(
        roots, packages=("beta",), heldout_share=0.3).documents()}
    assert {d.key: d.heldout for d in documents
            if d.source == "beta"}.items() <= beta_alone.items()
    keys = [f"numpy/module_{i}.py" for i in range(20_000)]
    share = sum(package_docs.is_heldout(k, 0.1) for k in keys) / len(keys)
    assert share == sum(reference(k, 0.1) for k in keys) / len(keys)
    assert 0.09 < share < 0.11


def test_sentences_are_deduplicated_across_packages(roots, tmp_path):
    files = _corpus(roots, heldout_share=0.0).write_text_files(str(tmp_path))
    counts = {}
    for path in files.pretrain_files:
        for document in _read(path):
            for sentence in document:
                counts.setdefault(sentence, []).append(os.path.basename(path))
    assert counts[SHARED] == ["pretrain-alpha.txt"]
    assert counts[STDLIB_SENTENCE] == ["pretrain-stdlib.txt"]
    river = "Tools that handle the river in several ways."
    assert counts[river] == ["pretrain-alpha.txt"]  # beta/river.py repeats it.
    assert all(len(where) == 1 for where in counts.values())
    assert "Tools that handle the ocean in several ways." in counts
    assert os.path.getsize(files.heldout_file) == 0


def test_a_package_that_is_not_installed_is_one_clear_line():
    with pytest.raises(ValueError) as error:
        PackageDocsCorpus(packages=("numpy", "no_such_package_xyz"))
    message = str(error.value)
    assert "'no_such_package_xyz' is not installed" in message
    assert "\n" not in message


@pytest.mark.parametrize("kwargs, named", [
    (dict(packages="numpy"), "packages='numpy'"),
    (dict(packages=("numpy.linalg",)), "'numpy.linalg'"),
    (dict(packages=("numpy", "numpy")), "'numpy' twice"),
    (dict(packages=("stdlib",)), "'stdlib'"),
    (dict(heldout_share=1.0), "heldout_share=1.0"),
    (dict(heldout_share=0.0005), "heldout_share=0.0005"),
    (dict(max_documents=0), "max_documents=0"),
    (dict(max_documents_per_source=True), "max_documents_per_source=True"),
])
def test_bad_arguments_are_rejected_naming_the_value(kwargs, named):
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        PackageDocsCorpus(**kwargs)


def test_installed_versions_come_from_the_distribution():
    assert package_docs.package_version("sklearn") == (
        importlib.metadata.version("scikit-learn"))
    assert PackageDocsCorpus(packages=("numpy",)).describe()["packages"] == {
        "numpy": importlib.metadata.version("numpy")}


def test_an_interrupted_write_leaves_no_manifest(roots, tmp_path,
                                                 monkeypatch):
    output_dir = str(tmp_path / "out")
    _corpus(roots).write_text_files(output_dir)

    def interrupted(path, value, **dump_options):
        raise KeyboardInterrupt

    write_json = package_docs.files.write_json
    monkeypatch.setattr(package_docs.files, "write_json", interrupted)
    with pytest.raises(KeyboardInterrupt):  # Another corpus over the first.
        _corpus(roots, heldout_share=0.2).write_text_files(output_dir)
    names = os.listdir(output_dir)
    assert "corpus.json" not in names
    assert not [name for name in names if ".tmp-" in name]

    documents = PackageDocsCorpus.documents

    def documents_then_failure(self):
        yield from list(documents(self))[:3]
        raise OSError("disk full")

    monkeypatch.setattr(package_docs.files, "write_json", write_json)
    monkeypatch.setattr(PackageDocsCorpus, "documents", documents_then_failure)
    with pytest.raises(OSError):
        _corpus(roots).write_text_files(str(tmp_path / "fresh"))
    assert os.listdir(tmp_path / "fresh") == []


def test_a_complete_write_is_reused_and_a_different_one_replaced(
        roots, tmp_path, monkeypatch):
    output_dir = str(tmp_path / "out")
    _corpus(roots).write_text_files(output_dir)
    before = {n: os.stat(os.path.join(output_dir, n)).st_mtime_ns
              for n in os.listdir(output_dir)}
    write_documents = package_docs._write_documents
    monkeypatch.setattr(package_docs, "_write_documents", None)  # Unused.
    files = _corpus(roots).write_text_files(output_dir)
    assert {n: os.stat(os.path.join(output_dir, n)).st_mtime_ns
            for n in os.listdir(output_dir)} == before
    monkeypatch.setattr(package_docs, "_write_documents", write_documents)
    with open(files.pretrain_files[1], "a") as f:
        f.write("A line someone added by hand.\n")
    _corpus(roots).write_text_files(output_dir)  # Sizes differ: rewritten.
    assert "someone" not in open(files.pretrain_files[1]).read()
    with open(files.manifest_file) as f:
        manifest = json.load(f)
    del manifest["heldout_sources"]  # as older versions wrote it
    with open(files.manifest_file, "w") as f:
        json.dump(manifest, f)
    assert _corpus(roots).write_text_files(output_dir).heldout_sources()
    _corpus(roots, packages=("beta",)).write_text_files(output_dir)
    assert sorted(os.listdir(output_dir)) == [
        "corpus.json", "heldout.txt", "pretrain-beta.txt",
        "pretrain-stdlib.txt"]


@pytest.mark.slow
def test_the_real_corpus_keeps_heldout_sentences_out_of_pretraining(
        tmp_path):
    files = PackageDocsCorpus().write_text_files(str(tmp_path))
    heldout = [s for d in _read(files.heldout_file) for s in d]
    pretrain = [s for path in files.pretrain_files for d in _read(path)
                for s in d]
    assert len(set(heldout)) == len(heldout) > 20_000
    assert len(set(pretrain)) == len(pretrain) > 200_000
    assert not set(heldout) & set(pretrain)

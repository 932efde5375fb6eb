"""PackageDocsCorpus: the study corpus, Python's and its packages' own prose.

The embedded default corpus (`DefaultCorpus`: Python's documentation) is too
small for a model to learn context from. This corpus extends it, still with no
network, with the docstrings and comments of packages the project already pins
(`constraints.txt`): numpy, scipy, scikit-learn, pandas, matplotlib,
TensorFlow and Keras. They are read the way `DefaultCorpus` reads the standard
library (`ast`, never imported, so nothing runs), one document per `.py` file.

1. Documents come in order: `DefaultCorpus`'s (keys `pydoc/<topic>`,
   `stdlib/<path>`, `builtin/<module>`), then each package's files in sorted
   path order (keys `<package>/<path>`, e.g. `numpy/linalg/_linalg.py`).
2. Every sentence is kept only at its first occurrence in the whole corpus, so
   no sentence is in two documents.
3. A document is held out of pretraining, for a downstream probe, iff
   `int(sha256(key)) mod 1000 < heldout_share * 1000`: a rule on its key
   alone, the same whatever else is read and in whatever order.

`write_text_files(output_dir)` writes the pretraining documents in BERT's
`sentence_per_line` layout (what `TextFileCorpus` and
`tools/prepare_data.py --input_files` read), one file per source, and the
held-out ones in `heldout.txt`.
"""

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import sys
from typing import Iterator

from token_dropping.common import files
from token_dropping.data import default_corpus
from token_dropping.common.checks import as_int
from token_dropping.common.errors import UserError

DEFAULT_PACKAGES = ("numpy", "scipy", "sklearn", "pandas", "matplotlib",
                    "tensorflow", "keras")
# Bump when the extraction or the file layout changes, so older files are not
# reused.
EXTRACTION_VERSION = 1
STDLIB = "stdlib"  # The source name of DefaultCorpus's documents.
HELDOUT_FILE = "heldout.txt"
MANIFEST_FILE = "corpus.json"
_BUCKETS = 1000  # heldout_share is a whole number of these.


def pretrain_file_name(source: str) -> str:
    """The pretraining file of one source: `pretrain-<source>.txt`."""
    return f"pretrain-{source}.txt"


def is_heldout(key: str, heldout_share: float) -> bool:
    """Whether the document `key` is held out of pretraining."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return (int.from_bytes(digest, "big") % _BUCKETS
            < round(heldout_share * _BUCKETS))


def package_roots(package: str) -> list[str]:
    """The directories of an installed package, found without importing it.

    Raises:
        UserError: if `package` is not installed, or is a single module.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise UserError(
            f"package {package!r} is not installed in {sys.executable}; "
            "install it or leave it out of packages (the default ones, "
            f"{', '.join(DEFAULT_PACKAGES)}, are pinned by constraints.txt).")
    if not spec.submodule_search_locations:
        raise UserError(f"{package!r} is a single module, not a package "
                        "directory; name packages only.")
    return sorted(spec.submodule_search_locations)


def package_version(package: str,
                    distributions: dict | None = None) -> str | None:
    """The installed version of the distribution that provides `package`.

    Args:
        package: a top-level import name.
        distributions: `importlib.metadata.packages_distributions()`, if
            already read (it scans every installed distribution).
    """
    if distributions is None:
        distributions = importlib.metadata.packages_distributions()
    names = distributions.get(package, [package])
    for name in names:  # e.g. sklearn is provided by scikit-learn.
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(name)
    return None


@dataclasses.dataclass(frozen=True)
class Document:
    """One document of the corpus.

    Attributes:
        key: its stable name, e.g. `numpy/linalg/_linalg.py`, `pydoc/assert`.
        source: `stdlib` or the package it comes from.
        sentences: its sentences, none of which occurs in an earlier document.
        heldout: whether it is held out of pretraining.
    """
    key: str
    source: str
    sentences: list[str]
    heldout: bool


@dataclasses.dataclass(frozen=True)
class CorpusFiles:
    """What `write_text_files` wrote (or found already written).

    Attributes:
        output_dir: the directory.
        pretrain_files: one `pretrain-<source>.txt` per source, in order.
        heldout_file: `heldout.txt`, the held-out documents.
        manifest_file: `corpus.json`, written last.
    """
    output_dir: str
    pretrain_files: tuple[str, ...]
    heldout_file: str
    manifest_file: str

    def heldout_sources(self) -> list[str]:
        """The source (`stdlib` or a package) of each document of
        `heldout_file`, in order, from the manifest."""
        with open(self.manifest_file) as f:
            return json.load(f)["heldout_sources"]

    @property
    def input_files(self) -> str:
        """The pretraining files as `tools/prepare_data.py --input_files`."""
        return ",".join(self.pretrain_files)


class PackageDocsCorpus:
    """Python's documentation plus installed packages' docstrings and comments.

    Example:
    >>> corpus = PackageDocsCorpus(heldout_share=0.1)
    >>> files = corpus.write_text_files("/tmp/study_corpus")
    >>> files.input_files  # for tools/prepare_data.py --input_files
    '/tmp/study_corpus/pretrain-stdlib.txt,...'

    Args:
        packages: top-level import names of installed packages, read after
            the standard library in this order.
        heldout_share: the share of documents held out of pretraining, a
            multiple of 0.001 in [0, 1).
        max_documents: keep only the first documents (tests); None keeps all.
        max_documents_per_source: read only the first documents of each
            source (small corpora that still hold every source); None reads
            all.
        stdlib_dir: the standard library directory (tests); None reads the
            running interpreter's.

    Raises:
        UserError: naming the first bad argument, or a package that is not
            installed.
    """

    def __init__(self, packages: tuple[str, ...] = DEFAULT_PACKAGES,
                 heldout_share: float = 0.1,
                 max_documents: int | None = None,
                 stdlib_dir: str | None = None,
                 max_documents_per_source: int | None = None):
        if isinstance(packages, str):
            raise UserError(f"packages={packages!r} must be a list of "
                            f"names, e.g. {list(DEFAULT_PACKAGES[:2])!r}.")
        for package in packages:
            if not (isinstance(package, str) and package.isidentifier()):
                raise UserError(f"package {package!r} is not a top-level "
                                "import name such as 'numpy'.")
        if STDLIB in packages:
            raise UserError(f"packages={list(packages)!r} names {STDLIB!r}, "
                            "which is always read first; leave it out.")
        repeated = sorted({p for p in packages if list(packages).count(p) > 1})
        if repeated:
            raise UserError(f"packages={list(packages)!r} names "
                            f"{repeated[0]!r} twice; name each once.")
        if (isinstance(heldout_share, bool) or
                not isinstance(heldout_share, (int, float)) or
                not 0 <= heldout_share < 1 or
                abs(heldout_share * _BUCKETS
                    - round(heldout_share * _BUCKETS)) > 1e-9):
            raise UserError(f"heldout_share={heldout_share!r} must be a "
                            "multiple of 0.001 in [0, 1), e.g. 0.1.")
        for name, value in (("max_documents", max_documents),
                            ("max_documents_per_source",
                             max_documents_per_source)):
            if value is not None:
                as_int(name, value, 1, why="or None for all documents")
        self.packages = tuple(packages)
        self.heldout_share = heldout_share
        self.max_documents = max_documents
        self.max_documents_per_source = max_documents_per_source
        self.stdlib_dir = stdlib_dir
        self._roots = {p: package_roots(p) for p in self.packages}

    @property
    def sources(self) -> tuple[str, ...]:
        """`stdlib`, then the packages: one pretraining file each."""
        return (STDLIB, *self.packages)

    def describe(self) -> dict:
        """What the corpus is, for fingerprints and `corpus.json` (JSON)."""
        distributions = importlib.metadata.packages_distributions()
        return {
            "name": "package_docs",
            "extraction_version": EXTRACTION_VERSION,
            "default_corpus_version": default_corpus.CORPUS_VERSION,
            "python_version": ".".join(map(str, sys.version_info[:3])),
            "packages": {p: package_version(p, distributions)
                         for p in self.packages},
            "heldout_share": self.heldout_share,
            "max_documents": self.max_documents,
            **({"max_documents_per_source": self.max_documents_per_source}
               if self.max_documents_per_source else {}),
        }

    def documents(self) -> Iterator[Document]:
        """Yields the non-empty documents, deduplicated, in order."""
        seen, emitted = set(), 0
        for source, raw_documents in self._raw_sources():
            in_source = 0
            for key, texts in raw_documents:
                sentences = default_corpus.first_occurrences(texts, seen)
                if not sentences:
                    continue
                yield Document(key, source, sentences,
                               is_heldout(key, self.heldout_share))
                emitted += 1
                in_source += 1
                if emitted == self.max_documents:
                    return
                if in_source == self.max_documents_per_source:
                    break  # the rest of this source is never read

    def _raw_sources(self) -> Iterator[tuple[str, Iterator]]:
        """(source, its (key, raw texts) documents, read lazily)."""
        stdlib = default_corpus.DefaultCorpus(stdlib_dir=self.stdlib_dir)
        yield STDLIB, stdlib.keyed_raw_documents()
        for package in self.packages:
            yield package, itertools.chain.from_iterable(
                stdlib.source_documents(root, package)
                for root in self._roots[package])

    def write_text_files(self, output_dir: str) -> CorpusFiles:
        """Writes the corpus's text files, or reuses them if already written.

        Every file is written under a temporary name and renamed; a stale
        `corpus.json` is removed first and the new one written last, so an
        interrupted write never looks complete. Other `pretrain-*.txt` files
        in `output_dir` (from other packages) are removed.

        Raises:
            UserError: if `output_dir` cannot be created or written.
        """
        corpus_files = self._files(output_dir)
        description = self.describe()
        if _complete(corpus_files.manifest_file, description):
            return corpus_files
        try:
            os.makedirs(output_dir, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.remove(corpus_files.manifest_file)
        except OSError as e:
            raise UserError(f"output_dir={output_dir!r} cannot be written: "
                            f"{e.strerror}.") from e
        names = [pretrain_file_name(s) for s in self.sources] + [HELDOUT_FILE]
        counts, heldout_sources = _write_documents(output_dir, names,
                                                   self.documents())
        for name in sorted(set(os.listdir(output_dir)) - set(names)):
            if name.startswith("pretrain-") and name.endswith(".txt"):
                os.remove(os.path.join(output_dir, name))  # Another corpus's.
        files.write_json(corpus_files.manifest_file,
                         {"corpus": description, "files": counts,
                          "heldout_sources": heldout_sources},
                         indent=2, sort_keys=True)
        return corpus_files

    def _files(self, output_dir: str) -> CorpusFiles:
        return CorpusFiles(
            output_dir=output_dir,
            pretrain_files=tuple(
                os.path.join(output_dir, pretrain_file_name(source))
                for source in self.sources),
            heldout_file=os.path.join(output_dir, HELDOUT_FILE),
            manifest_file=os.path.join(output_dir, MANIFEST_FILE))


def _complete(manifest_file: str, description: dict) -> bool:
    """Whether `manifest_file` describes this corpus and its files are there."""
    try:
        with open(manifest_file) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return False
    if (manifest.get("corpus") != description
            or "heldout_sources" not in manifest):  # written by older code
        return False
    directory = os.path.dirname(manifest_file)
    for name, count in manifest.get("files", {}).items():
        path = os.path.join(directory, name)
        if not (os.path.isfile(path) and
                os.path.getsize(path) == count.get("num_bytes")):
            return False
    return True


def _write_documents(output_dir: str, names: list[str],
                     documents: Iterator[Document]) -> dict:
    """Writes documents under temporary names, then renames them all
    (`common.files.open_atomically`; if anything fails, none is renamed).

    The last name takes the held-out documents; the others are
    `pretrain-<source>.txt`. Returns the counts per file name and the source
    of each held-out document, in order.
    """
    heldout_sources = []
    counts = {name: {"num_documents": 0, "num_sentences": 0, "num_bytes": 0}
              for name in names}
    with contextlib.ExitStack() as stack:
        out = {name: stack.enter_context(
            files.open_atomically(os.path.join(output_dir, name)))
            for name in names}
        for document in documents:
            name = (names[-1] if document.heldout
                    else pretrain_file_name(document.source))
            count = counts[name]
            block = "\n".join(document.sentences) + "\n"
            if count["num_documents"]:
                block = "\n" + block  # A blank line between documents.
            out[name].write(block)
            count["num_documents"] += 1
            count["num_sentences"] += len(document.sentences)
            count["num_bytes"] += len(block.encode("utf-8"))
            if document.heldout:
                heldout_sources.append(document.source)
    return counts, heldout_sources

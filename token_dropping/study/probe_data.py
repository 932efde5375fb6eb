"""probe_data: downstream tasks from held-out real sentences.

Three tasks, all in GLUE's CoLA layout, all from documents held out of
pretraining, with labels that come from the text and no model:

- `build_source_task` (the study's default): is a sentence from Python's
  standard library documentation (1) or from a third-party package's
  docstrings (0)? A 4 x 128 encoder pretrained for 1,000 steps lifts it well
  above a randomly initialised one (0.72 against 0.60 dev accuracy in a
  one-seed trial; `docs/study` has the measured rows), but a bag-of-words
  row reaches 0.63 on it (issue 24): most of it needs no pretraining.
- `build_order_task`: word order. Each held-out sentence once, as it is
  (1) or with a short span of its words reversed (0; two words: a swap of
  adjacent words). Both versions hold the same words, so a bag-of-words
  model is at chance by construction; telling them apart needs what
  pretraining teaches about word order. On the default corpus (2,000/1,000
  sentences) bag-of-words scores 0.507 and a randomly initialised 4 x 128
  encoder 0.496, while word-bigram counts of the pretraining text alone
  reach 0.74. Described below with the acceptability task, whose swaps it
  shares.
- `build_probe_task`: acceptability, described below. At the study's scale
  it is not sensitive: pretrained and random encoders both stay near 0.5
  (swaps and drops, 3 or 10 epochs; one replaced word likewise), so it is
  kept for larger runs (`tools/study.py --probe=acceptability`).

The study's downstream probe (issue 11, item 4) asks whether pretraining
taught the encoder syntax, the reported weak spot of token dropping. Labels
come from no model: real sentences (label 1) against minimally corrupted
real sentences (label 0), in GLUE's CoLA layout so Model Garden's classifier
data tools read it like real CoLA (`probe.convert`).

`build_probe_task(heldout_file, output_dir)`:

1. read `heldout_file`, BERT's sentence-per-line text (a blank line between
   documents), from documents never used in pretraining;
2. keep sentences of 6..30 plain words (letters, apostrophes, hyphens, a
   comma or a final `.`/`?`/`!`; no code such as `np.array`, `x=1`,
   `__init__`, digits or quotes), starting with a capital and ending in a
   full stop, `?` or `!`; each distinct sentence once (its first document);
3. split by document, seeded: whole documents go to dev until it has
   `num_dev` sentences, then to train until `num_train` (the last document
   of each split may be cut; its other sentences are not used at all);
4. in each split, seeded, half the sentences stay as they are (label 1) and
   the other half get one minimal corruption (label 0), chosen at random
   between the two types that are feasible for every kept sentence:

   - swap: two adjacent different lowercase words, neither the first word
     (a capital moved inside is a giveaway) nor one carrying punctuation
     (a comma or the full stop moved inside is one too);
   - drop: one lowercase word without punctuation, never the first or the
     last (a missing capital or full stop would be a giveaway).

   A doubled word ("the the") is not used: a model that only compares
   neighbouring ids finds it, with no syntax at all. The corrupted sentence
   keeps every word's spelling and case, and a corruption that happens to
   give another real sentence of the input is redrawn. Some corruptions
   stay grammatical ("a large sparse tensor" -> "a sparse large tensor"):
   that label noise is the same for every encoder the probe compares;
5. write into `output_dir`, each file to a temporary name renamed into place
   and `probe.json` (the counts, the seed, the documents of each split) last:

   train.tsv, dev.tsv  no header; source (`doc<N>`, the document's index in
                       `heldout_file`), label (1/0), `*` for label 0 else
                       empty (CoLA's original-label column), the sentence
   test.tsv            header `index<TAB>sentence`: the dev sentences without
                       labels (the probe has no hidden test set)

Same input and seed: byte-identical files.

Example:
>>> info = build_probe_task("heldout.txt", "data/probe", seed=0)
>>> info["num_train"], info["num_dev"]
(4000, 1000)
"""

import json
import os
import random
import re

from token_dropping.common import files
from token_dropping.common.checks import as_int
from token_dropping.common.errors import UserError
from token_dropping.common.paths import check_output_path

MIN_WORDS, MAX_WORDS = 6, 30
MANIFEST = "probe.json"
SPLITS = ("train.tsv", "dev.tsv", "test.tsv")
# A plain word: letters with inner apostrophes or hyphens, maybe a comma
# after it; the last word may end in . ? or ! instead.
_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*,?")
_LAST = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*[.?!]")
_MOVABLE = re.compile(r"[a-z]+")  # lowercase, no punctuation


def plain_sentence(line):
    """The sentence's words if it is 6..30 plain words, else None."""
    words = line.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or not words[0][0].isupper():
        return None
    if not all(_WORD.fullmatch(w) for w in words[:-1]):
        return None
    if not _LAST.fullmatch(words[-1]):
        return None
    # camelCase or CONSTANT names are code, not prose ("I" and "A" are fine).
    if any(any(c.isupper() for c in w[1:]) for w in words):
        return None
    return words


def swaps(words):
    """Positions i where words i, i+1 may be swapped (see module doc)."""
    return [i for i in range(1, len(words) - 2)
            if _MOVABLE.fullmatch(words[i]) and _MOVABLE.fullmatch(words[i + 1])
            and words[i] != words[i + 1]]


def drops(words):
    """Positions of words that may be dropped (see module doc)."""
    return [i for i in range(1, len(words) - 1)
            if _MOVABLE.fullmatch(words[i])]


def spans(words, span=2):
    """Positions i where words i..i+span-1 may be reversed: `swaps`' rule
    for each (lowercase, no punctuation, never the first word) and a
    reversal that changes the sentence."""
    if span == 2:
        return swaps(words)
    return [i for i in range(1, len(words) - span)
            if all(_MOVABLE.fullmatch(w) for w in words[i:i + span])
            and words[i:i + span] != words[i:i + span][::-1]]


def reorder(words, rng, span=2):
    """`words` with one span of `span` words reversed (see `spans`)."""
    i = rng.choice(spans(words, span))
    return words[:i] + words[i:i + span][::-1] + words[i + span:]


def corrupt(words, rng):
    """One minimal corruption of `words`: (kind, corrupted words)."""
    kind = rng.choice(("swap", "drop"))
    if kind == "swap":
        i = rng.choice(swaps(words))
        return kind, words[:i] + [words[i + 1], words[i]] + words[i + 2:]
    i = rng.choice(drops(words))
    return kind, words[:i] + words[i + 1:]


def read_documents(heldout_file, corruptible=True, keep=None):
    """[(document index, [sentence words, ...])], every distinct usable
    sentence once, and the set of every input line (for redrawing).

    A usable sentence is plain (`plain_sentence`) and, if `corruptible`, has
    a swap and a drop position; with `keep`, `keep(words)` decides instead.
    """
    if keep is None:
        keep = ((lambda words: bool(swaps(words) and drops(words)))
                if corruptible else (lambda words: True))
    if not os.path.isfile(heldout_file):
        raise UserError(f"heldout_file={heldout_file!r}: no such file.")
    with open(heldout_file, encoding="utf-8") as f:
        text = f.read()
    documents, seen, lines = [], set(), set()
    for index, block in enumerate(blocks(text)):
        sentences = []
        for line in block.splitlines():
            line = " ".join(line.split())
            lines.add(line)
            words = plain_sentence(line)
            if words and line not in seen and keep(words):
                seen.add(line)
                sentences.append(words)
        if sentences:
            documents.append((index, sentences))
    return documents, lines


def _take(documents, start, count):
    """Whole documents from `start` until `count` sentences: (rows, next)."""
    rows, position = [], start
    while len(rows) < count and position < len(documents):
        index, sentences = documents[position]
        rows.extend((index, words) for words in sentences)
        position += 1
    return rows[:count], position


def _label(rows, rng, real_lines, change=None):
    """Half kept (1), half changed (0), shuffled: [(doc, label, text)].
    `change(words, rng)` gives the changed words; default: `corrupt`."""
    change = change or (lambda words, rng: corrupt(words, rng)[1])
    rng.shuffle(rows)
    out = []
    for n, (doc, words) in enumerate(rows):
        if n % 2 == 0:
            out.append((doc, 1, " ".join(words)))
            continue
        for _ in range(100):
            text = " ".join(change(words, rng))
            if text not in real_lines:
                break
        out.append((doc, 0, text))
    return out


def build_probe_task(heldout_file, output_dir, *, seed=0, num_train=4000,
                     num_dev=1000):
    """Writes the probe task into `output_dir`; returns its manifest (dict).

    Raises:
        UserError: a bad argument, or too few usable sentences, before
            anything is written.
    """
    check_counts(num_train, num_dev)
    check_output_path(output_dir, "output_dir", directory=True)
    documents, real_lines = read_documents(heldout_file)
    rng = random.Random(seed)
    rng.shuffle(documents)
    dev, train = split_by_document(documents, num_dev, num_train, heldout_file,
                        f"({MIN_WORDS}..{MAX_WORDS} plain words) in "
                        f"{len(documents)} documents")
    train = _label(train, rng, real_lines)
    dev = _label(dev, rng, real_lines)
    return write_task(output_dir, heldout_file, train, dev,
                       dict(task="acceptability", seed=seed), star=True)


def build_order_task(heldout_file, output_dir, *, seed=0, num_train=2000,
                     num_dev=1000, span=2):
    """Writes the word-order task into `output_dir`; returns its manifest.

    Each plain sentence (as above) with a place to reverse `span` adjacent
    words (`spans`; 2: a swap) is used once: split by document as above,
    then in each split half stay as they are (label 1) and half get one
    span reversed (label 0; a reversal that gives another real line of the
    input is redrawn). The files and manifest are `build_probe_task`'s.

    Raises:
        UserError: a bad argument, or too few usable sentences, before
            anything is written.
    """
    check_counts(num_train, num_dev)
    as_int("span", span, 2, why="two words to swap")
    if span > MIN_WORDS - 2:
        raise UserError(f"span={span!r} leaves no room in a {MIN_WORDS}-word "
                        f"sentence; give 2..{MIN_WORDS - 2}.")
    check_output_path(output_dir, "output_dir", directory=True)
    documents, real_lines = read_documents(
        heldout_file, keep=lambda words: bool(spans(words, span)))
    rng = random.Random(seed)
    rng.shuffle(documents)
    dev, train = split_by_document(documents, num_dev, num_train, heldout_file,
                        f"with {span} words to reverse in {len(documents)} "
                        "documents")

    def change(words, rng):
        return reorder(words, rng, span)

    train = _label(train, rng, real_lines, change)
    dev = _label(dev, rng, real_lines, change)
    return write_task(output_dir, heldout_file, train, dev,
                       dict(task="order", span=span, seed=seed), star=True)


def build_source_task(heldout_file, sources, output_dir, *, positive="stdlib",
                      seed=0, num_train=2000, num_dev=1000):
    """Writes the source task into `output_dir`; returns its manifest (dict).

    Each plain sentence (6..30 words, as above) of the held-out documents,
    labelled by where its document comes from: 1 if `sources[i]` (the source
    of the i-th document of `heldout_file`) is `positive`, 0 otherwise; for
    the default corpus, Python's standard library (1) against the
    third-party packages (0). Each label gets half of each split; whole
    documents go to dev first, then to train (seeded order); the files and
    manifest are those of `build_probe_task`.

    Raises:
        UserError: a bad argument, `sources` not matching the documents, or
            too few sentences of a label, before anything is written.
    """
    check_counts(num_train, num_dev)
    check_output_path(output_dir, "output_dir", directory=True)
    documents, _ = read_documents(heldout_file, corruptible=False)
    num_blocks = _num_blocks(heldout_file)
    if len(sources) != num_blocks:
        raise UserError(f"sources: {len(sources)} given for the {num_blocks} "
                        f"documents of heldout_file={heldout_file!r}.")
    if positive not in sources:
        raise UserError(f"positive={positive!r} is not a source of "
                        f"heldout_file; its sources: "
                        f"{', '.join(sorted(set(sources)))}.")
    rng = random.Random(seed)
    rng.shuffle(documents)
    train, dev = [], []
    for label in (1, 0):
        own = [d for d in documents if (sources[d[0]] == positive) == label]
        dev_rows, train_rows = split_by_document(
            own, (num_dev + label) // 2, (num_train + label) // 2,
            heldout_file,
            f"with label {label} ({'' if label else 'not '}{positive})")
        dev += [(doc, label, " ".join(words)) for doc, words in dev_rows]
        train += [(doc, label, " ".join(words)) for doc, words in train_rows]
    rng.shuffle(train)
    rng.shuffle(dev)
    return write_task(output_dir, heldout_file, train, dev,
                       dict(task="source", positive=positive, seed=seed))


def split_by_document(documents, num_dev, num_train, heldout_file, which):
    """Whole documents to dev until `num_dev` sentences, then to train until
    `num_train`: (dev rows, train rows); one line if there are too few."""
    dev, position = _take(documents, 0, num_dev)
    train, _ = _take(documents, position, num_train)
    if len(dev) < num_dev or len(train) < num_train:
        found = sum(len(s) for _, s in documents)
        raise UserError(
            f"heldout_file={heldout_file!r} has {found} usable sentences "
            f"{which}; the task needs {num_train + num_dev} (num_train="
            f"{num_train} + num_dev={num_dev}), split by document: give more "
            "held-out text or smaller num_train/num_dev.")
    return dev, train


def check_counts(num_train, num_dev):
    for name, value in (("num_train", num_train), ("num_dev", num_dev)):
        as_int(name, value, 2)


def blocks(text):
    """The documents of BERT's text format: blocks between blank lines."""
    return re.split(r"\n\s*\n", text)


def _num_blocks(heldout_file):
    with open(heldout_file, encoding="utf-8") as f:
        return len(blocks(f.read()))


def write_task(output_dir, heldout_file, train, dev, description,
                star=False):
    """Writes train/dev/test.tsv and then the manifest; returns it. With
    `star`, label 0 gets CoLA's `*` (unacceptable) in the third column."""

    def labelled(rows):
        mark = {0: "*" if star else "", 1: ""}
        return "".join(f"doc{doc}\t{label}\t{mark[label]}\t{text}\n"
                       for doc, label, text in rows)

    test = "index\tsentence\n" + "".join(
        f"{i}\t{text}\n" for i, (_, _, text) in enumerate(dev))
    digest = files.sha256(heldout_file)
    manifest = dict(
        description, heldout_file=os.path.abspath(heldout_file),
        heldout_sha256=digest, num_train=len(train), num_dev=len(dev),
        train_label_1=sum(r[1] for r in train),
        dev_label_1=sum(r[1] for r in dev),
        train_documents=sorted({r[0] for r in train}),
        dev_documents=sorted({r[0] for r in dev}))
    os.makedirs(output_dir, exist_ok=True)
    _remove(os.path.join(output_dir, MANIFEST))  # incomplete until the end
    for name, content in zip(SPLITS, (labelled(train), labelled(dev), test)):
        _write(os.path.join(output_dir, name), content)
    _write(os.path.join(output_dir, MANIFEST),
           json.dumps(manifest, indent=1) + "\n")
    return manifest


def _write(path, content):
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w", encoding="utf-8", newline="\n") as f:
        f.write(content)
    os.replace(temporary, path)


def _remove(path):
    if os.path.exists(path):
        os.remove(path)

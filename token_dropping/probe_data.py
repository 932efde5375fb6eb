"""probe_data: an acceptability task from held-out real sentences.

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

import hashlib
import json
import os
import random
import re

from token_dropping.errors import UserError
from token_dropping.paths import check_output_path

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


def corrupt(words, rng):
    """One minimal corruption of `words`: (kind, corrupted words)."""
    kind = rng.choice(("swap", "drop"))
    if kind == "swap":
        i = rng.choice(swaps(words))
        return kind, words[:i] + [words[i + 1], words[i]] + words[i + 2:]
    i = rng.choice(drops(words))
    return kind, words[:i] + words[i + 1:]


def read_documents(heldout_file):
    """[(document index, [sentence words, ...])], every distinct usable
    sentence once, and the set of every input line (for redrawing)."""
    if not os.path.isfile(heldout_file):
        raise UserError(f"heldout_file={heldout_file!r}: no such file.")
    with open(heldout_file, encoding="utf-8") as f:
        text = f.read()
    documents, seen, lines = [], set(), set()
    for index, block in enumerate(re.split(r"\n\s*\n", text)):
        sentences = []
        for line in block.splitlines():
            line = " ".join(line.split())
            lines.add(line)
            words = plain_sentence(line)
            if (words and line not in seen and swaps(words)
                    and drops(words)):
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


def _label(rows, rng, real_lines):
    """Half kept (1), half corrupted (0), shuffled: [(doc, label, text)]."""
    rng.shuffle(rows)
    out = []
    for n, (doc, words) in enumerate(rows):
        if n % 2 == 0:
            out.append((doc, 1, " ".join(words)))
            continue
        for _ in range(100):
            _, corrupted = corrupt(words, rng)
            text = " ".join(corrupted)
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
    for name, value in (("num_train", num_train), ("num_dev", num_dev)):
        if not isinstance(value, int) or value < 2:
            raise UserError(f"{name}={value!r}: give an integer >= 2.")
    check_output_path(output_dir, "output_dir", directory=True)
    documents, real_lines = read_documents(heldout_file)
    rng = random.Random(seed)
    rng.shuffle(documents)
    dev, position = _take(documents, 0, num_dev)
    train, _ = _take(documents, position, num_train)
    if len(dev) < num_dev or len(train) < num_train:
        found = sum(len(s) for _, s in documents)
        raise UserError(
            f"heldout_file={heldout_file!r} has {found} usable sentences "
            f"({MIN_WORDS}..{MAX_WORDS} plain words) in {len(documents)} "
            f"documents; the probe needs {num_train + num_dev} (num_train="
            f"{num_train} + num_dev={num_dev}), split by document: give more "
            "held-out text or smaller num_train/num_dev.")
    train = _label(train, rng, real_lines)
    dev = _label(dev, rng, real_lines)

    def labelled(rows):
        return "".join(f"doc{doc}\t{label}\t{'' if label else '*'}\t{text}\n"
                       for doc, label, text in rows)

    test = "index\tsentence\n" + "".join(
        f"{i}\t{text}\n" for i, (_, _, text) in enumerate(dev))
    with open(heldout_file, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    manifest = dict(
        heldout_file=os.path.abspath(heldout_file), heldout_sha256=digest,
        seed=seed, num_train=len(train), num_dev=len(dev),
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

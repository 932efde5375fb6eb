"""sentence_order: a probe of two adjacent held-out sentences, in order or not.

Issue 24's sentence-order idea, in GLUE's CoLA layout like the other built
probes (`probe_data`): each example is two sentences that follow each other
in a held-out document, written as one line, in their original order
(label 1) or swapped (label 0). Both orders hold the same words, so a
bag-of-words model is at chance by construction; the labels come from the
text, no model.

`build_sentence_order_task(heldout_file, output_dir)`:

1. read `heldout_file` (BERT's text format: a sentence a line, a blank line
   between documents), held out of pretraining;
2. in each document, pair neighbouring lines that are both plain sentences
   (`probe_data.plain_sentence`), different, and at most `MAX_PAIR_WORDS`
   words together (the pair must fit the probe's 64 word pieces), from the
   top without overlap: every sentence is in at most one pair, each pair
   text once;
3. split by document, seeded (`probe_data.split_by_document`);
4. in each split, seeded, half the pairs stay in order (1), half are
   swapped (0);
5. write train/dev/test.tsv and `probe.json` (`probe_data.write_task`).

Same input and seed: byte-identical files.

Example:
>>> build_sentence_order_task("heldout.txt", "data/sentence_order")["task"]
'sentence_order'
"""

import os
import random

from token_dropping.common.errors import UserError
from token_dropping.common.paths import check_output_path
from token_dropping.study import probe_data

MAX_PAIR_WORDS = 40


def read_pairs(heldout_file):
    """[(document index, [(first words, second words), ...])]: the usable
    adjacent pairs of each document (see the module doc)."""
    if not os.path.isfile(heldout_file):
        raise UserError(f"heldout_file={heldout_file!r}: no such file.")
    with open(heldout_file, encoding="utf-8") as f:
        text = f.read()
    documents, seen = [], set()
    for index, block in enumerate(probe_data.blocks(text)):
        lines = [" ".join(line.split()) for line in block.splitlines()]
        pairs, i = [], 0
        while i + 1 < len(lines):
            first = probe_data.plain_sentence(lines[i])
            second = probe_data.plain_sentence(lines[i + 1])
            key = (lines[i], lines[i + 1])
            if (first and second and first != second and key not in seen
                    and len(first) + len(second) <= MAX_PAIR_WORDS):
                seen.add(key)
                pairs.append((first, second))
                i += 2
            else:
                i += 1
        if pairs:
            documents.append((index, pairs))
    return documents


def _label(rows, rng):
    """Half in order (1), half swapped (0), shuffled: [(doc, label, text)]."""
    rng.shuffle(rows)
    return [(doc, 1 - n % 2,
             " ".join(first + second if n % 2 == 0 else second + first))
            for n, (doc, (first, second)) in enumerate(rows)]


def build_sentence_order_task(heldout_file, output_dir, *, seed=0,
                              num_train=2000, num_dev=1000):
    """Writes the sentence-order task into `output_dir`; returns its
    manifest (dict; `probe_data`'s files and manifest).

    Raises:
        UserError: a bad argument, or too few pairs, before anything is
            written.
    """
    probe_data.check_counts(num_train, num_dev)
    check_output_path(output_dir, "output_dir", directory=True)
    documents = read_pairs(heldout_file)
    rng = random.Random(seed)
    rng.shuffle(documents)
    dev, train = probe_data.split_by_document(
        documents, num_dev, num_train, heldout_file,
        f"(counted in adjacent pairs of at most {MAX_PAIR_WORDS} words) in "
        f"{len(documents)} documents")
    train = _label(train, rng)
    dev = _label(dev, rng)
    return probe_data.write_task(output_dir, heldout_file, train, dev,
                                 dict(task="sentence_order", seed=seed),
                                 star=True)

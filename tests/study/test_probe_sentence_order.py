"""study/sentence_order.py: pairs of adjacent held-out sentences, checked by
brute force against the input text (the reference)."""

import csv
import filecmp
import random

import pytest

from token_dropping.common.errors import UserError
from token_dropping.study import bag_of_words
from token_dropping.study import probe_data
from token_dropping.study import sentence_order

WORDS = ("the of to and a in is it that for on with as are be this by from "
         "value tensor shape returns function input output array model layer "
         "file list name type default given each new data key object").split()


def write_heldout(path, num_documents, seed=0):
    """Documents of plain sentences with a line the builder must skip."""
    rng = random.Random(seed)
    documents = []
    for d in range(num_documents):
        lines = [" ".join([rng.choice(WORDS).capitalize()]
                          + rng.choices(WORDS, k=rng.randint(5, 12))) + "."
                 for _ in range(rng.randint(2, 6))]
        lines.insert(rng.randint(0, len(lines)), "Call np.array(x) now.")
        documents.append(lines)
    with open(path, "w") as f:
        f.write("\n\n".join("\n".join(lines) for lines in documents) + "\n")
    return documents


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_pairs_are_adjacent_sentences_in_or_out_of_order(tmp_path):
    path = str(tmp_path / "heldout.txt")
    documents = write_heldout(path, 40)
    manifest = sentence_order.build_sentence_order_task(
        path, str(tmp_path / "a"), seed=0, num_train=24, num_dev=10)
    sentence_order.build_sentence_order_task(
        path, str(tmp_path / "b"), seed=0, num_train=24, num_dev=10)
    assert manifest["task"] == "sentence_order"
    for name in probe_data.SPLITS + (probe_data.MANIFEST,):
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name,
                           shallow=False)
    used, docs_of = [], {}
    for split, count in (("train", 24), ("dev", 10)):
        rows = read_tsv(str(tmp_path / "a" / f"{split}.tsv"))
        assert len(rows) == count and sum(r[1] == "1" for r in rows) == \
            count // 2
        for source, label, _, text in rows:
            lines = documents[int(source.removeprefix("doc"))]
            neighbours = [(a, b) for a, b in zip(lines, lines[1:])
                          if "np.array" not in a + b]
            matches = [(a, b) for a, b in neighbours
                       if text == (f"{a} {b}" if label == "1" else
                                   f"{b} {a}")]
            assert len(matches) == 1, (label, text)
            used += matches[0]
            # Both orders hold the same words.
            assert sorted(text.split()) == sorted(" ".join(matches[0]).split())
            docs_of.setdefault(split, set()).add(source)
    assert len(used) == len(set(used))  # a sentence in one pair at most
    assert not docs_of["train"] & docs_of["dev"]


def test_bag_of_words_is_at_chance_on_sentence_order(tmp_path):
    path = str(tmp_path / "heldout.txt")
    write_heldout(path, 400, seed=2)
    sentence_order.build_sentence_order_task(
        path, str(tmp_path / "task"), seed=0, num_train=400, num_dev=200)
    row = bag_of_words.bag_of_words_row(str(tmp_path / "task"), "cola",
                                        samples=2000)
    assert row.accuracy.low < 0.5 < row.accuracy.high


def test_too_few_pairs_is_one_line_and_writes_nothing(tmp_path):
    path = str(tmp_path / "heldout.txt")
    write_heldout(path, 5)
    with pytest.raises(UserError, match=r"usable sentences \(counted in "
                       r"adjacent pairs of at most 40 words\)"):
        sentence_order.build_sentence_order_task(
            path, str(tmp_path / "out"), num_train=200, num_dev=100)
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="no such file"):
        sentence_order.build_sentence_order_task(
            str(tmp_path / "none.txt"), str(tmp_path / "out"))

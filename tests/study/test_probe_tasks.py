"""study/probe_tasks.py: each name builds its probe; bad names are refused."""

import os
import random

import pytest

from token_dropping.common.errors import UserError
from token_dropping.study import probe_tasks


WORDS = ("the of to and a in is it that for on with as are be this by "
         "value tensor shape returns function input output array model "
         "layer file list name type default given each").split()


def write_heldout(path, num_documents=60, seed=0):
    words = WORDS
    rng = random.Random(seed)
    documents = ["\n".join(" ".join([rng.choice(words).capitalize()]
                                    + rng.choices(words, k=rng.randint(6, 12)))
                           + "." for _ in range(rng.randint(2, 6)))
                 for _ in range(num_documents)]
    with open(path, "w") as f:
        f.write("\n\n".join(documents) + "\n")
    return len(documents)


@pytest.mark.parametrize("name", probe_tasks.NAMES)
def test_every_name_builds_its_probe(tmp_path, name):
    path = str(tmp_path / "heldout.txt")
    count = write_heldout(path)
    sources = ["stdlib" if i % 2 else "numpy" for i in range(count)]
    # cloze's frequencies and pieces: every word 60 times, all in the vocab.
    pretraining = tmp_path / "pretrain.txt"
    pretraining.write_text(" ".join(WORDS * 60) + "\n")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                "[MASK]"] + WORDS) + "\n")
    manifest = probe_tasks.build(name, path, str(tmp_path / "probe"),
                                 sources=sources, num_train=20, num_dev=10,
                                 pretraining_files=[str(pretraining)],
                                 vocab_file=str(vocab))
    assert manifest["task"] == name
    rows = 2 if name == "cloze" else 1  # cloze: each sentence both ways
    assert (manifest["num_train"], manifest["num_dev"]) == (20 * rows,
                                                            10 * rows)
    assert sorted(os.listdir(tmp_path / "probe")) == [
        "dev.tsv", "probe.json", "test.tsv", "train.tsv"]
    assert probe_tasks.note(name).startswith("Probe: ")


def test_bad_names_and_missing_sources_are_one_line(tmp_path):
    path = str(tmp_path / "heldout.txt")
    write_heldout(path)
    with pytest.raises(UserError, match=r"probe='words' is not one of "
                       r"source, acceptability, order, sentence_order, "
                       r"cloze\."):
        probe_tasks.build("words", path, str(tmp_path / "out"))
    with pytest.raises(UserError, match="probe='source' needs the sources"):
        probe_tasks.build("source", path, str(tmp_path / "out"))
    with pytest.raises(UserError, match="probe='cloze' needs the "
                       "pretraining text"):
        probe_tasks.build("cloze", path, str(tmp_path / "out"))
    with pytest.raises(UserError, match="probe='x' is not one of"):
        probe_tasks.note("x")
    assert not (tmp_path / "out").exists()

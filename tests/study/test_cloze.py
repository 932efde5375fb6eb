"""study/cloze.py: the cloze probe's pairs, checked against the input text,
and its reading of a run, checked against the run's own Model Garden
pretraining model fed by hand."""

import collections
import csv
import filecmp
import random

import numpy as np
import pytest

from token_dropping.common.errors import UserError
from token_dropping.export import run_reader
from token_dropping.study import cloze
from token_dropping.study import predictions as study_predictions
from token_dropping.study import probe_data
from helpers import pretraining_model

# Distinct frequencies: word i occurs (len(WORDS) - i) * 20 times.
WORDS = ("value tensor shape returns function input output array model "
         "layer file list name type default given each new data key object "
         "string number index").split()


def _write_text(tmp_path, num_documents=30, seed=0):
    rng = random.Random(seed)
    pretraining = tmp_path / "pretrain.txt"
    lines = []
    for i, word in enumerate(WORDS):
        lines += [f"the {word} is here"] * ((len(WORDS) - i) * 20)
    pretraining.write_text("\n".join(lines) + "\n")
    documents = []
    for _ in range(num_documents):
        documents.append([
            "The " + " ".join(rng.choices(WORDS, k=rng.randint(5, 10)))
            + " ends." for _ in range(rng.randint(2, 5))])
    heldout = tmp_path / "heldout.txt"
    heldout.write_text("\n\n".join("\n".join(d) for d in documents) + "\n")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(
        ["[PAD]"] + [f"[unused{i}]" for i in range(99)]
        + ["[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "is", "here", "ends",
           "."] + WORDS[:-1]) + "\n")  # "index": two pieces, never a choice
    return str(heldout), str(pretraining), str(vocab), documents


def _read(path):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_each_sentence_twice_with_a_word_as_frequent(tmp_path):
    heldout, pretraining, vocab, documents = _write_text(tmp_path)
    kwargs = dict(pretraining_files=[pretraining], vocab_file=vocab, seed=0,
                  num_train=30, num_dev=20)
    manifest = cloze.build_cloze_task(heldout, str(tmp_path / "a"), **kwargs)
    cloze.build_cloze_task(heldout, str(tmp_path / "b"), **kwargs)
    for name in probe_data.SPLITS + (probe_data.MANIFEST,):
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name,
                           shallow=False)
    # By count, ties by spelling; "number" is seen 40 times (under
    # MIN_COUNT), "index" is not one piece of the vocab.
    ranked = ["here", "is", "the"] + WORDS[:-2]
    assert manifest["task"] == "cloze"
    assert manifest["candidates"] == len(ranked)
    splits = {}
    for split, count in (("train", 30), ("dev", 20)):
        rows = _read(str(tmp_path / "a" / f"{split}.tsv"))
        assert len(rows) == 2 * count
        splits[split] = {r[0] for r in rows}
        firsts = collections.Counter()
        for one, two in zip(rows[0::2], rows[1::2]):
            assert one[0] == two[0] and {one[1], two[1]} == {"1", "0"}
            firsts[one[1]] += 1
            real, changed = (one, two) if one[1] == "1" else (two, one)
            lines = documents[int(real[0].removeprefix("doc"))]
            assert real[3] in lines and changed[3] not in lines
            a, b = real[3].split(), changed[3].split()
            (i,) = [i for i in range(len(a)) if a[i] != b[i]]
            assert i > 0 and a[i] in ranked and b[i] in ranked
            assert b[i] not in a  # a distractor not already in the sentence
            assert changed[2] == "*" and real[2] == ""
        assert min(firsts.values()) > count // 5  # the order is drawn
    assert not splits["train"] & splits["dev"]  # split by document


def test_the_distractor_is_a_neighbour_in_frequency(tmp_path):
    heldout, pretraining, vocab, _ = _write_text(tmp_path, num_documents=60)
    cloze.build_cloze_task(heldout, str(tmp_path / "t"),
                           pretraining_files=[pretraining], vocab_file=vocab,
                           num_train=40, num_dev=40)
    ranked = ["here", "is", "the"] + WORDS[:-2]
    distances = []
    rows = _read(str(tmp_path / "t" / "dev.tsv"))
    for one, two in zip(rows[0::2], rows[1::2]):
        a, b = one[3].split(), two[3].split()
        (i,) = [i for i in range(len(a)) if a[i] != b[i]]
        distances.append(abs(ranked.index(a[i]) - ranked.index(b[i])))
    # Within NEIGHBOURS ranks unless every neighbour is in the sentence.
    assert np.mean(np.array(distances) <= cloze.NEIGHBOURS) > 0.9
    assert min(distances) >= 1


def test_bad_input_is_one_line_before_anything_is_written(tmp_path):
    heldout, pretraining, vocab, _ = _write_text(tmp_path, num_documents=5)
    out = tmp_path / "out"
    for kwargs, message in [
            (dict(num_dev=500), "usable sentences (with a word seen at "
             "least 50 times in pretraining)"),
            (dict(vocab_file=str(tmp_path / "none.txt")), "vocab_file="),
            (dict(pretraining_files=[str(tmp_path / "none.txt")]),
             "pretraining file")]:
        args = dict(pretraining_files=[pretraining], vocab_file=vocab,
                    num_train=4, num_dev=4)
        args.update(kwargs)
        with pytest.raises(UserError) as e:
            cloze.build_cloze_task(heldout, str(out), **args)
        assert message in str(e.value) and "\n" not in str(e.value)
        assert not out.exists()


def test_a_dev_set_that_is_not_a_cloze_task_is_refused(tmp_path):
    (tmp_path / "dev.tsv").write_text(
        "doc1\t1\t\tThe value is here.\ndoc1\t0\t*\tThe shape of it.\n")
    with pytest.raises(UserError, match="not a cloze task"):
        cloze.read_pairs(str(tmp_path))


def test_pairwise_chooses_the_row_more_likely_original():
    # Per row: predicted label and its probability -> P(label 1).
    rows = study_predictions.DevPredictions(
        range(6), ["d1", "d1", "d2", "d2", "d3", "d3"],
        labels=[1, 0, 0, 1, 1, 0], predicted=[1, 1, 0, 1, 0, 0],
        probability=[0.6, 0.7, 0.9, 0.55, 0.8, 0.6])
    # P(1): 0.6, 0.7 | 0.1, 0.55 | 0.2, 0.4 -> pick row 2, row 2, row 2.
    got = cloze.pairwise(rows)
    assert got.predicted == (0, 1, 0, 1, 0, 1)
    assert got.labels == rows.labels and got.documents == rows.documents
    assert got.accuracy == pytest.approx(1 / 3)
    np.testing.assert_allclose(got.probability[:2], [0.7 / 1.3] * 2)


def test_the_reading_is_the_runs_own_mlm_head(run, tmp_path):
    # The reference: the run's model as Model Garden's trainer builds it
    # (token-dropping encoder, no dropping at inference) from params.yaml,
    # fed ids looked up by hand. The probe reads the same checkpoint into
    # plain BertEncoderV2 through its own tokenizer.
    with open(run["vocab"]) as f:
        vocab = [line.rstrip("\n") for line in f]
    rng = np.random.RandomState(0)
    words = [f"piece{i}" for i in range(40)]
    lines, expected_inputs = [], []
    for n in range(12):
        sentence = list(rng.choice(words, size=rng.randint(3, 9)))
        i = rng.randint(1, len(sentence))
        other = list(sentence)
        other[i] = words[(words.index(sentence[i]) + 1) % len(words)]
        first_is_real = n % 3 != 0
        pair = [(1, sentence), (0, other)]
        if not first_is_real:
            pair.reverse()
        lines += [f"doc{n // 2}\t{label}\t\t{' '.join(s)}" for label, s in pair]
        ids = ([vocab.index("[CLS]")] + [vocab.index(w) for w in pair[0][1]]
               + [vocab.index("[SEP]")])
        ids[i + 1] = vocab.index("[MASK]")
        expected_inputs.append((ids, i + 1, vocab.index(pair[0][1][i]),
                                vocab.index(pair[1][1][i]), pair[0][0]))
    (tmp_path / "dev.tsv").write_text("\n".join(lines) + "\n")
    documents = [line.split("\t")[0] for line in lines]
    params, _ = run_reader.read_run_params(run["model_dir"])
    got = cloze.score(run["model_dir"], params, str(tmp_path), run["vocab"],
                      documents)

    model = pretraining_model(run)
    seq_length = params.task.model.encoder.get().max_position_embeddings
    predicted, probability = [], []
    for ids, position, first, second, first_label in expected_inputs:
        word_ids = np.zeros([1, seq_length], np.int32)
        word_ids[0, :len(ids)] = ids
        logits = model(dict(
            input_word_ids=word_ids, input_mask=(word_ids > 0).astype(
                np.int32), input_type_ids=np.zeros_like(word_ids),
            masked_lm_positions=np.array([[position]], np.int32)),
            training=False)["mlm_logits"].numpy()[0, 0]
        pick_first = int(logits[first] >= logits[second])
        predicted += [pick_first, 1 - pick_first]
        p = 1 / (1 + np.exp(logits[second] - logits[first]))
        probability += [max(p, 1 - p)] * 2
    assert got.predicted == tuple(predicted)
    np.testing.assert_allclose(got.probability, probability, rtol=1e-4)
    assert got.labels == tuple(int(line.split("\t")[1]) for line in lines)
    assert got.documents == tuple(documents)
    # A random model reads differently (its own seed), from the same rows.
    assert cloze.score(None, params, str(tmp_path), run["vocab"],
                       documents).probability != got.probability


"""The downstream probe: builder, conversion, fine-tuning.

References: the input text itself (every label-1 sentence verbatim, every
label-0 one a single adjacent swap or drop of a sentence of the document it
names, checked here by brute force), Python's csv module and Model Garden's
`SentencePredictionDataLoader` for the files.
"""

import csv
import filecmp
import os
import random
import types

import numpy as np
import pytest
import tensorflow as tf
import yaml
from official.nlp.data import sentence_prediction_dataloader as spd

from token_dropping.data import glue as glue_data
from token_dropping.study import bag_of_words
from token_dropping.study import finetune as study_finetune
from token_dropping.study import predictions
from token_dropping.study import probe
from token_dropping.study import probe_data
from token_dropping.common.errors import UserError

WORDS = ("the of to and a in is it that for on with as are be this by from "
         "value tensor shape returns function input output array model layer "
         "file list name type default given each new data key object").split()
NUM_TRAIN, NUM_DEV = 40, 20


def write_heldout(path, num_documents=30, seed=0):
    """Documents of plain sentences, with lines the builder must skip."""
    rng = random.Random(seed)
    documents = []
    for d in range(num_documents):
        lines = [" ".join([rng.choice(WORDS).capitalize()]
                          + rng.choices(WORDS, k=rng.randint(5, 12))) + "."
                 for _ in range(rng.randint(2, 5))]
        lines += ["Call np.array(x) with dtype=float32 here please now.",
                  "Too short.", f"Section {d} of the manual is here today."]
        documents.append("\n".join(lines))
    with open(path, "w") as f:
        f.write("\n\n".join(documents) + "\n")
    return documents


def _dev_labels(data):
    """The dev set's labels, read back from the converted records."""
    spec = {"label_ids": tf.io.FixedLenFeature([], tf.int64)}
    return [int(tf.io.parse_single_example(r, spec)["label_ids"])
            for r in tf.data.TFRecordDataset(data.eval_path)]


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def one_edit_apart(corrupted, original):
    """Whether `corrupted` is `original` with two adjacent different words
    swapped or one word dropped."""
    a, b = corrupted.split(), original.split()
    if len(a) == len(b):
        return any(b[:i] + [b[i + 1], b[i]] + b[i + 2:] == a and b[i] != b[i + 1]
                   for i in range(len(b) - 1))
    return len(a) + 1 == len(b) and any(b[:i] + b[i + 1:] == a
                                        for i in range(len(b)))


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("heldout") / "heldout.txt")
    return path, write_heldout(path)


@pytest.fixture(scope="module")
def task_dir(heldout, tmp_path_factory):
    output_dir = str(tmp_path_factory.mktemp("probe"))
    probe_data.build_probe_task(heldout[0], output_dir, seed=0,
                                num_train=NUM_TRAIN, num_dev=NUM_DEV)
    return output_dir


def test_same_seed_same_bytes(heldout, task_dir, tmp_path):
    probe_data.build_probe_task(heldout[0], str(tmp_path / "a"), seed=0,
                                num_train=NUM_TRAIN, num_dev=NUM_DEV)
    probe_data.build_probe_task(heldout[0], str(tmp_path / "b"), seed=1,
                                num_train=NUM_TRAIN, num_dev=NUM_DEV)
    for name in probe_data.SPLITS + (probe_data.MANIFEST,):
        assert filecmp.cmp(os.path.join(task_dir, name),
                           str(tmp_path / "a" / name), shallow=False), name
    assert not filecmp.cmp(os.path.join(task_dir, "train.tsv"),
                           str(tmp_path / "b" / "train.tsv"), shallow=False)


def test_labels_are_real_or_one_edit_from_their_document(heldout, task_dir):
    documents = [doc.splitlines() for doc in heldout[1]]
    docs_of = {}
    for split in ("train", "dev"):
        rows = read_tsv(os.path.join(task_dir, f"{split}.tsv"))
        assert len(rows) == {"train": NUM_TRAIN, "dev": NUM_DEV}[split]
        assert sum(r[1] == "1" for r in rows) == len(rows) // 2
        for source, label, star, sentence in rows:
            lines = documents[int(source.removeprefix("doc"))]
            if label == "1":
                assert star == "" and sentence in lines
            else:
                assert label == "0" and star == "*"
                assert not any(sentence == line for doc in documents
                               for line in doc)
                assert any(one_edit_apart(sentence, line) for line in lines)
            docs_of.setdefault(split, set()).add(source)
    assert docs_of["train"] and docs_of["dev"]
    assert not docs_of["train"] & docs_of["dev"]


def test_tsv_processor_reads_every_row(task_dir):
    processor = glue_data.TsvCola()
    train = processor.get_train_examples(task_dir)
    dev = processor.get_dev_examples(task_dir)
    test = processor.get_test_examples(task_dir)
    assert (len(train), len(dev), len(test)) == (NUM_TRAIN, NUM_DEV, NUM_DEV)
    rows = read_tsv(os.path.join(task_dir, "train.tsv"))
    assert [(e.text_a, e.label) for e in train] == [(r[3], r[1]) for r in rows]
    assert set(e.label for e in train) <= set(processor.get_labels())


def test_too_few_sentences_is_one_line_and_writes_nothing(heldout, tmp_path):
    output_dir = tmp_path / "out"
    with pytest.raises(UserError, match=r"has \d+ usable sentences .* needs "
                       r"100020 \(num_train=100000 \+ num_dev=20\)"):
        probe_data.build_probe_task(heldout[0], str(output_dir),
                                    num_train=100000, num_dev=NUM_DEV)
    assert not output_dir.exists()


def sources_of(documents):
    """Every third document from the standard library, the rest not."""
    return ["stdlib" if i % 3 == 0 else f"package{i % 2}"
            for i in range(len(documents))]


def test_source_task_labels_each_sentence_by_its_documents_source(
        heldout, tmp_path):
    path, documents = heldout
    sources = sources_of(documents)
    manifests = [probe_data.build_source_task(
        path, sources, str(tmp_path / name), seed=0, num_train=20, num_dev=10)
        for name in ("a", "b")]
    assert manifests[0]["task"] == "source" and manifests[0] == dict(
        manifests[1], heldout_file=manifests[0]["heldout_file"])
    for name in probe_data.SPLITS:
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name,
                           shallow=False)
    docs_of = {}
    for split, count in (("train", 20), ("dev", 10)):
        rows = read_tsv(str(tmp_path / "a" / f"{split}.tsv"))
        assert len(rows) == count
        assert sum(r[1] == "1" for r in rows) == count // 2
        for doc, label, _, sentence in rows:
            index = int(doc.removeprefix("doc"))
            assert sentence in documents[index].splitlines()
            assert label == ("1" if sources[index] == "stdlib" else "0")
            docs_of.setdefault(split, set()).add(index)
    assert not docs_of["train"] & docs_of["dev"]


@pytest.mark.parametrize("change, message", [
    (lambda s: s[:-1], r"sources: 29 given for the 30 documents"),
    (lambda s: ["other"] * len(s), r"positive='stdlib' is not a source"),
    (lambda s: ["stdlib"] + ["other"] * (len(s) - 1),
     r"usable sentences with label 1 \(stdlib\); the task needs 15"),
])
def test_source_task_rejects_bad_sources_in_one_line(heldout, tmp_path,
                                                     change, message):
    path, documents = heldout
    with pytest.raises(UserError, match=message) as error:
        probe_data.build_source_task(path, change(sources_of(documents)),
                                     str(tmp_path / "out"), num_train=20,
                                     num_dev=10)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()


def reversed_once(changed, original, span):
    """Whether `changed` is `original` with one span of `span` words
    reversed, neither the first nor the last word moved."""
    a, b = changed.split(), original.split()
    return len(a) == len(b) and any(
        b[:i] + b[i:i + span][::-1] + b[i + span:] == a and a != b
        for i in range(1, len(b) - span))


@pytest.mark.parametrize("span", [2, 3])
def test_order_task_reverses_one_span_of_each_negative_sentence_once(
        heldout, tmp_path, span):
    path, documents = heldout
    manifest = probe_data.build_order_task(
        path, str(tmp_path / "a"), seed=0, num_train=NUM_TRAIN,
        num_dev=NUM_DEV, span=span)
    assert manifest["task"] == "order" and manifest["span"] == span
    probe_data.build_order_task(path, str(tmp_path / "b"), seed=0,
                                num_train=NUM_TRAIN, num_dev=NUM_DEV,
                                span=span)
    for name in probe_data.SPLITS:
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name,
                           shallow=False)
    lines = [doc.splitlines() for doc in documents]
    every_line = {line for doc in lines for line in doc}
    used, docs_of = [], {}
    for split, count in (("train", NUM_TRAIN), ("dev", NUM_DEV)):
        rows = read_tsv(str(tmp_path / "a" / f"{split}.tsv"))
        assert len(rows) == count
        assert sum(r[1] == "1" for r in rows) == count // 2
        for source, label, star, sentence in rows:
            own = lines[int(source.removeprefix("doc"))]
            if label == "1":
                assert star == "" and sentence in own
                used.append(sentence)
            else:
                assert star == "*" and sentence not in every_line
                (original,) = [line for line in own
                               if reversed_once(sentence, line, span)]
                used.append(original)
            # The same words either way: a bag of words sees no label.
            assert sorted(sentence.split()) == sorted(used[-1].split())
            docs_of.setdefault(split, set()).add(source)
    assert len(used) == len(set(used))  # each sentence in one version
    assert not docs_of["train"] & docs_of["dev"]


def test_bag_of_words_is_at_chance_on_the_order_task(tmp_path):
    path = str(tmp_path / "heldout.txt")
    write_heldout(path, num_documents=300, seed=1)
    probe_data.build_order_task(path, str(tmp_path / "order"), seed=0,
                                num_train=600, num_dev=300)
    row = bag_of_words.bag_of_words_row(str(tmp_path / "order"), "cola",
                                        samples=2000)
    assert row.num_dev == 300
    assert row.accuracy.low < 0.5 < row.accuracy.high
    assert abs(row.accuracy.mean - 0.5) < 0.08


@pytest.mark.parametrize("span, message", [
    (1, r"span=1 must be at least 2 \(two words to swap\)"),
    (5, r"span=5 leaves no room in a 6-word sentence; give 2..4"),
])
def test_order_task_rejects_a_bad_span_in_one_line(heldout, tmp_path, span,
                                                   message):
    with pytest.raises(UserError, match=message):
        probe_data.build_order_task(heldout[0], str(tmp_path / "out"),
                                    span=span, num_train=20, num_dev=10)
    assert not (tmp_path / "out").exists()


def write_probe_vocab(path):
    pieces = (["[PAD]"] + [f"[unused{i}]" for i in range(99)]
              + ["[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + list(WORDS))
    with open(path, "w") as f:
        f.write("\n".join(pieces) + "\n")
    return path, len(pieces)


@pytest.fixture(scope="module")
def records(task_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("records")
    vocab, vocab_size = write_probe_vocab(str(folder / "vocab.txt"))
    data = glue_data.convert(task_dir, "cola", vocab, str(folder / "out"),
                         max_seq_length=16)
    return data, vocab_size


def test_convert_gives_records_model_garden_reads(task_dir, records):
    data, _ = records
    assert (data.num_labels, data.train_size, data.dev_size) == (
        2, NUM_TRAIN, NUM_DEV)
    config = spd.SentencePredictionDataConfig(
        input_path=data.train_path, seq_length=16, global_batch_size=NUM_TRAIN,
        is_training=False, drop_remainder=False)
    features = next(iter(spd.SentencePredictionDataLoader(config).load()))
    labels = features["label_ids"]
    rows = read_tsv(os.path.join(task_dir, "train.tsv"))
    assert labels.numpy().tolist() == [int(r[1]) for r in rows]
    assert features["input_word_ids"].shape == (NUM_TRAIN, 16)
    assert set(features["input_word_ids"][:, 0].numpy()) == {101}  # [CLS]
    assert _dev_labels(data) == [
        int(r[1]) for r in read_tsv(os.path.join(task_dir, "dev.tsv"))]
    assert not [n for n in os.listdir(os.path.dirname(data.train_path))
                if ".tmp" in n]


@pytest.mark.parametrize("kwargs, message", [
    (dict(task="qqp"), "task='qqp' is not one of cola, mnli, sst2"),
    (dict(glue_dir="/nonexistent"), "/nonexistent/train.tsv'?: no such file"),
    (dict(vocab_file="/nonexistent/v.txt"), "/nonexistent/v.txt'?: no such"),
])
def test_convert_rejects_bad_input(task_dir, records, tmp_path, kwargs,
                                   message):
    args = dict(glue_dir=task_dir, task="cola", vocab_file=os.path.join(
        os.path.dirname(os.path.dirname(records[0].train_path)), "vocab.txt"),
        output_dir=str(tmp_path / "out"))
    args.update(kwargs)
    with pytest.raises(UserError, match=message):
        glue_data.convert(**args)
    assert not (tmp_path / "out").exists()


def test_convert_reads_glue_sst2_layout(records, tmp_path):
    glue_dir = tmp_path / "SST-2"
    glue_dir.mkdir()
    (glue_dir / "train.tsv").write_text(
        "sentence\tlabel\nthe value of it \t1\nit is not \t0\na list \t1\n")
    (glue_dir / "dev.tsv").write_text("sentence\tlabel\nthe tensor \t0\n")
    vocab = os.path.join(os.path.dirname(os.path.dirname(
        records[0].train_path)), "vocab.txt")
    data = glue_data.convert(str(glue_dir), "sst2", vocab,
                             str(tmp_path / "out"))
    assert (data.num_labels, data.train_size, data.dev_size) == (2, 3, 1)
    assert _dev_labels(data) == [0]


def test_convert_rejects_another_layout(records, tmp_path):
    glue_dir = tmp_path / "glue"
    glue_dir.mkdir()
    for name in ("train.tsv", "dev.tsv"):
        (glue_dir / name).write_text("sentence\tlabel\nA short one.\t1\n")
    vocab = os.path.join(os.path.dirname(os.path.dirname(
        records[0].train_path)), "vocab.txt")
    with pytest.raises(UserError, match=r"train.tsv, line 1: 2 tab-separated "
                       r"columns; GLUE's COLA layout has at least 4\."):
        glue_data.convert(str(glue_dir), "cola", vocab, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def tiny_encoder(vocab_size):
    return {"type": "bert_v2", "bert_v2": dict(
        vocab_size=vocab_size, hidden_size=16, num_layers=2,
        num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=16)}


def trained_weights(model_dir):
    reader = tf.train.load_checkpoint(model_dir)
    return {name: reader.get_tensor(name)
            for name in reader.get_variable_to_shape_map()
            if name.startswith("model/") and "OPTIMIZER" not in name}


def test_finetune_random_init_is_reproducible(task_dir, records, tmp_path):
    data, vocab_size = records
    documents = predictions.dev_documents(task_dir, "cola")
    results = [probe.finetune(
        str(tmp_path / f"run{i}"), data, init_checkpoint="",
        encoder_config=tiny_encoder(vocab_size), seed=seed, epochs=1,
        batch_size=8, dev_documents=documents)
        for i, seed in enumerate((3, 3, 4))]
    accuracies = [r.accuracy for r in results]
    assert 0.0 <= accuracies[0] <= 1.0
    assert accuracies[0] == accuracies[1]
    # Accuracy over the whole dev set is a multiple of 1 / NUM_DEV.
    assert round(accuracies[0] * NUM_DEV, 4) == round(accuracies[0] * NUM_DEV)
    # The same seed trains the same weights; another seed others.
    runs = [trained_weights(str(tmp_path / f"run{i}")) for i in range(3)]
    assert runs[0] and runs[0].keys() == runs[1].keys() == runs[2].keys()
    for name, value in runs[0].items():
        np.testing.assert_array_equal(value, runs[1][name], err_msg=name)
    assert any(not np.array_equal(value, runs[2][name])
               for name, value in runs[0].items())
    # The dev predictions: every dev example once, in the dev file's order,
    # with its document and label from dev.tsv, scoring what Model
    # Garden's evaluation scored; the file holds the same.
    rows = read_tsv(os.path.join(task_dir, "dev.tsv"))
    for result in results:
        rows_of = result.predictions
        assert rows_of.index == tuple(range(NUM_DEV))
        assert rows_of.documents == tuple(r[0] for r in rows)
        assert rows_of.labels == tuple(int(r[1]) for r in rows)
        assert rows_of.accuracy == pytest.approx(result.accuracy, abs=1e-6)
        assert all(0.5 <= p <= 1.0 for p in rows_of.probability)
        assert predictions.read(result.predictions_path) == rows_of
    assert results[0].predictions == results[1].predictions
    assert results[0].predictions_path == str(
        tmp_path / "run0" / predictions.FILE)


def _write_encoder_yaml(path, vocab_size):
    with open(path, "w") as f:
        yaml.safe_dump({"task": {"model": {"encoder": tiny_encoder(
            vocab_size)}}}, f)
    return path


def test_finetune_run_keeps_predictions_and_redoes_a_result_without_them(
        task_dir, records, tmp_path):
    data, vocab_size = records
    encoder = _write_encoder_yaml(str(tmp_path / "encoder.yaml"), vocab_size)
    config = types.SimpleNamespace(finetune_epochs=1)
    result_dir = str(tmp_path / "ft")
    documents = predictions.dev_documents(task_dir, "cola")

    def run():
        return study_finetune.finetune_run(
            config, data, encoder, "", None, 2, result_dir, "probe0",
            dev_documents=documents)

    first = run()
    assert not first.reused
    assert first.predictions_path == os.path.join(result_dir,
                                                  predictions.FILE)
    assert predictions.read(first.predictions_path) == first.predictions
    assert first.predictions.accuracy == pytest.approx(first.accuracy,
                                                       abs=1e-6)
    again = run()
    assert again.reused and again.predictions == first.predictions
    assert again.accuracy == first.accuracy
    # A finished fine-tuning made before predictions were kept: its
    # result.json alone is not reused; the run is done again (from its own
    # finished checkpoint) and gives the same predictions.
    os.remove(first.predictions_path)
    redone = run()
    assert not redone.reused
    assert redone.predictions == first.predictions
    assert redone.accuracy == first.accuracy
    assert os.path.exists(first.predictions_path)
    # Predictions naming other documents are redone with the ones given.
    own = [f"sentence{i}" for i in range(NUM_DEV)]
    renamed = study_finetune.finetune_run(
        config, data, encoder, "", None, 2, result_dir, "probe0",
        dev_documents=own)
    assert not renamed.reused and renamed.predictions.documents == tuple(own)
    assert renamed.predictions.predicted == first.predictions.predicted
    with pytest.raises(UserError, match="dev_documents: 3 given for the 20"):
        study_finetune.finetune_run(config, data, encoder, "", None, 3,
                                    str(tmp_path / "ft3"), "probe0",
                                    dev_documents=documents[:3])



@pytest.mark.slow
def test_finetune_from_an_export(exported, task_dir, tmp_path, caplog):
    """tools/export_bert.py's output is the init_checkpoint and encoder."""
    data = glue_data.convert(task_dir, "cola",
                             os.path.join(exported, "vocab.txt"),
                             str(tmp_path / "records"), max_seq_length=32)
    with caplog.at_level("INFO", logger="absl"):
        result = probe.finetune(
            str(tmp_path / "run"), data, init_checkpoint=exported,
            encoder_config=os.path.join(exported, "encoder.yaml"), seed=0,
            epochs=1, batch_size=8)
    assert 0.0 <= result.accuracy <= 1.0
    assert result.predictions.accuracy == pytest.approx(result.accuracy,
                                                        abs=1e-6)
    assert f"Finished loading pretrained checkpoint from {exported}" in (
        caplog.text)

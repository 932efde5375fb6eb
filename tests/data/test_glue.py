"""GLUE TSV files to fine-tuning records: glue_data and its command line.

References: GLUE's file layouts written here by hand, Model Garden's own
`FullTokenizer` and MNLI label list, and the records parsed back with
`tf.io.parse_single_example`. (The CoLA and SST-2 layouts are also covered by
tests/study/test_probe.py.)
"""

import os
import subprocess
import sys

import pytest
import tensorflow as tf
from official.nlp.data import classifier_data_lib
from official.nlp.tools import tokenization

from token_dropping.data import glue as glue_data
from token_dropping.common.errors import UserError
from in_process import tool_in_process

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORDS = "a man is sleeping the dog runs nobody outside".split()
MNLI_HEADER = ("index promptID pairID genre sentence1_binary_parse "
               "sentence2_binary_parse sentence1_parse sentence2_parse "
               "sentence1 sentence2").split()


def mnli_line(index, premise, hypothesis, labels):
    return "\t".join([str(index), "1", f"{index}e", "fiction", "(x)", "(y)",
                      "(X)", "(Y)", premise, hypothesis, *labels])


@pytest.fixture
def mnli(tmp_path):
    folder = tmp_path / "MNLI"
    folder.mkdir()
    train = [("A man is sleeping", "Nobody is sleeping", "contradiction"),
             ("The dog runs outside", "A dog runs", "entailment"),
             ("A man runs", "The man is outside", "neutral")]
    dev = [("The dog is sleeping", "A dog is outside", "neutral")]
    (folder / "train.tsv").write_text("\n".join(
        ["\t".join(MNLI_HEADER + ["label1", "gold_label"])]
        + [mnli_line(i, p, h, [g, g]) for i, (p, h, g) in enumerate(train)])
        + "\n")
    (folder / "dev_matched.tsv").write_text("\n".join(
        ["\t".join(MNLI_HEADER + [f"label{i}" for i in range(1, 6)]
                   + ["gold_label"])]
        + [mnli_line(i, p, h, ["entailment"] * 5 + [g])
           for i, (p, h, g) in enumerate(dev)]) + "\n")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                               + WORDS) + "\n")
    return str(folder), str(vocab), train, dev


def read_records(path):
    spec = {"input_ids": tf.io.FixedLenFeature([16], tf.int64),
            "segment_ids": tf.io.FixedLenFeature([16], tf.int64),
            "label_ids": tf.io.FixedLenFeature([], tf.int64)}
    return [{k: v.numpy().tolist() for k, v in
             tf.io.parse_single_example(r, spec).items()}
            for r in tf.data.TFRecordDataset(path)]


def test_mnli_pairs_and_gold_labels_reach_the_records(mnli, tmp_path):
    glue_dir, vocab, train, dev = mnli
    records = glue_data.convert(glue_dir, "mnli", vocab,
                                str(tmp_path / "out"), max_seq_length=16)
    assert (records.num_labels, records.train_size, records.dev_size) == (
        3, 3, 1)
    tokenizer = tokenization.FullTokenizer(vocab, do_lower_case=True)
    # Model Garden's own MNLI label order, not ours.
    labels = classifier_data_lib.MnliProcessor.get_labels(None)
    for path, rows in ((records.train_path, train),
                       (records.eval_path, dev)):
        for record, (premise, hypothesis, gold) in zip(read_records(path),
                                                       rows, strict=True):
            pieces = (["[CLS]"] + tokenizer.tokenize(premise) + ["[SEP]"]
                      + tokenizer.tokenize(hypothesis) + ["[SEP]"])
            ids = tokenizer.convert_tokens_to_ids(pieces)
            assert record["input_ids"] == ids + [0] * (16 - len(ids))
            first = len(tokenizer.tokenize(premise)) + 2
            assert record["segment_ids"][:len(ids)] == (
                [0] * first + [1] * (len(ids) - first))
            assert record["label_ids"] == labels.index(gold)


def test_an_unknown_label_is_one_line_and_leaves_no_records(mnli, tmp_path):
    glue_dir, vocab, _, _ = mnli
    path = os.path.join(glue_dir, "train.tsv")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("\tneutral\n", "\tmaybe\n"))
    output_dir = tmp_path / "out"
    with pytest.raises(UserError, match=r"train.tsv, line 4: label 'maybe' "
                       "is not one of contradiction, entailment, neutral") as e:
        glue_data.convert(glue_dir, "mnli", vocab, str(output_dir),
                          max_seq_length=16)
    assert "\n" not in str(e.value)
    assert not output_dir.exists() or not os.listdir(output_dir)


def test_a_vocab_without_special_pieces_is_one_line(mnli, tmp_path):
    glue_dir, _, _, _ = mnli
    vocab = tmp_path / "words.txt"
    vocab.write_text("\n".join(WORDS) + "\n")
    with pytest.raises(UserError, match=r"words.txt' has no \[CLS\]: give "
                       "the pretrained model's vocab.txt"):
        glue_data.convert(glue_dir, "mnli", str(vocab), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content,message", [
    (b"[PAD]\n\xb6\xff\n", "is not UTF-8 text"),
    (b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\nthe\n", "has 'the' twice"),
], ids=["binary", "twice"])
def test_a_vocab_no_tokenizer_reads_right_is_one_line(mnli, tmp_path,
                                                      content, message):
    """A UnicodeDecodeError traceback, or records made with one of a
    repeated piece's two ids without a word."""
    glue_dir, _, _, _ = mnli
    vocab = tmp_path / "vocab.txt"
    vocab.write_bytes(content)
    with pytest.raises(UserError, match=message):
        glue_data.convert(glue_dir, "mnli", str(vocab), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_file_as_glue_dir_names_the_folder_to_give(mnli, tmp_path):
    """It looked for '.../train.tsv/train.tsv' and said no such file."""
    glue_dir, _, _, _ = mnli
    train = os.path.join(glue_dir, "train.tsv")
    with pytest.raises(UserError) as error:
        glue_data.convert(train, "mnli", "unused", str(tmp_path / "out"))
    assert str(error.value).startswith(
        f"glue_dir={train!r} is a file; give the folder holding train.tsv")


def run_tool(*args):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "finetuning_data.py"),
         *args], capture_output=True, text=True, cwd=ROOT, check=False)


def test_the_command_line_writes_records_or_says_what_is_wrong(mnli,
                                                               tmp_path):
    glue_dir, vocab, _, _ = mnli
    # The tool's main in this process; the bad case below runs the command
    # line (one process start).
    result = tool_in_process("finetuning_data.py", "--task=mnli",
                             f"--glue_dir={glue_dir}", f"--vocab_file={vocab}",
                             f"--output_dir={tmp_path / 'out'}",
                             "--max_seq_length=16")
    assert result.returncode == 0, result.stderr
    assert "Wrote 3 training and 1 dev examples (3 labels)" in result.stdout
    assert sorted(os.listdir(tmp_path / "out")) == [
        "mnli_eval.tf_record", "mnli_meta_data", "mnli_train.tf_record"]
    result = run_tool("--task=mnli", f"--glue_dir={tmp_path / 'none'}",
                      f"--vocab_file={vocab}",
                      f"--output_dir={tmp_path / 'out2'}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(
        "finetuning_data.py: error: ")
    assert "train.tsv'" in result.stderr and "no such file" in result.stderr
    assert not (tmp_path / "out2").exists()


def sst2_folder(tmp_path, train, dev="sentence\tlabel\nthe dog runs\t1\n",
                newline="\n"):
    folder = tmp_path / "SST-2"
    folder.mkdir(exist_ok=True)
    for name, text in (("train.tsv", train), ("dev.tsv", dev)):
        (folder / name).write_bytes(text.replace("\n", newline).encode())
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                               + WORDS) + "\n")
    return str(folder), str(vocab)


SST2_ROWS = "a man is sleeping\t0\nthe dog runs\t1\nnobody outside\t0\n"


@pytest.mark.parametrize("split", ["train", "dev"])
@pytest.mark.parametrize("content", ["", "sentence\tlabel\n", "\n"],
                         ids=["empty", "header_only", "blank"])
def test_a_split_without_examples_is_one_line_and_writes_nothing(
        tmp_path, split, content):
    files = dict(train=SST2_ROWS, dev="sentence\tlabel\nthe dog runs\t1\n")
    files[split] = content
    glue_dir, vocab = sst2_folder(tmp_path, files["train"], files["dev"])
    output_dir = tmp_path / "out"
    with pytest.raises(UserError, match=rf"{split}.tsv.* has no examples"
                       ) as e:
        glue_data.convert(glue_dir, "sst2", vocab, str(output_dir),
                          max_seq_length=16)
    assert "\n" not in str(e.value)
    assert not output_dir.exists() or not os.listdir(output_dir)


def test_an_sst2_file_without_its_header_keeps_its_first_example(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    glue_dir, vocab = sst2_folder(tmp_path / "a",
                                  "sentence\tlabel\n" + SST2_ROWS)
    headed = glue_data.convert(glue_dir, "sst2", vocab,
                               str(tmp_path / "a" / "out"), max_seq_length=16)
    glue_dir, vocab = sst2_folder(tmp_path / "b", SST2_ROWS)
    bare = glue_data.convert(glue_dir, "sst2", vocab,
                             str(tmp_path / "b" / "out"), max_seq_length=16)
    assert headed.train_size == bare.train_size == 3
    assert read_records(bare.train_path) == read_records(headed.train_path)


def test_a_first_row_neither_header_nor_example_is_one_line(tmp_path):
    glue_dir, vocab = sst2_folder(tmp_path, "text\tlabel\n" + SST2_ROWS)
    with pytest.raises(UserError, match=r"train.tsv, line 1: neither GLUE's "
                       r"SST-2 header \(sentence, label\) nor an example"):
        glue_data.convert(glue_dir, "sst2", vocab, str(tmp_path / "out"),
                          max_seq_length=16)


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["crlf", "cr"])
def test_crlf_and_cr_end_tsv_lines_as_lf_does(tmp_path, newline):
    (tmp_path / "lf").mkdir()
    (tmp_path / "other").mkdir()
    text = "sentence\tlabel\n" + SST2_ROWS
    glue_dir, vocab = sst2_folder(tmp_path / "lf", text)
    lf = glue_data.convert(glue_dir, "sst2", vocab,
                           str(tmp_path / "lf" / "out"), max_seq_length=16)
    glue_dir, vocab = sst2_folder(tmp_path / "other", text, newline=newline)
    other = glue_data.convert(glue_dir, "sst2", vocab,
                              str(tmp_path / "other" / "out"),
                              max_seq_length=16)
    assert (other.train_size, other.dev_size) == (3, 1)
    assert read_records(other.train_path) == read_records(lf.train_path)
    assert read_records(other.eval_path) == read_records(lf.eval_path)


def test_a_carriage_return_inside_a_row_ends_it(tmp_path):
    glue_dir, vocab = sst2_folder(tmp_path,
                                  "sentence\tlabel\na dog\rruns\t1\n")
    with pytest.raises(UserError, match=r"train.tsv, line 2: 1 tab-separated "
                       "columns"):
        glue_data.convert(glue_dir, "sst2", vocab, str(tmp_path / "out"),
                          max_seq_length=16)


@pytest.mark.parametrize("where", ["glue_dir", "inside", "link"])
def test_an_output_dir_on_the_inputs_is_one_line_and_writes_nothing(
        tmp_path, where):
    glue_dir, vocab = sst2_folder(tmp_path, "sentence\tlabel\n" + SST2_ROWS)
    output_dir = {"glue_dir": glue_dir, "inside": f"{glue_dir}/records",
                  "link": str(tmp_path / "link")}[where]
    if where == "link":
        os.symlink(glue_dir, output_dir)
    relation = "is inside" if where == "inside" else "is"
    with pytest.raises(UserError, match=rf"output_dir='{output_dir}' "
                       rf"{relation} glue_dir='{glue_dir}'"):
        glue_data.convert(glue_dir, "sst2", vocab, output_dir,
                          max_seq_length=16)
    assert sorted(os.listdir(glue_dir)) == ["dev.tsv", "train.tsv"]

"""tools/bench_real_text.py gathers real text and runs prepare_data on it
(tiny sizes here, no timing checks)."""

import gzip
import os

import pytest

import bench_real_text
from data_testdata import tiny_documents, write_lines, bert_format
from token_dropping.data import TextFileCorpus, vocab


def _roots(tmp_path):
    doc, packages = tmp_path / "doc", tmp_path / "site-packages"
    (doc / "b-pkg").mkdir(parents=True)
    (packages / "mod").mkdir(parents=True)
    documents = tiny_documents(60, seed=2)
    (doc / "b-pkg" / "changelog.gz").write_bytes(
        gzip.compress(bert_format(documents[:30]).encode()))
    (doc / "a-pkg").mkdir()
    (doc / "a-pkg" / "README").write_text("Caf\u00e9 notes.\r\nSecond line.\n")
    (doc / "a-pkg" / "logo.png").write_bytes(b"PNG\0\0")  # NUL: binary.
    (doc / "a-pkg" / "latin1.txt").write_bytes(b"caf\xe9\n")
    (packages / "mod" / "x.py").write_text(bert_format(documents[30:]))
    (packages / "mod" / "x.so").write_text("not gathered")
    return str(doc), str(packages)


def test_gathers_utf8_text_in_order_skipping_binaries(tmp_path):
    doc, packages = _roots(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    # Just under all of it: the last file is needed too.
    megabytes = len(bert_format(tiny_documents(60, seed=2))) / 1e6
    gathered = bench_real_text.gather(str(out), megabytes, megabytes / 4, doc,
                                      packages)
    assert gathered["skipped"] == 2  # logo.png, latin1.txt
    assert gathered["files"] == len(os.listdir(out)) >= 2
    assert set(gathered["sources"]) == {"doc", "packages"}
    documents = list(TextFileCorpus(str(out / "real-text-*.txt")).documents())
    assert documents[0] == ["Caf\u00e9 notes.", "Second line."]
    assert documents[1:] == tiny_documents(60, seed=2)
    with pytest.raises(SystemExit, match="Only 0.0 MB of text found"):
        bench_real_text.gather(str(out), 5, 1, doc, packages)


@pytest.mark.slow
def test_runs_prepare_data_for_each_number_of_workers(tmp_path, capsys):
    doc, packages = _roots(tmp_path)
    vocab_file = write_lines(tmp_path / "vocab.txt", vocab.learn_vocab(
        [s for d in tiny_documents(60, seed=2) for s in d], 300))
    bench_real_text.main(["--megabytes=0.001", "--shard_megabytes=0.0005",
                          f"--doc_root={doc}", f"--packages_root={packages}",
                          f"--vocab_file={vocab_file}", "--num_workers=1,2",
                          "--seq_length=32", "--max_predictions_per_seq=5"])
    printed = capsys.readouterr().out
    assert printed.count("profile: ") == 2
    assert "--num_workers=2" in printed and "workers " in printed


@pytest.mark.parametrize("flag", ["--num_workers=abc", "--num_workers=1,0",
                                  "--beam_workers=-2"])
def test_a_bad_worker_count_is_refused_before_any_work(flag, capsys):
    with pytest.raises(SystemExit) as stopped:
        bench_real_text.main([flag])
    assert stopped.value.code == 2
    value = flag.split("=")[1]
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        f"in {value!r} is not a worker count (a whole number of at least 1, "
        "e.g. 1,2)")


def test_no_build_to_measure_is_refused_before_gathering(capsys,
                                                         monkeypatch):
    monkeypatch.setattr(bench_real_text, "gather", _never)
    with pytest.raises(SystemExit) as stopped:
        bench_real_text.main(["--num_workers=", "--beam_workers="])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "nothing to measure: give --num_workers and/or --beam_workers (e.g. "
        "--num_workers=1,2)")


def _never(*unused):
    raise AssertionError("gathered text with nothing to measure")

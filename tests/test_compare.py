"""tools/compare.py: BERT vs token dropping at equal compute, on tiny sizes."""

import csv
import os
import re
import subprocess
import sys

import pytest

from token_dropping import compare
from token_dropping.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPARE = os.path.join(ROOT, "tools", "compare.py")

# The tiny experiments shrunk to seconds (tests/test_training.py's SHRINK).
ENCODER = dict(num_layers=2, hidden_size=16, num_attention_heads=2,
               intermediate_size=32, vocab_size=200,
               max_position_embeddings=32, token_keep_k=16)
DATA = ("task.train_data.seq_length=32,task.validation_data.seq_length=32,"
        "task.train_data.max_predictions_per_seq=5,"
        "task.validation_data.max_predictions_per_seq=5,"
        "task.train_data.global_batch_size=4,"
        "task.validation_data.global_batch_size=4,runtime.enable_xla=false")


def test_compare_end_to_end(records, tmp_path):
    out = tmp_path / "out"
    result = compare.run_comparison(
        str(out), train_steps=4, eval_every=2, with_random=True,
        train_input_path=records[0], validation_input_path=records[1],
        runs_dir=str(tmp_path / "runs"), encoder_overrides=ENCODER,
        params_override=DATA)

    with open(out / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == compare.CSV_COLUMNS
    assert [(r["model"], int(r["step"])) for r in rows] == [
        (m, s) for m in ("bert", "token_drop", "token_drop_random")
        for s in (2, 4)]
    flops = {(r["model"], int(r["step"])): float(r["train_flops"])
             for r in rows}
    # 3 x forward FLOPs per sequence x batch 4 x steps, from the FLOP model.
    sizes = dict(seq_length=32, hidden_size=16, num_layers=2, inner_dim=32,
                 vocab_size=200, max_predictions_per_seq=5)
    from token_dropping.flops import pretraining_flops
    assert flops["bert", 4] == pytest.approx(
        4 * 4 * 3 * pretraining_flops(**sizes), rel=1e-5)
    assert flops["token_drop", 2] == pytest.approx(
        2 * 4 * 3 * pretraining_flops(**sizes, token_keep_k=16), rel=1e-5)
    assert flops["token_drop_random", 4] == pytest.approx(
        flops["token_drop", 4], rel=1e-5)
    for row in rows:
        assert 0 < float(row["val_mlm_loss"]) < 10
        assert 0 <= float(row["val_mlm_accuracy"]) <= 1
        assert float(row["wall_seconds"]) > 0
    for model in ("bert", "token_drop"):
        wall = [float(r["wall_seconds"]) for r in rows if r["model"] == model]
        assert wall[0] < wall[1]  # cumulative

    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "summary.md").read_text()
    assert summary.strip() == result.summary
    assert "At equal steps (4) token dropping" in summary
    assert "BERT's training FLOPs" in summary
    assert "10 validation sequences" in summary
    assert "random selection" in summary
    # The runs stay in runs_dir; a second comparison there refuses to resume.
    assert os.listdir(tmp_path / "runs" / "token_drop")
    with pytest.raises(UserError, match="is not empty"):
        compare.run_comparison(
            str(out), train_steps=4, eval_every=2,
            train_input_path=records[0], validation_input_path=records[1],
            runs_dir=str(tmp_path / "runs"), encoder_overrides=ENCODER,
            params_override=DATA)


def test_compute_to_reach_interpolates_along_the_curve():
    flops = [100.0, 200.0, 300.0, 400.0]
    losses = [6.0, 5.0, 4.0, 3.5]
    # 4.5 lies halfway between the evaluations at 200 (5.0) and 300 (4.0).
    assert compare.compute_to_reach(flops, losses, 4.5) == 250.0
    # 3.6: a fifth of the way from 300 (4.0) to 400 (3.5): 300 + 0.8 * 100.
    assert compare.compute_to_reach(flops, losses, 3.6) == pytest.approx(380.0)
    # Reached exactly at an evaluation.
    assert compare.compute_to_reach(flops, losses, 4.0) == 300.0
    # The first crossing counts, even if the curve goes back up.
    assert compare.compute_to_reach([1, 2, 3], [5.0, 3.0, 4.5], 4.0) == 1.5
    # Already below at the first evaluation: that evaluation, an upper bound.
    assert compare.compute_to_reach(flops, losses, 7.0) == 100.0
    # Never reached.
    assert compare.compute_to_reach(flops, losses, 3.0) is None
    # The summary's share: a baseline that used 400 FLOPs to reach 3.6, a
    # token-dropping curve at 0.75 of its FLOPs per step reaching it at 285.
    drop = [75.0, 150.0, 225.0, 300.0]
    assert compare.compute_to_reach(drop, losses, 3.6) / 400.0 == \
        pytest.approx(0.7125)
    with pytest.raises(ValueError, match="3 compute values but 2 losses"):
        compare.compute_to_reach([1, 2, 3], [1.0, 2.0], 1.5)


@pytest.mark.parametrize("kwargs,message", [
    (dict(train_steps=250, eval_every=100),
     "--train_steps=250 is not a multiple of --eval_every=100"),
    (dict(train_steps=0), "--train_steps=0 must be a positive integer"),
    (dict(size="huge"), "--size='huge' is not one of tiny, base, large"),
    (dict(train_input_path="/tmp/x"), "Give both --train_input_path and"),
])
def test_bad_arguments_are_refused_before_anything_runs(kwargs, message,
                                                         tmp_path):
    with pytest.raises(UserError, match=re.escape(message)):
        compare.run_comparison(str(tmp_path / "out"), **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args,message", [
    (["--train_steps=250", "--eval_every=100"],
     "--train_steps=250 is not a multiple of --eval_every=100"),
    (["--train_input_path=/nonexistent/x-*",
      "--validation_input_path=/nonexistent/y"],
     "bert_tiny: task.train_data.input_path: no file matches"),
])
def test_cli_bad_input_is_one_clear_line(args, message, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, COMPARE, f"--output_dir={tmp_path / 'out'}", *args],
        capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("compare.py: error: ") and message in last, last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()

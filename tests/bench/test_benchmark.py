"""tools/benchmark.py end to end on tiny sizes (a few steps, no timing checks)."""

import json
import math
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest
from official.nlp.tasks import masked_lm

from token_dropping.bench import benchmark
from token_dropping.bench import memory as benchmark_memory
from token_dropping.bench import steps as benchmark_steps
from token_dropping.model import flops
from token_dropping.common.errors import UserError
from token_dropping.train.task import TokenDropMaskedLMTask
from in_process import tool_in_process

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(ROOT, "tools", "benchmark.py")
# Small enough to build, compile and step in seconds.
TINY_FLAGS = ["--preset=tiny", "--num_layers=3", "--hidden_size=16",
              "--num_attention_heads=2", "--inner_dim=32", "--seq_length=16",
              "--token_keep_k=8", "--vocab_size=1100",
              "--max_predictions_per_seq=3", "--batch_size=2"]
DOCUMENTED_KEYS = {"preset", "batch_size", "seq_length", "token_keep_k",
                   "baseline_step_s", "token_drop_step_s", "step_time_ratio",
                   "flop_ratio", "device"}


def run_tool(*flags):
    # GPUs hidden: the device checks below are about the CPU path.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, TOOL, *flags], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          check=False)


def check_outputs(output, done, steps):
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(output.read_text())
    assert DOCUMENTED_KEYS <= set(results)
    assert (results["preset"], results["batch_size"], results["seq_length"],
            results["token_keep_k"]) == ("tiny", 2, 16, 8)
    assert results["device"].startswith("CPU")
    assert results["step_time_ratio"] == pytest.approx(
        results["token_drop_step_s"] / results["baseline_step_s"])
    for key in ("baseline_step_s", "token_drop_step_s", "added_ops_share",
                "step_time_ratio_paired", "cpu_time_ratio"):
        assert math.isfinite(results[key]), key
    for times in (*results["step_times_s"].values(),
                  *results["cpu_times_s"].values()):
        assert len(times) == steps
    # Every derived figure, recomputed from the recorded times (medians).
    times, cpu = results["step_times_s"], results["cpu_times_s"]
    median = statistics.median
    base, drop = median(times["baseline"]), median(times["token_drop"])
    assert (results["baseline_step_s"], results["token_drop_step_s"]) == (
        pytest.approx(base), pytest.approx(drop))
    assert results["step_time_ratio_paired"] == pytest.approx(median(
        [d / b for d, b in zip(times["token_drop"], times["baseline"])]))
    assert results["cpu_time_ratio"] == pytest.approx(
        median(cpu["token_drop"]) / median(cpu["baseline"]))
    assert results["added_ops_share"] == pytest.approx(
        median(times["added_ops"]) / drop)
    assert (results["baseline_tokens_per_s"],
            results["token_drop_tokens_per_s"]) == (
                pytest.approx(2 * 16 / base), pytest.approx(2 * 16 / drop))
    sizes = dict(seq_length=16, hidden_size=16, num_layers=3, inner_dim=32,
                 vocab_size=1100, max_predictions_per_seq=3)
    layout = dict(token_keep_k=8, drop_start_layer=0, drop_end_layer=2)
    assert results["baseline_train_tflops_per_s"] == pytest.approx(
        3 * 2 * flops.pretraining_flops(**sizes) / base / 1e12)
    assert results["token_drop_train_tflops_per_s"] == pytest.approx(
        3 * 2 * flops.pretraining_flops(**sizes, **layout) / drop / 1e12)
    # 3 layers -> default drop layers (0, 2); the head counts in the ratio.
    assert results["sizes"]["drop_start_layer"] == 0
    assert results["sizes"]["drop_end_layer"] == 2
    assert results["flop_ratio"] == flops.flop_ratio(
        seq_length=16, hidden_size=16, num_layers=3, inner_dim=32,
        token_keep_k=8, vocab_size=1100, max_predictions_per_seq=3)
    table = output.with_suffix(".md").read_text()
    assert "| step time (s), median |" in table
    assert output.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert "| tokens/s |" in done.stdout  # the table is printed too
    return results


def test_cli_writes_documented_json_table_and_chart(tmp_path):
    # Without XLA: compiling costs ~15 s even at these sizes on 2 busy cores;
    # the XLA path runs in the slow test below and in test_encoder.
    # The tool's main in this process (no process start; the bad-input test
    # below and the slow one run its command line).
    output = tmp_path / "out" / "results.json"
    done = tool_in_process("benchmark.py", *TINY_FLAGS, "--steps=2",
                           "--warmup_steps=1", "--xla=false", "--memory=false",
                           f"--output={output}")
    results = check_outputs(output, done, steps=2)
    assert results["xla"] is False
    assert "baseline_peak_memory_mb" not in results


@pytest.mark.slow
def test_cli_with_xla_memory_and_control(tmp_path):
    output = tmp_path / "results.json"
    done = run_tool(*TINY_FLAGS, "--steps=2", "--warmup_steps=1",
                    "--keep_all_control", f"--output={output}")
    results = check_outputs(output, done, steps=2)
    assert results["xla"] is True
    assert set(results["step_times_s"]) == {"baseline", "token_drop",
                                            "added_ops", "keep_all"}
    if os.path.exists("/proc/self/clear_refs"):
        assert results["baseline_peak_memory_mb"] > 0
        assert results["token_drop_peak_memory_mb"] > 0


def test_cli_bad_input_is_one_clear_line():
    # Every invalid value takes this path; the cases are checked below.
    done = run_tool("--preset=base", "--token_keep_k=600")
    message = "token_keep_k=600 exceeds seq_length=512"
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("benchmark.py: error: ") and (
        message in last_line)


@pytest.mark.parametrize("arguments,message", [
    (dict(steps=0), "steps=0"),
    (dict(warmup_steps=0), "warmup_steps=0"),
    (dict(preset="tiny", max_predictions_per_seq=127),
     "max_predictions_per_seq=127"),
    (dict(preset="tiny", num_layers=2, drop_start_layer=1, drop_end_layer=1),
     "drop_start_layer=1 and drop_end_layer=1"),
    (dict(preset="tiny", hidden_size=-3), "hidden_size=-3"),
    (dict(preset="huge"), "preset='huge' is not one of"),
    (dict(preset="base", token_keep_k=600),
     "token_keep_k=600 exceeds seq_length=512"),
    # The table would overwrite a .md output; a folder failed at the end.
    (dict(output="results.md"), "--output='results.md' must be a .json file "
     "path"),
    (dict(output="out/"), "--output='out/' must be a .json file path"),
    # Applied to the token-dropping model only: a 64-wide one measured
    # against a 128-wide BERT, or a traceback from the run.
    (dict(preset="tiny", params_override="task.model.encoder.any."
          "hidden_size=64"), "--params_override sets task.model.encoder.any."
     "hidden_size, a size both models must share; use --hidden_size."),
    (dict(preset="tiny", params_override="task.train_data."
          "global_batch_size=4"), "use --batch_size."),
])
def test_invalid_arguments_name_the_value(arguments, message):
    with pytest.raises(UserError, match=message):
        benchmark.check_arguments(**arguments)


def test_presets_resolve_the_papers_layout():
    base = benchmark.resolve_sizes("base")
    assert (base["num_layers"], base["hidden_size"], base["seq_length"],
            base["token_keep_k"]) == (12, 768, 512, 256)
    assert (base["drop_start_layer"], base["drop_end_layer"]) == (5, 11)
    assert benchmark.resolve_sizes("base", batch_size=4,
                                   token_keep_k=None)["batch_size"] == 4


def test_synthetic_batch_masks_distinct_inner_positions():
    sizes = benchmark.resolve_sizes("tiny", seq_length=16, token_keep_k=8,
                                    max_predictions_per_seq=5, batch_size=3)
    batch = benchmark_steps.synthetic_batch(sizes)
    word_ids = batch["input_word_ids"].numpy()
    positions = batch["masked_lm_positions"].numpy()
    assert positions.shape == (3, 5)
    for row, kept in zip(word_ids, positions):
        assert len(set(kept)) == 5 and 0 not in kept and 15 not in kept
        assert (row[kept] == 103).all()  # [MASK]
        assert row[0] == 101 and row[-1] == 102  # [CLS] ... [SEP]
    assert (batch["masked_lm_ids"].numpy() >= 1000).all()


def tiny_sizes():
    return benchmark.resolve_sizes(
        "tiny", num_layers=2, hidden_size=16, num_attention_heads=2,
        inner_dim=32, seq_length=16, token_keep_k=8, vocab_size=1100,
        max_predictions_per_seq=3, batch_size=2)


def test_the_timed_step_is_the_tasks_train_step_with_trains_optimizer():
    sizes = tiny_sizes()
    inputs = benchmark_steps.synthetic_batch(sizes)
    step = benchmark_steps.make_train_step("token_drop", "tiny", sizes,
                                           inputs, xla=False)
    assert type(step.task) is TokenDropMaskedLMTask  # pylint: disable=unidiomatic-typecheck
    # token_drop_bert_tiny's schedule (tools/train.py's optimizer): 1e-3
    # decaying linearly to 0 at step 800, and over the first 80 steps Model
    # Garden's linear warmup to the decay's value at step 80 (9e-4).
    rate = lambda at: float(step.optimizer.learning_rate(at))
    assert rate(40) == pytest.approx(0.5 * 9e-4)
    assert rate(400) == pytest.approx(1e-3 * (1 - 400 / 800))
    assert rate(800) == 0.0
    table = step.model.encoder_network.importance
    before = table.numpy().copy()
    for _ in range(2):
        assert np.isfinite(float(step(inputs)))
    assert int(step.optimizer.iterations) == 2
    # The importance update ran: exactly the masked ids moved.
    moved = np.flatnonzero(table.numpy() != before)
    np.testing.assert_array_equal(
        moved, np.unique(inputs["masked_lm_ids"].numpy()))
    results = {m.name: float(m.result()) for m in step.metrics}
    assert results["dropped_token_fraction"] == pytest.approx(0.5)  # 8 of 16
    # Plain BERT: Model Garden's own task and step.
    bert = benchmark_steps.make_train_step("baseline", "tiny", sizes, inputs,
                                           xla=False)
    assert type(bert.task) is masked_lm.MaskedLMTask  # pylint: disable=unidiomatic-typecheck
    bert(inputs)
    assert int(bert.optimizer.iterations) == 1


def test_a_variant_is_part_of_the_timed_step():
    sizes = tiny_sizes()
    inputs = benchmark_steps.synthetic_batch(sizes)
    step = benchmark_steps.make_train_step(
        "token_drop", "tiny", sizes, inputs, xla=False,
        params_override="task.consistency_interval=1")
    step(inputs)
    results = {m.name: float(m.result()) for m in step.metrics}
    assert results["full_pass_mlm_loss"] > 0.0  # ScTD's full pass ran
    with pytest.raises(UserError, match="no_such_field"):
        benchmark.check_arguments(preset="tiny", steps=1,
                                  params_override="task.no_such_field=1")


# That importing the benchmark builds no experiment config is checked in
# tests/test_imports.py, in the fresh interpreter it starts anyway.


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"),
                    reason="peak RSS reset needs Linux /proc")
def test_memory_child_reports_peak_rss():
    # In a fresh process, as the benchmark measures: in pytest's own, after
    # other tests, memory freed during the build can leave the reset
    # high-water mark below the RSS before it (seen: 2712 against 2793 MB).
    measured = benchmark_memory._memory_in_child_process(
        "token_drop", "tiny", tiny_sizes(), xla=False, steps=1,
        params_override=None)
    assert measured["peak_rss_mb"] > measured["rss_before_build_mb"] > 0

"""bench/report.py: the benchmark's table and files from hand-made results."""

import json

from token_dropping.bench import report

RESULTS = dict(
    device="CPU: test, 2 cores, no GPU", preset="tiny", batch_size=4,
    seq_length=32, token_keep_k=16, xla=False, steps=5,
    baseline_step_s=0.2, token_drop_step_s=0.15, step_time_ratio=0.75,
    step_time_ratio_paired=0.7512,
    cpu_times_s=dict(baseline=[0.3, 0.1, 0.2], token_drop=[0.2, 0.1, 0.15]),
    cpu_time_ratio=0.75, flop_ratio=0.7345, flop_ratio_layers_only=0.6789,
    baseline_examples_per_s=20.0, token_drop_examples_per_s=26.667,
    baseline_tokens_per_s=640.0, token_drop_tokens_per_s=853.3,
    baseline_train_tflops_per_s=0.0123, token_drop_train_tflops_per_s=0.0124,
    added_ops_step_s=0.00123, added_ops_share=0.0082,
    added_ops_cpu_share=0.0091)


def test_table_rows_carry_the_results():
    lines = report.benchmark_table(RESULTS).splitlines()
    assert lines[0] == ("CPU: test, 2 cores, no GPU; preset tiny, batch 4, "
                        "seq 32, keep 16, XLA off, median of 5 interleaved "
                        "steps.")
    assert "| step time (s), median | 0.200 | 0.150 | 0.750 |" in lines
    assert "| step time ratio, median of A/B pairs |  |  | 0.751 |" in lines
    # Medians of the CPU times: 0.2 and 0.15.
    assert ("| process CPU time per step (s), median | 0.200 | 0.150 | "
            "0.750 |") in lines
    assert "| analytic FLOPs (with MLM head) | 1 | 0.735 | 0.735 |" in lines
    assert "| tokens/s | 640 | 853 |  |" in lines
    assert lines[-1] == (
        "Added by token dropping (selection, gather, scatter, their "
        "gradients, importance update), timed alone: 1.23 ms, 0.82% of the "
        "token-dropping step (0.91% in CPU time).")
    assert not any("peak memory" in line or "control" in line
                   for line in lines)  # not measured: no row


def test_optional_rows_appear_with_their_measurements():
    results = dict(
        RESULTS, baseline_peak_memory_mb=400.0, token_drop_peak_memory_mb=300.0,
        keep_all_step_s=0.21, keep_all_ratio_paired=1.05,
        keep_all_cpu_time_ratio=1.04, memory_method="peak RSS of a child",
        cpu_times_s=dict(RESULTS["cpu_times_s"], keep_all=[0.25]))
    lines = report.benchmark_table(results).splitlines()
    assert "| peak memory (MiB) | 400 | 300 | 0.750 |" in lines
    assert ("| control: token dropping keeping all 32 (s) | 0.200 | 0.210 | "
            "1.050 |") in lines
    assert ("| control: CPU time per step (s), median | 0.200 | 0.250 | "
            "1.040 |") in lines
    assert lines[-1] == "Memory: peak RSS of a child."


def test_write_benchmark_writes_json_table_and_png(tmp_path):
    output = tmp_path / "new" / "results.json"
    report.write_benchmark(RESULTS, str(output))
    assert json.loads(output.read_text()) == RESULTS
    assert (tmp_path / "new" / "results.md").read_text() == \
        report.benchmark_table(RESULTS)
    assert (tmp_path / "new" / "results.png").read_bytes()[:4] == b"\x89PNG"

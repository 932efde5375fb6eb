"""Turns what the benchmark measured into tables, CSV, plots and prose.

Measuring code (`benchmark`, `memory`) returns plain data; writing it for
people happens here.
"""

import json
import os
import statistics


def _median(values):
    return float(statistics.median(values))


def benchmark_table(results):
    """A markdown table of the results."""
    def row(name, base, drop, ratio=""):
        return f"| {name} | {base} | {drop} | {ratio} |"

    r = results
    lines = [
        f"{r['device']}; preset {r['preset']}, batch {r['batch_size']}, "
        f"seq {r['seq_length']}, keep {r['token_keep_k']}, "
        f"XLA {'on' if r['xla'] else 'off'}, median of {r['steps']} "
        "interleaved steps.",
        "",
        "| | BERT | token dropping | ratio |",
        "|---|---:|---:|---:|",
        row("step time (s), median", f"{r['baseline_step_s']:.3f}",
            f"{r['token_drop_step_s']:.3f}", f"{r['step_time_ratio']:.3f}"),
        row("step time ratio, median of A/B pairs", "", "",
            f"{r['step_time_ratio_paired']:.3f}"),
        row("process CPU time per step (s), median",
            f"{_median(r['cpu_times_s']['baseline']):.3f}",
            f"{_median(r['cpu_times_s']['token_drop']):.3f}",
            f"{r['cpu_time_ratio']:.3f}"),
        row("analytic FLOPs (with MLM head)", "1", f"{r['flop_ratio']:.3f}",
            f"{r['flop_ratio']:.3f}"),
        row("analytic FLOPs (layers only)", "1",
            f"{r['flop_ratio_layers_only']:.3f}",
            f"{r['flop_ratio_layers_only']:.3f}"),
        row("examples/s", f"{r['baseline_examples_per_s']:.2f}",
            f"{r['token_drop_examples_per_s']:.2f}"),
        row("tokens/s", f"{r['baseline_tokens_per_s']:.0f}",
            f"{r['token_drop_tokens_per_s']:.0f}"),
        row("achieved training TFLOP/s", f"{r['baseline_train_tflops_per_s']:.3f}",
            f"{r['token_drop_train_tflops_per_s']:.3f}"),
    ]
    if "baseline_peak_memory_mb" in r:
        lines.append(row(
            "peak memory (MiB)", f"{r['baseline_peak_memory_mb']:.0f}",
            f"{r['token_drop_peak_memory_mb']:.0f}",
            f"{r['token_drop_peak_memory_mb'] / r['baseline_peak_memory_mb']:.3f}"))
    if "keep_all_step_s" in r:
        lines.append(row(
            f"control: token dropping keeping all {r['seq_length']} (s)",
            f"{r['baseline_step_s']:.3f}", f"{r['keep_all_step_s']:.3f}",
            f"{r['keep_all_ratio_paired']:.3f}"))
        lines.append(row(
            "control: CPU time per step (s), median",
            f"{_median(r['cpu_times_s']['baseline']):.3f}",
            f"{_median(r['cpu_times_s']['keep_all']):.3f}",
            f"{r['keep_all_cpu_time_ratio']:.3f}"))
    lines += [
        "",
        f"Added by token dropping (selection, gather, scatter, their "
        f"gradients, importance update), timed alone: "
        f"{1e3 * r['added_ops_step_s']:.2f} ms, "
        f"{100 * r['added_ops_share']:.2f}% of the token-dropping step "
        f"({100 * r['added_ops_cpu_share']:.2f}% in CPU time).",
    ]
    if "memory_method" in r:
        lines += ["", f"Memory: {r['memory_method']}."]
    return "\n".join(lines) + "\n"


def benchmark_plot(results, path):
    """A PNG bar chart: step time of each model, and the FLOP expectation."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel

    r = results
    figure, axes = pyplot.subplots(figsize=(6, 3.6))
    names = ["BERT", "token dropping", "token dropping\n(FLOP model)"]
    values = [r["baseline_step_s"], r["token_drop_step_s"],
              r["baseline_step_s"] * r["flop_ratio"]]
    bars = axes.bar(names, values, color=["#888888", "#1f77b4", "#aec7e8"])
    for bar, value in zip(bars, values):
        axes.annotate(f"{value:.3f} s", (bar.get_x() + bar.get_width() / 2,
                                         value), ha="center", va="bottom")
    axes.set_ylabel("median training step (s)")
    axes.set_title(
        f"{r['preset']}: batch {r['batch_size']}, seq {r['seq_length']}, "
        f"keep {r['token_keep_k']}, XLA {'on' if r['xla'] else 'off'}\n"
        f"measured ratio {r['step_time_ratio']:.3f}, "
        f"FLOP ratio {r['flop_ratio']:.3f}", fontsize=10)
    axes.set_ylim(0, max(values) * 1.18)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def write_benchmark(results, output):
    """Writes `output` (JSON) and, beside it, `.md` and `.png` versions."""
    stem = os.path.splitext(output)[0]
    directory = os.path.dirname(output)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    with open(stem + ".md", "w", encoding="utf-8") as f:
        f.write(benchmark_table(results))
    benchmark_plot(results, stem + ".png")

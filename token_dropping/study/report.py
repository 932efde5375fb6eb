"""A study's outputs: CSVs, two plots and `summary.md` with one table.

`write_study` turns what `study.run_study` measured into files for people:

- `evaluations.csv`: a row per (model, seed, evaluation), `EVAL_COLUMNS`;
- `finetuning.csv`: a row per fine-tuning run, `FINETUNE_COLUMNS`;
- `loss_vs_flops.png`: validation MLM loss against training FLOPs, each
  model's mean over seeds with a band of one standard deviation, the unigram
  floor and BERT's final loss marked;
- `probe_accuracy.png`: probe dev accuracy per model, mean and standard
  deviation, with the random-init and majority rows;
- `summary.md`: the machine, the command, and the table.

A difference is called real only where it exceeds the seed spread: the mean
of the per-seed differences is larger than the larger of the two models'
standard deviations across seeds. A cell that holds fewer seeds than the
study ran (a seed's run lacks that evaluation, or never got there) says how
many, e.g. "(1 of 2 seeds)".
"""

import dataclasses
import math
import os
import statistics

import numpy as np

from token_dropping.common import reporting
from token_dropping.study import curves

EVAL_COLUMNS = ("model", "experiment", "seed", "step", "train_flops",
                "wall_seconds", "val_mlm_loss", "val_mlm_accuracy",
                "train_mlm_loss")
FINETUNE_COLUMNS = ("model", "pretrain_seed", "finetune_seed",
                    "dev_accuracy")
FILES = ("evaluations.csv", "finetuning.csv", "loss_vs_flops.png",
         "probe_accuracy.png", "summary.md")


@dataclasses.dataclass
class StudyReport:
    """What a study wrote: `table` rows (dicts) and the files' paths."""
    table: list
    summary: str
    paths: dict


class Stat(tuple):
    """(mean, std) over the finite values: `held` of them, out of the
    `asked` values (one per seed)."""

    def __new__(cls, mean, std, held, asked):
        stat = super().__new__(cls, (mean, std))
        stat.held, stat.asked = held, asked
        return stat


def _mean_std(values):
    total = len(values)
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return Stat(float("nan"), float("nan"), 0, total)
    return Stat(float(statistics.fmean(values)),
                float(statistics.stdev(values)) if len(values) > 1 else 0.0,
                len(values), total)


def _seeds_note(stat):
    """" (n of N seeds)" when a cell holds fewer values than asked for."""
    held, asked = getattr(stat, "held", 0), getattr(stat, "asked", 0)
    if 0 < held < asked:
        return f" ({held} of {asked} seeds)"
    return ""


def _fmt(mean, std, digits=3, stat=None):
    if not np.isfinite(mean):
        return "—"
    return f"{mean:.{digits}f} ± {std:.{digits}f}{_seeds_note(stat)}"


def _fmt_stat(stat):
    return _fmt(*stat, stat=stat)


def _curve(rows, name, seed):
    points = sorted((r["step"], r) for r in rows
                    if r["model"] == name and r["seed"] == seed)
    return [r for _, r in points]


def _at_step(curve, step):
    return next((r for r in curve if r["step"] == step), None)


# Runs stop on whole steps: one that ends this close below BERT's FLOPs is at
# equal compute (ScTD's 1,118 steps hold 111 full passes, not the average's
# 111.8, and end at 0.9996 of BERT's compute).
EQUAL_COMPUTE_TOLERANCE = 1e-3


def _loss_at_flops(curve, flops):
    xs = [r["train_flops"] for r in curve]
    if not xs or flops > xs[-1] * (1 + EQUAL_COMPUTE_TOLERANCE):
        return None
    return curves.interpolate(xs, [r["val_mlm_loss"] for r in curve],
                              min(flops, xs[-1]))


def model_table(specs, rows, finetunes, seeds, train_steps, floor,
                flop_ratios):
    """One dict per model: the summary table's cells (numbers)."""
    # The baseline is the BERT model, wherever it is in `specs`.
    base = next((s for s in specs if s.is_baseline), specs[0]).name
    base_final = {s: _curve(rows, base, s)[-1] for s in seeds}
    table = []
    for spec in specs:
        finals = {s: _curve(rows, spec.name, s)[-1] for s in seeds}
        loss = _mean_std([finals[s]["val_mlm_loss"] for s in seeds])
        entry = dict(
            model=spec.name, label=spec.label, baseline=spec.name == base,
            steps=finals[seeds[0]]["step"], flop_ratio=flop_ratios[spec.name],
            loss=loss,
            accuracy=_mean_std([finals[s]["val_mlm_accuracy"]
                                for s in seeds]),
            below_floor=floor - loss[0],
            train_val_gap=_mean_std([finals[s]["val_mlm_loss"]
                                     - finals[s]["train_mlm_loss"]
                                     for s in seeds]),
            probe=_mean_std([f["dev_accuracy"] for f in finetunes
                             if f["model"] == spec.name]))
        if spec.name != base:
            equal_steps = [_at_step(_curve(rows, spec.name, s), train_steps)
                           for s in seeds]
            base_std = _mean_std([base_final[s]["val_mlm_loss"]
                                  for s in seeds])[1]
            steps_std = _mean_std([r["val_mlm_loss"] for r in equal_steps
                                   if r])[1]
            entry["gap_equal_steps"] = _mean_std(
                [r["val_mlm_loss"] - base_final[s]["val_mlm_loss"]
                 if r else None for s, r in zip(seeds, equal_steps)])
            entry["gap_equal_steps_real"] = abs(
                entry["gap_equal_steps"][0]) > max(base_std, steps_std)
            at_compute = [_loss_at_flops(_curve(rows, spec.name, s),
                                         base_final[s]["train_flops"])
                          for s in seeds]
            entry["gap_equal_compute"] = _mean_std(
                [None if v is None else v - base_final[s]["val_mlm_loss"]
                 for s, v in zip(seeds, at_compute)])
            entry["gap_equal_compute_real"] = abs(
                entry["gap_equal_compute"][0]) > max(base_std, loss[1])
            entry["compute_to_reach"] = []
            for s in seeds:
                curve = _curve(rows, spec.name, s)
                reached = curves.compute_to_reach(
                    [r["train_flops"] for r in curve],
                    [r["val_mlm_loss"] for r in curve],
                    base_final[s]["val_mlm_loss"])
                entry["compute_to_reach"].append(
                    None if reached is None
                    else reached / base_final[s]["train_flops"])
        table.append(entry)
    return table


def _gap_cell(entry, key):
    if key not in entry:
        return "—"
    mean, std = entry[key]
    if math.isnan(mean):
        return "not measured (no seed's run got there)"
    verdict = "real" if entry[key + "_real"] else "within seed spread"
    return (f"{mean:+.3f} ± {std:.3f} ({verdict})"
            f"{_seeds_note(entry[key])}")


def _reach_cell(entry):
    if "compute_to_reach" not in entry:
        return "—"
    return ", ".join("not reached" if v is None else f"{v:.2f}"
                     for v in entry["compute_to_reach"])


TABLE_HEADER = (
    "| model | steps | step FLOPs vs BERT | val MLM loss | below unigram "
    "floor | val MLM accuracy | val − train loss | loss gap to BERT, equal "
    "steps | loss gap to BERT, equal compute | share of BERT's compute to "
    "reach its loss (per seed) | probe dev accuracy |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|")


def markdown_table(table, random_init, majority):
    lines = [TABLE_HEADER]
    for e in table:
        lines.append(
            f"| {e['label']} | {e['steps']} | {e['flop_ratio']:.3f} | "
            f"{_fmt_stat(e['loss'])} | {e['below_floor']:.3f} | "
            f"{_fmt_stat(e['accuracy'])} | {_fmt_stat(e['train_val_gap'])} | "
            f"{_gap_cell(e, 'gap_equal_steps')} | "
            f"{_gap_cell(e, 'gap_equal_compute')} | {_reach_cell(e)} | "
            f"{_fmt_stat(e['probe'])} |")
    blank = "| — " * 9
    lines.append(f"| randomly initialised encoder {blank}| "
                 f"{_fmt_stat(random_init)} |")
    lines.append(f"| majority class {blank}| {majority:.3f} |")
    return "\n".join(lines)


def loss_plot(path, specs, rows, seeds, floor):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel

    figure, axis = pyplot.subplots(figsize=(7, 4.2), dpi=90)
    for spec in specs:
        curves = [{r["step"]: r for r in _curve(rows, spec.name, s)}
                  for s in seeds]
        # The steps every seed evaluated at (a run stopped during an
        # evaluation and resumed lacks that one), each averaged over seeds.
        steps = sorted(set.intersection(*(set(c) for c in curves)))
        flops = np.array([curves[0][step]["train_flops"] for step in steps])
        losses = np.array([[c[step]["val_mlm_loss"] for step in steps]
                           for c in curves])
        mean, std = losses.mean(0), losses.std(0, ddof=1 if len(seeds) > 1
                                                 else 0)
        line, = axis.plot(flops, mean, "o-", markersize=3, label=spec.label)
        axis.fill_between(flops, mean - std, mean + std, alpha=0.2,
                          color=line.get_color())
    axis.axhline(floor, color="black", linewidth=0.8, linestyle="--",
                 label="unigram floor")
    axis.set_xlabel("training FLOPs (3 x forward, analytic)")
    axis.set_ylabel("validation MLM loss (full sequences)")
    axis.set_title(f"mean of {len(seeds)} seeds, band: ±1 std", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def accuracy_plot(path, table, random_init, majority):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel

    labels = [e["label"] for e in table] + ["random init"]
    means = [e["probe"][0] for e in table] + [random_init[0]]
    stds = [e["probe"][1] for e in table] + [random_init[1]]
    figure, axis = pyplot.subplots(figsize=(7, 3.6), dpi=90)
    axis.bar(range(len(labels)), means, yerr=stds, capsize=4,
             color="tab:blue", alpha=0.7)
    axis.axhline(majority, color="black", linewidth=0.8, linestyle="--",
                 label="majority class")
    axis.set_xticks(range(len(labels)), labels, fontsize=7, rotation=15)
    low = min([m - s for m, s in zip(means, stds) if np.isfinite(m)]
              + [majority])
    axis.set_ylim(max(0.0, low - 0.05), 1.0)
    axis.set_ylabel("probe dev accuracy")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def write_study(output_dir, *, specs, rows, finetunes, majority, floor,
                config, flop_ratios, num_validation, probe_note, command="",
                wall_minutes=None, data_note=""):
    """Writes every output file; returns a `StudyReport`."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {name: os.path.join(output_dir, name) for name in FILES}
    seeds = list(range(1, config.seeds + 1))
    reporting.write_csv(paths["evaluations.csv"], rows, EVAL_COLUMNS)
    reporting.write_csv(paths["finetuning.csv"], finetunes, FINETUNE_COLUMNS)
    table = model_table(specs, rows, finetunes, seeds, config.train_steps,
                        floor.cross_entropy, flop_ratios)
    random_init = _mean_std([f["dev_accuracy"] for f in finetunes
                             if f["model"] == "random_init"])
    loss_plot(paths["loss_vs_flops.png"], specs, rows, seeds,
              floor.cross_entropy)
    accuracy_plot(paths["probe_accuracy.png"], table, random_init, majority)
    summary = summary_text(table, random_init, majority, floor, config,
                           num_validation, probe_note, command, wall_minutes,
                           data_note)
    with open(paths["summary.md"], "w") as f:
        f.write(summary)
    return StudyReport(table, summary, paths)


def floor_sentence(base, floor):
    """Where BERT ends against the unigram floor, true for either sign."""
    loss = f"(validation loss {base['loss'][0]:.3f} against {floor:.3f})"
    gap = base["below_floor"]
    if gap > 0:
        return (f"BERT ends {gap:.2f} nats below the unigram floor {loss}: "
                "that much of what it predicts comes from context.")
    if gap == 0:
        return (f"BERT ends at the unigram floor {loss}: it has not yet "
                "learned to use context.")
    return (f"BERT ends {-gap:.2f} nats above the unigram floor {loss}: it "
            "has not yet learned to use context.")


def summary_text(table, random_init, majority, floor, config,
                 num_validation, probe_note, command, wall_minutes,
                 data_note):
    base = next((e for e in table if e.get("baseline")), table[0])
    probe_gap = base["probe"][0] - random_init[0]
    sensitive = probe_gap > max(base["probe"][1], random_init[1])
    took = (f" The whole study took {wall_minutes:.0f} minutes (load "
            f"average over the last 15 minutes: {os.getloadavg()[2]:.1f})."
            if wall_minutes else "")
    return f"""# Token dropping against BERT: {config.size} size, {config.seeds} seeds

Machine: {reporting.describe_machine()}.{took}

Command: `{command or 'python tools/study.py'}`

Every model trained with seeds 1..{config.seeds} (initial weights and data
order) on the same records, with one learning-rate schedule (warmup
{config.warmup_steps} steps, then constant {config.learning_rate:g}). BERT
trained {config.train_steps} steps; each token-dropping model continued to
BERT's training FLOPs. {data_note} Validation: {num_validation} sequences with full
models (no dropping). The unigram floor (validation targets' cross-entropy
under the training targets' frequencies) is {floor.cross_entropy:.3f} nats.
{probe_note} Fine-tuned with
Model Garden's `bert/sentence_prediction` ({config.glue_task} layout), {config.finetune_seeds}
fine-tuning seeds per pretrained model, accuracy on its whole dev set.
Values are mean ± standard deviation over seeds; a gap is "real" only if it
exceeds the larger seed standard deviation of the two models.

{markdown_table(table, random_init, majority)}

{floor_sentence(base, floor.cross_entropy)}

The probe {'separates' if sensitive else 'does NOT clearly separate'}
pretrained from random initialisation: BERT {_fmt(*base['probe'])} against
{_fmt(*random_init)} from a random encoder (majority class {majority:.3f}).
"""

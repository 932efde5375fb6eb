"""A study's outputs: CSVs, two plots and `summary.md` with one table.

`write_study` turns what `study.run_study` measured into files for people:

- `evaluations.csv`: a row per (model, seed, run, evaluation),
  `EVAL_COLUMNS`: `phase` is `stable` (the stable run, at its learning
  rate's peak) or `decay` (a branch annealed at `budget`: its row at
  `step == budget` has learning rate 0);
- `finetuning.csv`: a row per fine-tuning run, `FINETUNE_COLUMNS`;
- `loss_vs_flops.png`: each model's annealed frontier (validation MLM loss
  against training FLOPs, mean over seeds with a 95% interval) over its
  stable run, and the unigram floor;
- `probe_accuracy.png`: probe dev accuracy per model, mean and standard
  deviation, with the random-init and majority rows;
- `summary.md`: the machine, the command, and the table.

Gaps between models are paired over seeds with a Student t interval
(`stats`), called real only where the interval excludes 0.
"""

import dataclasses
import os
import statistics

import numpy as np

from token_dropping.common import reporting
from token_dropping.study import stats

EVAL_COLUMNS = ("model", "experiment", "seed", "phase", "budget", "step",
                "learning_rate", "train_flops", "wall_seconds",
                "val_mlm_loss", "val_mlm_accuracy", "train_mlm_loss")
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
    """A (model, seed)'s stable run's rows, by step."""
    return sorted((r for r in rows if r["model"] == name
                   and r["seed"] == seed and r.get("phase") == "stable"),
                  key=lambda r: r["step"])


def _annealed(rows, name, seed):
    """A (model, seed)'s decay branches' final rows, by budget."""
    return sorted((r for r in rows if r["model"] == name
                   and r["seed"] == seed and r.get("phase") == "decay"
                   and r["step"] == r["budget"]), key=lambda r: r["step"])


def _points(rows, name, seed):
    return [(r["train_flops"], r["val_mlm_loss"])
            for r in _annealed(rows, name, seed)]


def _reach(points, target, base_compute):
    """(share of `base_compute` to reach `target`, or None; a note when it
    is only bounded: reached at the frontier's first point, or never)."""
    first_compute, first_loss = min(points)
    if first_loss <= target:
        return None, f"≤ {first_compute / base_compute:.2f}"
    reach = stats.compute_to_reach(points, target)
    if reach is None:
        return None, "not reached"
    return reach / base_compute, ""


def model_table(specs, rows, finetunes, seeds, floor, flop_ratios):
    """One dict per model: the summary table's cells (numbers, intervals).

    Every loss is an annealed run's at its budget (`annealing`). Gaps and
    shares are read along each seed's annealed frontier against BERT's at
    BERT's budgets (`stats.compare_frontiers`), paired over seeds.
    """
    base = next((s for s in specs if s.is_baseline), specs[0]).name
    base_points = {s: _points(rows, base, s) for s in seeds}
    base_final = {s: _annealed(rows, base, s)[-1] for s in seeds}
    table = []
    for spec in specs:
        # Each seed's run at BERT's largest compute (within a step).
        finals = {}
        for s in seeds:
            runs = _annealed(rows, spec.name, s)
            finals[s] = min(runs, key=lambda r: abs(
                r["train_flops"] - base_final[s]["train_flops"]))
        loss = stats.mean_interval(finals[s]["val_mlm_loss"] for s in seeds)
        entry = dict(
            model=spec.name, label=spec.label, baseline=spec.name == base,
            budgets=[r["step"] for r in _annealed(rows, spec.name,
                                                  seeds[0])],
            final_steps=finals[seeds[0]]["step"],
            flop_ratio=flop_ratios[spec.name], loss=loss,
            accuracy=stats.mean_interval(finals[s]["val_mlm_accuracy"]
                                         for s in seeds),
            below_floor=floor - loss.mean,
            probe=_mean_std([f["dev_accuracy"] for f in finetunes
                             if f["model"] == spec.name]))
        if spec.name != base:
            points = {s: _points(rows, spec.name, s) for s in seeds}
            entry["comparisons"] = stats.compare_frontiers(base_points,
                                                           points)
            entry["reach_per_seed"] = [_reach(
                points[s], base_final[s]["val_mlm_loss"],
                base_final[s]["train_flops"]) for s in seeds]
            entry["reach"] = stats.mean_interval(
                r for r, _ in entry["reach_per_seed"])
            entry["spacing"] = max(stats.max_spacing(
                points[s], base_final[s]["train_flops"]) for s in seeds)
        table.append(entry)
    return table


def _interval(interval, digits=3, sign=False):
    if not np.isfinite(interval.mean):
        return "—"
    f = f"{{:{'+' if sign else ''}.{digits}f}}"
    if not np.isfinite(interval.low):
        return f.format(interval.mean)
    return (f"{f.format(interval.mean)} [{f.format(interval.low)}, "
            f"{f.format(interval.high)}]")


def _gap_cells(entry, budgets):
    if "comparisons" not in entry:
        return ["—"] * budgets
    cells = []
    for c in entry["comparisons"]:
        if not np.isfinite(c.gap_interval.mean):
            cells.append("not measured (outside its frontier)")
            continue
        verdict = "real" if c.gap_interval.real else "not significant"
        cells.append(f"{_interval(c.gap_interval, sign=True)} ({verdict})")
    return cells


def _reach_cell(entry):
    if "reach" not in entry:
        return "—"
    if any(note for _, note in entry["reach_per_seed"]):
        return "per seed: " + ", ".join(
            note or f"{value:.2f}" for value, note in entry["reach_per_seed"])
    return _interval(entry["reach"], digits=2)


def markdown_table(table, random_init, majority, bag_of_words=None):
    base = next(e for e in table if e["baseline"])
    budgets = [f"{b:,}" for b in base["budgets"]]
    header = (["model", "train-step FLOPs vs BERT (ceiling)",
               "steps at BERT's largest compute",
               "annealed val MLM loss", "below unigram floor",
               "val MLM accuracy"]
              + [f"loss gap to BERT at BERT's {b}-step compute"
                 for b in budgets]
              + ["share of BERT's compute to reach its loss",
                 "probe dev accuracy"])
    lines = ["| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for e in table:
        lines.append("| " + " | ".join(
            [e["label"], f"{e['flop_ratio']:.3f}", f"{e['final_steps']:,}",
             _interval(e["loss"]), f"{e['below_floor']:.3f}",
             _interval(e["accuracy"])]
            + _gap_cells(e, len(budgets))
            + [_reach_cell(e), _fmt_stat(e["probe"])]) + " |")
    blank = "| — " * (len(header) - 2)
    if bag_of_words is not None:
        lines.append(f"| bag of words (logistic regression) {blank}| "
                     f"{_interval(bag_of_words)} |")
    lines.append(f"| randomly initialised encoder {blank}| "
                 f"{_fmt_stat(random_init)} |")
    lines.append(f"| majority class {blank}| {majority:.3f} |")
    return "\n".join(lines)


def loss_plot(path, specs, rows, seeds, floor):
    """Each model's annealed frontier (mean over seeds, bars: the 95%
    interval) over its stable run (thin, not annealed)."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel

    figure, axis = pyplot.subplots(figsize=(7, 4.2), dpi=90)
    for spec in specs:
        curves = [{r["step"]: r for r in _curve(rows, spec.name, s)}
                  for s in seeds]
        # The steps every seed evaluated at, each averaged over seeds.
        steps = sorted(set.intersection(*(set(c) for c in curves)))
        line, = axis.plot(
            [curves[0][step]["train_flops"] for step in steps],
            [np.mean([c[step]["val_mlm_loss"] for c in curves])
             for step in steps], "-", linewidth=0.8, alpha=0.5)
        annealed = [_annealed(rows, spec.name, s) for s in seeds]
        flops = [np.mean([a[i]["train_flops"] for a in annealed])
                 for i in range(len(annealed[0]))]
        losses = [stats.mean_interval(a[i]["val_mlm_loss"] for a in annealed)
                  for i in range(len(annealed[0]))]
        means = np.array([l.mean for l in losses])
        spread = np.array([[l.mean - l.low, l.high - l.mean]
                           if np.isfinite(l.low) else [0, 0]
                           for l in losses]).T
        axis.errorbar(flops, means, yerr=spread, fmt="o-", markersize=3,
                      capsize=2, color=line.get_color(),
                      label=f"{spec.label}, annealed")
    axis.axhline(floor, color="black", linewidth=0.8, linestyle="--",
                 label="unigram floor")
    axis.set_xscale("log")
    axis.set_xlabel("training FLOPs (3 x forward, analytic; log scale)")
    axis.set_ylabel("validation MLM loss (full sequences)")
    axis.set_title(f"annealed runs: mean of {len(seeds)} seeds, 95% "
                   "interval; thin: the stable runs", fontsize=9)
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
                wall_minutes=None, data_note="", bag_of_words=None):
    """Writes every output file; returns a `StudyReport`.

    `bag_of_words`: the bag-of-words row's dev accuracy (`stats.Interval`,
    `bag_of_words.bag_of_words_row(...).accuracy`) or None.
    """
    os.makedirs(output_dir, exist_ok=True)
    paths = {name: os.path.join(output_dir, name) for name in FILES}
    seeds = list(range(1, config.seeds + 1))
    reporting.write_csv(paths["evaluations.csv"], rows, EVAL_COLUMNS)
    reporting.write_csv(paths["finetuning.csv"], finetunes, FINETUNE_COLUMNS)
    table = model_table(specs, rows, finetunes, seeds, floor.cross_entropy,
                        flop_ratios)
    random_init = _mean_std([f["dev_accuracy"] for f in finetunes
                             if f["model"] == "random_init"])
    loss_plot(paths["loss_vs_flops.png"], specs, rows, seeds,
              floor.cross_entropy)
    accuracy_plot(paths["probe_accuracy.png"], table, random_init, majority)
    summary = summary_text(table, random_init, majority, floor, config,
                           num_validation, probe_note, command, wall_minutes,
                           data_note, bag_of_words)
    with open(paths["summary.md"], "w") as f:
        f.write(summary)
    return StudyReport(table, summary, paths)


def floor_sentence(base, floor):
    """Where annealed BERT ends against the unigram floor, true for either
    sign."""
    loss = f"(validation loss {base['loss'].mean:.3f} against {floor:.3f})"
    gap = base["below_floor"]
    if gap > 0:
        return (f"Annealed BERT ends {gap:.2f} nats below the unigram floor "
                f"{loss}: that much of what it predicts comes from context.")
    if gap == 0:
        return (f"Annealed BERT ends at the unigram floor {loss}: it has not "
                "yet learned to use context.")
    return (f"Annealed BERT ends {-gap:.2f} nats above the unigram floor "
            f"{loss}: it has not yet learned to use context.")


def summary_text(table, random_init, majority, floor, config,
                 num_validation, probe_note, command, wall_minutes,
                 data_note, bag_of_words=None):
    base = next((e for e in table if e.get("baseline")), table[0])
    probe_gap = base["probe"][0] - random_init[0]
    sensitive = probe_gap > max(base["probe"][1], random_init[1])
    took = (f" The whole study took {wall_minutes:.0f} minutes (load "
            f"average over the last 15 minutes: {os.getloadavg()[2]:.1f})."
            if wall_minutes else "")
    budgets = ", ".join(f"{b:,}" for b in base["budgets"])
    spacing = max((e["spacing"] for e in table if "spacing" in e),
                  default=0.0)
    return f"""# Token dropping against BERT, annealed: {config.size} size, {config.seeds} seeds

Machine: {reporting.describe_machine()}.{took}

Command: `{command or 'python tools/study.py'}`

Every model trained with seeds 1..{config.seeds} (initial weights, data
order, dropout) on the same records with one warmup-stable-decay schedule:
linear warmup over {config.warmup_steps} steps to {config.learning_rate:g},
constant, and a linear decay to 0 over the last {config.decay_fraction:.0%}
of each budget. Every loss below is an annealed run's (learning rate 0 at
its last step): a decay branch from the model's stable run, resumed
exactly. BERT's budgets are {budgets} steps; every other model was annealed
at the same training FLOPs and at {config.reach_from:g} to 1 of BERT's
largest every 0.05 (its frontier: neighbouring points at most
{spacing:.2f} of BERT's largest compute apart). {data_note} Validation:
{num_validation} sequences with full models (no dropping). The unigram floor
(validation targets' cross-entropy under the training targets' frequencies)
is {floor.cross_entropy:.3f} nats.

The ceiling is a model's train-step FLOPs over BERT's (MLM head included):
the share of BERT's compute it would need to reach BERT's loss if it learned
as much per step as BERT. Losses: mean [95% t interval over seeds] at
BERT's largest compute. Gaps to BERT at BERT's budgets' compute, read along
each seed's annealed frontier (linear in log-compute between budgets),
paired over seeds with a 95% t interval; "real" only where the interval
excludes 0. The share of BERT's compute a model needs to reach annealed
BERT's loss at its largest budget is read the same way.

{probe_note} Fine-tuned with Model Garden's `bert/sentence_prediction`
({config.glue_task} layout), {config.finetune_seeds} fine-tuning seeds per
pretrained model (annealed at BERT's largest compute), accuracy on its
whole dev set, mean ± standard deviation.

{markdown_table(table, random_init, majority, bag_of_words)}

{floor_sentence(base, floor.cross_entropy)}

The probe {'separates' if sensitive else 'does NOT clearly separate'}
pretrained from random initialisation: BERT {_fmt(*base['probe'])} against
{_fmt(*random_init)} from a random encoder (majority class {majority:.3f}).
"""

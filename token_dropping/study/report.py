"""A study's outputs: CSVs, two plots and `summary.md` with one table.

`write_study` turns what `study.run_study` measured into files for people:

- `evaluations.csv`: a row per (model, seed, run, evaluation),
  `EVAL_COLUMNS`: `phase` is `stable` (the stable run, at its learning
  rate's peak) or `decay` (a branch annealed at `budget`: its row at
  `step == budget` has learning rate 0);
- `finetuning.csv`: a row per fine-tuning run or zero-shot reading
  (`finetune_seed` 0), `FINETUNE_COLUMNS`, with the training FLOPs of the
  model it started from: a zero-shot probe is read at each of BERT's
  budgets' compute, and the table takes each model's rows at BERT's
  largest (the largest `train_flops`);
- `loss_vs_flops.png`: each model's annealed frontier (validation MLM loss
  against training FLOPs, mean over seeds with a 95% interval) over its
  stable run, and the unigram floor;
- `probe_accuracy.png`: probe dev accuracy against training FLOPs per
  model, with the controls (`probe_plot`);
- `summary.md`: the machine, the command, the table, and each model
  against the bar (`verdict`).

Gaps between models are paired over seeds with a Student t interval
(`stats`), called real only where the interval excludes 0.
"""

import dataclasses
import math
import os

import numpy as np

from token_dropping.common import reporting
from token_dropping.study import probe_plot
from token_dropping.study import probe_tasks
from token_dropping.study import stats
from token_dropping.study import verdict

EVAL_COLUMNS = ("model", "experiment", "seed", "phase", "budget", "step",
                "learning_rate", "train_flops", "wall_seconds",
                "val_mlm_loss", "val_mlm_accuracy", "train_mlm_loss")
FINETUNE_COLUMNS = ("model", "pretrain_seed", "finetune_seed",
                    "train_flops", "dev_accuracy")
FILES = ("evaluations.csv", "finetuning.csv", "loss_vs_flops.png",
         "probe_accuracy.png", "summary.md")


@dataclasses.dataclass
class StudyReport:
    """What a study wrote: `table` rows (dicts) and the files' paths."""
    table: list
    summary: str
    paths: dict


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
    """(share of `base_compute` to reach `target`, note): note "" for a
    share read along the frontier; "bound" when it reached `target` at the
    frontier's first point, whose share then bounds it; "not reached" (and
    no share) when it never did."""
    first_compute, first_loss = min(points)
    if first_loss <= target:
        return first_compute / base_compute, "bound"
    reach = stats.compute_to_reach(points, target)
    if reach is None:
        return None, "not reached"
    return reach / base_compute, ""


def model_table(specs, rows, probe_rows, seeds, floor, flop_ratios,
                scaled_ratios=None):
    """One dict per model: the summary table's cells (numbers, intervals).
    `scaled_ratios`: per model, `{size: its ceiling there}`
    (`scaling.ceiling_at`), shown beside its own.

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
            flop_ratio=flop_ratios[spec.name],
            scaled=(scaled_ratios or {}).get(spec.name) or {}, loss=loss,
            accuracy=stats.mean_interval(finals[s]["val_mlm_accuracy"]
                                         for s in seeds),
            below_floor=floor - loss.mean,
            probe=next((p for p in probe_rows if p["model"] == spec.name),
                       None))
        if spec.name != base:
            points = {s: _points(rows, spec.name, s) for s in seeds}
            entry["comparisons"] = stats.compare_frontiers(base_points,
                                                           points)
            entry["reach_per_seed"] = [_reach(
                points[s], base_final[s]["val_mlm_loss"],
                base_final[s]["train_flops"]) for s in seeds]
            entry["reach"] = stats.mean_interval(
                None if note else r for r, note in entry["reach_per_seed"])
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
            # A bound rounded up: 0.804 is "≤ 0.81", never "≤ 0.80".
            f"≤ {math.ceil(value * 100 - 1e-9) / 100:.2f}" if note == "bound"
            else note or f"{value:.2f}"
            for value, note in entry["reach_per_seed"])
    return _interval(entry["reach"], digits=2)


def _probe_cell(row):
    """A probe row's dev accuracy [document-bootstrap interval], and its
    paired gap to BERT."""
    if row is None:
        return "—"
    cell = _interval(row["accuracy"])
    if row.get("gap") is not None:
        verdict = "real" if row["gap"].real else "not significant"
        cell += f"; vs BERT {_interval(row['gap'], sign=True)} ({verdict})"
    return cell


CONTROLS = (("bag_of_words", "bag of words (logistic regression on the "
             "probe's training set)"),
            ("random_init", "randomly initialised encoder"),
            ("majority", "majority class"))


_SIZE_ORDER = ("tiny", "mini", "base", "large")


def _ceiling_cell(entry, sizes):
    cell = f"{entry['flop_ratio']:.3f}"
    scaled = [entry["scaled"].get(size) for size in sizes]
    if sizes and any(r is not None for r in scaled):
        cell += "; " + ", ".join("—" if r is None else f"{r:.3f}"
                                 for r in scaled)
    return cell


def markdown_table(table, probe_rows):
    base = next(e for e in table if e["baseline"])
    budgets = [f"{b:,}" for b in base["budgets"]]
    sizes = sorted({size for e in table for size, r in e["scaled"].items()
                    if r is not None}, key=_SIZE_ORDER.index)
    ceiling = "train-step FLOPs vs BERT (ceiling)" + (
        f"; at BERT-{', BERT-'.join(sizes)}" if sizes else "")
    header = (["model", ceiling,
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
            [e["label"], _ceiling_cell(e, sizes), f"{e['final_steps']:,}",
             _interval(e["loss"]), f"{e['below_floor']:.3f}",
             _interval(e["accuracy"])]
            + _gap_cells(e, len(budgets))
            + [_reach_cell(e), _probe_cell(e["probe"])]) + " |")
    blank = "| — " * (len(header) - 2)
    for name, label in CONTROLS:
        row = next((p for p in probe_rows if p["model"] == name), None)
        if row is not None:
            lines.append(f"| {label} {blank}| {_probe_cell(row)} |")
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
    probe_plot.save_against_flops(
        figure, axis, path, ylabel="validation MLM loss (full sequences)",
        title=f"annealed runs: mean of {len(seeds)} seeds, 95% interval; "
        "thin: the stable runs")


def write_study(output_dir, *, specs, rows, finetunes, probe_rows,
                probe_counts, floor, config, flop_ratios, num_validation,
                probe_note, command="", wall_minutes=None, data_note="",
                scaled_ratios=None):
    """Writes every output file; returns a `StudyReport`.

    `probe_rows`: `probe_stats.probe_table` over the models and the
    controls (`random_init`, `bag_of_words`, `majority`); `probe_counts`:
    whether BERT beats every control beyond its interval
    (`probe_stats.measures_pretraining`).
    """
    os.makedirs(output_dir, exist_ok=True)
    paths = {name: os.path.join(output_dir, name) for name in FILES}
    seeds = list(range(1, config.seeds + 1))
    reporting.write_csv(paths["evaluations.csv"], rows, EVAL_COLUMNS)
    reporting.write_csv(paths["finetuning.csv"], finetunes, FINETUNE_COLUMNS)
    table = model_table(specs, rows, probe_rows, seeds, floor.cross_entropy,
                        flop_ratios, scaled_ratios)
    loss_plot(paths["loss_vs_flops.png"], specs, rows, seeds,
              floor.cross_entropy)
    probe_plot.probe_plot(paths["probe_accuracy.png"], specs, finetunes,
                          probe_rows)
    summary = summary_text(table, probe_rows, probe_counts, floor, config,
                           num_validation, probe_note, command, wall_minutes,
                           data_note)
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


def summary_text(table, probe_rows, probe_counts, floor, config,
                 num_validation, probe_note, command, wall_minutes,
                 data_note):
    base = next((e for e in table if e.get("baseline")), table[0])
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
as much per step as BERT. Beside it, the same way of dropping at the larger
registered sizes (sequences of 512): the same kept share, the dropped layers
as far from the paper's range in proportion to depth (`scaling.py`). Losses: mean [95% t interval over seeds] at
BERT's largest compute. Gaps to BERT at BERT's budgets' compute, read along
each seed's annealed frontier (linear in log-compute between budgets),
paired over seeds with a 95% t interval; "real" only where the interval
excludes 0. The share of BERT's compute a model needs to reach annealed
BERT's loss at its largest budget is read the same way.

{probe_note} {probe_tasks.method(config)} Probe accuracies:
the mean over a model's {'readings' if probe_tasks.zero_shot(config) else 'fine-tunings'} on the whole dev set, with a 95%
interval from resampling dev documents (not sentences); gaps to BERT are
paired on the same resampled documents (`probe_stats`).

{markdown_table(table, probe_rows)}

{floor_sentence(base, floor.cross_entropy)}

{probe_tasks.verdict(probe_counts)}

{verdict.sentences(table)}
"""

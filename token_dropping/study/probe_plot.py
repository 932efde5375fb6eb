"""`probe_accuracy.png`: probe dev accuracy against training compute.

One curve per model: at each compute point where the probe was read (a
zero-shot probe at every one of BERT's budgets' compute, a fine-tuned one
at BERT's largest only), the mean over pretraining seeds of each seed's
accuracy (the mean of its fine-tunings), with a 95% t interval over seeds
as its band. Bag of words, the randomly initialised model and the majority
class are horizontal lines at their dev accuracy. The table's intervals
are document-bootstrap ones (`probe_stats`); the plot's are over seeds, like
the loss plot's.
"""

import collections

import numpy as np

from token_dropping.study import stats

CONTROLS = (("bag_of_words", "bag of words", ":"),
            ("random_init", "random model", "-."),
            ("majority", "majority class", "--"))


def seed_curve(finetunes, name):
    """`[(training FLOPs, Interval over seeds)]` of one model, by compute:
    each seed's accuracy is the mean over its fine-tunings (or readings)."""
    by_point = collections.defaultdict(lambda: collections.defaultdict(list))
    for row in finetunes:
        if row["model"] == name:
            by_point[float(row["train_flops"])][row["pretrain_seed"]].append(
                float(row["dev_accuracy"]))
    return [(flops, stats.mean_interval(
        np.mean(values) for values in by_point[flops].values()))
            for flops in sorted(by_point)]


def probe_plot(path, specs, finetunes, probe_rows):
    """Writes the plot to `path` (see the module's docstring)."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel

    figure, axis = pyplot.subplots(figsize=(7, 4.2), dpi=90)
    for spec in specs:
        curve = seed_curve(finetunes, spec.name)
        if not curve:
            continue
        flops = [f for f, _ in curve]
        means = np.array([i.mean for _, i in curve])
        line, = axis.plot(flops, means, "o-", markersize=3, label=spec.label)
        low = np.array([i.low if np.isfinite(i.low) else i.mean
                        for _, i in curve])
        high = np.array([i.high if np.isfinite(i.high) else i.mean
                         for _, i in curve])
        if len(curve) == 1:  # a fine-tuned probe: one point, a bar
            axis.errorbar(flops, means, yerr=[means - low, high - means],
                          fmt="none", capsize=3, color=line.get_color())
        else:
            axis.fill_between(flops, low, high, color=line.get_color(),
                              alpha=0.2, linewidth=0)
    for name, label, style in CONTROLS:
        row = next((r for r in probe_rows if r["model"] == name), None)
        if row is not None:
            axis.axhline(row["accuracy"].mean, color="gray", linewidth=0.8,
                         linestyle=style, label=label)
    save_against_flops(figure, axis, path, ylabel="probe dev accuracy",
                       title="mean over pretraining seeds, band: 95% "
                       "interval over seeds")


def save_against_flops(figure, axis, path, *, ylabel, title):
    """Labels a plot against training FLOPs (log scale), as the study's
    plots all are, writes it to `path` and closes it."""
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    axis.set_xscale("log")
    axis.set_xlabel("training FLOPs (3 x forward, analytic; log scale)")
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)

"""Two token-dropping models of one study against each other, paired over
seeds (a seed fixes both models' data order and initial weights).

A study's summary pairs every model with BERT. This reads its
`evaluations.csv` again and pairs each model with a `reference` model
instead: the difference, model minus reference, of the share of BERT's
compute each needs to reach annealed BERT's loss, and of its loss at
BERT's largest compute, with Student t intervals (`stats.paired_interval`);
and each model's steps per BERT step to reach that loss
(`stats.mean_interval`), its steps read between its annealed runs linearly
in log-compute, as the share is. `tools/paired_reading.py` prints them.

Example:
>>> rows = read_rows("docs/frontier_remedies/evaluations.csv")
>>> paired_readings(rows, "token_drop.drop_layers=1-7")
"""

import csv
from typing import NamedTuple

import tensorflow as tf

from token_dropping.common.errors import UserError
from token_dropping.study import stats

BASELINE = "bert"


class PairedReading(NamedTuple):
    model: str
    share_minus_reference: stats.Interval
    loss_minus_reference: stats.Interval
    steps_per_bert_step: stats.Interval


def read_rows(path):
    """`evaluations.csv`'s annealed rows: (model, seed) -> [(train_flops,
    val_mlm_loss, step)] by compute."""
    if not tf.io.gfile.exists(path):
        raise UserError(f"{path!r} does not exist; give a study's "
                        "evaluations.csv (tools/study.py --output_dir).")
    with tf.io.gfile.GFile(path) as f:
        reader = csv.DictReader(f)
        needed = {"model", "seed", "phase", "budget", "step", "train_flops",
                  "val_mlm_loss"}
        if not needed <= set(reader.fieldnames or ()):
            columns = ", ".join(sorted(needed))
            raise UserError(f"{path!r} is not a study's evaluations.csv "
                            f"(it needs the columns {columns}).")
        rows = {}
        for r in reader:
            if r["phase"] == "decay" and r["step"] == r["budget"]:
                rows.setdefault((r["model"], int(r["seed"])), []).append((
                    float(r["train_flops"]), float(r["val_mlm_loss"]),
                    int(r["step"])))
    return {key: sorted(points) for key, points in rows.items()}


def paired_readings(rows, reference):
    """A `PairedReading` per model but BERT, in name order (the reference's
    own differences are 0)."""
    models = sorted({m for m, _ in rows} - {BASELINE})
    if reference not in models:
        raise UserError(f"reference={reference!r} is not a token-dropping "
                        f"model of this study ({', '.join(models)}).")
    seeds = sorted(s for m, s in rows if m == BASELINE)
    readings = {}
    for model in models:
        share, loss, steps = {}, {}, {}
        for seed in seeds:
            if (model, seed) not in rows:
                raise UserError(f"{model} has no annealed run of seed {seed}"
                                ", which BERT has; pair models with the same "
                                "seeds.")
            points = rows[model, seed]
            compute, target, bert_steps = rows[BASELINE, seed][-1]
            curve = [(c, l) for c, l, _ in points]
            reach = stats.compute_to_reach(curve, target)
            share[seed] = None if reach is None else reach / compute
            loss[seed] = stats.loss_at(curve, compute)
            # Steps between annealed runs, read as losses are.
            at = None if reach is None else stats.loss_at(
                [(c, s) for c, _, s in points], reach)
            steps[seed] = None if at is None else at / bert_steps
        readings[model] = share, loss, steps
    base_share, base_loss, _ = readings[reference]
    return [PairedReading(model, stats.paired_interval(share, base_share),
                          stats.paired_interval(loss, base_loss),
                          stats.mean_interval(steps.values()))
            for model, (share, loss, steps) in readings.items()]

"""Each model of a study against a reference model, paired over seeds.

Reads a study's `evaluations.csv` (tools/study.py) and prints, per
token-dropping model, the difference from `--reference` (model minus
reference, mean [95% t interval] over seeds) of the share of BERT's
compute it needs to reach annealed BERT's loss and of its loss at BERT's
largest compute, and the steps it needs per BERT step to reach that loss
(`token_dropping/study/paired.py`). The study's own summary pairs every
model with BERT; this pairs them with each other.

    python tools/paired_reading.py \\
        --evaluations=docs/frontier_remedies/evaluations.csv \\
        --reference=token_drop.drop_layers=1-7
"""

import argparse

from token_dropping.common.errors import UserError
from token_dropping.study import paired


def _interval(i, sign=True):
    fmt = "{:+.3f}" if sign else "{:.2f}"
    return (f"{fmt.format(i.mean)} [{fmt.format(i.low)}, "
            f"{fmt.format(i.high)}]" + (" (real)" if sign and i.real else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluations", required=True,
                        help="a study's evaluations.csv")
    parser.add_argument("--reference", required=True,
                        help="the model the others are paired with")
    args = parser.parse_args(argv)
    try:
        readings = paired.paired_readings(paired.read_rows(args.evaluations),
                                          args.reference)
    except UserError as e:
        parser.exit(1, f"paired_reading.py: error: {e}\n")
    print(f"| model | share of BERT's compute to reach its loss, minus "
          f"{args.reference}'s | loss at BERT's largest compute, minus "
          f"{args.reference}'s | steps per BERT step to reach its loss |")
    print("|---|---|---|---|")
    for r in readings:
        print(f"| {r.model} | {_interval(r.share_minus_reference)} | "
              f"{_interval(r.loss_minus_reference)} | "
              f"{_interval(r.steps_per_bert_step, sign=False)} |")


if __name__ == "__main__":
    main()

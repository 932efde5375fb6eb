"""What a study model's way of dropping would cost at BERT-base and -large.

The study trains small models; a user deciding how to pretrain wants the
saving at their size. `ceiling_at(spec, params, size)` carries a study
model's layout to the registered experiment of another size and returns
its analytic train-step FLOP ratio to BERT there (`flops`, MLM head
included, schedules and consistency steps counted as the study counts
them):

- the experiment: the same registered variant at that size
  (`token_drop_bert_mini_full_ends` -> `token_drop_bert_base_full_ends`);
- the kept share: `token_keep_k` of the study's sequence, the same share of
  the size's sequence (64 of 128 -> 256 of 512);
- the dropped layers: anchored on the paper's range at each depth
  (`layout.default_drop_layers`), an offset from it scaled by the depths'
  ratio (mini's 1-7, two layers below the paper's 3-7 at 8 layers, is
  base's 2-11, three below 5-11 at 12);
- any other encoder field as it is (e.g. `selection`).

Example:
>>> ceiling_at(spec, params, "base")  # token dropping, the paper's layout
0.755...
"""

import re

from official.core import exp_factory

from token_dropping.model import flops
from token_dropping.model import layout
from token_dropping.train import driver as training
from token_dropping.train import experiment_configs as experiments

SIZES = ("base", "large")  # the sizes the study's table reads


def _experiment_at(experiment, size):
    """`experiment`'s name at `size`, or None if none is registered."""
    name, count = re.subn(rf"bert_({'|'.join(experiments.SIZES)})",
                          f"bert_{size}", experiment, count=1)
    registered = set(training.registered_experiments())
    return name if count and name in registered else None


def _layers(start, end, num_layers, target_layers):
    """(start, end) at `target_layers`, offsets from the paper's range
    scaled by the depths' ratio."""
    paper = layout.default_drop_layers(num_layers)
    target = layout.default_drop_layers(target_layers)
    scale = target_layers / num_layers
    return tuple(t + round((v - p) * scale)
                 for v, p, t in zip((start, end), paper, target))


def ceiling_at(spec, params, size):
    """The train-step FLOP ratio to BERT of `spec`'s layout at `size`;
    None for BERT, or when no experiment of that size is registered.

    Args:
        spec: the study's `ModelSpec`.
        params: its run's config in the study (its depth and sequence).
        size: a registered size, e.g. "base".
    """
    if spec.is_baseline:
        return None
    name = _experiment_at(spec.experiment, size)
    if name is None:
        return None
    target = exp_factory.get_exp_config(name)
    encoder = target.task.model.encoder.get()
    source = params.task.model.encoder.get()
    seq, target_seq = (params.task.train_data.seq_length,
                       target.task.train_data.seq_length)
    overrides = dict(spec.encoder)
    for field, value in overrides.items():
        if field == "token_keep_k":
            value = round(value * target_seq / seq)
        if field not in ("drop_start_layer", "drop_end_layer"):
            setattr(encoder, field, value)
    if {"drop_start_layer", "drop_end_layer"} & set(overrides):
        start, end = _resolved(source)
        encoder.drop_start_layer, encoder.drop_end_layer = _layers(
            start, end, source.num_layers, encoder.num_layers)
    return flops.config_train_flop_ratio(target.task)


def _resolved(encoder):
    """The encoder config's (drop_start_layer, drop_end_layer), defaults
    filled."""
    found = layout.DropLayout.resolve(
        num_layers=encoder.num_layers, token_keep_k=encoder.token_keep_k,
        drop_start_layer=encoder.drop_start_layer,
        drop_end_layer=encoder.drop_end_layer)
    return found.drop_start_layer, found.drop_end_layer

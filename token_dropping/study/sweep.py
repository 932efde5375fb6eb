"""`--sweep`: the study's token-dropping models at several encoder settings.

Each `--sweep=FIELD=V1,V2,...` names a field of `TokenDropBertEncoderConfig`
and its values; `drop_layers=START-END` sets `drop_start_layer` and
`drop_end_layer` together. Every token-dropping model of `--models` becomes
one model per combination of the swept values (the product of the flags),
named `<model>.<field>=<value>...`, each with the study's seeds, budgets and
probe; BERT stays the baseline. Values are YAML scalars (`64`, `0.5`,
`random`); the run's own checks (`train.checks`, through the study's
`resolve`) refuse a value the encoder cannot take, in one line naming the
model, before anything trains.

The same names in `--models` (`split_name`) are single points:
`--models=bert,token_drop,token_drop.token_keep_k=32` trains BERT, the
paper's layout and one other, without the rest of a product.

Example:
>>> axes = parse(["token_keep_k=32,64", "drop_layers=2-5,3-6"])
>>> [name for name, _ in points(axes)][:2]
['token_keep_k=32.drop_layers=2-5', 'token_keep_k=32.drop_layers=3-6']
"""

import dataclasses
import itertools
import re

import yaml

from token_dropping.common.errors import UserError
from token_dropping.model.encoder_config import TokenDropBertEncoderConfig

LAYERS = "drop_layers"  # START-END: drop_start_layer, drop_end_layer
_EXAMPLE = ("e.g. --sweep=token_keep_k=32,64,96 or "
            "--sweep=drop_layers=3-7,1-7")


def _fields():
    return {f.name for f in dataclasses.fields(TokenDropBertEncoderConfig)}


def _value(field, text):
    if field == LAYERS:
        match = re.fullmatch(r"(\d+)-(\d+)", text)
        if not match:
            raise UserError(f"--sweep={field}: {text!r} is not a layer range "
                            "START-END, e.g. 3-6.")
        return tuple(int(g) for g in match.groups())
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if value is None or isinstance(value, (list, dict)):
        raise UserError(f"--sweep={field}: {text!r} is not a number, a "
                        "word or true/false.")
    return value


def parse(flags):
    """`((field, (value, ...)), ...)` from the `--sweep` flag values;
    UserError (one line) on a bad one."""
    axes, seen = [], set()
    for flag in flags:
        field, sep, values = flag.partition("=")
        texts = [v.strip() for v in values.split(",")] if sep else []
        if not field or not all(texts) or not texts:
            raise UserError(f"--sweep={flag!r} must be FIELD=VALUE,VALUE,..."
                            f" ({_EXAMPLE}).")
        if field != LAYERS and field not in _fields():
            raise UserError(
                f"--sweep={flag!r}: {field!r} is not a field of the "
                f"token-dropping encoder ({LAYERS} or one of "
                f"{', '.join(sorted(_fields()))}).")
        if field in seen or (field == LAYERS and seen & {
                "drop_start_layer", "drop_end_layer"}) or (
                    LAYERS in seen and field in {"drop_start_layer",
                                                 "drop_end_layer"}):
            raise UserError(f"--sweep: {field!r} is swept twice; give its "
                            "values in one flag.")
        parsed = tuple(_value(field, t) for t in texts)
        if len(set(parsed)) != len(parsed):  # as read: 8 and +8 are one
            raise UserError(f"--sweep={flag!r} repeats a value.")
        seen.add(field)
        axes.append((field, parsed))
    return tuple(axes)


def _text(field, value):
    return f"{value[0]}-{value[1]}" if field == LAYERS else str(value)


def points(axes):
    """`(name, encoder overrides)` per combination, in the flags' order:
    the name `field=value.field=value`, the overrides `(field, value)`
    pairs of the encoder config."""
    out = []
    for combination in itertools.product(*(
            [(field, v) for v in values] for field, values in axes)):
        name = ".".join(f"{f}={_text(f, v)}" for f, v in combination)
        overrides = []
        for field, value in combination:
            if field == LAYERS:
                overrides += [("drop_start_layer", value[0]),
                              ("drop_end_layer", value[1])]
            else:
                overrides.append((field, value))
        out.append((name, tuple(overrides)))
    return out


def split_name(name):
    """`(model, ((field, value), ...))` of a point's name as `expand` makes
    it (`token_drop.token_keep_k=32.drop_layers=1-7`): one point given
    in `--models`. A name without settings is `(name, ())`; UserError (one
    line) on a bad setting, or on one spelled otherwise than `points` names
    it (`token_keep_k=+8` for `token_keep_k=8`: two names, one model)."""
    model, *settings = re.split(r"\.(?=[A-Za-z_]\w*=)", name)
    axes = parse(settings)
    for field, values in axes:
        if len(values) != 1:
            raise UserError(f"--models={name!r}: {field!r} has "
                            f"{len(values)} values; a model takes one "
                            "(several are --sweep's job).")
    if not axes:
        return model, ()
    (point, overrides), = points(axes)
    if f"{model}.{point}" != name:  # 032 and 32 would be two models' runs
        raise UserError(f"--models={name!r}: write it {model}.{point}, the "
                        "name its runs (and --sweep's point) go by.")
    return model, overrides


def expand(specs, axes):
    """`specs` with every token-dropping one replaced by its sweep points
    (`points`), in order; BERT and any other model stay as they are.
    UserError (one line) if a model sets a swept field (in its name, or as
    the variant it is: `token_drop_random`'s selection)."""
    if not axes:
        return list(specs)
    swept = {field for _, overrides in points(axes)[:1]
             for field, _ in overrides}
    out = []
    for spec in specs:
        if spec.is_baseline:
            out.append(spec)
            continue
        named = {field for field, _ in spec.encoder} & swept
        if named:
            raise UserError(f"--models={spec.name!r} sets "
                            f"{', '.join(sorted(named))}, which --sweep "
                            "sweeps; give a model that leaves it unset.")
        for name, overrides in points(axes):
            out.append(dataclasses.replace(
                spec, name=f"{spec.name}.{name}",
                label=f"{spec.label}, {name.replace('.', ', ')}",
                encoder=tuple(spec.encoder) + overrides))
    return out

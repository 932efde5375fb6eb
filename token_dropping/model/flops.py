"""An analytic FLOP model of BERT and of its token-dropping layouts.

Counts the matrix multiplications of one forward pass over one sequence, at
`2 * m * n * k` FLOPs for an `[m, k] x [k, n]` product. A training step (forward
plus backward: the backward pass is two products of the same sizes per forward
product, one for the input gradient and one for the weight gradient) costs about
3x the forward count; the ratios below hold for training as well.

Per transformer layer, with `q` query tokens attending to `s` key/value tokens,
hidden size `h` and feed-forward width `f`:

    query projection          2 * q * h * h
    key + value projections   2 * (2 * s * h * h)
    attention scores QK^T     2 * q * s * h
    weighted sum of values    2 * q * s * h
    output projection         2 * q * h * h
    feed-forward (2 dense)    2 * (2 * q * h * f)

A full layer has `q = s = seq_length`; the transition layer
(`drop_start_layer`) has `keep_k` queries over all `seq_length` keys and values,
so its key/value projections still run on every token; a dropped layer has
`q = s = keep_k`. The MLM head (`pretraining_flops`) adds, per masked
prediction, the transform dense (`2 * h * h`) and the projection onto the
vocabulary (`2 * h * vocab_size`); BERT's MLM head only sees the
`max_predictions_per_seq` gathered positions.

Variants (`train_flops`): layer-wise random dropping (`selection=
"random_per_layer"`) has no transition layer, every layer of the range has
`q = s = keep_k`; a keep_k schedule costs the average of its stages weighted
by the share of training each covers (a stage that keeps every token costs
BERT's); ScTD's consistency steps add a full-length pass (forward and
backward, 3x BERT's forward) every `consistency_interval` steps, amortised.

Left out, because they are small or not matrix products: embedding lookups,
layer norms, softmax, activations, dropout, biases, the pooler (`2 * h * h` per
sequence) and the token-dropping bookkeeping (selection, gather, scatter,
importance update, measured by `tools/benchmark.py` instead).

Example:
>>> round(flop_ratio(seq_length=512, hidden_size=768, num_layers=12,
...                  inner_dim=3072, token_keep_k=256), 3)
0.746

Reference: Hou et al., "Token Dropping for Efficient BERT Pretraining",
ACL 2022, arXiv 2203.13240.
"""

from token_dropping.model.schedule import KeepKSchedule
from token_dropping.model.layout import DropLayout
from token_dropping.common.checks import as_int
from token_dropping.common.checks import as_positive_int
from token_dropping.common.errors import UserError


def layer_flops(queries, keys, hidden_size, inner_dim):
    """Forward FLOPs of one transformer layer: `queries` over `keys` tokens."""
    projections = 2 * queries * hidden_size * hidden_size * 2  # Q and output
    projections += 2 * keys * hidden_size * hidden_size * 2  # K and V
    attention = 2 * queries * keys * hidden_size * 2  # scores, weighted sum
    feed_forward = 2 * queries * hidden_size * inner_dim * 2  # in and out
    return projections + attention + feed_forward


def encoder_flops(*, seq_length, hidden_size, num_layers, inner_dim,
                  token_keep_k=None, drop_start_layer=None,
                  drop_end_layer=None, selection="mlm_loss"):
    """Forward FLOPs of the transformer layers for one sequence.

    Args:
        seq_length: int. Tokens per sequence.
        hidden_size: int. Width of the transformer layers.
        num_layers: int. Number of transformer layers.
        inner_dim: int. Width of the feed-forward layer.
        token_keep_k: int or None. Tokens kept in the dropped layers, at most
            `seq_length`; None counts plain BERT.
        drop_start_layer: int or None. The transition layer; default
            `default_drop_layers(num_layers)[0]`.
        drop_end_layer: int or None. First full layer after the drop; default
            `default_drop_layers(num_layers)[1]`.
        selection: str. "random_per_layer" has no transition layer (each
            layer of the range runs `keep_k` queries over `keep_k` keys).

    Returns:
        float: forward FLOPs per sequence (training is about 3x this).
    """
    for name, value in (("seq_length", seq_length),
                        ("hidden_size", hidden_size),
                        ("num_layers", num_layers), ("inner_dim", inner_dim)):
        as_positive_int(name, value)
    full = layer_flops(seq_length, seq_length, hidden_size, inner_dim)
    if token_keep_k is None:
        if drop_start_layer is not None or drop_end_layer is not None:
            raise UserError(
                f"drop_start_layer={drop_start_layer!r} and drop_end_layer="
                f"{drop_end_layer!r} need a token_keep_k (None means plain "
                "BERT, which drops nothing).")
        return float(num_layers * full)
    layout = DropLayout.resolve(
        num_layers=num_layers, token_keep_k=token_keep_k,
        drop_start_layer=drop_start_layer, drop_end_layer=drop_end_layer,
        seq_length=seq_length)
    keep_k = layout.token_keep_k
    transition = layer_flops(keep_k, seq_length, hidden_size, inner_dim)
    dropped = layer_flops(keep_k, keep_k, hidden_size, inner_dim)
    if selection == "random_per_layer":
        transition = dropped
    return float(layout.full_layers * full + transition
                 + layout.kept_only_layers * dropped)


def mlm_head_flops(*, hidden_size, vocab_size, max_predictions_per_seq):
    """Forward FLOPs of BERT's MLM head for one sequence's predictions."""
    for name, value in (("hidden_size", hidden_size),
                        ("vocab_size", vocab_size),
                        ("max_predictions_per_seq", max_predictions_per_seq)):
        as_positive_int(name, value)
    transform = 2 * hidden_size * hidden_size
    vocab_projection = 2 * hidden_size * vocab_size
    return float(max_predictions_per_seq * (transform + vocab_projection))


def pretraining_flops(*, seq_length, hidden_size, num_layers, inner_dim,
                      vocab_size, max_predictions_per_seq, token_keep_k=None,
                      drop_start_layer=None, drop_end_layer=None,
                      selection="mlm_loss"):
    """Forward FLOPs of encoder layers plus MLM head for one sequence.

    Args: those of `encoder_flops`, plus
        vocab_size: int. Rows of the vocabulary projection.
        max_predictions_per_seq: int. Masked positions the head predicts.

    Returns:
        float: forward FLOPs per sequence (training is about 3x this).
    """
    if (isinstance(max_predictions_per_seq, int)
            and isinstance(seq_length, int)
            and max_predictions_per_seq > seq_length):
        raise UserError(
            f"max_predictions_per_seq={max_predictions_per_seq} exceeds "
            f"seq_length={seq_length}.")
    return encoder_flops(
        seq_length=seq_length, hidden_size=hidden_size, num_layers=num_layers,
        inner_dim=inner_dim, token_keep_k=token_keep_k,
        drop_start_layer=drop_start_layer,
        drop_end_layer=drop_end_layer, selection=selection) + mlm_head_flops(
            hidden_size=hidden_size, vocab_size=vocab_size,
            max_predictions_per_seq=max_predictions_per_seq)


def flop_ratio(*, seq_length, hidden_size, num_layers, inner_dim, token_keep_k,
               drop_start_layer=None, drop_end_layer=None, vocab_size=None,
               max_predictions_per_seq=None):
    """Token-drop FLOPs over plain BERT's, for the same sizes.

    Counts the encoder layers only, or also the MLM head when both
    `vocab_size` and `max_predictions_per_seq` are given. 12x768, seq 512,
    keep 256: 0.746 layers only, 0.755 with a 30522-id head over 76
    predictions (the head costs both models the same).
    """
    if (vocab_size is None) != (max_predictions_per_seq is None):
        raise UserError(
            f"vocab_size={vocab_size!r} and max_predictions_per_seq="
            f"{max_predictions_per_seq!r}: give both to count the MLM head, "
            "or neither.")
    if token_keep_k is None:
        raise UserError("token_keep_k=None: the ratio needs a token_keep_k.")
    sizes = dict(seq_length=seq_length, hidden_size=hidden_size,
                 num_layers=num_layers, inner_dim=inner_dim)
    drop = dict(token_keep_k=token_keep_k, drop_start_layer=drop_start_layer,
                drop_end_layer=drop_end_layer)
    if vocab_size is None:
        return encoder_flops(**sizes, **drop) / encoder_flops(**sizes)
    head = dict(vocab_size=vocab_size,
                max_predictions_per_seq=max_predictions_per_seq)
    return (pretraining_flops(**sizes, **head, **drop)
            / pretraining_flops(**sizes, **head))


def config_sizes(encoder, data):
    """The keyword arguments of `pretraining_flops` / `flop_ratio` for a
    Model Garden encoder config and data config (plain BERT's has no
    token-dropping fields: None), read through
    `encoder_config.encoder_kwargs`, which the encoder is built from."""
    # Imported here: the FLOP model itself stays pure Python.
    from token_dropping.model.encoder_config import encoder_kwargs  # pylint: disable=import-outside-toplevel
    kwargs = encoder_kwargs(encoder)
    return dict(
        {name: kwargs.get(name) for name in (
            "hidden_size", "num_layers", "inner_dim", "vocab_size",
            "token_keep_k", "drop_start_layer", "drop_end_layer")},
        seq_length=data.seq_length,
        max_predictions_per_seq=data.max_predictions_per_seq)


def train_flops(*, seq_length, hidden_size, num_layers, inner_dim, vocab_size,
                max_predictions_per_seq, token_keep_k=None,
                drop_start_layer=None, drop_end_layer=None,
                selection="mlm_loss", keep_k_schedule=(),
                consistency_interval=0):
    """Average training FLOPs of one sequence per step, for any variant.

    3x `pretraining_flops` (forward and backward); with a `keep_k_schedule`
    (`(start_fraction, keep_k)` pairs) the average over its stages weighted
    by the share of training each covers; with `consistency_interval` N > 0
    (ScTD), plus 3x plain BERT's `pretraining_flops` / N for the full pass
    every Nth step.

    Args: those of `pretraining_flops`, plus
        keep_k_schedule: stages (replace `token_keep_k`); empty: none.
        consistency_interval: int. 0: no consistency steps.
    """
    schedule = KeepKSchedule.resolve(keep_k_schedule, seq_length)
    interval = as_int("consistency_interval", consistency_interval, 0)
    return _train_flops(schedule.weights() or ((token_keep_k, 1.0),),
                        1.0 / interval if interval else 0.0, locals())


def train_flops_sum(*, steps, schedule_steps, seq_length, hidden_size,
                    num_layers, inner_dim, vocab_size,
                    max_predictions_per_seq, token_keep_k=None,
                    drop_start_layer=None, drop_end_layer=None,
                    selection="mlm_loss", keep_k_schedule=(),
                    consistency_interval=0):
    """Training FLOPs of one sequence summed over a run's first `steps`.

    Exact where the average of `train_flops` is not: a keep_k schedule
    counts each stage's steps (its fractions are of `schedule_steps`, the
    run's length; a ramp's early steps are cheaper than its average), and
    ScTD's full pass runs on every `consistency_interval`-th step (1-based).
    After a whole run it equals `schedule_steps * train_flops` up to the
    rounding of stage starts to steps.
    """
    steps = as_int("steps", steps, 0)
    schedule = KeepKSchedule.resolve(keep_k_schedule, seq_length)
    interval = as_int("consistency_interval", consistency_interval, 0)
    return _train_flops(
        schedule.steps_per_stage(steps, schedule_steps) if schedule
        else ((token_keep_k, steps),),
        steps // interval if interval else 0, locals())


_SIZES = ("seq_length", "hidden_size", "num_layers", "inner_dim",
          "vocab_size", "max_predictions_per_seq")
_DROP = ("drop_start_layer", "drop_end_layer", "selection")


def _train_flops(stages, full_passes, arguments):
    """3x the forward FLOPs of `(keep_k, weight)` stages plus `full_passes`
    of plain BERT, for the sizes and drop layout among `arguments`."""
    sizes = {name: arguments[name] for name in _SIZES}
    drop = {name: arguments[name] for name in _DROP}
    forward = sum(weight * pretraining_flops(**sizes, token_keep_k=keep_k,
                                             **drop)
                  for keep_k, weight in stages)
    return 3.0 * (forward + full_passes * pretraining_flops(**sizes))


def config_train_flops(task):
    """`train_flops` of one step (x `global_batch_size`) of a masked-LM
    task config: ours, with every variant, or Model Garden's plain BERT."""
    encoder, data = task.model.encoder.get(), task.train_data
    return data.global_batch_size * train_flops(
        **config_sizes(encoder, data),
        selection=getattr(encoder, "selection", "mlm_loss"),
        keep_k_schedule=getattr(encoder, "keep_k_schedule", ()),
        consistency_interval=getattr(task, "consistency_interval", 0))


def config_train_flops_sum(params, steps):
    """`train_flops_sum` (x `global_batch_size`) of the first `steps` steps
    of an experiment config's run: its keep_k schedule's fractions are of
    `task.keep_k_schedule_steps`, or of `trainer.train_steps` when that is 0
    (what `tools/train.py` fills in)."""
    task = params.task
    encoder, data = task.model.encoder.get(), task.train_data
    return data.global_batch_size * train_flops_sum(
        steps=steps,
        schedule_steps=(getattr(task, "keep_k_schedule_steps", 0)
                        or params.trainer.train_steps),
        **config_sizes(encoder, data),
        selection=getattr(encoder, "selection", "mlm_loss"),
        keep_k_schedule=getattr(encoder, "keep_k_schedule", ()),
        consistency_interval=getattr(task, "consistency_interval", 0))


def config_train_flop_ratio(task):
    """`config_train_flops` over plain BERT's on the same shapes."""
    encoder, data = task.model.encoder.get(), task.train_data
    sizes = config_sizes(encoder, data)
    sizes.update(token_keep_k=None, drop_start_layer=None,
                 drop_end_layer=None)
    bert = data.global_batch_size * train_flops(**sizes)
    return config_train_flops(task) / bert

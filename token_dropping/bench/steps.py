"""The training steps `benchmark` times: the task's own, on synthetic batches.

Each model is what tools/train.py builds for its registered experiment
(`token_drop_bert_<size>` or plain BERT's `bert_<size>`) at the benchmark's
sizes: Model Garden's `task_factory` task and its model, the optimizer and
learning-rate schedule `train_utils.create_optimizer` makes from
`trainer.optimizer_config` (AdamW with warmup and polynomial decay, as the
trainer builds it), and the training metrics. The timed step is the task's
`train_step` (`TokenDropMaskedLMTask.train_step`, or Model Garden's
`MaskedLMTask.train_step` for BERT) in one `tf.function`, jit-compiled with
XLA unless `xla=False`, as Model Garden's trainer compiles it with
`runtime.enable_xla`. A variant (a `params_override` of the token-dropping
experiment: ScTD consistency steps, a keep_k schedule, another selection) is
part of that step, from the first step on. Beside it, a step with only what
token dropping adds. Batches are synthetic: step cost does not depend on the
values, and all shapes are static.
"""

import dataclasses

import numpy as np
import tensorflow as tf
from official.core import exp_factory
from official.core import task_factory
from official.core import train_utils

from token_dropping.train import experiment_configs  # noqa: F401  (registers the sizes)
from token_dropping.model.selection import row_index
from token_dropping.train.driver import fill_schedule_steps
from token_dropping.common.errors import UserError
from token_dropping.train import overrides

# BERT's special ids (as in the uncased vocab) for the synthetic batches.
_CLS, _SEP, _MASK = 101, 102, 103
FIRST_WORD_ID = 1000  # ids below are [unused] and special tokens
MODELS = ("baseline", "token_drop")


def synthetic_batch(sizes, seed=0):
    """A pretraining batch: [CLS] words [SEP], masked slots set to [MASK]."""
    rng = np.random.RandomState(seed)
    batch, seq = sizes["batch_size"], sizes["seq_length"]
    predictions = sizes["max_predictions_per_seq"]
    word_ids = rng.randint(FIRST_WORD_ID, sizes["vocab_size"],
                           size=(batch, seq))
    word_ids[:, 0], word_ids[:, -1] = _CLS, _SEP
    positions = np.sort(np.stack([
        rng.choice(np.arange(1, seq - 1), predictions, replace=False)
        for _ in range(batch)]), axis=1)  # [batch, predictions]
    masked_ids = np.take_along_axis(word_ids, positions, axis=1)
    np.put_along_axis(word_ids, positions, _MASK, axis=1)
    type_ids = np.zeros_like(word_ids)
    type_ids[:, seq // 2:] = 1
    return dict(
        input_word_ids=tf.constant(word_ids, tf.int32),
        input_mask=tf.ones((batch, seq), tf.int32),
        input_type_ids=tf.constant(type_ids, tf.int32),
        masked_lm_positions=tf.constant(positions, tf.int32),
        masked_lm_ids=tf.constant(masked_ids, tf.int32),
        masked_lm_weights=tf.ones((batch, predictions), tf.float32))


def experiment_config(model, experiment_size, sizes, params_override=None):
    """The `ExperimentConfig` tools/train.py would run for `model`.

    Args:
        model: "baseline" (`bert_<experiment_size>`) or "token_drop"
            (`token_drop_bert_<experiment_size>`).
        experiment_size: a registered size ("tiny", "base", "large", ...):
            its optimizer, schedule and dropout.
        sizes: the benchmark's sizes (`benchmark.resolve_sizes`), which
            replace the experiment's model and data sizes.
        params_override: for "token_drop" only: a Model Garden override
            string (`task.consistency_interval=10`, ...), applied last.
    """
    if model not in MODELS:
        raise ValueError(f"model={model!r} is not one of {MODELS}.")
    prefix = "token_drop_bert" if model == "token_drop" else "bert"
    params = exp_factory.get_exp_config(f"{prefix}_{experiment_size}")
    encoder = params.task.model.encoder.get()
    encoder.override(dict(
        num_layers=sizes["num_layers"], hidden_size=sizes["hidden_size"],
        num_attention_heads=sizes["num_attention_heads"],
        intermediate_size=sizes["inner_dim"],
        vocab_size=sizes["vocab_size"],
        max_position_embeddings=sizes["seq_length"], type_vocab_size=2))
    if model == "token_drop":
        encoder.override({k: sizes[k] for k in (
            "token_keep_k", "drop_start_layer", "drop_end_layer")})
    params.task.train_data.override(dict(
        seq_length=sizes["seq_length"],
        max_predictions_per_seq=sizes["max_predictions_per_seq"],
        global_batch_size=sizes["batch_size"]))
    if model == "token_drop" and params_override:
        _check_no_sizes(params_override)
        params = overrides.apply(params, params_override)
    fill_schedule_steps(params)
    return params


# The sizes the benchmark gives both models, by the flag that sets them.
_SIZE_KEYS = {
    "num_layers": "--num_layers", "hidden_size": "--hidden_size",
    "num_attention_heads": "--num_attention_heads",
    "intermediate_size": "--inner_dim", "vocab_size": "--vocab_size",
    "max_position_embeddings": "--seq_length", "token_keep_k":
    "--token_keep_k", "drop_start_layer": "--drop_start_layer",
    "drop_end_layer": "--drop_end_layer", "seq_length": "--seq_length",
    "max_predictions_per_seq": "--max_predictions_per_seq",
    "global_batch_size": "--batch_size"}


def _check_no_sizes(params_override):
    """Raises UserError if `params_override` sets a size: it applies to the
    token-dropping model only, so the two would differ in more than
    dropping (and the FLOP rows would still count the flags' sizes)."""
    for key in overrides.dotted_keys(params_override):
        name = key.rsplit(".", 1)[-1]
        if name in _SIZE_KEYS and key.startswith(
                ("task.model.encoder.", "task.train_data.")):
            raise UserError(
                f"--params_override sets {key}, a size both models must "
                f"share; use {_SIZE_KEYS[name]}.")


@dataclasses.dataclass
class TaskStep:
    """The task's compiled train step on one model; call it with a batch.

    Attributes: the experiment `params`, the `task`, its `model`, the
    `optimizer` train_utils built and the training `metrics`.
    """
    params: object
    task: object
    model: object
    optimizer: object
    metrics: list
    xla: bool = True

    def __post_init__(self):
        self._step = tf.function(self.task.train_step, jit_compile=self.xla)

    def __call__(self, inputs):
        """One training step; returns the loss (a scalar tensor)."""
        logs = self._step(inputs, self.model, self.optimizer, self.metrics)
        return logs[self.task.loss]


def make_train_step(model, experiment_size, sizes, inputs, xla=True,
                    params_override=None):
    """`TaskStep` of `model` at `sizes` (see `experiment_config`)."""
    params = experiment_config(model, experiment_size, sizes, params_override)
    task = task_factory.get_task(params.task)
    built = task.build_model()
    built(inputs)  # variables outside the compiled step, as the trainer does
    encoder = built.encoder_network
    if hasattr(encoder, "importance"):
        # A learned-looking table, so selection has real work to do.
        rng = np.random.RandomState(1)
        encoder.importance.assign(rng.uniform(
            0.0, 10.0, size=sizes["vocab_size"]).astype(np.float32))
    return TaskStep(params=params, task=task, model=built,
                    optimizer=train_utils.create_optimizer(task, params),
                    metrics=task.build_metrics(training=True), xla=xla)


def make_added_ops_step(encoder, inputs, sizes, xla=True):
    """A compiled function of only what token dropping adds to a step.

    On the step's shapes: importance lookup and selection, the gather of the
    kept rows and their mask, the restoring scatter, the gradients of gather
    and scatter, and the importance update. The dropped layers in between are
    left out; their cost is the layers', already in the FLOP count.
    """
    shape = (sizes["batch_size"], sizes["seq_length"], sizes["hidden_size"])
    hidden = tf.random.stateless_normal(shape, seed=(1, 2))  # [batch, seq, hidden]
    upstream = tf.random.stateless_normal(shape, seed=(3, 4))
    losses = tf.random.stateless_uniform(
        inputs["masked_lm_ids"].shape, seed=(5, 6), maxval=10.0)

    @tf.function(jit_compile=xla)
    def added_ops(inputs, hidden, upstream, losses):
        with tf.GradientTape() as tape:
            tape.watch(hidden)
            kept = encoder.kept_positions(inputs)  # [batch, keep_k]
            x_kept = tf.gather(hidden, kept, batch_dims=1)  # [batch, keep_k, hidden]
            mask_kept = tf.gather(inputs["input_mask"], kept,
                                  batch_dims=1)  # [batch, keep_k]
            # Stand-in for the dropped layers: any function of the kept rows.
            restored = tf.tensor_scatter_nd_update(
                hidden, row_index(kept), x_kept * 0.5)  # [batch, seq, hidden]
        grad = tape.gradient(restored, hidden, output_gradients=upstream)
        encoder.record_mlm_loss(inputs["masked_lm_ids"], losses,
                                inputs["masked_lm_weights"])
        return tf.reduce_sum(grad[:, 0, 0]) + tf.cast(
            tf.reduce_sum(mask_kept), tf.float32)

    return lambda inputs: added_ops(inputs, hidden, upstream, losses)

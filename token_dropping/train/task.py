"""TokenDropMaskedLMTask: Model Garden's MaskedLMTask plus importance tracking."""

import dataclasses

import tensorflow as tf
import tf_keras
from official.core import task_factory
from official.nlp.configs import bert
from official.nlp.tasks import masked_lm

from token_dropping.train.consistency import consistency_step
from token_dropping.model.encoder import KEEP_K_INPUT
from token_dropping.model.selection import is_in

ROUTING_METRICS = ("dropped_token_fraction", "kept_token_importance",
                   "dropped_token_importance")
# With a keep_k schedule: the mean keep_k of the loop's steps.
SCHEDULE_METRIC = "token_keep_k"
# With consistency steps: their KL term and full-pass MLM loss (averaged
# over the loop's consistency steps only).
CONSISTENCY_METRICS = ("consistency_kl", "full_pass_mlm_loss")


@dataclasses.dataclass
class TokenDropMaskedLMConfig(masked_lm.MaskedLMConfig):
    """MaskedLMConfig without next-sentence prediction by default (the paper)."""
    model: bert.PretrainerConfig = dataclasses.field(
        default_factory=lambda: bert.PretrainerConfig(cls_heads=[]))
    # Vocabulary file, used only to name the pieces in TensorBoard's text
    # summary of kept and dropped tokens ("" shows ids).
    vocab_file: str = ""
    # Steps the encoder's keep_k_schedule fractions refer to; 0: the run's
    # trainer.train_steps (tools/train.py fills it in).
    keep_k_schedule_steps: int = 0
    # ScTD semantic consistency (arXiv 2305.15273): every Nth step also runs
    # the full sequence on the same batch; 0: off (ScTD: 10).
    consistency_interval: int = 0
    # Weight of KL(full || dropped) of the [CLS] softmax (ScTD: 0.05).
    consistency_weight: float = 0.05
    # Share of the full pass's MLM loss on those steps (the dropped pass
    # gets the rest; ScTD: 0.5 / 0.5).
    consistency_full_mlm_share: float = 0.5
    # Treat the full pass as a fixed target in the KL term (its MLM term
    # still trains it); ScTD: false, gradients through both passes.
    consistency_stop_gradient: bool = False


def per_prediction_losses(labels, model_outputs):
    """`[batch, predictions]` MLM cross-entropy, as MaskedLMTask computes it."""
    return tf_keras.losses.sparse_categorical_crossentropy(
        labels["masked_lm_ids"],
        tf.cast(model_outputs["mlm_logits"], tf.float32),
        from_logits=True)


@task_factory.register_task_cls(TokenDropMaskedLMConfig)
class TokenDropMaskedLMTask(masked_lm.MaskedLMTask):
    """Masked-LM pretraining that feeds each step's MLM losses to the encoder.

    Everything (model, data, losses, metrics, validation) is Model Garden's
    `MaskedLMTask`; the one addition is in `train_step`: after the loss, the
    per-prediction losses and `masked_lm_weights` update the encoder's
    importance table (`record_mlm_loss`). Training metrics add the share of
    real tokens dropped and the mean importance of kept vs. dropped ordinary
    tokens (`ROUTING_METRICS`), which the progress line logs and
    `TokenDropSummaries` writes to TensorBoard under `token_dropping/`.
    Validation runs the full model (no dropping), like fine-tuning will.

    Options (all off by default): the encoder's `keep_k_schedule` picks each
    step's keep_k from `optimizer.iterations` (a checkpointed step, so a
    resumed run continues at its stage); `consistency_interval` adds ScTD's
    consistency term on every Nth step in a `tf.cond`, so neither forces a
    retrace.

    Example:
    >>> task = TokenDropMaskedLMTask(config.task)   # via task_factory.get_task
    """

    def build_metrics(self, training=None):
        metrics = super().build_metrics(training)
        if training:
            names = ROUTING_METRICS
            if self.task_config.model.encoder.get().keep_k_schedule:
                names += (SCHEDULE_METRIC,)
            if self.task_config.consistency_interval:
                names += CONSISTENCY_METRICS
            metrics += [tf_keras.metrics.Mean(name=n) for n in names]
        return metrics

    def train_step(self, inputs, model, optimizer, metrics):
        """MaskedLMTask.train_step, then the importance update (step 4)."""
        encoder = model.encoder_network
        step = optimizer.iterations  # this step's 0-based index
        model_inputs = self._scheduled(inputs, encoder, step, metrics)
        # Steps 1-3 are MaskedLMTask.train_step's: forward, loss, gradients
        # (plus float16 loss scaling), and on consistency steps ScTD's term.
        replicas = 1
        if self.task_config.scale_loss:
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
        # float16: Model Garden's LossScaleOptimizer, used as its
        # base_task.Task.train_step uses it (MaskedLMTask does not).
        loss_scaling = isinstance(
            optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            outputs = model(model_inputs, training=True)
            loss = self.build_losses(labels=inputs, model_outputs=outputs,
                                     metrics=metrics, aux_losses=model.losses)
            # The cross-entropy MaskedLMTask.build_losses reduced, per
            # prediction (the same ops on the same tensors: TensorFlow's and
            # XLA's common-subexpression passes compute them once).
            mlm_losses = per_prediction_losses(inputs, outputs)  # [batch, predictions]
            objective = loss
            if self.task_config.consistency_interval:
                extra_loss, surrogate, extra_grads = self._consistency(
                    inputs, outputs, mlm_losses, model, step, metrics,
                    replicas, optimizer if loss_scaling else None)
                loss += extra_loss
                objective += surrogate
            scaled_loss = objective / replicas
            if loss_scaling:
                scaled_loss = optimizer.get_scaled_loss(scaled_loss)
        tvars = model.trainable_variables  # after the model is built
        grads = tape.gradient(scaled_loss, tvars)
        if loss_scaling:
            grads = optimizer.get_unscaled_gradients(grads)
        if self.task_config.consistency_interval:
            grads = [e if g is None else g if e is None else g + e
                     for g, e in zip(grads, extra_grads)]
        optimizer.apply_gradients(list(zip(grads, tvars)))
        # The routing the forward pass used, and its importance, read before
        # the table changes.
        routing = ROUTING_METRICS[0] in {m.name for m in metrics}
        if routing:
            importance = tf.gather(encoder.importance,
                                   inputs["input_word_ids"])  # [batch, seq]
        # Step 4: the importance update (no gradient flows through it).
        encoder.record_mlm_loss(inputs["masked_lm_ids"], mlm_losses,
                                inputs["masked_lm_weights"])
        self.process_metrics(metrics, inputs, outputs)
        if routing:
            self._update_routing_metrics(metrics, encoder, inputs,
                                         outputs["kept_share"], importance)
        return {self.loss: loss}

    def _scheduled(self, inputs, encoder, step, metrics):
        """`inputs` plus this step's keep_k from the encoder's schedule."""
        schedule = encoder.keep_k_schedule
        if not schedule:
            return inputs
        total = self.task_config.keep_k_schedule_steps
        if total < 1:
            raise ValueError(
                f"task.keep_k_schedule_steps={total}: a keep_k schedule needs "
                "the number of training steps its fractions refer to "
                "(tools/train.py sets it to trainer.train_steps).")
        starts = tf.constant(schedule.start_steps(total), tf.int64)
        stage = tf.reduce_sum(tf.cast(
            tf.cast(step, tf.int64) >= starts, tf.int32)) - 1
        keep_k = tf.gather(tf.constant(schedule.keep_ks, tf.int32), stage)
        metrics = {m.name: m for m in metrics}
        if SCHEDULE_METRIC in metrics:
            metrics[SCHEDULE_METRIC].update_state(tf.cast(keep_k, tf.float32))
        return dict(inputs, **{KEEP_K_INPUT: keep_k})

    def _consistency(self, inputs, outputs, mlm_losses, model, step, metrics,
                     replicas, loss_scaler):
        """`consistency.consistency_step` on every `consistency_interval`-th
        step (1-based); updates the consistency metrics."""
        config = self.task_config
        seq_length = inputs["input_word_ids"].shape[1]
        if seq_length is None:
            raise ValueError("Consistency steps need a static sequence length "
                             "(drop_remainder=True batches).")
        on = tf.equal((tf.cast(step, tf.int64) + 1)
                      % config.consistency_interval, 0)
        extra_loss, surrogate, grads, kl, full_mlm = consistency_step(
            on=on, model=model,
            full_inputs=dict(inputs, **{KEEP_K_INPUT: seq_length}),
            dropped_outputs=outputs,
            mlm_loss=lambda out: _weighted_mean(
                per_prediction_losses(inputs, out),
                inputs["masked_lm_weights"]),
            dropped_mlm=_weighted_mean(mlm_losses,
                                       inputs["masked_lm_weights"]),
            full_mlm_share=config.consistency_full_mlm_share,
            weight=config.consistency_weight,
            stop_full_gradient=config.consistency_stop_gradient,
            replicas=replicas, loss_scaler=loss_scaler)
        metrics = {m.name: m for m in metrics}
        for name, value in zip(CONSISTENCY_METRICS, (kl, full_mlm)):
            if name in metrics:
                metrics[name].update_state(
                    value, sample_weight=tf.cast(on, tf.float32))
        return extra_loss, surrogate, grads

    @staticmethod
    def _update_routing_metrics(metrics, encoder, inputs, is_kept,
                                importance):
        """`is_kept`: `[batch, seq]` share of the dropped layers that ran
        each position (the encoder's `kept_share` output)."""
        metrics = {m.name: m for m in metrics}
        word_ids = inputs["input_word_ids"]
        real = tf.cast(inputs["input_mask"], tf.float32)  # [batch, seq]
        kept_real = tf.reduce_sum(is_kept * real)
        metrics["dropped_token_fraction"].update_state(
            1.0 - tf.math.divide_no_nan(kept_real, tf.reduce_sum(real)))
        # Importance of ordinary tokens (special tokens are kept by rule).
        special = is_in(word_ids, tuple(encoder.token_allow_list)
                        + tuple(encoder.token_deny_list))  # [batch, seq]
        ordinary = real * tf.cast(~special, tf.float32)
        for name, where in (("kept_token_importance", is_kept * ordinary),
                            ("dropped_token_importance",
                             (1.0 - is_kept) * ordinary)):
            total = tf.reduce_sum(where)
            if_any = tf.cast(total > 0, tf.float32)
            metrics[name].update_state(
                tf.math.divide_no_nan(tf.reduce_sum(importance * where), total),
                sample_weight=if_any)


def _weighted_mean(losses, weights):
    """Mean of `[batch, predictions]` losses over the weighted slots."""
    return tf.math.divide_no_nan(tf.reduce_sum(losses * weights),
                                 tf.reduce_sum(weights))

"""TokenDropMaskedLMTask: Model Garden's MaskedLMTask plus importance tracking."""

import dataclasses

import tensorflow as tf
import tf_keras
from official.core import task_factory
from official.nlp.configs import bert
from official.nlp.tasks import masked_lm

from token_dropping.encoder import _step_state
from token_dropping.token_selection import is_in
from token_dropping.token_selection import positions_mask

ROUTING_METRICS = ("dropped_token_fraction", "kept_token_importance",
                   "dropped_token_importance")


@dataclasses.dataclass
class TokenDropMaskedLMConfig(masked_lm.MaskedLMConfig):
    """MaskedLMConfig without next-sentence prediction by default (the paper)."""
    model: bert.PretrainerConfig = dataclasses.field(
        default_factory=lambda: bert.PretrainerConfig(cls_heads=[]))
    # Vocabulary file, used only to name the pieces in TensorBoard's text
    # summary of kept and dropped tokens ("" shows ids).
    vocab_file: str = ""


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

    Example:
    >>> task = TokenDropMaskedLMTask(config.task)   # via task_factory.get_task
    """

    def build_metrics(self, training=None):
        metrics = super().build_metrics(training)
        if training:
            metrics += [tf_keras.metrics.Mean(name=n) for n in ROUTING_METRICS]
        return metrics

    def build_losses(self, labels, model_outputs, metrics, aux_losses=None):
        """MaskedLMTask.build_losses, keeping the per-prediction MLM losses
        (per replica thread) for the importance update of the same step,
        so they are computed once."""
        with tf.name_scope("MaskedLMTask/losses"):
            metrics = {metric.name: metric for metric in metrics}
            losses = per_prediction_losses(labels, model_outputs)  # [batch, predictions]
            _step_state(self).mlm_losses = losses
            weights = labels["masked_lm_weights"]
            mlm_loss = tf.math.divide_no_nan(tf.reduce_sum(losses * weights),
                                             tf.reduce_sum(weights))
            metrics["lm_example_loss"].update_state(mlm_loss)
            total_loss = mlm_loss
            if "next_sentence_labels" in labels:
                sentence_loss = tf.reduce_mean(
                    tf_keras.losses.sparse_categorical_crossentropy(
                        labels["next_sentence_labels"],
                        tf.cast(model_outputs["next_sentence"], tf.float32),
                        from_logits=True))
                metrics["next_sentence_loss"].update_state(sentence_loss)
                total_loss += sentence_loss
            if aux_losses:
                total_loss += tf.add_n(aux_losses)
            return total_loss

    def train_step(self, inputs, model, optimizer, metrics):
        """MaskedLMTask.train_step, then `record_mlm_loss` (step 4)."""
        # Steps 1-3 are MaskedLMTask.train_step's: forward, loss, gradients
        # (plus float16 loss scaling).
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            loss = self.build_losses(labels=inputs, model_outputs=outputs,
                                     metrics=metrics, aux_losses=model.losses)
            scaled_loss = loss
            if self.task_config.scale_loss:
                replicas = tf.distribute.get_strategy().num_replicas_in_sync
                scaled_loss = loss / replicas
            # float16: Model Garden's LossScaleOptimizer, used as its
            # base_task.Task.train_step uses it (MaskedLMTask does not).
            loss_scaling = isinstance(
                optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
            if loss_scaling:
                scaled_loss = optimizer.get_scaled_loss(scaled_loss)
        tvars = model.trainable_variables
        grads = tape.gradient(scaled_loss, tvars)
        if loss_scaling:
            grads = optimizer.get_unscaled_gradients(grads)
        optimizer.apply_gradients(list(zip(grads, tvars)))
        # The routing the forward pass used, and its importance, read before
        # the table changes.
        encoder = model.encoder_network
        routing = ROUTING_METRICS[0] in {m.name for m in metrics}
        if routing:
            importance = tf.gather(encoder.importance,
                                   inputs["input_word_ids"])  # [batch, seq]
        # Step 4: the importance update (no gradient flows through it).
        encoder.record_mlm_loss(inputs["masked_lm_ids"],
                                _step_state(self).mlm_losses,
                                inputs["masked_lm_weights"])
        self.process_metrics(metrics, inputs, outputs)
        if routing:
            self._update_routing_metrics(metrics, encoder, inputs,
                                         encoder.last_kept_positions,
                                         importance)
        return {self.loss: loss}

    @staticmethod
    def _update_routing_metrics(metrics, encoder, inputs, kept, importance):
        metrics = {m.name: m for m in metrics}
        word_ids = inputs["input_word_ids"]
        real = tf.cast(inputs["input_mask"], tf.float32)  # [batch, seq]
        is_kept = tf.cast(positions_mask(kept, tf.shape(real)),
                          tf.float32)  # [batch, seq]
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

"""Keras callbacks for pretraining a token-dropping BERT with `model.fit`."""

import tensorflow as tf
import tf_keras
from tf_keras.src.engine import data_adapter

from token_dropping.train.task import per_prediction_losses
from token_dropping.common.errors import UserError


class MLMLossTracking(tf_keras.callbacks.Callback):
    """Feeds every training batch's MLM losses to the importance table.

    `TokenDropMaskedLMTask` does this under Model Garden's trainer. With
    `model.fit` on a Keras pretrainer (e.g. `BertPretrainerV2` around a
    `TokenDropBertEncoder`), add this callback instead. For the length of
    `fit` it runs Keras' standard train step (forward, `compute_loss`,
    `minimize`, `compute_metrics`) followed by `encoder.record_mlm_loss` on
    that step's per-prediction losses, then restores the model's own step.
    Evaluation never updates the table.

    Args:
        encoder: the `TokenDropBertEncoder` inside the model.
        ids_key: str. Feature with the masked ids `[batch, predictions]`.
        weights_key: str. Feature with their weights (0 on padded slots).
        logits_key: str. The MLM logits in the model's outputs when they are
            a dict; a model with one output is taken to output the logits.

    Example:
    >>> pretrainer = models.BertPretrainerV2(encoder_network=encoder)
    >>> inputs = {k: tf_keras.Input(v.shape[1:], dtype=v.dtype, name=k)
    ...           for k, v in features.items()}   # MG loader's features
    >>> model = tf_keras.Model(inputs, pretrainer(inputs)["mlm_logits"])
    >>> model.compile(optimizer="adam",
    ...               loss=tf_keras.losses.SparseCategoricalCrossentropy(
    ...                   from_logits=True))
    >>> # dataset yields (features, masked_lm_ids, masked_lm_weights)
    >>> model.fit(dataset, epochs=1, callbacks=[MLMLossTracking(encoder)])
    """

    def __init__(self, encoder, ids_key="masked_lm_ids",
                 weights_key="masked_lm_weights", logits_key="mlm_logits"):
        super().__init__()
        if not hasattr(encoder, "record_mlm_loss"):
            raise UserError(
                f"MLMLossTracking needs a TokenDropBertEncoder, got "
                f"{type(encoder).__name__}.")
        self.encoder = encoder
        self.ids_key = ids_key
        self.weights_key = weights_key
        self.logits_key = logits_key

    def _train_step(self, data):
        model = self.model
        x, y, sample_weight = data_adapter.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x, y, y_pred, sample_weight)
        model.optimizer.minimize(loss, model.trainable_variables, tape=tape)
        outputs = y_pred if isinstance(y_pred, dict) else {
            self.logits_key: y_pred}  # a model whose output is the logits
        for name, where, key in (("features", x, self.ids_key),
                                 ("features", x, self.weights_key),
                                 ("outputs", outputs, self.logits_key)):
            if not isinstance(where, dict) or key not in where:
                raise UserError(
                    f"MLMLossTracking: the model's {name} have no {key!r}; "
                    f"they have {sorted(where) if isinstance(where, dict) else type(where).__name__}.")
        labels = {"masked_lm_ids": x[self.ids_key]}
        outputs = {"mlm_logits": outputs[self.logits_key]}
        self.encoder.record_mlm_loss(x[self.ids_key],
                                     per_prediction_losses(labels, outputs),
                                     x[self.weights_key])
        return model.compute_metrics(x, y, y_pred, sample_weight)

    def on_train_begin(self, logs=None):
        # `fit` builds its train function before this hook; rebuild it with
        # our step, behind a guard that only runs it inside this `fit`.
        model = self.model
        model.train_step = self._train_step
        tracked = model.make_train_function(force=True)
        self._armed = False

        def train_function(iterator):
            if not self._armed:  # a later fit or train_on_batch without us
                self._restore()
                return model.make_train_function(force=True)(iterator)
            self._armed = False
            return tracked(iterator)
        model.train_function = train_function

    def on_train_batch_begin(self, batch, logs=None):
        self._armed = True

    def on_train_end(self, logs=None):
        self._restore()

    def _restore(self):
        """The model's own train step again (also after a `fit` that raised:
        the guard above calls this on the next step that is not ours)."""
        self._armed = False
        if "train_step" in vars(self.model):
            del self.model.train_step
        self.model.train_function = None

"""ScTD's semantic-consistency loss between a full and a dropped pass.

Token dropping skips layers for some tokens, and ScTD (Zhong et al.,
"Revisiting Token Dropping Strategy in Efficient BERT Pretraining", ACL 2023,
arXiv 2305.15273) reports that the dropped pass's representations drift from
the full pass's ("semantic loss"). Every `consistency_interval` steps it also
runs the full sequence on the same batch and adds

    0.05 x [KL(p_full || p_dropped) at the second-to-last layer
            + KL(p_full || p_dropped) at the last layer]

where `p` is the softmax over the hidden units of the [CLS] (position 0)
state, summed over the batch (PyTorch's `kl_div(..., reduction="sum")`),
with gradients through both passes unless the full pass is a fixed teacher
(`stop_full_gradient`). The task (`TokenDropMaskedLMTask`) mixes the MLM
losses of both passes 0.5 / 0.5 on those steps.

Example:
>>> loss = cls_consistency_loss(full["encoder_outputs"],
...                             dropped["encoder_outputs"])
"""

import tensorflow as tf


def cls_consistency_loss(full_encoder_outputs, dropped_encoder_outputs,
                         stop_full_gradient=False):
    """Sum of KL(full || dropped) over the [CLS] states' softmax.

    Args:
        full_encoder_outputs: list of `[batch, seq, hidden]`, one per layer,
            of the full pass (the encoder's `encoder_outputs`).
        dropped_encoder_outputs: the same list of the dropped pass.
        stop_full_gradient: bool. Treat the full pass as a fixed target.

    Returns:
        float32 scalar: the KL at the second-to-last plus the last layer
        (the last only, for a one-layer encoder), summed over the batch.
    """
    total = tf.constant(0.0, tf.float32)
    for full, dropped in zip(full_encoder_outputs[-2:],
                             dropped_encoder_outputs[-2:]):
        full_cls = tf.cast(full[:, 0, :], tf.float32)  # [batch, hidden]
        if stop_full_gradient:
            full_cls = tf.stop_gradient(full_cls)
        log_p = tf.nn.log_softmax(full_cls, axis=-1)  # [batch, hidden]
        log_q = tf.nn.log_softmax(
            tf.cast(dropped[:, 0, :], tf.float32), axis=-1)  # [batch, hidden]
        total += tf.reduce_sum(tf.exp(log_p) * (log_p - log_q))
    return total


def consistency_step(*, on, model, full_inputs, dropped_outputs, mlm_loss,
                     dropped_mlm, full_mlm_share, weight, stop_full_gradient,
                     replicas=1, loss_scaler=None):
    """ScTD's extra term on a consistency step, and its gradients.

    The extra loss is `full_mlm_share x (MLM(full) - MLM(dropped)) +
    weight x KL`, which makes the MLM part the 0.5 / 0.5 mix. The full pass
    runs in one `tf.cond` on `on`, so both kinds of step are one traced,
    compiled function. Nothing is differentiated through that `tf.cond`:
    XLA cannot (the branch's slices need compile-time shapes that a cond's
    gradient passes as run-time values), so the full pass's gradients are
    taken inside the branch, the gradient with respect to the dropped
    [CLS] states is handed out, and the dropped side of the term flows
    through the caller's tape by a surrogate with those gradients.

    Args:
        on: bool scalar tensor: is this a consistency step.
        model: the pretraining model.
        full_inputs: its inputs for a full-length pass.
        dropped_outputs: the dropped pass's outputs (under the caller's tape).
        mlm_loss: fn(outputs) -> the weighted-mean MLM loss.
        dropped_mlm: the dropped pass's MLM loss (under the caller's tape).
        full_mlm_share, weight, stop_full_gradient: the task's options.
        replicas: what the caller divides its loss by (1: nothing).
        loss_scaler: the float16 `LossScaleOptimizer`, or None.

    Returns:
        `(extra_loss, surrogate, full_grads, kl, full_mlm)`: the loss to
        report (0 off a consistency step), the term to add to the caller's
        objective before it divides by `replicas` and scales, the gradients
        to add to its unscaled gradients (already divided by `replicas`; one per trainable variable, None where none reaches), and
        the two metrics.
    """
    tvars = model.trainable_variables
    dropped_cls = [h[:, :1] for h in dropped_outputs["encoder_outputs"][-2:]]
    reaches = []  # per variable: does the full pass's gradient reach it

    def full_pass():
        with tf.GradientTape() as tape:
            tape.watch(dropped_cls)
            full = model(full_inputs, training=True)
            full_mlm = mlm_loss(full)
            kl = cls_consistency_loss(full["encoder_outputs"], dropped_cls,
                                      stop_full_gradient)
            scaled = (full_mlm_share * full_mlm + weight * kl) / replicas
            if loss_scaler is not None:
                scaled = loss_scaler.get_scaled_loss(scaled)
        grads = tape.gradient(scaled, tvars + dropped_cls)
        reaches[:] = [g is not None for g in grads[:len(tvars)]]
        grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                 for g, v in zip(grads, tvars + dropped_cls)]
        if loss_scaler is not None:
            grads = loss_scaler.get_unscaled_gradients(grads)
        return [full_mlm, kl] + list(grads)

    def skip():
        return [tf.constant(0.0), tf.constant(0.0)] + [
            tf.zeros_like(v) for v in tvars + dropped_cls]

    results = tf.cond(on, full_pass, skip)
    full_mlm, kl = results[0], results[1]
    full_grads = [g if reached else None for g, reached in
                  zip(results[2:2 + len(tvars)], reaches)]
    cls_grads = results[2 + len(tvars):]
    on = tf.cast(on, tf.float32)
    extra_loss = on * (full_mlm_share * (full_mlm - dropped_mlm)
                       + weight * kl)
    # d(surrogate / replicas) / d(theta): the term's gradient through the
    # dropped pass (cls_grads are already divided by replicas).
    surrogate = -on * full_mlm_share * dropped_mlm
    for grad, cls in zip(cls_grads, dropped_cls):
        surrogate += replicas * tf.reduce_sum(
            tf.stop_gradient(tf.cast(grad, tf.float32))
            * tf.cast(cls, tf.float32))
    return extra_loss, surrogate, full_grads, kl, full_mlm

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

"""LayerRouting: which tokens each transformer layer of a training call sees.

A mixin of `TokenDropBertEncoder` (it uses `BertEncoderV2`'s sub-layers:
`_transformer_layers`, `_attention_mask_layer`), with three routes through the
layers after the embeddings, each returning `(encoder_outputs, kept_share)`:
every layer's full-length `[batch, seq, hidden]` output, and `[batch, seq]`
float32, the share of the dropped layers that ran each position (1 kept,
0 dropped; between for layer-wise random dropping).

- `_route_full`: every layer sees every token (plain BERT; a schedule stage
  or a consistency pass that drops nothing);
- `_route_between` (the paper): one selection; layers in
  `[drop_start_layer, drop_end_layer)` run the kept tokens, the dropped ones
  rejoin with their pre-drop state;
- `_route_per_layer` (random-LTD, Yao et al. 2022, arXiv 2211.11586): each
  layer in `[drop_start_layer, drop_end_layer)` draws its own random subset
  of `keep_k` tokens (allow-listed ids always, padding last), runs on those
  only (they attend to each other), and scatters them back; the tokens it
  dropped pass that layer unchanged.

Shapes are static for a given `keep_k` (one `top_k`, gathers and scatters of
`[batch, keep_k, hidden]`), so each route compiles under XLA.
"""

import tensorflow as tf

from token_dropping.model.selection import positions_mask
from token_dropping.model.selection import select_kept_positions


def _scatter_index(kept):
    """`[batch, keep_k, 2]` (row, position) pairs for `tensor_scatter_nd_*`."""
    rows = tf.broadcast_to(tf.range(tf.shape(kept)[0])[:, None],
                           tf.shape(kept))  # [batch, keep_k]
    return tf.stack([rows, kept], axis=-1)  # [batch, keep_k, 2]


def branch_index(values, keep_k):
    """int32 index of the scalar `keep_k` in the Python tuple `values`, for
    `tf.switch_case`; an assertion names a value that is not one of them."""
    matches = tf.equal(tf.constant(values, tf.int32),
                       tf.cast(keep_k, tf.int32))  # [values]
    known = tf.debugging.assert_equal(
        tf.reduce_any(matches), True, message=(
            f"the token_keep_k input must be one of {values} (the "
            "encoder's keep_k_values)"))
    with tf.control_dependencies([known]):
        return tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int32)


class LayerRouting:
    """The routes (see the module docstring); mixed into the encoder."""

    def _full_layer(self, i, x, attention_mask):
        """Layer `i` on all tokens; the last one honours `output_range`."""
        last = i == self._num_layers - 1
        return self._transformer_layers[i](
            [x, attention_mask],
            output_range=self._output_range if last else None)

    def _finish(self, encoder_outputs, last_layer_was_full):
        """`output_range` for a last layer that ran on kept tokens only."""
        if not last_layer_was_full and self._output_range:
            encoder_outputs[-1] = encoder_outputs[-1][:, :self._output_range]
        return encoder_outputs

    def _route_full(self, x, attention_mask, mask):
        encoder_outputs = []
        for i in range(self._num_layers):
            x = self._full_layer(i, x, attention_mask)  # [batch, seq, hidden]
            encoder_outputs.append(x)
        return encoder_outputs, tf.ones(tf.shape(mask), tf.float32)

    def _route_between(self, x, attention_mask, inputs, keep_k):
        mask = inputs["input_mask"]
        encoder_outputs = []
        # Step 1: the full-length layers before the drop.
        for layer in self._transformer_layers[:self.drop_start_layer]:
            x = layer([x, attention_mask])  # [batch, seq, hidden]
            encoder_outputs.append(x)

        # Step 2: the kept positions, and their rows of the state.
        kept = self.kept_positions(inputs, keep_k)  # [batch, keep_k]
        x_kept = tf.gather(x, kept, batch_dims=1)  # [batch, keep_k, hidden]
        mask_kept = tf.gather(mask, kept, batch_dims=1)  # [batch, keep_k]
        scatter_index = _scatter_index(kept)  # [batch, keep_k, 2]
        restore = lambda kept_state: tf.tensor_scatter_nd_update(
            x, scatter_index, tf.cast(kept_state, x.dtype))  # [batch, seq, hidden]

        # Step 3: transition layer, kept queries over all keys and values.
        cross_mask = self._attention_mask_layer(x_kept, mask)  # [batch, keep_k, seq]
        x_kept = self._transformer_layers[self.drop_start_layer](
            [x_kept, x, cross_mask])  # [batch, keep_k, hidden]
        encoder_outputs.append(restore(x_kept))

        # Step 4: the dropped layers, kept tokens only.
        kept_mask = self._attention_mask_layer(x_kept, mask_kept)  # [batch, keep_k, keep_k]
        for layer in self._transformer_layers[self.drop_start_layer + 1:
                                              self.drop_end_layer]:
            x_kept = layer([x_kept, kept_mask])  # [batch, keep_k, hidden]
            encoder_outputs.append(restore(x_kept))

        # Step 5: restore; dropped tokens carry their pre-drop state.
        x = encoder_outputs[-1]  # [batch, seq, hidden]

        # Step 6: the full-length layers after the drop.
        for i in range(self.drop_end_layer, self._num_layers):
            x = self._full_layer(i, x, attention_mask)  # [batch, seq, hidden]
            encoder_outputs.append(x)
        share = tf.cast(positions_mask(kept, tf.shape(mask)), tf.float32)
        return (self._finish(encoder_outputs,
                             self.drop_end_layer < self._num_layers), share)

    def _route_per_layer(self, x, attention_mask, inputs, keep_k):
        word_ids, mask = inputs["input_word_ids"], inputs["input_mask"]
        encoder_outputs = []
        share = tf.zeros(tf.shape(mask), tf.float32)  # [batch, seq]
        for i in range(self._num_layers):
            if not self.drop_start_layer <= i < self.drop_end_layer:
                x = self._full_layer(i, x, attention_mask)  # [batch, seq, hidden]
                encoder_outputs.append(x)
                continue
            # This layer's own draw: top keep_k of fresh random scores.
            kept = select_kept_positions(
                tf.zeros(tf.shape(word_ids), tf.float32), word_ids, mask,
                keep_k, self.token_allow_list, self.token_deny_list,
                strategy="random")  # [batch, keep_k]
            x_kept = tf.gather(x, kept, batch_dims=1)  # [batch, keep_k, hidden]
            mask_kept = tf.gather(mask, kept, batch_dims=1)  # [batch, keep_k]
            kept_mask = self._attention_mask_layer(
                x_kept, mask_kept)  # [batch, keep_k, keep_k]
            x_kept = self._transformer_layers[i](
                [x_kept, kept_mask])  # [batch, keep_k, hidden]
            x = tf.tensor_scatter_nd_update(
                x, _scatter_index(kept),
                tf.cast(x_kept, x.dtype))  # [batch, seq, hidden]
            encoder_outputs.append(x)
            share += tf.cast(positions_mask(kept, tf.shape(mask)), tf.float32)
        dropped_layers = self.drop_end_layer - self.drop_start_layer
        return (self._finish(encoder_outputs,
                             self.drop_end_layer < self._num_layers),
                share / dropped_layers)

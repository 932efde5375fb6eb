"""SampleRouting: which ordinary tokens of fixed sample batches the table keeps."""

import numpy as np
import tensorflow as tf
from absl import logging


def read_sample_batches(task, data_config, num_batches):
    """The first `num_batches` batches of the task's training input
    (word ids and mask only); none, with a warning, if they cannot be read."""
    samples = []
    try:
        for batch in task.build_inputs(data_config).take(num_batches):
            samples.append({k: batch[k] for k in ("input_word_ids",
                                                  "input_mask")})
    except (tf.errors.OpError, ValueError) as e:
        logging.warning("Token-dropping text summaries are off: could not "
                        "read sample batches (%s).", e)
    return samples


class SampleRouting:
    """Re-runs the encoder's selection (no forward pass) on sample batches.

    Args:
        encoder: the `TokenDropBertEncoder` being trained.
        sample_batches: list of dicts with `input_word_ids`, `input_mask`.

    Example:
    >>> routing = SampleRouting(encoder, [batch])
    >>> ids, is_kept = routing(keep_k=256)
    >>> kept, dropped = routing.counts(ids, is_kept, vocab_size)
    """

    def __init__(self, encoder, sample_batches):
        self.encoder = encoder
        self.sample_batches = sample_batches
        # Random selections in the sample draw from their own generator, not
        # from the one training draws from (its stream stays the run's).
        self._sample_rng = tf.random.Generator.from_seed(0)

    @property
    def draws(self):
        """Selections a step makes: one per dropped layer for random-LTD,
        whose layers each draw their own subset; else one for them all."""
        if self.encoder.selection == "random_per_layer":
            return self.encoder.drop_end_layer - self.encoder.drop_start_layer
        return 1

    @property
    def sequences(self):
        """Sequences in all sample batches."""
        return sum(int(b["input_word_ids"].shape[0])
                   for b in self.sample_batches)

    def _special_ids(self):
        return set(self.encoder.token_allow_list) | set(
            self.encoder.token_deny_list)

    def __call__(self, keep_k=None):
        """`(ids, is_kept)`: each ordinary token of the sample batches (1-D,
        one entry per occurrence), and whether the current table keeps it
        at `keep_k` (default `token_keep_k`): `[draws, occurrences]`, one
        row per selection a step makes (`draws`).

        Special tokens (allow and deny lists) are routed by rule, not by
        importance, and are left out; so is padding.
        """
        special = sorted(self._special_ids())
        ids, kept = [np.zeros(0, np.int64)], [np.zeros((self.draws, 0), bool)]
        for batch in self.sample_batches:
            word_ids = batch["input_word_ids"].numpy()
            ordinary = ((batch["input_mask"].numpy() > 0)
                        & ~np.isin(word_ids, special))  # [batch, seq]
            ids.append(word_ids[ordinary])
            rows = []
            for _ in range(self.draws):  # a fresh draw each, if random
                is_kept = np.zeros_like(ordinary)
                np.put_along_axis(is_kept, self.encoder.kept_positions(
                    batch, keep_k, rng=self._sample_rng).numpy(), True,
                    axis=1)  # [batch, seq]
                rows.append(is_kept[ordinary])
            kept.append(np.stack(rows))  # [draws, occurrences]
        return np.concatenate(ids), np.concatenate(kept, axis=1)

    @staticmethod
    def counts(ids, is_kept, vocab_size):
        """`(kept, dropped)`: `[vocab_size]` times each id was kept and
        dropped, over every draw."""
        count = lambda where: sum(np.bincount(
            ids[row], minlength=vocab_size) for row in where)
        return count(is_kept), count(~is_kept)

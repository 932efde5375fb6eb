"""TokenDropSummaries: what token dropping is doing, in TensorBoard."""

import numpy as np
import tensorflow as tf
from absl import logging

from token_dropping import flops


class TokenDropSummaries:
    """An orbit train action writing token-dropping summaries after each loop.

    Model Garden's trainer already writes the task's scalars (MLM loss and
    accuracy, and our dropped share and kept/dropped importance). This adds,
    under `token_dropping/` in the train summaries:

    - `importance`: histogram of the importance table;
    - `flop_ratio`: analytic forward FLOPs of this layout over plain BERT's;
    - `most_dropped`, `most_kept`: text tables of the vocabulary pieces the
      current table drops and keeps most often, counted on a few sample
      batches (a selection only, no forward pass).

    Args:
        encoder: the `TokenDropBertEncoder` being trained.
        summary_dir: str. Where to write (the trainer's `train` directory).
        global_step: the trainer's step variable.
        sample_batches: list of input dicts used for the kept/dropped counts.
        flop_ratio: float. Written once per loop so it sits beside the loss.
        vocab: list of str or None; None shows ids.
        top_n: int. Rows in each text table.

    Example:
    >>> action = TokenDropSummaries.for_task(task, model.encoder_network,
    ...                                      "runs/x/train", trainer.global_step)
    >>> train_lib.run_experiment(..., train_actions=[action])
    """

    def __init__(self, encoder, summary_dir, global_step, sample_batches,
                 flop_ratio, vocab=None, top_n=20):
        self.encoder = encoder
        self.summary_dir = summary_dir
        self.global_step = global_step
        self.sample_batches = sample_batches
        self.flop_ratio = flop_ratio
        self.vocab = vocab
        self.top_n = top_n
        self._writer = tf.summary.create_file_writer(summary_dir)

    @classmethod
    def for_task(cls, task, encoder, summary_dir, global_step, num_batches=2):
        """Builds the action from a TokenDropMaskedLMTask's own config."""
        data_config = task.task_config.train_data
        samples = []
        try:
            for batch in task.build_inputs(data_config).take(num_batches):
                samples.append({k: batch[k] for k in ("input_word_ids",
                                                      "input_mask")})
        except (tf.errors.OpError, ValueError) as e:
            logging.warning("Token-dropping text summaries are off: could not "
                            "read sample batches (%s).", e)
        encoder_config = task.task_config.model.encoder.get()
        ratio = flops.flop_ratio(
            seq_length=data_config.seq_length,
            hidden_size=encoder_config.hidden_size,
            num_layers=encoder_config.num_layers,
            inner_dim=encoder_config.intermediate_size,
            token_keep_k=encoder.token_keep_k,
            drop_start_layer=encoder.drop_start_layer,
            drop_end_layer=encoder.drop_end_layer,
            vocab_size=encoder_config.vocab_size,
            max_predictions_per_seq=data_config.max_predictions_per_seq)
        vocab_file = getattr(task.task_config, "vocab_file", "")
        vocab = None
        if vocab_file and tf.io.gfile.exists(vocab_file):
            with tf.io.gfile.GFile(vocab_file) as f:
                vocab = [line.rstrip("\n") for line in f]
        return cls(encoder, summary_dir, global_step, samples, ratio, vocab)

    def routing_counts(self):
        """Per-id counts of real tokens kept and dropped on the samples."""
        vocab_size = int(self.encoder.importance.shape[0])
        kept_counts = np.zeros(vocab_size, np.int64)
        dropped_counts = np.zeros(vocab_size, np.int64)
        for batch in self.sample_batches:
            word_ids = batch["input_word_ids"].numpy()
            real = batch["input_mask"].numpy() > 0
            kept = self.encoder.kept_positions(batch).numpy()
            is_kept = np.zeros_like(real)
            np.put_along_axis(is_kept, kept, True, axis=1)
            np.add.at(kept_counts, word_ids[real & is_kept], 1)
            np.add.at(dropped_counts, word_ids[real & ~is_kept], 1)
        return kept_counts, dropped_counts

    def _table(self, counts, other, importance):
        order = np.argsort(-counts, kind="stable")[:self.top_n]
        rows = ["| piece | id | times | of its occurrences | importance |",
                "|---|---|---|---|---|"]
        for token in order:
            if counts[token] == 0:
                break
            piece = (self.vocab[token] if self.vocab and token < len(self.vocab)
                     else str(token))
            share = counts[token] / (counts[token] + other[token])
            rows.append(f"| `{piece}` | {token} | {counts[token]} | "
                        f"{share:.0%} | {importance[token]:.3f} |")
        return "\n".join(rows)

    def __call__(self, output):
        del output  # the trainer writes the scalar metrics itself
        step = int(self.global_step.numpy())
        importance = self.encoder.importance.numpy()
        with self._writer.as_default(step=step):
            tf.summary.histogram("token_dropping/importance", importance)
            tf.summary.scalar("token_dropping/flop_ratio", self.flop_ratio)
            if self.sample_batches:
                kept, dropped = self.routing_counts()
                tf.summary.text("token_dropping/most_dropped",
                                self._table(dropped, kept, importance))
                tf.summary.text("token_dropping/most_kept",
                                self._table(kept, dropped, importance))
        self._writer.flush()

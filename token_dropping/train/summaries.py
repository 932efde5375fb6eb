"""TokenDropSummaries: an orbit train action writing the token-dropping cards."""

import numpy as np
import orbit
import tensorflow as tf

from token_dropping.common import files
from token_dropping.model import flops
from token_dropping.train import summary_text as tags
from token_dropping.train.sample_routing import SampleRouting
from token_dropping.train.sample_routing import read_sample_batches
from token_dropping.train.summary_text import SummaryText
from token_dropping.train.task import ROUTING_METRICS

# TokenDropMaskedLMTask's training metrics -> the tag each is written under.
FROM_TRAIN_OUTPUT = dict(zip(ROUTING_METRICS, (
    tags.DROPPED_PERCENT, tags.IMPORTANCE_KEPT, tags.IMPORTANCE_DROPPED)))


def measured_ids(importance, init_value):
    """Boolean `[vocab]`: ids whose importance has left its initial value.

    An id's first update moves it off `init_value` unless its loss was within
    float32 rounding of it (|loss - init| below about 1e-4 for 10.0), so
    this undercounts by a negligible amount and needs no extra variable in
    the checkpoint. The table is float32, so the comparison is in float32
    (float64(0.1) != float32(0.1)).
    """
    return importance != np.float32(init_value)


class TrainOutputSummaries(orbit.utils.SummaryManager):
    """orbit's writer of the train output (`tf.summary.scalar` per entry,
    what `orbit.Controller` builds by default) leaving out the metrics
    named in `skip`, which an action writes under other tags."""

    def __init__(self, summary_dir, global_step, skip):
        super().__init__(summary_dir, tf.summary.scalar,
                         global_step=global_step)
        self.skip = frozenset(skip)

    def write_summaries(self, summary_dict):
        super().write_summaries({k: v for k, v in summary_dict.items()
                                 if k not in self.skip})


class TokenDropSummaries:
    """An orbit train action writing every token-dropping summary.

    After each training loop it writes, with one writer, under `token_dropping/`
    in the train summaries, each with a one-sentence description (what, unit,
    which way is healthy; `summary_text`) that TensorBoard shows on the card:

    - `dropped_percent`, `importance_kept`, `importance_dropped`: the task's
      routing metrics (`TokenDropMaskedLMTask`, averaged over the loop), read
      from the train output and left in it, so actions run in any order;
      Model Garden's trainer writes the output after the actions, so give it
      `summary_manager()`, which leaves these out (no second name). The
      dropped share is in percent rounded to 0.1, so a constant share draws
      a flat line, and its description gives the share to expect (each
      stage's, with a keep_k schedule);
    - `measured_vocab_percent`: the share of vocabulary ids measured at least
      once; `importance`: a histogram over those ids only (mostly a spike
      just below the initial value: rare ids are updated rarely);
    - `importance_of_sample_tokens`: a histogram of the importance of each
      ordinary token in a few fixed sample batches, the values the selection
      ranks (frequent tokens weigh in, so the part that moves shows);
    - `flop_ratio`: analytic average training FLOPs per step of this variant
      over plain BERT's (`flops.config_train_flop_ratio`: a keep_k schedule
      averaged over its stages, consistency passes amortised), and
      `train_flops_per_step` the FLOPs themselves (when known);
    - `most_dropped`, `most_kept` (Text tab): the ordinary tokens the current
      table drops and keeps most often on a few fixed sample batches (a
      selection only, no forward pass; `SampleRouting`) at the keep_k of the
      loop's last step; special tokens are listed once above. With random-LTD
      (`random_per_layer`) each dropped layer draws its own subset, so each
      layer draws once and a token counts once per layer.

    Args:
        encoder: the `TokenDropBertEncoder` being trained.
        summary_dir: str. Where to write (the trainer's `train` directory).
        global_step: the trainer's step variable.
        sample_batches: list of input dicts used for the kept/dropped counts.
        flop_ratio: float. Written once per loop so it sits beside the loss.
        train_flops: float or None. Average training FLOPs per step.
        seq_length: int. The training sequence length (for the target share).
        vocab: list of str or None; None shows ids.
        top_n: int. Rows in each text table.
        schedule_steps: int. The steps the encoder's keep_k schedule's
            fractions refer to (`task.keep_k_schedule_steps`); needed with
            a schedule only.

    Example:
    >>> action = TokenDropSummaries.for_task(task, model.encoder_network,
    ...                                      "runs/x/train", trainer.global_step)
    >>> train_lib.run_experiment(..., train_actions=[action, progress],
    ...                          summary_manager=action.summary_manager())
    """

    def __init__(self, encoder, summary_dir, global_step, sample_batches,
                 flop_ratio, seq_length, vocab=None, top_n=20,
                 train_flops=None, schedule_steps=0):
        if encoder.keep_k_schedule and schedule_steps < 1:
            raise ValueError(
                f"schedule_steps={schedule_steps}: the encoder's keep_k "
                "schedule needs the number of training steps its fractions "
                "refer to (task.keep_k_schedule_steps).")
        self.encoder = encoder
        self.summary_dir = summary_dir
        self.global_step = global_step
        self.flop_ratio = flop_ratio
        self.train_flops = train_flops
        self.schedule_steps = schedule_steps
        self.routing = SampleRouting(encoder, sample_batches)
        self.text = SummaryText(encoder, seq_length, schedule_steps,
                                len(sample_batches), self.routing.draws,
                                vocab=vocab, top_n=top_n)
        self.descriptions = self.text.descriptions()
        self._writer = tf.summary.create_file_writer(summary_dir)

    @classmethod
    def for_task(cls, task, encoder, summary_dir, global_step, num_batches=2):
        """Builds the action from a TokenDropMaskedLMTask's own config."""
        data_config = task.task_config.train_data
        samples = read_sample_batches(task, data_config, num_batches)
        ratio = flops.config_train_flop_ratio(task.task_config)
        vocab_file = getattr(task.task_config, "vocab_file", "")
        vocab = None
        if vocab_file and tf.io.gfile.exists(vocab_file):
            vocab = files.read_vocab(vocab_file)
        return cls(encoder, summary_dir, global_step, samples, ratio,
                   data_config.seq_length, vocab,
                   train_flops=flops.config_train_flops(task.task_config),
                   schedule_steps=task.task_config.keep_k_schedule_steps)

    def summary_manager(self):
        """The trainer's summary manager for the same directory, leaving
        out the routing metrics this action writes under its own tags."""
        return TrainOutputSummaries(self.summary_dir, self.global_step,
                                    skip=FROM_TRAIN_OUTPUT)

    def keep_k_at(self, step):
        """The keep_k of 0-based training `step`: its schedule stage's, or
        `token_keep_k` without a schedule."""
        schedule = self.encoder.keep_k_schedule
        if schedule:
            return schedule.keep_k_at(step, self.schedule_steps)
        return self.encoder.token_keep_k

    def __call__(self, output):
        """Writes this loop's summaries; reads `output`, changes nothing."""
        step = int(self.global_step.numpy())
        output = output or {}
        scalars = {tag: float(output[name])
                   for name, tag in FROM_TRAIN_OUTPUT.items() if name in output}
        if tags.DROPPED_PERCENT in scalars:  # percent: 0.49997 reads as 50.0
            scalars[tags.DROPPED_PERCENT] = round(
                100.0 * scalars[tags.DROPPED_PERCENT], 1)
        importance = self.encoder.importance.numpy()
        measured = measured_ids(importance,
                                self.encoder.token_loss_init_value)
        scalars[tags.MEASURED] = 100.0 * float(measured.mean())
        scalars[tags.FLOP_RATIO] = self.flop_ratio
        if self.train_flops is not None:
            scalars[tags.TRAIN_FLOPS] = self.train_flops
        with self._writer.as_default(step=step):
            for tag, value in scalars.items():
                tf.summary.scalar(tag, value,
                                  description=self.descriptions[tag])
            if measured.any():
                tf.summary.histogram(
                    tags.HISTOGRAM, importance[measured],
                    description=self.descriptions[tags.HISTOGRAM])
            if self.routing.sample_batches:
                self._write_sample_routing(step, importance, measured)
        self._writer.flush()

    def _write_sample_routing(self, step, importance, measured):
        """The sample histogram and the two tables (inside the writer)."""
        keep_k = self.keep_k_at(max(step - 1, 0))  # the last step's
        ids, is_kept = self.routing(keep_k)
        tf.summary.histogram(
            tags.SAMPLE_HISTOGRAM, importance[ids],
            description=self.descriptions[tags.SAMPLE_HISTOGRAM])
        kept, dropped = self.routing.counts(ids, is_kept, len(importance))
        header = self.text.header(self.routing.sequences, len(ids), keep_k)
        for tag, verb, counts, other in (
                (tags.MOST_DROPPED, "dropped", dropped, kept),
                (tags.MOST_KEPT, "kept", kept, dropped)):
            tf.summary.text(tag, self.text.table(header, verb, counts, other,
                                                 importance, measured),
                            description=self.descriptions[tag])

"""TokenDropSummaries: what token dropping is doing, in TensorBoard."""

import numpy as np
import tensorflow as tf
from absl import logging

from token_dropping.common import files
from token_dropping.model import flops
from token_dropping.train.task import ROUTING_METRICS

PREFIX = "token_dropping/"

# TokenDropMaskedLMTask's training metrics -> the tag each is written under.
FROM_TRAIN_OUTPUT = dict(zip(ROUTING_METRICS, (
    PREFIX + "dropped_percent", PREFIX + "importance_kept",
    PREFIX + "importance_dropped")))
MEASURED = PREFIX + "measured_vocab_percent"
FLOP_RATIO = PREFIX + "flop_ratio"
TRAIN_FLOPS = PREFIX + "train_flops_per_step"
HISTOGRAM = PREFIX + "importance"
SAMPLE_HISTOGRAM = PREFIX + "importance_of_sample_tokens"
MOST_DROPPED = PREFIX + "most_dropped"
MOST_KEPT = PREFIX + "most_kept"


def measured_ids(importance, init_value):
    """Boolean `[vocab]`: ids whose importance has left its initial value.

    An id's first update moves it off `init_value` unless its loss was within
    float32 rounding of it (|loss - init| below about 1e-4 for 10.0), so
    this undercounts by a negligible amount and needs no extra variable in
    the checkpoint. The table is float32, so the comparison is in float32
    (float64(0.1) != float32(0.1)).
    """
    return importance != np.float32(init_value)


class TokenDropSummaries:
    """An orbit train action writing every token-dropping summary.

    After each training loop it writes, with one writer, under `token_dropping/`
    in the train summaries, each with a one-sentence description (what, unit,
    which way is healthy) that TensorBoard shows on the card:

    - `dropped_percent`, `importance_kept`, `importance_dropped`: the task's
      routing metrics (`TokenDropMaskedLMTask`, averaged over the loop),
      taken out of the train output so Model Garden's trainer, which writes
      the output after the actions, does not write them again under their
      metric names (run this action after any that reads them, e.g. the
      progress line); the dropped share is in percent rounded to 0.1, so a
      constant share draws a flat line, and its description gives the
      share to expect (each stage's, with a keep_k schedule);
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
      selection only, no forward pass) at the keep_k of the loop's last step;
      special tokens are listed once above. With random-LTD
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
    >>> train_lib.run_experiment(..., train_actions=[progress, action])
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
        self.sample_batches = sample_batches
        self.flop_ratio = flop_ratio
        self.train_flops = train_flops
        self.seq_length = seq_length
        self.vocab = vocab
        self.top_n = top_n
        self.schedule_steps = schedule_steps
        self.descriptions = self._descriptions()
        # Random selections in the sample draw from their own generator, not
        # from the one training draws from (its stream stays the run's).
        self._sample_rng = tf.random.Generator.from_seed(0)
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
        ratio = flops.config_train_flop_ratio(task.task_config)
        vocab_file = getattr(task.task_config, "vocab_file", "")
        vocab = None
        if vocab_file and tf.io.gfile.exists(vocab_file):
            vocab = files.read_vocab(vocab_file)
        return cls(encoder, summary_dir, global_step, samples, ratio,
                   data_config.seq_length, vocab,
                   train_flops=flops.config_train_flops(task.task_config),
                   schedule_steps=task.task_config.keep_k_schedule_steps)

    def _piece(self, token):
        if self.vocab and token < len(self.vocab):
            return self.vocab[token]
        return str(token)

    def keep_k_at(self, step):
        """The keep_k of 0-based training `step`: its schedule stage's, or
        `token_keep_k` without a schedule."""
        schedule = self.encoder.keep_k_schedule
        if schedule:
            return schedule.keep_k_at(step, self.schedule_steps)
        return self.encoder.token_keep_k

    def _target(self, keep_k):
        length = self.seq_length
        return (f"{100 * (1 - keep_k / length):.1f}% (keep {keep_k} of "
                f"{length} positions)")

    def _expected_dropped(self):
        """The dropped share to expect: one, or each stage's, on the step
        axis (0-based step i is written at i + 1)."""
        schedule = self.encoder.keep_k_schedule
        if not schedule:
            target = self._target(self.encoder.token_keep_k)
            return f"hold flat at the configured {target}"
        starts = schedule.start_steps(self.schedule_steps)
        stages = [f"{self._target(keep_k)} up to step {end}" for keep_k, end
                  in zip(schedule.keep_ks, starts[1:])]
        stages.append(f"then {self._target(schedule.keep_ks[-1])}")
        return ("follow the keep_k schedule over the run's "
                f"{self.schedule_steps} steps, {', '.join(stages)}, a loop "
                "across two stages averaging them")

    def _descriptions(self):
        """One sentence per tag: what it is, its unit, which way is good."""
        enc = self.encoder
        length = self.seq_length
        keep = (f"keep each stage's keep_k of {length}" if enc.keep_k_schedule
                else f"keep {enc.token_keep_k} of {length}")
        layers = f"layers {enc.drop_start_layer} to {enc.drop_end_layer - 1}"
        init = f"{enc.token_loss_init_value:g}"
        vocab_size = int(enc.importance.shape[0])
        batches = len(self.sample_batches)
        loss = "moving-average masked-LM loss, in nats"
        how = "selection only, no forward pass"
        if self.draws > 1:
            how += ("; each dropped layer draws its own subset, so a token "
                    "counts once per layer")
        dropped, kept, dropped_imp = FROM_TRAIN_OUTPUT.values()
        return {
            dropped: (
                f"Share of real (non-padding) tokens that skip {layers}, in "
                "percent rounded to 0.1 and averaged over the loop's training "
                f"steps; it should {self._expected_dropped()}, lower only "
                "where padding takes dropped slots."),
            kept: (
                f"Mean importance ({loss}) of the ordinary tokens kept in "
                f"{layers} during the loop's training steps; healthy runs "
                "keep it above importance_dropped, since the hard tokens are "
                "the ones to keep."),
            dropped_imp: (
                f"Mean importance ({loss}) of the ordinary tokens dropped "
                f"from {layers} during the loop's training steps; healthy "
                "runs keep it below importance_kept, since the easy tokens "
                "are the ones to skip."),
            MEASURED: (
                f"Share of the {vocab_size} vocabulary ids whose importance "
                "has been measured (masked and predicted at least once, so "
                f"no longer the initial {init}), in percent; it should rise, "
                "then level off at the share of the vocabulary the corpus "
                "uses."),
            HISTOGRAM: (
                f"Importance ({loss}) of the measured vocabulary ids only "
                f"(ids still at the initial {init} are left out, and ids "
                f"measured a few times sit just below it, as each update "
                f"moves an id {1 - enc.token_loss_beta:.1%} of the way); "
                "healthy runs grow a tail to the left as frequent, easy "
                "tokens are learned, which is what tells hard tokens from "
                "easy ones."),
            SAMPLE_HISTOGRAM: (
                f"Importance ({loss}) of every ordinary token in the "
                f"{batches} fixed sample batches, one count per occurrence, "
                f"the values the selection ranks to {keep} positions; "
                "healthy runs spread it over a wide range, frequent easy "
                "tokens low and rare hard ones high."),
            FLOP_RATIO: (
                f"Analytic average training FLOPs per step of this variant "
                f"({keep} tokens in {layers}, or the keep_k "
                "schedule averaged over its stages, consistency passes "
                "amortised, MLM head included) over plain BERT's on the same "
                "shapes, a unitless constant; lower is cheaper and 1.0 would "
                "be no saving."),
            TRAIN_FLOPS: (
                "Analytic average training FLOPs of one step (forward and "
                "backward, whole global batch) of this variant, the figure "
                "for equal-compute comparisons; a constant."),
            MOST_DROPPED: (
                "The ordinary tokens the current importance table drops most "
                f"often on {batches} fixed sample batches ({how}); healthy "
                "rows are easy pieces with low importance."),
            MOST_KEPT: (
                "The ordinary tokens the current importance table keeps most "
                f"often on {batches} fixed sample batches ({how}); healthy "
                "rows are hard or not yet measured pieces with high "
                "importance."),
        }

    def _special_ids(self):
        return set(self.encoder.token_allow_list) | set(
            self.encoder.token_deny_list)

    @property
    def draws(self):
        """Selections a step makes: one per dropped layer for random-LTD,
        whose layers each draw their own subset; else one for them all."""
        if self.encoder.selection == "random_per_layer":
            return self.encoder.drop_end_layer - self.encoder.drop_start_layer
        return 1

    def sample_routing(self, keep_k=None):
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

    def _header(self, tokens, keep_k):
        """The line above both tables: where the counts come from."""
        sequences = sum(int(b["input_word_ids"].shape[0])
                        for b in self.sample_batches)
        names = lambda ids: ", ".join(
            f"`{self._piece(i)}` ({i})" for i in ids) or "none"
        per_layer = ""
        if self.draws > 1:
            per_layer = (
                f"Random-LTD: each of the {self.draws} dropped layers draws "
                "its own subset, so here each layer draws once and every "
                f"count is of token-layer pairs ({self.draws} per token). ")
        return (
            f"Counted on {len(self.sample_batches)} fixed sample batches "
            f"({sequences} sequences, {tokens} ordinary tokens) with the "
            f"importance table at this step, keeping {keep_k} of "
            f"{self.seq_length} positions as the loop's last step did; "
            f"selection only, no forward pass. {per_layer}"
            "Special tokens are routed by rule and left out: always kept "
            f"{names(self.encoder.token_allow_list)}; always dropped "
            f"{names(self.encoder.token_deny_list)}.")

    def _table(self, header, verb, counts, other, importance, measured):
        order = np.argsort(-counts, kind="stable")[:self.top_n]
        rows = [header, "",
                f"| piece | id | times {verb} | % of its occurrences {verb} "
                "| importance (nats) |",
                "|---|---|---|---|---|"]
        for token in order:
            if counts[token] == 0:
                break
            share = counts[token] / (counts[token] + other[token])
            value = (f"{importance[token]:.3f}" if measured[token]
                     else f"{importance[token]:g} (not measured yet)")
            rows.append(f"| `{self._piece(token)}` | {token} | "
                        f"{counts[token]} | {share:.0%} | {value} |")
        return "\n".join(rows)

    def __call__(self, output):
        """Writes this loop's summaries; removes the routing metrics from
        `output` (they are written here, under `token_dropping/`)."""
        step = int(self.global_step.numpy())
        scalars = {tag: float(output.pop(name))
                   for name, tag in FROM_TRAIN_OUTPUT.items()
                   if name in (output or {})}
        dropped_tag = FROM_TRAIN_OUTPUT[ROUTING_METRICS[0]]
        if dropped_tag in scalars:  # percent, so 0.49997 reads as 50.0
            scalars[dropped_tag] = round(100.0 * scalars[dropped_tag], 1)
        importance = self.encoder.importance.numpy()
        measured = measured_ids(importance,
                                self.encoder.token_loss_init_value)
        scalars[MEASURED] = 100.0 * float(measured.mean())
        scalars[FLOP_RATIO] = self.flop_ratio
        if self.train_flops is not None:
            scalars[TRAIN_FLOPS] = self.train_flops
        with self._writer.as_default(step=step):
            for tag, value in scalars.items():
                tf.summary.scalar(tag, value,
                                  description=self.descriptions[tag])
            if measured.any():
                tf.summary.histogram(HISTOGRAM, importance[measured],
                                     description=self.descriptions[HISTOGRAM])
            if self.sample_batches:
                keep_k = self.keep_k_at(max(step - 1, 0))  # the last step's
                ids, is_kept = self.sample_routing(keep_k)
                tf.summary.histogram(
                    SAMPLE_HISTOGRAM, importance[ids],
                    description=self.descriptions[SAMPLE_HISTOGRAM])
                count = lambda where: sum(np.bincount(
                    ids[row], minlength=len(importance)) for row in where)
                kept, dropped = count(is_kept), count(~is_kept)
                header = self._header(len(ids), keep_k)
                for tag, verb, counts, other in (
                        (MOST_DROPPED, "dropped", dropped, kept),
                        (MOST_KEPT, "kept", kept, dropped)):
                    tf.summary.text(tag, self._table(header, verb, counts,
                                                     other, importance,
                                                     measured),
                                    description=self.descriptions[tag])
        self._writer.flush()

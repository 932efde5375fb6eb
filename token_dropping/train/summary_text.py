"""The words on the token-dropping TensorBoard cards: tags, descriptions, tables."""

import numpy as np

PREFIX = "token_dropping/"
DROPPED_PERCENT = PREFIX + "dropped_percent"
IMPORTANCE_KEPT = PREFIX + "importance_kept"
IMPORTANCE_DROPPED = PREFIX + "importance_dropped"
MEASURED = PREFIX + "measured_vocab_percent"
FLOP_RATIO = PREFIX + "flop_ratio"
TRAIN_FLOPS = PREFIX + "train_flops_per_step"
HISTOGRAM = PREFIX + "importance"
SAMPLE_HISTOGRAM = PREFIX + "importance_of_sample_tokens"
MOST_DROPPED = PREFIX + "most_dropped"
MOST_KEPT = PREFIX + "most_kept"


class SummaryText:
    """What each card says, with this run's numbers in it.

    Args:
        encoder: the `TokenDropBertEncoder` being trained.
        seq_length: int. The training sequence length.
        schedule_steps: int. The steps the keep_k schedule's fractions
            refer to (0 without a schedule).
        num_batches: int. How many fixed sample batches the tables count.
        draws: int. Selections a step makes (`SampleRouting.draws`).
        vocab: list of str or None; None shows ids.
        top_n: int. Rows in each text table.

    Example:
    >>> text = SummaryText(encoder, 512, 0, num_batches=2, draws=1)
    >>> text.descriptions()[DROPPED_PERCENT]
    'Share of real (non-padding) tokens that skip layers 5 to 10, ...'
    """

    def __init__(self, encoder, seq_length, schedule_steps, num_batches,
                 draws, vocab=None, top_n=20):
        self.encoder = encoder
        self.seq_length = seq_length
        self.schedule_steps = schedule_steps
        self.num_batches = num_batches
        self.draws = draws
        self.vocab = vocab
        self.top_n = top_n

    def piece(self, token):
        """The vocabulary piece of id `token`, or the id itself."""
        if self.vocab and token < len(self.vocab):
            return self.vocab[token]
        return str(token)

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

    def descriptions(self):
        """One sentence per tag: what it is, its unit, which way is good."""
        enc = self.encoder
        length = self.seq_length
        keep = (f"keep each stage's keep_k of {length}" if enc.keep_k_schedule
                else f"keep {enc.token_keep_k} of {length}")
        layers = f"layers {enc.drop_start_layer} to {enc.drop_end_layer - 1}"
        init = f"{enc.token_loss_init_value:g}"
        vocab_size = int(enc.importance.shape[0])
        batches = self.num_batches
        loss = "moving-average masked-LM loss, in nats"
        how = "selection only, no forward pass"
        if self.draws > 1:
            how += ("; each dropped layer draws its own subset, so a token "
                    "counts once per layer")
        return {
            DROPPED_PERCENT: (
                f"Share of real (non-padding) tokens that skip {layers}, in "
                "percent rounded to 0.1 and averaged over the loop's training "
                f"steps; it should {self._expected_dropped()}, lower only "
                "where padding takes dropped slots."),
            IMPORTANCE_KEPT: (
                f"Mean importance ({loss}) of the ordinary tokens kept in "
                f"{layers} during the loop's training steps; healthy runs "
                "keep it above importance_dropped, since the hard tokens are "
                "the ones to keep."),
            IMPORTANCE_DROPPED: (
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

    def header(self, sequences, tokens, keep_k):
        """The line above both tables: where the counts come from."""
        names = lambda ids: ", ".join(
            f"`{self.piece(i)}` ({i})" for i in ids) or "none"
        per_layer = ""
        if self.draws > 1:
            per_layer = (
                f"Random-LTD: each of the {self.draws} dropped layers draws "
                "its own subset, so here each layer draws once and every "
                f"count is of token-layer pairs ({self.draws} per token). ")
        return (
            f"Counted on {self.num_batches} fixed sample batches "
            f"({sequences} sequences, {tokens} ordinary tokens) with the "
            f"importance table at this step, keeping {keep_k} of "
            f"{self.seq_length} positions as the loop's last step did; "
            f"selection only, no forward pass. {per_layer}"
            "Special tokens are routed by rule and left out: always kept "
            f"{names(self.encoder.token_allow_list)}; always dropped "
            f"{names(self.encoder.token_deny_list)}.")

    def table(self, header, verb, counts, other, importance, measured):
        """A Markdown table of the `top_n` ids with the most `counts`
        (`other`: the same ids' opposite counts, for the share)."""
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
            rows.append(f"| `{self.piece(token)}` | {token} | "
                        f"{counts[token]} | {share:.0%} | {value} |")
        return "\n".join(rows)

"""Static masked-LM predictions: BERT's 15% with 80/10/10, seeded.

This follows Model Garden's `create_masked_lm_predictions`
(`official/nlp/data/create_pretraining_data.py`): `round(len * rate)` targets,
at least one, at most `max_predictions_per_seq`, chosen uniformly among the
non-special positions (or whole words), then each target becomes [MASK] with
probability 0.8, a random vocabulary token with 0.1, or stays with 0.1. It is
written again here, on numpy with an explicit generator, for two reasons:
importing that module defines absl flags (`--vocab_file`, `--dupe_factor`, ...)
that collide with any program defining its own, and tensorflow-text's
`mask_language_model` draws from TensorFlow's global seed, which a library must
not reset. Dynamic masking at training time stays with tensorflow-text, in
Model Garden's `BertPretrainTextDataLoader`.

Many sequences are masked at once (`mask_batch`): finding the candidates and
words, applying the 80/10/10 and sorting the targets are numpy operations over
the whole batch. Only the draws stay one sequence at a time, because the
records must not change: each masking takes, in this order, a permutation of
its candidates (or words), `2 * words` uniforms (the action, then the keep
draw, of each word) and one random replacement id per target position; how
many a masking takes depends on the permutation before it (whole words are
taken while they fit), and numpy's permutations and bounded integers use
rejection sampling, so the next masking's draws cannot start before this one's
are known.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class MaskedBatch:
    """Maskings of a batch, one row each; sequences' rows in order, each
    sequence's `repeats` maskings together.

    Attributes:
        masked: [rows, width] the masked ids; 0 after each row's length.
        lengths: [rows] each row's number of tokens.
        positions: [rows, max_predictions_per_seq] the sorted target
            positions, then 0.
        labels: [rows, max_predictions_per_seq] the original ids there, then 0.
        num_targets: [rows] each row's number of targets.
    """
    masked: np.ndarray
    lengths: np.ndarray
    positions: np.ndarray
    labels: np.ndarray
    num_targets: np.ndarray


class MaskedLmMasker:
    """Chooses and applies masked-LM targets, for one sequence or a batch.

    Example:
    >>> masker = MaskedLmMasker(mask_id=103, special_ids=[101, 102],
    ...                         replacement_ids=np.arange(104, 8000),
    ...                         max_predictions_per_seq=20)
    >>> rng = np.random.default_rng(0)
    >>> ids, positions, labels = masker.mask([101, 2054, 2003, 102], rng)
    >>> batch = masker.mask_batch([[101, 2054, 102], [101, 7, 8, 102]], rng,
    ...                           repeats=2)  # 4 rows

    Args:
        mask_id: the [MASK] id.
        special_ids: ids never chosen as targets ([CLS], [SEP]).
        replacement_ids: ids a target may be replaced with in the random 10%.
        max_predictions_per_seq: the most targets per sequence.
        masked_lm_prob: the fraction of a sequence's tokens (specials included,
            as in BERT) to predict.
        continuation_ids: with whole-word masking, the ids of `##` pieces; a
            word is a piece and the continuations after it. None masks single
            pieces.
    """

    def __init__(self, mask_id: int, special_ids, replacement_ids,
                 max_predictions_per_seq: int, masked_lm_prob: float = 0.15,
                 continuation_ids=None):
        self.mask_id = mask_id
        self.special_ids = np.asarray(sorted(special_ids), np.int64)
        self.replacement_ids = np.asarray(replacement_ids, np.int64)
        self.max_predictions_per_seq = max_predictions_per_seq
        self.masked_lm_prob = masked_lm_prob
        self.continuation_ids = (None if continuation_ids is None else
                                 np.asarray(sorted(continuation_ids), np.int64))

    def mask(self, token_ids, rng: np.random.Generator):
        """Masks one sequence.

        Args:
            token_ids: the sequence's ids, [CLS] ... [SEP], without padding.
            rng: the random generator; the same state gives the same result.

        Returns:
            (masked ids, sorted target positions, original ids at those
            positions), numpy int64 arrays.
        """
        batch = self.mask_batch([token_ids], rng)
        length, num_targets = batch.lengths[0], batch.num_targets[0]
        return (batch.masked[0, :length], batch.positions[0, :num_targets],
                batch.labels[0, :num_targets])

    def mask_batch(self, sequences, rng: np.random.Generator,
                   repeats: int = 1) -> MaskedBatch:
        """Masks each sequence `repeats` times, as many `mask` calls would.

        The rows equal `mask(sequence, rng)` called for each sequence in
        order, `repeats` times each, and leave `rng` in the same state.
        """
        lengths = np.array([len(s) for s in sequences], np.int64)
        width = max(1, int(lengths.max(initial=0)))
        valid = np.arange(width) < lengths[:, None]
        ids = np.zeros([len(sequences), width], np.int64)
        ids[valid] = np.concatenate(
            [np.asarray(s, np.int64) for s in sequences] + [
                np.zeros([0], np.int64)])
        is_candidate = valid & ~np.isin(ids, self.special_ids)
        # Python's round(), half to even, on the same double product.
        budgets = np.minimum(self.max_predictions_per_seq, np.maximum(
            1, np.rint(lengths * self.masked_lm_prob).astype(np.int64)))
        words = _Words(ids, is_candidate, self.continuation_ids)
        drawn = _draw(rng, words, budgets, repeats,
                      len(self.replacement_ids))
        return self._apply(ids, lengths, words, drawn, repeats)

    def _apply(self, ids, lengths, words, drawn, repeats) -> MaskedBatch:
        """The 80/10/10 and the sorted targets of every row at once."""
        chosen, uniforms, replacement_index = drawn
        row_of_sequence = np.repeat(np.arange(len(ids)), repeats)
        num_rows, width = len(row_of_sequence), ids.shape[1]
        # Step 1: each chosen word's row, and its action and keep draws.
        words_per_row = np.array([len(c) for c in chosen], np.int64)
        word_row = np.repeat(np.arange(num_rows), words_per_row)
        word_index = np.concatenate(chosen + [np.zeros([0], np.int64)])
        first_word = np.cumsum(words_per_row) - words_per_row
        rank = np.arange(len(word_row)) - first_word[word_row]
        uniforms = np.concatenate(uniforms + [np.zeros([0])])
        action = uniforms[2 * first_word[word_row] + rank]
        keep = uniforms[2 * first_word[word_row] + words_per_row[word_row]
                        + rank]
        # Step 2: every position of those words, in the order drawn.
        sequence = row_of_sequence[word_row]
        start = words.starts[sequence, word_index]
        length = words.lengths[sequence, word_index]
        piece_word = np.repeat(np.arange(len(word_row)), length)
        first_piece = np.cumsum(length) - length
        offset = np.arange(len(piece_word)) - first_piece[piece_word]
        piece_row = word_row[piece_word]
        position = start[piece_word] + offset
        piece_action, piece_keep = action[piece_word], keep[piece_word]
        # Step 3: [MASK], a random id, or the original.
        masked = ids[row_of_sequence]
        to_mask = piece_action < 0.8
        masked[piece_row[to_mask], position[to_mask]] = self.mask_id
        replace = (piece_action >= 0.8) & (piece_keep >= 0.5)
        masked[piece_row[replace], position[replace]] = self.replacement_ids[
            np.concatenate(replacement_index + [np.zeros([0], np.int64)])[
                replace]]
        # Step 4: targets sorted within each row, padded with 0.
        order = np.sort(piece_row * width + position)
        sorted_row, sorted_position = np.divmod(order, width)
        num_targets = np.bincount(piece_row, minlength=num_rows)
        column = np.arange(len(order)) - (np.cumsum(num_targets) -
                                          num_targets)[sorted_row]
        positions = np.zeros([num_rows, self.max_predictions_per_seq],
                             np.int64)
        labels = np.zeros_like(positions)
        positions[sorted_row, column] = sorted_position
        labels[sorted_row, column] = ids[row_of_sequence[sorted_row],
                                         sorted_position]
        return MaskedBatch(masked, lengths[row_of_sequence], positions,
                           labels, num_targets)


class _Words:
    """The maskable words of each sequence: start and length, in order.

    Without whole-word masking every candidate is a word of one piece. With
    it, a word is a candidate that is not a continuation and the continuations
    right after it; a continuation after a special token (or at the start)
    belongs to no word, as before.
    """

    def __init__(self, ids, is_candidate, continuation_ids):
        num_sequences, width = ids.shape
        if continuation_ids is None:
            is_start = is_candidate
            is_continuation = np.zeros_like(is_candidate)
        else:
            is_continuation = is_candidate & np.isin(ids, continuation_ids)
            is_start = is_candidate & ~is_continuation
        self.counts = is_start.sum(axis=1)
        rows, starts = np.nonzero(is_start)
        columns = np.arange(len(rows)) - (np.cumsum(self.counts) -
                                          self.counts)[rows]
        self.single_pieces = not is_continuation.any()
        if self.single_pieces:
            ends = starts + 1
        else:  # A word ends at the next position that is not a continuation.
            index = np.broadcast_to(np.arange(width), ids.shape)
            next_break = np.where(is_continuation, width, index)
            next_break = np.minimum.accumulate(next_break[:, ::-1],
                                               axis=1)[:, ::-1]
            after_start = np.minimum(starts + 1, width - 1)
            ends = np.where(starts + 1 < width,
                            next_break[rows, after_start], width)
        most = max(1, int(self.counts.max(initial=0)))
        self.starts = np.zeros([num_sequences, most], np.int64)
        self.lengths = np.zeros([num_sequences, most], np.int64)
        self.starts[rows, columns] = starts
        self.lengths[rows, columns] = ends - starts


def _draw(rng, words, budgets, repeats, num_replacements):
    """Every masking's draws, one masking after another, as `mask` made them.

    Returns, per row: the chosen words (indices into the sequence's words, in
    the order taken), their `2 * words` uniforms, and the replacement indices
    of their positions.
    """
    chosen, uniforms, replacement_index = [], [], []
    counts, lengths = words.counts.tolist(), words.lengths
    # Bound once: the loop runs once per masking, its cost is per call.
    permutation, random, integers = rng.permutation, rng.random, rng.integers
    single_pieces = words.single_pieces
    for sequence, budget in enumerate(budgets.tolist()):
        count = counts[sequence]
        if single_pieces:
            num_positions = min(budget, count)
        else:
            word_lengths = lengths[sequence, :count]
        for _ in range(repeats):
            order = permutation(count)
            if single_pieces:
                taken = order[:budget]
            else:
                taken, num_positions = _take_while_fits(
                    order, word_lengths[order], budget)
            chosen.append(taken)
            uniforms.append(random(2 * len(taken)))
            # `choice(replacement_ids, size)` draws exactly these integers.
            replacement_index.append(
                integers(0, num_replacements, size=num_positions))
    return chosen, uniforms, replacement_index


def _take_while_fits(order, lengths, budget):
    """Words in `order`, each taken if it still fits; stops when full.

    Returns the taken words and their number of pieces.
    """
    total = np.cumsum(lengths)
    fit = int(np.searchsorted(total, budget, side="right"))
    used = int(total[fit - 1]) if fit else 0
    if fit == len(order) or used == budget:
        return order[:fit], used
    taken = [order[:fit]]
    rest = fit + 1  # Word `fit` did not fit; later, shorter ones may.
    while used < budget:
        fits = np.flatnonzero(lengths[rest:] <= budget - used)
        if not len(fits):
            break
        index = rest + int(fits[0])
        taken.append(order[index:index + 1])
        used += int(lengths[index])
        rest = index + 1
    return np.concatenate(taken), used

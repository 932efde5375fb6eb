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
"""

import numpy as np


class MaskedLmMasker:
    """Chooses and applies masked-LM targets for one sequence at a time.

    Example:
    >>> masker = MaskedLmMasker(mask_id=103, special_ids=[101, 102],
    ...                         replacement_ids=np.arange(104, 8000),
    ...                         max_predictions_per_seq=20)
    >>> rng = np.random.default_rng(0)
    >>> ids, positions, labels = masker.mask([101, 2054, 2003, 102], rng)

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
        token_ids = np.asarray(token_ids, np.int64)
        num_to_predict = min(
            self.max_predictions_per_seq,
            max(1, int(round(len(token_ids) * self.masked_lm_prob))))
        candidates = np.flatnonzero(~np.isin(token_ids, self.special_ids))
        if self.continuation_ids is None:
            positions = rng.permutation(candidates)[:num_to_predict]
            word_lengths = np.ones_like(positions)
        else:
            words = self._choose_words(token_ids, candidates, num_to_predict,
                                       rng)
            positions = (np.concatenate(words) if words
                         else np.zeros([0], np.int64))
            word_lengths = np.array([len(word) for word in words], np.int64)
        # One action per word, as in BERT: all of a word's pieces share it.
        action = np.repeat(rng.random(len(word_lengths)), word_lengths)
        keep = np.repeat(rng.random(len(word_lengths)), word_lengths)
        random_ids = rng.choice(self.replacement_ids, size=len(positions))
        masked = token_ids.copy()
        masked[positions[action < 0.8]] = self.mask_id
        replace = (action >= 0.8) & (keep >= 0.5)
        masked[positions[replace]] = random_ids[replace]
        positions = np.sort(positions).astype(np.int64)
        return masked, positions, token_ids[positions]

    def _choose_words(self, token_ids, candidates, num_to_predict, rng):
        """Whole words in random order, each taken if it still fits."""
        is_continuation = np.zeros(len(token_ids), bool)
        is_continuation[candidates] = np.isin(token_ids[candidates],
                                              self.continuation_ids)
        words = []
        for start in candidates[~is_continuation[candidates]]:
            end = start + 1
            while end < len(token_ids) and is_continuation[end]:
                end += 1
            words.append(np.arange(start, end))
        chosen, total = [], 0
        for index in rng.permutation(len(words)):
            if total + len(words[index]) <= num_to_predict:
                chosen.append(words[index])
                total += len(words[index])
            if total == num_to_predict:
                break
        return chosen

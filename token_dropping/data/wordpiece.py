"""WordPieceIds: BERT's WordPiece ids of sentences, the fast way where it is
the same.

tensorflow-text has two BERT tokenizers: `BertTokenizer` (basic tokenizer,
then greedy longest-match WordPiece), whose ids the records have always used,
and `FastBertTokenizer` (the LinMaxMatch WordPiece of Song et al. 2021, which
Model Garden's `FastWordpieceBertTokenizer` layer wraps), several times faster.
Their WordPiece steps give the same pieces; their character tables do not
quite agree. Compared over every code point below U+10000 in several contexts,
cased and uncased, they differ only on Unicode space separators (U+1680,
U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000, and U+00A0 when cased)
and on three Balinese code points one of them does not know (U+1B4E, U+1B4F,
U+1B7F).

So a sentence takes the fast path only when every character is in
`_FAST_SAFE`: U+0001-U+0FFF except U+00A0 (Latin, Greek, Cyrillic, Armenian,
Hebrew, Arabic, Indic and Thai scripts, combining accents), the dashes,
quotes, bullets and ellipsis of General Punctuation (U+2010-U+2027,
U+2030-U+205E) and the currency signs (U+20A0-U+20CF). Any other sentence goes
through `BertTokenizer`, and the ids come back in sentence order: the result
is `BertTokenizer`'s, id for id (`tests/data/test_wordpiece.py` checks each
character of the safe set and random mixtures against it).
"""

import re

from absl import logging
import numpy as np
import tensorflow as tf

_FAST_SAFE = re.compile(
    "[\u0001-\u009f\u00a1-\u0fff\u2010-\u2027\u2030-\u205e\u20a0-\u20cf]*")
# Tests set this to False to get the reference path alone.
USE_FAST = True


class WordPieceIds:
    """Tokenizes sentences into flat WordPiece ids with row splits.

    Example:
    >>> ids = WordPieceIds("vocab.txt", tokens, lower_case=True)
    >>> flat, row_splits = ids.tokenize(["Hello world.", "Caf\u00e9 ok."])
    >>> flat[row_splits[1]:row_splits[2]]  # the second sentence's ids

    Args:
        vocab_path: the vocab file (for `BertTokenizer`).
        tokens: the same vocab as a list (for `FastBertTokenizer`).
        lower_case: uncased tokenization (lower case, NFD, accents stripped).
    """

    def __init__(self, vocab_path: str, tokens: list[str], lower_case: bool):
        import tensorflow_text as tf_text  # Lazy: loads custom ops.
        self.reference = tf_text.BertTokenizer(
            vocab_path, lower_case=lower_case, token_out_type=tf.int64)
        self.fast = None
        if USE_FAST:
            try:
                self.fast = tf_text.FastBertTokenizer(
                    vocab=tokens, suffix_indicator="##", unknown_token="[UNK]",
                    lower_case_nfd_strip_accents=lower_case,
                    token_out_type=tf.int64)
            except (ValueError, RuntimeError, tf.errors.OpError) as e:
                logging.info("FastBertTokenizer cannot use this vocab (%s); "
                             "using BertTokenizer for every sentence.", e)

    def tokenize(self, sentences: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The ids of all `sentences`, concatenated, and the row splits."""
        if self.fast is None:
            return self._reference(sentences)
        fast = np.fromiter(
            (s.isascii() and "\x00" not in s or _FAST_SAFE.fullmatch(s)
             is not None for s in sentences), dtype=bool, count=len(sentences))
        if fast.all():
            return self._fast(sentences)
        lengths = np.zeros(len(sentences), dtype=np.int64)
        parts = []
        for chosen, tokenize in ((fast, self._fast), (~fast,
                                                      self._reference)):
            rows = np.flatnonzero(chosen)
            if len(rows):
                values, splits = tokenize([sentences[i] for i in rows])
                lengths[rows] = np.diff(splits)
                parts.append((rows, values, splits))
        row_splits = np.concatenate([[0], np.cumsum(lengths)])
        flat = np.empty(row_splits[-1], dtype=np.int64)
        for rows, values, splits in parts:
            # Each value's place: its row's start in the merged order plus its
            # offset inside the row.
            shift = np.repeat(row_splits[rows] - splits[:-1], np.diff(splits))
            flat[np.arange(len(values)) + shift] = values
        return flat, row_splits

    def _fast(self, sentences):
        return _ragged_numpy(self.fast.tokenize(tf.constant(sentences)))

    def _reference(self, sentences):
        return _ragged_numpy(self.reference.tokenize(
            tf.constant(sentences)).merge_dims(-2, -1))


def _ragged_numpy(ragged) -> tuple[np.ndarray, np.ndarray]:
    return ragged.flat_values.numpy(), ragged.row_splits.numpy()


def normalize_text(sentences: list[str], lower_case: bool) -> list[str]:
    """Applies `BertTokenizer(lower_case=True)`'s normalization to the text.

    Model Garden's `BertPretrainTextDataLoader` tokenizes without lower-casing,
    so text records for an uncased vocab are stored already case-folded, NFD
    normalized and stripped of accents, exactly as tensorflow-text's
    `BasicTokenizer.lower_case` does.
    """
    if not lower_case:
        return list(sentences)
    import tensorflow_text as tf_text  # Lazy: loads custom ops.
    folded = tf_text.normalize_utf8(tf_text.case_fold_utf8(sentences), "NFD")
    stripped = tf.strings.regex_replace(folded, r"\p{Mn}", "")
    return [s.decode("utf-8") for s in stripped.numpy()]

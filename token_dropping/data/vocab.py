"""WordPiece vocabularies: learned in BERT's layout, or read from a file.

Learning runs the steps of tensorflow-text's `bert_vocab_from_dataset` (BERT's
basic tokenizer, then the WordPiece learner of
`tensorflow_text/tools/wordpiece_vocab`). The learner puts its reserved tokens
first, so reserving `[PAD]`, 99 `[unused]` fillers, `[UNK]`, `[CLS]`, `[SEP]`
and `[MASK]` gives BERT's ids (0, 100, 101, 102, 103) and the paper's allow
list (100, 101, 102, 103) and deny list (0,) hold unchanged.

For any vocabulary the special ids are looked up by token, never assumed.
"""

import json
import re
import time
from typing import Callable, Iterable

from absl import logging
import tensorflow as tf

from token_dropping.common import files
from token_dropping.common.errors import UserError
from token_dropping.data import read_progress

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
# BERT's layout: [PAD]=0, [unused0..98]=1..99, [UNK]=100, [CLS]=101, [SEP]=102,
# [MASK]=103, then the learned pieces.
BERT_RESERVED_TOKENS = (
    (PAD,) + tuple(f"[unused{i}]" for i in range(99)) + (UNK, CLS, SEP, MASK))
# The paper keeps these in every layer (allow) or drops them first (deny).
ALLOW_LIST_TOKENS = (UNK, CLS, SEP, MASK)
DENY_LIST_TOKENS = (PAD,)
SPECIAL_TOKENS_FILENAME = "special_tokens.json"
_MIN_LEARNED_PIECES = 64  # Room for an alphabet plus a few word pieces.


_BRACKETED = re.compile(r"^\[[^\]]*\]$")  # [PAD], [unused7], ...


def is_special(token: str) -> bool:
    """Whether `token` is a bracketed special piece, not a word piece."""
    return bool(_BRACKETED.match(token))


def read_vocab(vocab_file: str) -> list[str]:
    """Reads a vocab file (one token per line) and checks the special tokens.

    Raises:
        UserError: if the file is missing, empty, or lacks a special token.
    """
    tokens = files.read_vocab(vocab_file)
    missing = [token for token in SPECIAL_TOKENS if token not in tokens]
    if missing:
        raise UserError(
            f"vocab_file={vocab_file!r} has no {', '.join(missing)} token; a "
            "WordPiece vocab for BERT needs all of "
            f"{', '.join(SPECIAL_TOKENS)}.")
    if all(is_special(token) for token in tokens):
        raise UserError(  # masking's random 10% draws from word pieces
            f"vocab_file={vocab_file!r} has only special tokens "
            f"({len(tokens)}, all [...]); a WordPiece vocab needs word "
            "pieces too.")
    return tokens


def special_token_ids(vocab_file: str) -> dict:
    """Ids of the special tokens and the paper's allow/deny lists for a vocab.

    Example:
    >>> special_token_ids("uncased_L-12_H-768_A-12/vocab.txt")
    {'vocab_size': 30522, 'pad_id': 0, 'unk_id': 100, 'cls_id': 101,
      'sep_id': 102, 'mask_id': 103, 'token_allow_list': [100, 101, 102, 103],
      'token_deny_list': [0]}

    Args:
        vocab_file: a WordPiece vocab file, one token per line.

    Returns:
        A JSON-serializable dict: `vocab_size` (number of tokens), `pad_id`,
        `unk_id`, `cls_id`, `sep_id`, `mask_id`, `token_allow_list` (ids of
        [UNK], [CLS], [SEP], [MASK]) and `token_deny_list` (id of [PAD]).

    Raises:
        UserError: if the file is missing or lacks a special token.
    """
    tokens = read_vocab(vocab_file)
    index = {}
    for i, token in enumerate(tokens):
        index.setdefault(token, i)
    ids = {"vocab_size": len(tokens)}
    ids.update({f"{token.strip('[]').lower()}_id": index[token]
                for token in SPECIAL_TOKENS})
    ids["token_allow_list"] = [index[t] for t in ALLOW_LIST_TOKENS]
    ids["token_deny_list"] = [index[t] for t in DENY_LIST_TOKENS]
    return ids


def min_learned_vocab_size() -> int:
    """The smallest `vocab_size` `learn_vocab` accepts."""
    return len(BERT_RESERVED_TOKENS) + _MIN_LEARNED_PIECES


def check_learnable_vocab_size(vocab_size: int) -> None:
    """Raises UserError naming the minimum if `learn_vocab` cannot reach it."""
    minimum = min_learned_vocab_size()
    if vocab_size < minimum:
        raise UserError(
            f"vocab_size={vocab_size} is too small to learn: BERT's layout "
            f"reserves {len(BERT_RESERVED_TOKENS)} ids; use vocab_size >= "
            f"{minimum}.")


def write_special_tokens(vocab_file: str, output_path: str) -> dict:
    """Writes `special_token_ids(vocab_file)` as JSON and returns it."""
    ids = special_token_ids(vocab_file)
    with tf.io.gfile.GFile(output_path, "w") as f:
        json.dump(ids, f, indent=2)
        f.write("\n")
    return ids


def learn_vocab(sentences: Iterable[str], vocab_size: int,
                lower_case: bool = True, max_unique_words: int | None = None,
                batch_size: int = 1024,
                clock: Callable[[], float] = time.monotonic) -> list[str]:
    """Learns a WordPiece vocab in BERT's layout with tensorflow-text.

    The steps of tensorflow-text's `bert_vocab_from_dataset` (BERT's basic
    tokenizer, `count_words`, then the WordPiece learner's `learn`), with one
    change: the learner's binary search on the token frequency threshold starts
    at 4 * words / vocab_size instead of the most frequent word's count, which
    halves the search (with Zipf-distributed text the threshold found is far
    below that bound; were it above, the vocab would be cut to size).

    Args:
        sentences: the text to learn from; read once.
        vocab_size: the largest vocab wanted, reserved tokens included. The
            learner lands within 5% below it.
        lower_case: lower-case and strip accents, as for an uncased BERT.
        max_unique_words: learn from this many most frequent words only (the
            learner's `max_input_tokens`), which bounds the learning time;
            default `8 * vocab_size` (at least 4000), plenty for the pieces to
            be found.
        batch_size: sentences per tokenizer call.
        clock: the seconds clock of the progress lines (tests fake it).

    Returns:
        The tokens: `BERT_RESERVED_TOKENS`, the single characters, then learned
        pieces by frequency; at most `vocab_size` of them.

    Raises:
        UserError: if `vocab_size` leaves no room for learned pieces or the
            text is empty.
    """
    # Lazy: only needed when learning.
    from tensorflow_text.python.ops import bert_tokenizer
    from tensorflow_text.tools.wordpiece_vocab import (
        wordpiece_tokenizer_learner_lib as learner)
    check_learnable_vocab_size(vocab_size)
    minimum = min_learned_vocab_size()
    if max_unique_words is None:
        max_unique_words = max(4000, 8 * vocab_size)
    sentences = list(sentences)
    if not sentences:
        raise UserError("Cannot learn a vocab from an empty corpus.")
    words = tf.data.Dataset.from_tensor_slices(
        tf.constant(sentences, tf.string)).batch(batch_size).map(
            bert_tokenizer.BasicTokenizer(lower_case=lower_case).tokenize)
    word_counts = learner.count_words(
        _counting_progress(words, sentences, batch_size, clock))
    total_words = sum(word_counts.values())
    logging.info("vocab: learning WordPiece pieces from %s distinct words "
                 "(%s in all) with tensorflow-text's learner, which logs no "
                 "progress of its own.",
                 f"{len(word_counts):,}", f"{total_words:,}")
    learned = learner.learn(
        word_counts,
        vocab_size=vocab_size,
        reserved_tokens=list(BERT_RESERVED_TOKENS),
        upper_thresh=max(64, 4 * total_words // (vocab_size - minimum)),
        lower_thresh=1,
        max_input_tokens=max_unique_words,
        # A character takes two ids (`c`, `##c`); the alphabet, most frequent
        # first, may fill up to half of the ids after the reserved ones.
        max_unique_chars=min(1000,
                             (vocab_size - len(BERT_RESERVED_TOKENS)) // 4))
    # The learned pieces come last, sorted by frequency: cutting an overshoot
    # drops the rarest.
    return learned[:vocab_size]


def _counting_progress(words, sentences, batch_size, clock):
    """Yields `words`' batches, logging the sample's bytes counted so far."""
    sizes = [len(s.encode("utf-8")) for s in sentences]
    batch_bytes = [sum(sizes[i:i + batch_size])
                   for i in range(0, len(sizes), batch_size)]
    progress = read_progress.ReadProgress(
        sum(batch_bytes), "vocab: counted the words of", clock=clock)
    for batch, num_bytes in zip(words, batch_bytes):
        yield batch
        progress.add(num_bytes)
    progress.done()


def write_vocab(tokens: list[str], path: str) -> None:
    """Writes one token per line."""
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("".join(f"{token}\n" for token in tokens))

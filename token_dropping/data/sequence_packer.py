"""SequencePacker: groups a stream of tokenized sentences into sequences.

Two layouts, both single-segment (no next-sentence prediction, as in the paper
and RoBERTa):

* packed (the paper's recommended `wiki_books_pretrain_sequence_pack` data,
    RoBERTa's FULL-SENTENCES): consecutive sentences fill each sequence to its
    budget across document boundaries, with a separator between documents. When
    splitting is allowed, a sentence that does not fit is split and its tail
    starts the next sequence, so only a corpus's very last sequence is short.
* unpacked: a sequence never mixes documents; whole sentences are added while
    they fit (a sentence longer than a whole sequence is split), and each
    document's last sequence is padded.

The packer only decides boundaries: each sequence is a list of `Piece`s (a
sentence's payload and the `[start, end)` range of its tokens taken) and
`SEPARATOR`s, which the caller turns into token ids or text.
"""

import dataclasses
from typing import Any, Iterator, Sequence


@dataclasses.dataclass(frozen=True)
class Piece:
    """Tokens `[start, end)` of one sentence; `payload` is the caller's."""
    payload: Any
    start: int
    end: int


SEPARATOR = "SEPARATOR"  # A document boundary inside a packed sequence.


class SequencePacker:
    """Packs sentences of documents into sequences of at most `budget` tokens.

    Example:
    >>> packer = SequencePacker(budget=4, packed=True)
    >>> list(packer.add_document(["ab", "cde"], [2, 3]))  # 2 + 3 tokens
    [[Piece('ab', 0, 2), Piece('cde', 0, 2)]]
    >>> list(packer.finish())
    [[Piece('cde', 2, 3)]]

    Args:
        budget: tokens per sequence, not counting [CLS] and the final [SEP].
        packed: fill sequences across documents (True) or keep documents apart.
        split_sentences: may a sentence be cut between two sequences. Without it
            a sentence longer than `budget` forms a sequence alone, longer than
            the budget (counted in `num_overlong`), for a consumer that
            truncates.
        separate_documents: in packed mode, put a `SEPARATOR` (one token)
            between documents that share a sequence.
    """

    def __init__(self, budget: int, packed: bool = True,
                 split_sentences: bool = True, separate_documents: bool = True):
        if budget < 1:
            raise ValueError(f"budget={budget} must be at least 1 token.")
        self.budget = budget
        self.packed = packed
        self.split_sentences = split_sentences
        self.separate_documents = separate_documents
        self.num_overlong = 0
        self._pieces = []
        self._used = 0

    def add_document(self, payloads: Sequence[Any],
                     lengths: Sequence[int]) -> Iterator[list]:
        """Adds one document's sentences; yields the sequences it completes."""
        if not self.packed:
            yield from self.finish()
        elif self._pieces and self.separate_documents:
            if self._used + 1 >= self.budget:  # No room for [SEP] and a token.
                yield from self.finish()
            else:
                self._pieces.append(SEPARATOR)
                self._used += 1
        for payload, length in zip(payloads, lengths):
            yield from self._add_sentence(payload, length)
        if not self.packed:
            yield from self.finish()

    def finish(self) -> Iterator[list]:
        """Yields the sequence in progress, if any."""
        if self._pieces:
            pieces, self._pieces, self._used = self._pieces, [], 0
            yield pieces

    def _add_sentence(self, payload: Any, length: int) -> Iterator[list]:
        start = 0
        while start < length:
            room, remaining = self.budget - self._used, length - start
            if remaining <= room:
                self._take(payload, start, length)
                start = length
            elif self.split_sentences and (self.packed
                                           or remaining > self.budget):
                # Packed: fill the sequence exactly. Unpacked: only an over-long
                # sentence is cut, into whole sequences.
                if self.packed or not self._pieces:
                    self._take(payload, start, start + room)
                    start += room
                yield from self.finish()
            elif self._pieces:
                yield from self.finish()  # The sentence starts a new sequence.
            else:  # Over-long, may not be split: alone, for the reader to cut.
                self.num_overlong += 1
                self._take(payload, start, length)
                start = length
            if self._used >= self.budget:
                yield from self.finish()

    def _take(self, payload: Any, start: int, end: int) -> None:
        self._pieces.append(Piece(payload, start, end))
        self._used += end - start

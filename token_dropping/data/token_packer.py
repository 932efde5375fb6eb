"""TokenPacker: `SequencePacker`'s packed layout on whole documents of ids.

The static records' default layout (packed, sentences split at the budget,
a separator between documents) does not depend on where sentences end: it
is the documents' ids one after another, a separator id between two
documents that share a sequence, cut every `budget` tokens; a separator that
would take a sequence's last slot ends that sequence instead. So this packer
takes a document's ids as one array and cuts it with a few slices, where
`SequencePacker` handles each sentence in Python (a large part of the build's
time). `tests/data/test_token_packer.py` checks it against `SequencePacker`
on random documents, empty sentences and documents included.

Example:
>>> packer = TokenPacker(budget=4, separator_id=102)
>>> [s.tolist() for s in packer.add_document(np.array([5, 6]))]
[]
>>> [s.tolist() for s in packer.add_document(np.array([7, 8, 9, 10]))]
[[5, 6, 102, 7]]
>>> [s.tolist() for s in packer.add_document(np.array([11]))]
[[8, 9, 10]]  # The separator would take the last slot: a short sequence.
>>> [s.tolist() for s in packer.finish()]
[[11]]
"""

from typing import Iterator

import numpy as np


class TokenPacker:
    """Packs documents of ids into sequences of at most `budget` ids.

    Args:
        budget: ids per sequence, not counting [CLS] and the final [SEP].
        separator_id: the id put between documents that share a sequence.
    """

    def __init__(self, budget: int, separator_id: int):
        if budget < 1:
            raise ValueError(f"budget={budget} must be at least 1 token.")
        self.budget = budget
        self._separator = np.array([separator_id], np.int64)
        self._parts = []
        self._used = 0

    def add_document(self, ids: np.ndarray) -> Iterator[np.ndarray]:
        """Adds one document's ids; yields the sequences it completes."""
        if self._used:
            if self._used + 1 >= self.budget:  # No room for [SEP] and a token.
                yield from self.finish()
            else:
                self._parts.append(self._separator)
                self._used += 1
        start, end = 0, len(ids)
        while start < end:
            take = min(self.budget - self._used, end - start)
            self._parts.append(ids[start:start + take])
            self._used += take
            start += take
            if self._used >= self.budget:
                yield from self.finish()

    def finish(self) -> Iterator[np.ndarray]:
        """Yields the sequence in progress, if any."""
        if self._parts:
            parts, self._parts, self._used = self._parts, [], 0
            yield np.concatenate(parts)

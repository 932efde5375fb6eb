"""TokenPacker cuts whole documents of ids into the sequences SequencePacker
makes sentence by sentence in the static packed layout."""

import numpy as np
import pytest

from token_dropping.data.sequence_packer import SEPARATOR, SequencePacker
from token_dropping.data.token_packer import TokenPacker

SEP = 3


def _reference(documents, budget):
    """SequencePacker's sequences as ids, [SEP] for a separator."""
    packer = SequencePacker(budget, packed=True, split_sentences=True,
                            separate_documents=True)
    sequences = []
    for sentences in documents:
        sequences += packer.add_document(sentences, [len(s) for s in sentences])
    sequences += packer.finish()
    return [sum(([SEP] if p is SEPARATOR else p.payload[p.start:p.end].tolist()
                 for p in pieces), []) for pieces in sequences]


def test_the_same_sequences_as_sequence_packer_sentence_by_sentence():
    rng = np.random.default_rng(0)
    for trial in range(400):
        budget = int(rng.integers(1, 12))
        # Empty sentences and documents with no ids at all included.
        documents = [[rng.integers(10, 99, size=int(rng.integers(0, 2 * budget
                                                                 + 2)))
                      for _ in range(int(rng.integers(0, 4)))]
                     for _ in range(int(rng.integers(0, 12)))]
        packer = TokenPacker(budget, SEP)
        ours = []
        for sentences in documents:
            ours += packer.add_document(np.concatenate(
                sentences + [np.zeros([0], np.int64)]))
        ours += packer.finish()
        assert [s.tolist() for s in ours] == _reference(documents, budget), (
            trial)


def test_rejects_a_budget_below_one():
    with pytest.raises(ValueError, match="budget=0 must be at least 1"):
        TokenPacker(0, SEP)

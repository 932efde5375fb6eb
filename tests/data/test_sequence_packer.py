"""SequencePacker: packed sequences fill up, unpacked ones keep documents
apart."""

from token_dropping.data.sequence_packer import SEPARATOR, Piece, SequencePacker


def _pack(packer, documents):
    """Runs documents (lists of sentence lengths) through; returns sequences."""
    sequences = []
    for d, lengths in enumerate(documents):
        payloads = [(d, s) for s in range(len(lengths))]
        sequences.extend(packer.add_document(payloads, lengths))
    sequences.extend(packer.finish())
    return sequences


def _size(sequence):
    return sum(1 if p is SEPARATOR else p.end - p.start for p in sequence)


def test_packed_fills_every_sequence_but_the_last_and_separates_documents():
    packer = SequencePacker(budget=8, packed=True)
    sequences = _pack(packer, [[3, 2], [5], [2, 9]])
    # 3 + 2 + 1 (separator) + 5 + 1 + 2 + 9 = 23 tokens: 8, 8, 7.
    assert sequences == [
        [Piece((0, 0), 0, 3), Piece((0, 1), 0, 2), SEPARATOR,
         Piece((1, 0), 0, 2)],
        [Piece((1, 0), 2, 5), SEPARATOR, Piece((2, 0), 0, 2),
         Piece((2, 1), 0, 2)],
        [Piece((2, 1), 2, 9)],
    ]


def test_packed_never_ends_a_sequence_with_a_separator():
    packer = SequencePacker(budget=4, packed=True)
    sequences = _pack(packer, [[3], [2]])
    # A separator would fill the 4th slot and leave no room for a token.
    assert sequences == [[Piece((0, 0), 0, 3)], [Piece((1, 0), 0, 2)]]


def test_unpacked_keeps_documents_and_whole_sentences_apart():
    packer = SequencePacker(budget=8, packed=False)
    sequences = _pack(packer, [[3, 4, 5], [2], [20]])
    documents = [{p.payload[0] for p in s} for s in sequences]
    assert all(len(d) == 1 for d in documents)
    assert [_size(s) for s in sequences] == [7, 5, 2, 8, 8, 4]
    # The 20-token sentence is cut into whole sequences.
    assert sequences[3:] == [[Piece((2, 0), 0, 8)], [Piece((2, 0), 8, 16)],
                             [Piece((2, 0), 16, 20)]]


def test_without_splitting_a_long_sentence_stays_whole_and_is_counted():
    packer = SequencePacker(budget=8, packed=True, split_sentences=False,
                            separate_documents=False)
    sequences = _pack(packer, [[3, 4, 5], [12], [1]])
    assert [[(p.payload, p.start, p.end) for p in s] for s in sequences] == [
        [((0, 0), 0, 3), ((0, 1), 0, 4)],
        [((0, 2), 0, 5)],
        [((1, 0), 0, 12)],
        [((2, 0), 0, 1)],
    ]
    assert packer.num_overlong == 1

"""MaskedLmMasker: BERT's 15% and 80/10/10, checked with numpy statistics."""

import numpy as np

from token_dropping.data.masking import MaskedLmMasker

CLS, SEP, MASK = 101, 102, 103


def _masker(**kwargs):
    kwargs.setdefault("max_predictions_per_seq", 20)
    return MaskedLmMasker(mask_id=MASK, special_ids=[CLS, SEP],
                          replacement_ids=np.arange(1000, 2000), **kwargs)


def _sequence(rng, length):
    body = rng.integers(200, 900, size=length - 2)
    return np.concatenate([[CLS], body, [SEP]])


def test_targets_count_positions_and_labels():
    rng = np.random.default_rng(0)
    masker = _masker(max_predictions_per_seq=5)
    for length in (3, 10, 40, 128):
        ids = _sequence(rng, length)
        ids[length // 2] = SEP  # An inner document separator.
        masked, positions, labels = masker.mask(ids, rng)
        expected = min(5, max(1, int(round(length * 0.15))))
        if length == 3:
            expected = 0  # The inner [SEP] took the only candidate.
        assert len(positions) == expected
        assert np.all(np.diff(positions) > 0)  # Sorted, unique.
        np.testing.assert_array_equal(labels, ids[positions])
        assert not np.isin(ids[positions], [CLS, SEP]).any()
        unchanged = np.setdiff1d(np.arange(length), positions)
        np.testing.assert_array_equal(masked[unchanged], ids[unchanged])


def test_80_10_10_within_binomial_tolerance():
    rng = np.random.default_rng(1)
    masker = _masker()
    outcomes = []
    for _ in range(3000):
        ids = _sequence(rng, 64)
        masked, positions, _ = masker.mask(ids, rng)
        new = masked[positions]
        outcomes.append(np.select(
            [new == MASK, new == ids[positions], new >= 1000], [0, 1, 2], 3))
    counts = np.bincount(np.concatenate(outcomes), minlength=4) / sum(
        len(o) for o in outcomes)
    n = sum(len(o) for o in outcomes)  # 3000 * 10 targets.
    for observed, p in zip(counts[:3], (0.8, 0.1, 0.1)):
        assert abs(observed - p) < 4 * np.sqrt(p * (1 - p) / n)
    assert counts[3] == 0


def test_same_seed_same_masks():
    ids = _sequence(np.random.default_rng(2), 50)
    a = _masker().mask(ids, np.random.default_rng(7))
    b = _masker().mask(ids, np.random.default_rng(7))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_whole_word_masking_takes_all_pieces_of_a_word():
    continuation = np.arange(500, 900)  # Ids >= 500 are "##" pieces here.
    masker = _masker(max_predictions_per_seq=6, continuation_ids=continuation)
    rng = np.random.default_rng(3)
    for _ in range(200):
        ids = _sequence(rng, 40)
        masked, positions, _ = masker.mask(ids, rng)
        chosen = set(positions.tolist())
        assert 0 < len(chosen) <= 6
        for p in chosen:  # A piece's word start and its continuations go too.
            if ids[p] >= 500 and p - 1 > 0:
                assert p - 1 in chosen
            if p + 1 < len(ids) - 1 and ids[p + 1] >= 500:
                assert p + 1 in chosen

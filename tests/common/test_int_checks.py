"""common.checks: the one integer check every user-facing entry calls."""

import numpy as np
import pytest

from token_dropping.bench import benchmark
from token_dropping.common.checks import as_int
from token_dropping.common.checks import as_positive_int
from token_dropping.common.errors import UserError
from token_dropping.data import PackageDocsCorpus
from token_dropping.data import PrepareDataConfig


def test_numpy_integers_are_ints_and_nothing_else_is():
    assert isinstance(as_int("n", np.int64(3)), int)
    assert as_int("n", np.int64(3)) == 3
    assert as_positive_int("n", np.int32(1)) == 1
    for bad in (True, 2.0, 2.5, "2", None):
        with pytest.raises(UserError, match=f"n={bad!r} must be"):
            as_int("n", bad)
        with pytest.raises(UserError, match=f"n={bad!r} must be a positive"
                           if isinstance(bad, bool) else f"n={bad!r} must be"):
            as_positive_int("n", bad)


def test_minimum_and_its_reason():
    assert as_int("n", 0, 0) == 0
    with pytest.raises(UserError) as error:
        as_int("max_seq_length", 2, 3, why="[CLS] a word [SEP]")
    assert str(error.value) == (
        "max_seq_length=2 must be at least 3 ([CLS] a word [SEP]).")
    with pytest.raises(UserError, match=r"^n=0 must be a positive integer\.$"):
        as_positive_int("n", 0)


@pytest.mark.parametrize("call,name", [
    (lambda v: benchmark.check_arguments(preset="tiny", steps=v), "steps"),
    (lambda v: benchmark.check_arguments(preset="tiny", warmup_steps=v),
     "warmup_steps"),
    (lambda v: PrepareDataConfig(dupe_factor=v).validate(), "dupe_factor"),
    (lambda v: PrepareDataConfig(max_documents=v).validate(),
     "max_documents"),
    (lambda v: PackageDocsCorpus(max_documents=v), "max_documents"),
])
def test_entries_check_integers_alike(call, name):
    # A fraction is no count anywhere; a numpy integer is one everywhere.
    with pytest.raises(UserError, match=f"^{name}=2.5 must be an integer.$"):
        call(2.5)
    call(np.int64(3))

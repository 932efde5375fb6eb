"""common/errors.py: UserError and the one-line message of any error."""

import pytest
import tensorflow as tf

from token_dropping.common.errors import UserError
from token_dropping.common.errors import first_line


@pytest.mark.parametrize("error,line", [
    (ValueError("bad value\n  at line 2"), "bad value"),
    (KeyError("no_such_field"), "no_such_field"),  # str() adds quotes
    (OSError("  padded  "), "padded"),
    (RuntimeError(""), "RuntimeError"),  # no message: the error's type
])
def test_first_line(error, line):
    assert first_line(error) == line


def test_user_error_is_a_value_error():
    with pytest.raises(ValueError, match="steps=0"):
        raise UserError("steps=0 must be a positive integer.")


def test_raised_while_tracing_it_comes_out_as_itself():
    @tf.function
    def step(x):
        if x.shape[0] > 2:
            raise UserError(f"batch={x.shape[0]} exceeds 2.")
        return x

    with pytest.raises(UserError) as error:
        step(tf.zeros([3]))
    assert str(error.value) == "batch=3 exceeds 2."

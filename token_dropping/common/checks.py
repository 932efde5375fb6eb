"""Integer arguments, checked the same way at every user-facing entry.

The one implementation of the job: configs, tools, the data builder, the
benchmark and the study call `as_int` / `as_positive_int`, so every bad
integer is one `UserError` line naming the argument and its value.

Example:
>>> as_positive_int("--seeds", 3)
3
>>> as_int("max_seq_length", 2, minimum=3, why="[CLS] a word [SEP]")
Traceback (most recent call last):
...
UserError: max_seq_length=2 must be at least 3 ([CLS] a word [SEP]).
"""

import operator

from token_dropping.common.errors import UserError


def as_int(name, value, minimum=None, why=""):
    """`value` as a Python int (numpy integers too; not bool, float or str).

    Args:
        name: how the user wrote the argument, e.g. "--seeds" or "steps".
        value: what was given.
        minimum: int or None. The smallest valid value.
        why: str. The reason for `minimum`, said in parentheses.

    Raises:
        UserError: naming `name` and the value.
    """
    if isinstance(value, bool):
        raise UserError(f"{name}={value!r} must be an integer, not a bool.")
    try:
        number = operator.index(value)
    except TypeError:
        raise UserError(f"{name}={value!r} must be an integer.") from None
    if minimum is not None and number < minimum:
        reason = f" ({why})" if why else ""
        raise UserError(f"{name}={number} must be at least {minimum}"
                        f"{reason}.")
    return number


def as_positive_int(name, value):
    """`as_int` for sizes and counts: at least 1, "a positive integer"."""
    if isinstance(value, bool):
        raise UserError(
            f"{name}={value!r} must be a positive integer, not a bool.")
    number = as_int(name, value)
    if number < 1:
        raise UserError(f"{name}={value!r} must be a positive integer.")
    return number

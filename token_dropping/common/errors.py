"""UserError: what the user asked for cannot be done, said in one line.

Every user-facing entry (tools, configs, constructors' callers) raises it
before anything is written; the tools print `<tool>.py: error: <message>` and
exit non-zero, with no traceback.
"""


class UserError(ValueError):
    """Bad input: the message names the offending value and what is valid."""

    # Raised while TensorFlow traces a step (a Keras `train_step`), it comes
    # out of the traced function as itself, not as autograph's StagingError
    # with a stack dump around the message (autograph's own opt-out).
    ag_pass_through = True


def first_line(error):
    """An exception's message as one line, for one-line errors."""
    text = str(error).strip().strip("'\"") or type(error).__name__
    return text.splitlines()[0]

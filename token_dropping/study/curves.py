"""Reading loss-against-compute curves: where a curve reaches a loss, and its
loss at a given compute (piecewise linear between evaluations).
"""


def compute_to_reach(compute, losses, target):
    """The compute at which a loss curve first reaches `target`.

    Walks the curve in order and interpolates linearly between the last
    evaluation above `target` and the first at or below it.

    Example:
    >>> compute_to_reach([100, 200, 300], [5.0, 4.0, 3.0], target=3.5)
    250.0

    Args:
        compute: increasing compute (FLOPs, seconds, steps) at each evaluation.
        losses: the loss at each evaluation.
        target: the loss to reach.

    Returns:
        float, or None if no evaluation reached `target`. If the first one
        already did, its compute is returned: an upper bound, since the curve
        before it was not measured.
    """
    if len(compute) != len(losses):
        raise ValueError(f"{len(compute)} compute values but {len(losses)} "
                         "losses; give one of each per evaluation.")
    for i, (x, loss) in enumerate(zip(compute, losses)):
        if loss <= target:
            if i == 0:
                return float(x)
            x0, l0 = compute[i - 1], losses[i - 1]
            return float(x0 + (l0 - target) / (l0 - loss) * (x - x0))
    return None


def interpolate(compute, losses, x):
    """The loss of a piecewise-linear curve at compute `x` (inside it)."""
    for (x0, l0), (x1, l1) in zip(zip(compute, losses),
                                  zip(compute[1:], losses[1:])):
        if x0 <= x <= x1:
            return l0 + (x - x0) / (x1 - x0) * (l1 - l0)
    return losses[0]  # a single point

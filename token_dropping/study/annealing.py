"""Which annealed runs a study trains, and the checkpoints they fork from.

Every point the study compares comes from a run whose learning rate has
decayed to 0 at that point (`train.warmup_stable_decay`): per (model,
seed), one stable run (warmup, then the peak) trains to the largest decay
start; at each decay start it keeps a checkpoint (`forks/ckpt-<step>`), and
a decay branch per budget starts from a copy of it and trains to the budget
with the branch's schedule. Resumes are exact, so a branch equals a run
trained straight through with that branch's schedule.

BERT's budgets are the study's (`StudyConfig.budgets`, steps). Every other
model gets the same compute points (BERT's budgets' training FLOPs) and
more, from `reach_from` to 1 of BERT's largest budget every `REACH_STEP`,
so its frontier is dense where it may reach BERT's loss.

Example:
>>> plan = model_plan((400, 700, 1200), ratio=0.767, reach_from=0.7,
...                   schedule=WarmupStableDecay(1e-3, 100, align=10))
>>> plan.final_budget  # the budget at BERT's largest compute
1565
"""

import dataclasses
import json
import math
import os

import tensorflow as tf

from token_dropping.common import files
from token_dropping.common.errors import UserError

REACH_STEP = 0.05
FORKS = "forks"


@dataclasses.dataclass(frozen=True)
class ModelPlan:
    """One model's annealed runs.

    Attributes:
        budgets: steps of each annealed run, ascending.
        shares: each budget's compute point, a share of BERT's largest
            budget's training FLOPs.
        starts: each budget's decay start (a step of the stable run).
    """
    budgets: tuple
    shares: tuple
    starts: tuple

    @property
    def stable_steps(self):
        """How far the stable run trains: its last decay start."""
        return max(self.starts)

    @property
    def final_budget(self):
        """The budget at BERT's largest compute (share 1)."""
        return self.budgets[self.shares.index(1.0)]


def shares(base_budgets, reach_from):
    """The compute points of a model other than BERT (shares of BERT's
    largest budget), ascending: BERT's budgets' and the reach grid's."""
    largest = base_budgets[-1]
    grid = [1.0 - REACH_STEP * i
            for i in range(int(math.floor((1.0 - reach_from) / REACH_STEP
                                          + 1e-9)) + 1)]
    return tuple(sorted({round(b / largest, 9) for b in base_budgets}
                        | {round(s, 9) for s in grid}))


def model_plan(base_budgets, *, ratio, reach_from, schedule):
    """A model's `ModelPlan`: `ratio` is its train-step FLOPs over BERT's
    (1 for BERT: its budgets are `base_budgets` themselves)."""
    if ratio == 1.0:
        points = [(b, round(b / base_budgets[-1], 9)) for b in base_budgets]
    else:
        points = {}
        grid = shares(base_budgets, reach_from)
        for share in grid:
            # Whole steps: the first point at or just below its compute,
            # the others at or just above, so the frontier spans BERT's.
            exact = share * base_budgets[-1] / ratio
            steps = (int(math.floor(exact + 1e-9)) if share == grid[0]
                     else int(math.ceil(exact - 1e-9)))
            points.setdefault(max(1, steps), share)
        points = sorted(points.items())
    budgets = tuple(b for b, _ in points)
    try:
        starts = tuple(schedule.decay_start(b) for b in budgets)
    except UserError as e:
        raise UserError(f"--budgets: {e}") from None
    return ModelPlan(budgets, tuple(s for _, s in points), starts)


def fork_path(stable_dir, step):
    return os.path.join(stable_dir, FORKS, f"ckpt-{step}")


def branch_dir(stable_dir, budget):
    """Where the stable run's decay branch to `budget` trains."""
    return os.path.join(stable_dir, f"decay-{budget}")


def forget_branches(stable_dir):
    """Removes the stable run's kept forks and its decay branches: a stable
    run started again from step 0 is a new run (the old weights are gone,
    and a finished branch of them would be read as this run's)."""
    for path in [os.path.join(stable_dir, FORKS)] + tf.io.gfile.glob(
            branch_dir(stable_dir, "*")):
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)


def _marker(stable_dir, step):
    return fork_path(stable_dir, step) + ".json"


def has_fork(stable_dir, step):
    """Whether the stable run kept its checkpoint at `step` (the marker is
    written last)."""
    return tf.io.gfile.exists(_marker(stable_dir, step))


def save_fork(checkpoint, stable_dir, step, wall_seconds):
    """Keeps `checkpoint` (the stable run's, at `step`) for its branches,
    with the training seconds so far; the marker last."""
    tf.io.gfile.makedirs(os.path.join(stable_dir, FORKS))
    checkpoint.write(fork_path(stable_dir, step))
    files.write_json(_marker(stable_dir, step),
                     dict(step=step, wall_seconds=wall_seconds))


def fork_seconds(stable_dir, step):
    with tf.io.gfile.GFile(_marker(stable_dir, step)) as f:
        return json.load(f)["wall_seconds"]


def kept_forks(stable_dir):
    """The steps at which the stable run kept its checkpoint for branches."""
    return sorted(int(os.path.basename(marker)[len("ckpt-"):-len(".json")])
                  for marker in tf.io.gfile.glob(fork_path(stable_dir,
                                                           "*.json")))


def latest_fork(stable_dir, step):
    """The step of the stable run's last kept checkpoint at or before
    `step`.

    Raises:
        UserError: there is none.
    """
    fork = max((s for s in kept_forks(stable_dir) if s <= step),
               default=None)
    if fork is None:
        raise UserError(
            f"{stable_dir} has no checkpoint at or before step {step}, where "
            "a decay starts; use another --runs_dir, or delete "
            f"{stable_dir} to retrain it.")
    return fork


def start_branch(stable_dir, step, branch_dir):
    """Copies the stable run's fork at `step` into the empty `branch_dir` as
    its latest checkpoint (what Model Garden's checkpoint manager resumes
    from); returns `(its path, the fork's step)`.

    A budget asked for after the stable run passed its decay start (a lower
    --reach_from) has no fork there: the branch starts from the last one
    before it and trains to `step` at the stable learning rate first (its
    schedule is the stable run's until then, and resumes are exact), so it
    is the same run without retraining the stable one."""
    fork = latest_fork(stable_dir, step)
    source = fork_path(stable_dir, fork)
    tf.io.gfile.makedirs(branch_dir)
    target = os.path.join(branch_dir, f"ckpt-{fork}")
    for path in tf.io.gfile.glob(source + ".*"):
        if path.endswith(".json"):
            continue
        tf.io.gfile.copy(path, target + path[len(source):], overwrite=True)
    # The checkpoint index file last: without it the copy is not a checkpoint.
    tf.compat.v1.train.update_checkpoint_state(branch_dir, target)
    return target, fork

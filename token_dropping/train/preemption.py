"""On SIGTERM: save a checkpoint at the end of the loop it interrupted, stop.

Cloud TPU, GCE, Kubernetes and Slurm send SIGTERM before they take a machine
away. `SaveAndStopOnSigterm` is an orbit train action, called after every
loop of `trainer.steps_per_loop` steps: if a SIGTERM came during that loop
(before the loop's first action, `note`, so before its progress line) on any
worker, every worker saves through Model Garden's checkpoint manager
(the chief's into `--model_dir`) at this step and the run raises
`Preempted`; `tools/train.py` exits with `EXIT_CODE`. Rerunning the same
command resumes from that checkpoint.

Why not TensorFlow's `tf.distribute.experimental.PreemptionCheckpointHandler`
(what orbit's `SaveCheckpointIfPreempted` and Model Garden wrap): it agrees
on the save through key-values while the workers run on, which may be a loop
apart, so it saves one loop after the one the signal interrupted (a signal
during steps 61-80 of 20-step loops saved at 100); on GCE CPU VMs and Cloud
TPU VMs its `save_checkpoint_if_preempted` does nothing at all; and Model
Garden's action keeps training after its save. Here the agreement is one
all-reduce of "SIGTERM seen" per loop (MultiWorkerMirroredStrategy only;
one process, MirroredStrategy and TPUStrategy have a single client), which
every worker reaches at the same loop boundary, so all of them save the same
step, the end of the interrupted loop.

Example:
>>> action = SaveAndStopOnSigterm(strategy, checkpoint_manager, global_step)
>>> controller = orbit.Controller(
...     ..., train_actions=[action.note, *other_actions, action])
"""

import signal

import tensorflow as tf
from absl import logging

# The "restart me" code (TensorFlow's TerminationConfig default outside GCE).
EXIT_CODE = 42


class Preempted(Exception):
    """Raised once the preemption checkpoint is written; `step` is its step."""

    def __init__(self, step, directory):
        super().__init__(
            f"stopped by SIGTERM; checkpoint saved at step {step} in "
            f"{directory}; rerun the same command to continue.")
        self.step = step
        self.directory = directory


class SaveAndStopOnSigterm:
    """After each training loop: if any worker got SIGTERM, save and stop.

    Args:
        strategy: the run's `tf.distribute.Strategy`; with several workers
            (its cluster resolver names more than one) they agree by an
            all-reduce after each loop.
        checkpoint_manager: Model Garden's `tf.train.CheckpointManager` (the
            chief's writes to `--model_dir`, other workers' to a temp dir).
        global_step: the trainer's step variable; the checkpoint's number.

    Installs its SIGTERM handler (call from the main thread); `close()`
    gives SIGTERM its previous handler back. `note` as the loop's first
    action fixes which signals count for this loop (those before it), so
    the other actions (the progress line, summaries) still run for the
    loop that is saved.
    """

    def __init__(self, strategy, checkpoint_manager, global_step):
        self.strategy = strategy
        self.checkpoint_manager = checkpoint_manager
        self.global_step = global_step
        self.directory = checkpoint_manager.directory
        self.signalled = False
        self._noted = None
        self._agree = (
            isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and _num_workers(strategy) > 1)
        self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, unused_signum, unused_frame):
        logging.info("SIGTERM: saving at the end of this training loop.")
        self.signalled = True

    def note(self, unused_output):
        self._noted = self.signalled

    def __call__(self, unused_output):
        stop = self.signalled if self._noted is None else self._noted
        self._noted = None
        if self._agree:
            flags = self.strategy.run(
                lambda flag: tf.identity(flag),
                args=(tf.constant(float(stop)),))
            stop = bool(self.strategy.reduce(
                tf.distribute.ReduceOp.SUM, flags, axis=None) > 0)
        if stop:
            step = int(self.global_step.numpy())
            self.checkpoint_manager.save(checkpoint_number=step,
                                         check_interval=False)
            raise Preempted(step, self.directory)

    def close(self):
        signal.signal(signal.SIGTERM, self._previous)


def _num_workers(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    cluster = resolver.cluster_spec().as_dict()
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))

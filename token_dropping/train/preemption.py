"""On SIGTERM: save a checkpoint at the step reached, then stop the run.

Cloud TPU, GCE and Kubernetes send SIGTERM before they take a machine away.
`SaveAndStopOnSigterm` is an orbit train action built on TensorFlow's
`tf.distribute.experimental.PreemptionCheckpointHandler` (what orbit's
`SaveCheckpointIfPreempted` wraps): the handler installs the SIGTERM handler,
agrees with every other worker on the loop after which all of them save (so
the collective ops of the save match), and saves through Model Garden's
checkpoint manager, the chief's into `--model_dir`. Model Garden's own
action keeps training after that save (its in-process recovery is not part of
the open-source release), so a SIGTERM would be saved and then ignored; this
one raises `Preempted` instead, and `tools/train.py` exits with `EXIT_CODE`.
Rerunning the same command resumes from that checkpoint.

Example:
>>> action = SaveAndStopOnSigterm(strategy, checkpoint_manager, global_step)
>>> controller = orbit.Controller(..., train_actions=[action])
"""

import signal

import tensorflow as tf

# What TensorFlow's handler exits with after a preemption checkpoint outside
# GCE (its TerminationConfig default): the "restart me" code.
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
        strategy: the run's `tf.distribute.Strategy`; its cluster resolver
            (None or an empty cluster for one process) tells the handler who
            the other workers are.
        checkpoint_manager: Model Garden's `tf.train.CheckpointManager` (the
            chief's writes to `--model_dir`, other workers' to a temp dir).
        global_step: the trainer's step variable; the checkpoint's number.

    Call `close()` when the run ends to give SIGTERM its previous handler.
    """

    def __init__(self, strategy, checkpoint_manager, global_step):
        self.global_step = global_step
        self.directory = checkpoint_manager.directory
        self._previous = signal.getsignal(signal.SIGTERM)
        self.handler = tf.distribute.experimental.PreemptionCheckpointHandler(
            strategy.cluster_resolver, checkpoint_manager,
            termination_config=tf.distribute.experimental.TerminationConfig(
                exit_fn=self._stop))

    def __call__(self, unused_output):
        self.handler.save_checkpoint_if_preempted(
            checkpoint_number=self.global_step, check_interval=False)

    def _stop(self):
        raise Preempted(int(self.global_step.numpy()), self.directory)

    def close(self):
        signal.signal(signal.SIGTERM, self._previous)

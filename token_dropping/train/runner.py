"""ExperimentRunner: Model Garden's runner, fit for several workers and SIGTERM.

`official.core.train_lib.OrbitExperimentRunner` (what `run_experiment`
builds) with two changes, made the way its docstring invites (a subclass):

1. A worker other than the chief resumes from the chief's checkpoint. Model
   Garden gives such a worker a checkpoint manager on a fresh temp dir (every
   worker must take part in a save, and only the chief may write to
   `--model_dir`) and restores from there too, which is empty. So on resume
   the chief restored `--model_dir` (creating the optimizer's slots) while
   the others started afresh, and the next broadcast of new variables failed
   ("Collective instance N expected ... data_type 1 but got ... 9"). Here
   that manager's `init_fn` restores the chief's latest checkpoint instead;
   its own saves still go to the temp dir, where no reader looks.
2. `SaveAndStopOnSigterm` (a SIGTERM saves at the end of the loop it
   interrupted and stops) replaces Model Garden's on-demand preemption
   checkpoint, which saves a loop later and trains on.
3. Model Garden's loss check (`trainer.recovery_max_trials`, NaN or above
   `trainer.loss_upper_bound` after a loop) stops the run with one
   `UserError` line instead of a traceback; no checkpoint of that loop is
   written (orbit saves after the check).

Example:
>>> runner = ExperimentRunner(distribution_strategy=strategy, task=task,
...                           mode="train", params=params, model_dir=d,
...                           trainer=trainer)
>>> runner.run()
"""

import tensorflow as tf
from official.core import train_lib

from token_dropping.common.errors import UserError
from token_dropping.train.preemption import SaveAndStopOnSigterm


class ExperimentRunner(train_lib.OrbitExperimentRunner):
    """`OrbitExperimentRunner`; `params.trainer.preemption_on_demand_checkpoint`
    selects `SaveAndStopOnSigterm` (Model Garden's action is not built)."""

    def __init__(self, *, params, **kwargs):
        self.on_sigterm = params.trainer.preemption_on_demand_checkpoint
        self.preemption = None
        if self.on_sigterm:
            params = params.replace(
                trainer={"preemption_on_demand_checkpoint": False})
            params.lock()
        super().__init__(params=params, **kwargs)

    @property
    def is_chief(self):
        return self.strategy.extended.should_checkpoint

    def _maybe_build_checkpoint_manager(self):
        manager = super()._maybe_build_checkpoint_manager()
        chief_latest = tf.train.latest_checkpoint(self.model_dir)
        if manager is None or self.is_chief or not chief_latest:
            return manager
        return tf.train.CheckpointManager(
            self.trainer.checkpoint, directory=manager.directory,
            max_to_keep=1, step_counter=self.trainer.global_step,
            checkpoint_interval=self.params.trainer.checkpoint_interval,
            init_fn=lambda: self.trainer.checkpoint.restore(chief_latest))

    def _build_controller(self, trainer, evaluator, *args,
                          train_actions=None, **kwargs):
        if trainer and self.on_sigterm:
            self.preemption = SaveAndStopOnSigterm(
                self.strategy, self.checkpoint_manager, trainer.global_step)
            train_actions = [self.preemption.note, *(train_actions or []),
                             self.preemption]
        return super()._build_controller(trainer, evaluator, *args,
                                         train_actions=train_actions, **kwargs)

    def _evaluate_on_the_interval(self):
        """Model Garden's train_and_eval evaluates every
        `validation_interval` steps counted from where the run starts. A
        run resumed between two (from a SIGTERM's checkpoint, or a
        checkpoint interval that does not fall on them) first trains to the
        next multiple and evaluates there, so it evaluates at the steps the
        uninterrupted run did."""
        trainer = self.params.trainer
        step = int(self.trainer.global_step.numpy())
        interval = trainer.validation_interval
        if self._mode != "train_and_eval" or not interval > 0:
            return
        target = (step // interval + 1) * interval
        if step % interval == 0 or target >= trainer.train_steps:
            return
        with self.strategy.scope():
            self.controller.train(steps=target)
            self.controller.evaluate(steps=trainer.validation_steps)

    def run(self):
        try:
            self._evaluate_on_the_interval()
            return super().run()
        except RuntimeError as e:
            if not str(e).startswith("The loss value is"):
                raise
            trainer = self.params.trainer
            raise UserError(
                f"training stopped at step {int(self.trainer.global_step.numpy())}"
                f": {str(e).rstrip('.')} (Model Garden's check after each "
                f"loop, trainer.loss_upper_bound={trainer.loss_upper_bound:g});"
                " the importance table kept its last finite values. Lower the "
                "learning rate, or set trainer.recovery_max_trials=N to retry "
                "from the last checkpoint N times.") from None
        finally:
            if self.preemption:
                self.preemption.close()

"""A study's progress line and its time per step, kept across invocations.

`StudyProgress` logs one line per finished step of the study (a run, a
decay branch, a fine-tuning) with the share of the study's FLOPs done and
an ETA from this invocation's measured seconds per FLOP, and keeps each
step's seconds in `timings.json` so a resumed study's total counts every
invocation.
"""

import json
import time

import tensorflow as tf
from absl import logging

PREPARING = "preparing: data, probe, floor, checks"


class StudyProgress:
    """One log line per finished step of the study, with an ETA.

    Work is counted in FLOPs (pretraining runs and fine-tuning runs alike);
    the rate is this invocation's measured seconds per FLOP.
    """

    def __init__(self, total_flops, timings_path):
        self.total = total_flops
        self.done = 0.0
        self.measured_flops = 0.0
        self.start = self.last = time.time()
        self.path = timings_path
        self.pending = 0.0
        self.timings = {}
        self.steps = set()  # this study's steps, done now or before
        if tf.io.gfile.exists(timings_path):
            with tf.io.gfile.GFile(timings_path) as f:
                self.timings = json.load(f)

    @property
    def minutes(self):
        """Minutes this study's finished steps and the preparing took, over
        every invocation (a runs_dir shared by studies holds others' too)."""
        return sum(self.timings.get(name, 0.0)
                   for name in self.steps | {PREPARING}) / 60

    def preparing(self, seconds):
        """This invocation's time before the first step (data, probe, floor,
        checks); counted with its first measured step, so rerunning a
        finished study adds nothing."""
        self.pending = seconds

    def _save(self):
        with tf.io.gfile.GFile(self.path, "w") as f:
            json.dump(self.timings, f, indent=1)

    def finished(self, what, flops_of_step, measured=True):
        now = time.time()
        self.done += flops_of_step
        self.steps.add(what)
        if measured and self.pending:
            self.timings[PREPARING] = (self.timings.get(PREPARING, 0.0)
                                       + self.pending)
            self.pending = 0.0
        if measured:
            self.measured_flops += flops_of_step
            self.timings[what] = self.timings.get(what, 0.0) + now - self.last
            self._save()
        self.last = now
        elapsed = now - self.start
        left = ""
        if self.measured_flops:
            eta = elapsed / self.measured_flops * (self.total - self.done)
            left = f"; about {eta / 60:.0f} min left"
        logging.info("study: %s done (%.0f%% of the study's FLOPs); %.1f min "
                     "elapsed%s.", what, 100 * self.done / self.total,
                     elapsed / 60, left)

"""A study stops at its first SIGTERM, whatever it is doing.

A study runs many steps in one process: data, pretraining runs, exports,
fine-tunings. During a training run, the run's own handler (`preemption.
SaveAndStopOnSigterm`, on TensorFlow's `PreemptionCheckpointHandler`)
replaces any other and saves at a loop boundary; a signal that lands after
its last check (the last loops, the final evaluation) is taken by it and
never acted on, and between runs nothing listened at all.

`SigtermWatch` sees every signal anyway, with the standard library's
`signal.set_wakeup_fd`: the interpreter writes the number of each signal it
handles to a socket, whichever Python handler runs (the run's or ours).
Between training runs our own handler only notes the signal, so an export or
a record being written is finished, never cut in half. `check(done)` after
each step raises `StudyStopped` if a SIGTERM came: everything finished is
kept and the same command continues from there.

Example:
>>> with SigtermWatch() as watch:
...     train_one_run()
...     watch.check("pretraining bert seed 1")
"""

import signal
import socket
import threading

from absl import logging


class StudyStopped(Exception):
    """Raised after the step a SIGTERM came in (or after) has finished."""

    def __init__(self, done):
        super().__init__(
            f"stopped by SIGTERM after {done}; everything finished is kept; "
            "rerun the same command to continue.")


class SigtermWatch:
    """Notes every SIGTERM from `__enter__` to `__exit__` (see the module
    docstring). Outside the main thread (where Python cannot set signal
    handlers) it watches nothing, and `check` never stops."""

    def __init__(self):
        self._socket = None
        self._old_fd = -1
        self._old_handler = None
        self.received = False

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            logging.warning("study: not in the main thread; a SIGTERM stops "
                            "only a training run, at a loop boundary.")
            return self
        self._socket, writer = socket.socketpair()
        self._writer = writer
        for end in (self._socket, writer):
            end.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(writer.fileno(),
                                            warn_on_full_buffer=False)
        self._old_handler = signal.signal(signal.SIGTERM, self._note)
        return self

    def _note(self, unused_signum, unused_frame):
        self.received = True

    def _drain(self):
        if self._socket is None:
            return
        try:
            while True:
                data = self._socket.recv(4096)
                if not data:
                    return
                if signal.SIGTERM in data:
                    self.received = True
        except (BlockingIOError, InterruptedError):
            return

    def check(self, done):
        """Raises `StudyStopped(done)` if a SIGTERM came so far."""
        self._drain()
        if self.received:
            raise StudyStopped(done)

    def __exit__(self, *unused_exc_info):
        if self._socket is None:
            return False
        signal.signal(signal.SIGTERM, self._old_handler)
        signal.set_wakeup_fd(self._old_fd)
        self._socket.close()
        self._writer.close()
        self._socket = None
        return False

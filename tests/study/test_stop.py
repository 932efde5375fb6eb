"""study/stop.py: SigtermWatch notes a SIGTERM whoever handles it."""

import signal
import threading

import pytest

from token_dropping.study.stop import SigtermWatch
from token_dropping.study.stop import StudyStopped


def test_no_signal_no_stop():
    with SigtermWatch() as watch:
        watch.check("data")  # does not raise
    assert not watch.received


def test_a_sigterm_stops_at_the_next_check_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGTERM)
    with SigtermWatch() as watch:
        signal.raise_signal(signal.SIGTERM)
        with pytest.raises(StudyStopped, match="stopped by SIGTERM after "
                           "pretraining bert seed 1; everything finished"):
            watch.check("pretraining bert seed 1")
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_sigterm_taken_by_another_handler_is_still_seen():
    """A training run's handler replaces ours and swallows the signal; the
    wakeup socket still carries its number."""
    taken = []
    with SigtermWatch() as watch:
        previous = signal.signal(signal.SIGTERM,
                                 lambda *args: taken.append(True))
        try:
            signal.raise_signal(signal.SIGTERM)
        finally:
            signal.signal(signal.SIGTERM, previous)
        assert taken and not watch.received  # not noted by our handler
        with pytest.raises(StudyStopped):
            watch.check("export")


def test_outside_the_main_thread_it_watches_nothing():
    checked = []

    def worker():
        with SigtermWatch() as watch:
            watch.check("probe")
            checked.append(watch.received)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert checked == [False]

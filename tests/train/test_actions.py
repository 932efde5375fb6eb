"""train.actions.ProgressLog: one line per loop, on a fake clock."""

import tensorflow as tf

from token_dropping.train.actions import ProgressLog


def test_each_loop_shows_its_own_rate_and_the_time_left_at_it(caplog, clock):
    step = tf.Variable(100, dtype=tf.int64)  # resumed at step 100
    progress = ProgressLog(step, total_steps=800, global_batch_size=32,
                           start_step=100, clock=clock)
    with caplog.at_level("INFO", logger="absl"):
        # Loop 1: 100 steps in 200 s (compiling): 0.5 steps/s, 16 examples/s;
        # 600 left at 0.5/s = 1,200 s = 20 min.
        step.assign(200)
        clock.now = 200.0
        progress({"lm_example_loss": tf.constant(6.4837),
                  "masked_lm_accuracy": 0.0625,
                  "dropped_token_fraction": 0.5,
                  "per_example": tf.zeros([4])})  # not a scalar: left out
        # Loop 2: 200 steps in 80 s = 2.5 steps/s, 80 examples/s;
        # 400 left = 160 s = 3 min (2 min 40 s, rounded).
        step.assign(400)
        clock.now = 280.0
        progress({})
        # Loop 3: no step and no time: no rate, so no ETA.
        progress(None)
        # Loop 4: the last 400 steps in 8 s: nothing left.
        step.assign(800)
        clock.now = 288.0
        progress({})
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "step 200/800 | 0.50 steps/s | 16 examples/s | ETA 20 min | "
        "MLM loss 6.484 | MLM accuracy 0.062 | dropped 50.0%",
        "step 400/800 | 2.50 steps/s | 80 examples/s | ETA 3 min",
        "step 400/800 | 0.00 steps/s | 0 examples/s | ETA ?",
        "step 800/800 | 50.00 steps/s | 1600 examples/s | ETA 0.0 s",
    ]
    assert progress.logs == {}

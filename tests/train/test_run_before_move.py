"""A run written by the code before issue 23's redesign resumes and trains.

`testdata/run_before_move/` is a 2-step `token_drop_bert_tiny` run (the
shrunk shape of `helpers.SHRINK`) that tools/train.py wrote at commit c7b0b0c,
before the modules moved and the encoder's route was rewritten: its
`params.yaml` and `ckpt-2` as written, with the train records of
`helpers.write_records(seed=0)` (rewritten here; the run's own paths are gone).
"""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from helpers import importance_in, overrides, train_py, write_records

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "testdata",
                       "run_before_move")


def _variables(checkpoint):
    return dict(tf.train.list_variables(checkpoint))


@pytest.mark.slow  # a train.py run: ~40 s on 2 busy cores
def test_a_run_saved_before_the_move_resumes_and_trains(tmp_path):
    model_dir = str(tmp_path / "run")
    shutil.copytree(FIXTURE, model_dir)
    records = (write_records(str(tmp_path / "train.tfrecord"), seed=0),
               write_records(str(tmp_path / "valid.tfrecord"),
                             num_examples=10, seed=1))
    old = os.path.join(model_dir, "ckpt-2")
    # Its learning rate decayed to 0 at step 2: to train on, the run's
    # params.yaml is edited on purpose (what the refusal of another
    # decay_steps on the command line tells a user to do).
    params_yaml = os.path.join(model_dir, "params.yaml")
    with open(params_yaml, encoding="utf-8") as f:
        text = f.read()
    assert text.count("decay_steps: 2\n") == 1
    with open(params_yaml, "w", encoding="utf-8") as f:
        f.write(text.replace("decay_steps: 2\n", "decay_steps: 3\n"))
    result = train_py("--experiment=token_drop_bert_tiny", "--mode=train",
                      f"--model_dir={model_dir}",
                      f"--config_file={os.path.join(model_dir, 'params.yaml')}",
                      f"--params_override={overrides(records, 3)}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming from" in result.stderr and "(step 2 of 3)" in result.stderr
    new = tf.train.latest_checkpoint(model_dir)
    assert new.endswith("ckpt-3")

    # Same variables under the same names and shapes: nothing was renamed.
    # Two root objects changed on purpose since: TF's PreemptionCheckpoint-
    # Handler counter (`checkpointed_runs`) went with that handler, and the
    # random layers' generators came (`random_layers`, train.random_state).
    before, after = _variables(old), _variables(new)
    assert "checkpointed_runs/.ATTRIBUTES/VARIABLE_VALUE" in before
    before.pop("checkpointed_runs/.ATTRIBUTES/VARIABLE_VALUE")
    added = {k: v for k, v in after.items() if k.startswith("random_layers/")}
    assert added and all(shape == [3] for shape in added.values())
    assert before == {k: v for k, v in after.items() if k not in added}
    # It trained on from the saved weights: every encoder weight moved by
    # one small step (a fresh start would be far from the saved values).
    reader_old = tf.train.load_checkpoint(old)
    reader_new = tf.train.load_checkpoint(new)
    kernels = [k for k in before
               if k.startswith("encoder/_transformer_layers/")
               and k.endswith("kernel/.ATTRIBUTES/VARIABLE_VALUE")]
    assert kernels
    for key in kernels:
        saved, trained = reader_old.get_tensor(key), reader_new.get_tensor(key)
        assert not np.array_equal(saved, trained), key
        np.testing.assert_allclose(trained, saved, atol=0.05, err_msg=key)
    # The importance table was restored, not restarted: every id measured
    # in steps 1-2 is still measured, ids not seen in step 3 kept their
    # step-2 value exactly, and some id moved in step 3.
    table_old, table_new = importance_in(old), importance_in(new)
    assert ((table_old != 10.0) <= (table_new != 10.0)).all()
    assert ((table_old != 10.0) & (table_new == table_old)).any()
    assert (table_new != table_old).any()

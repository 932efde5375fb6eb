"""A resumed run equals the uninterrupted run (issue 22, section 1).

The reference is the same command run straight through in another run
directory; the compared state is every variable of the last checkpoint
(weights, optimizer slots and step, importance table), so a resumed run that
re-reads batches it already trained on, masks them differently or restarts
any state fails. Static records go through tools/train.py; text records
(dynamic masking) through `driver.run` (TEXT_RUN below), since the tiny
experiment's data config reads static records.
"""

import os
import re

import numpy as np
import pytest
import tensorflow as tf
from official.core import task_factory
from official.modeling.hyperparams import params_dict
from official.nlp.data import pretrain_text_dataloader

import token_dropping  # noqa: F401  (registers the experiments)
from token_dropping.train.preemption import EXIT_CODE
from token_dropping.train.resume_data import train_dataset_fn
from checkpoint_values import assert_same_values
from checkpoint_values import checkpoint_values
from helpers import run_and_sigterm, SHRINK, TRAIN, shrunk_tiny_config, write_vocab
from helpers import write_init_checkpoint

TIMEOUT = 600  # seconds; a watchdog kills a run that stops talking
SEQ, PREDICTIONS = 32, 5  # as in SHRINK

# tools/train.py's job for a text-records data config (what a user of the
# Python API writes): the shrunk tiny experiment reading text records.
TEXT_RUN = """
import sys
from absl import logging
from official.core import exp_factory
from official.modeling.hyperparams import params_dict
from official.nlp.data import pretrain_text_dataloader
import token_dropping
from token_dropping.train import driver, preemption
logging.set_verbosity(logging.INFO)
model_dir, override, vocab = sys.argv[1:]
params = exp_factory.get_exp_config("token_drop_bert_tiny")
params.task.train_data = pretrain_text_dataloader.BertPretrainTextDataConfig(
    vocab_file_path=vocab, use_next_sentence_label=False, is_training=True,
    drop_remainder=True)
params = params_dict.override_params_dict(params, override, is_strict=True)
try:
    driver.run(params, mode="train", model_dir=model_dir)
except preemption.Preempted as e:
    print(f"train.py: {e}", file=sys.stderr)
    sys.exit(preemption.EXIT_CODE)
"""


@pytest.fixture(scope="module")
def text_records(tmp_path_factory):
    """40 documents of vocab pieces, one `text` feature each, and the vocab."""
    folder = tmp_path_factory.mktemp("text")
    vocab = write_vocab(str(folder / "vocab.txt"))
    rng = np.random.RandomState(0)
    path = str(folder / "train.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(40):
            words = " ".join(f"piece{i}" for i in rng.randint(
                0, 96, size=rng.randint(5, 40)))
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "text": tf.train.Feature(bytes_list=tf.train.BytesList(
                    value=[words.encode()]))})).SerializeToString())
    return path, vocab


def text_config(text_records, seed=3):
    path, vocab = text_records
    return pretrain_text_dataloader.BertPretrainTextDataConfig(
        input_path=path, vocab_file_path=vocab, seq_length=SEQ,
        max_predictions_per_seq=PREDICTIONS, global_batch_size=4,
        use_next_sentence_label=False, is_training=True, drop_remainder=True,
        seed=seed)


# The stream, in one process.

def batches(dataset, count):
    return [{k: v.numpy() for k, v in b.items()}
            for b in dataset.take(count)]


@pytest.mark.parametrize("fmt,pipelines", [("static", 1), ("static", 2),
                                           ("text", 2)])
def test_a_skipped_stream_continues_the_full_stream(fmt, pipelines, records,
                                                    text_records):
    if fmt == "static":
        config = shrunk_tiny_config(records[0])
        task, data = task_factory.get_task(config.task), config.task.train_data
        data.seed = 3
    else:
        task, data = None, text_config(text_records)
    # The second of `pipelines` input pipelines, one replica each.
    context = tf.distribute.InputContext(num_input_pipelines=pipelines,
                                         input_pipeline_id=pipelines - 1,
                                         num_replicas_in_sync=pipelines)
    full = batches(train_dataset_fn(task, data, 0)(context), 9)
    again = batches(train_dataset_fn(task, data, 0)(context), 9)
    resumed = batches(train_dataset_fn(task, data, 3)(context), 6)
    for name in full[0]:
        for step in range(6):
            np.testing.assert_array_equal(resumed[step][name],
                                          full[step + 3][name], name)
        for step in range(9):
            np.testing.assert_array_equal(again[step][name], full[step][name])
    # Batches differ, so a wrong skip would show.
    words = [b["input_word_ids"].tobytes() for b in full]
    assert len(set(words)) >= 7, len(set(words))


def test_text_masks_select_bert_s_share_with_bert_s_values(text_records):
    """`ExactTextDataLoader` masks as tensorflow-text's ops do: of the
    pieces other than [CLS]/[SEP], ceil(15%), at most max_predictions, each
    [MASK], a random id or kept; labels are the original pieces."""
    config = text_config(text_records)
    path, vocab = text_records
    pieces = open(vocab).read().split("\n")
    originals = iter(tf.data.TFRecordDataset(path).repeat())
    seen, kinds = 0, {"mask": 0, "other": 0}
    # No shuffling: the stream is the file in order.
    config.shuffle_buffer_size = 1
    for batch in batches(train_dataset_fn(None, config, 0)(None), 10):
        for row in range(4):
            text = tf.train.Example.FromString(next(originals).numpy())
            ids = [pieces.index(w) for w in text.features.feature[
                "text"].bytes_list.value[0].decode().split()][:SEQ - 3]
            expected = np.array([101, *ids, 102])
            weights = batch["masked_lm_weights"][row]
            count = min(int(np.ceil(len(ids) * 0.15)), PREDICTIONS)
            assert weights.sum() == count
            positions = batch["masked_lm_positions"][row][:count]
            labels = batch["masked_lm_ids"][row][:count]
            np.testing.assert_array_equal(labels, expected[positions])
            words = batch["input_word_ids"][row][:len(expected)].copy()
            kinds["mask"] += int((words[positions] == 103).sum())
            kinds["other"] += int((words[positions] != 103).sum())
            words[positions] = expected[positions]
            np.testing.assert_array_equal(words, expected)
            seen += count
    assert seen > 100 and 0.6 < kinds["mask"] / seen < 0.95, kinds


# Whole runs: uninterrupted against stopped and resumed.

@pytest.fixture(scope="module")
def runs(records, text_records, tmp_path_factory):
    """Each format's records, the vocab, and one initial model for every
    run (a fresh one is drawn at random)."""
    init = write_init_checkpoint(
        str(tmp_path_factory.mktemp("init") / "ckpt"), records[0])
    return dict(static=records[0], text=text_records[0],
                vocab=text_records[1], init=init)


def command(fmt, model_dir, override, runs):
    if fmt == "static":
        return [TRAIN, "--experiment=token_drop_bert_tiny", "--mode=train",
                f"--model_dir={model_dir}", f"--params_override={override}"]
    return ["-c", TEXT_RUN, str(model_dir), override, runs["vocab"]]


# Every random draw a step makes: dropout in every layer, and selections
# half at random (the other half by the importance table).
RANDOM_DRAWS = ("task.model.encoder.any.dropout_rate=0.1,"
                "task.model.encoder.any.attention_dropout_rate=0.1,"
                "task.model.encoder.any.selection=mixed")


def settings(fmt, runs, train_steps, decay_steps, extra=""):
    """The shrunk experiment from `runs`' initial model, with `RANDOM_DRAWS`;
    the learning rate decays over `decay_steps` whatever `train_steps` is,
    so runs of different lengths train alike."""
    text = (f"{SHRINK},{RANDOM_DRAWS},trainer.train_steps={train_steps},"
            "trainer.optimizer_config.learning_rate.polynomial.decay_steps="
            f"{decay_steps},task.train_data.input_path={runs[fmt]},"
            f"task.init_checkpoint={runs['init']}")
    return text + ("," + extra if extra else "")


def train(fmt, model_dir, override, runs, sigterm_after=None):
    """Runs to the end, or sends SIGTERM once the progress line shows a step
    >= `sigterm_after`; returns (returncode, stderr)."""
    def past(line):
        found = re.search(r"step (\d+)/\d+ \|", line)
        return found is not None and int(found.group(1)) >= sigterm_after

    code, lines, _ = run_and_sigterm(
        command(fmt, model_dir, override, runs),
        None if sigterm_after is None else past, TIMEOUT)
    return code, "".join(lines)


def ok(result):
    code, log = result
    assert code == 0, log[-3000:]
    return log


def checkpoint_state(model_dir, step):
    """`checkpoint_values` of `model_dir`'s latest checkpoint, which must be
    its step-`step` one."""
    path = tf.train.latest_checkpoint(str(model_dir))
    assert path and path.endswith(f"ckpt-{step}"), path
    return checkpoint_values(path)


def assert_same_state(resumed, reference):
    assert_same_values(resumed, reference, must_hold=(
        "_token_importance/importance", "OPTIMIZER_SLOT"))


def recorded_seed(model_dir):
    return params_dict.read_yaml_to_params_dict(
        os.path.join(model_dir, "params.yaml")).task.train_data.seed


@pytest.mark.slow  # three training processes, about 40 to 100 s
@pytest.mark.parametrize("fmt", ["static", "text"])
def test_a_restart_from_a_checkpoint_equals_the_straight_run(fmt, runs,
                                                             tmp_path):
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    # Seed unset: the run derives one and params.yaml records it.
    ok(train(fmt, resumed, settings(fmt, runs, 4, 8), runs))
    seed = recorded_seed(resumed)
    log = ok(train(fmt, resumed, settings(fmt, runs, 8, 8), runs))
    assert "(step 4 of 8)" in log, log[-3000:]
    assert recorded_seed(resumed) == seed
    ok(train(fmt, straight, settings(fmt, runs, 8, 8,
                                     f"task.train_data.seed={seed}"), runs))
    assert_same_state(checkpoint_state(resumed, 8),
                      checkpoint_state(straight, 8))


@pytest.mark.slow  # three training processes, about 40 to 100 s
@pytest.mark.parametrize("fmt", ["static", "text"])
def test_a_sigterm_then_rerun_equals_the_straight_run(fmt, runs, tmp_path):
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    decay, seed = 2000, "task.train_data.seed=11"
    code, log = train(fmt, resumed, settings(
        fmt, runs, decay, decay, f"{seed},trainer.checkpoint_interval=100000"),
                      runs, sigterm_after=2)
    assert code == EXIT_CODE, log[-3000:]
    saved = int(re.search(r"checkpoint saved at step (\d+)", log).group(1))
    assert 2 < saved < decay, saved
    end = saved + 4
    log = ok(train(fmt, resumed, settings(fmt, runs, end, decay, seed), runs))
    assert f"(step {saved} of {end})" in log, log[-3000:]
    ok(train(fmt, straight, settings(fmt, runs, end, decay, seed), runs))
    assert_same_state(checkpoint_state(resumed, end),
                      checkpoint_state(straight, end))

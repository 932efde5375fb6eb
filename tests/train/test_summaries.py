"""TokenDropSummaries: the token-dropping cards in TensorBoard, as event files.

Every check reads what TensorBoard reads: the event files, parsed with
TensorFlow's own `summary_iterator`, not the action's internals.
"""

import collections
import glob
import os
import random
import re

import numpy as np
import orbit
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

import token_dropping
from helpers import BERT_KWARGS, CLS, MASK, PAD, SEP, SEQ, UNK, VOCAB, batch
from helpers import overrides, train_py, write_vocab
from token_dropping.train.actions import ProgressLog
from token_dropping.train.task import ROUTING_METRICS
from token_dropping.train.summaries import TokenDropSummaries

SCALARS = {"token_dropping/dropped_percent", "token_dropping/importance_kept",
           "token_dropping/importance_dropped",
           "token_dropping/measured_vocab_percent",
           "token_dropping/flop_ratio", "token_dropping/train_flops_per_step"}
TEXTS = {"token_dropping/most_dropped", "token_dropping/most_kept"}
TAGS = SCALARS | TEXTS | {"token_dropping/importance",
                          "token_dropping/importance_of_sample_tokens"}
Event = collections.namedtuple("Event", "step value description file")


def read_events(folder):
    """{tag: [Event]} from every event file in `folder`."""
    events = collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(folder, "events.out.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                value = (tf.make_ndarray(v.tensor) if v.HasField("tensor")
                         else v.simple_value)
                events[v.tag].append(Event(
                    event.step, value, v.metadata.summary_description,
                    os.path.basename(path)))
    return events


def description(events):
    """The tag's description (TF2 writers store it with the first event)."""
    return next((e.description for e in events if e.description), "")


def tensorboard_descriptions(folder):
    """{tag: description} as TensorBoard's own reader loads `folder`."""
    accumulator = event_accumulator.EventAccumulator(folder)
    accumulator.Reload()
    return {tag: accumulator.SummaryMetadata(tag).summary_description
            for tag in accumulator.Tags()["tensors"]}


def text(event):
    return event.value.item().decode()


def test_one_loop_written_by_the_action(tmp_path):
    enc = token_dropping.TokenDropBertEncoder(**BERT_KWARGS, token_keep_k=6)
    inputs = batch()
    enc(inputs)
    table = np.full(VOCAB, 10.0, np.float32)
    table[1:50] = np.random.RandomState(0).uniform(0.5, 5.0, 49)
    enc.importance.assign(table)
    step = tf.Variable(7, dtype=tf.int64)
    action = TokenDropSummaries(enc, str(tmp_path), step, [inputs],
                                flop_ratio=0.8, seq_length=12,
                                train_flops=1.5e9)
    output = {"dropped_token_fraction": tf.constant(0.49997),
              "kept_token_importance": tf.constant(4.0),
              "dropped_token_importance": tf.constant(2.0),
              "lm_example_loss": tf.constant(6.0)}
    given = dict(output)
    action(output)

    # Read, not taken: actions after this one see the same output.
    assert output == given
    events = read_events(str(tmp_path))
    assert set(events) == TAGS
    for tag in TAGS:
        assert len(events[tag]) == 1 and events[tag][0].step == 7
    # What TensorBoard shows under each card: the description it reads
    # back, carrying this configuration's numbers (4 layers: layers 1 to 2
    # dropped; keep 6 of 12; importance starting at 10 moving 0.5% per
    # update; VOCAB ids; 1 sample batch); the wording is free.
    shown = tensorboard_descriptions(str(tmp_path))
    layers, keep = {"1", "2"}, {"6", "12"}
    numbers = {
        "token_dropping/dropped_percent": layers | {"50.0"} | keep,
        "token_dropping/importance_kept": layers,
        "token_dropping/importance_dropped": layers,
        "token_dropping/measured_vocab_percent": {str(VOCAB), "10"},
        "token_dropping/importance": {"10", "0.5"},
        "token_dropping/importance_of_sample_tokens": {"1"} | keep,
        "token_dropping/flop_ratio": layers | keep,
        "token_dropping/train_flops_per_step": set(),
        "token_dropping/most_dropped": {"1"},
        "token_dropping/most_kept": {"1"},
    }
    assert set(shown) == TAGS == set(numbers)
    for tag, words in shown.items():
        assert words and numbers[tag] <= set(
            re.findall(r"\d+(?:\.\d+)?", words)), (tag, words)
    value = lambda tag: float(events[tag][0].value)
    assert value("token_dropping/dropped_percent") == 50.0  # not 49.997
    assert "configured 50.0% (keep 6 of 12" in description(
        events["token_dropping/dropped_percent"])
    assert value("token_dropping/importance_kept") == 4.0
    assert value("token_dropping/importance_dropped") == 2.0
    assert value("token_dropping/flop_ratio") == pytest.approx(0.8)
    assert value("token_dropping/measured_vocab_percent") == pytest.approx(
        100 * 49 / VOCAB)

    # The histogram holds the 49 measured ids only, none at 10.0.
    buckets = events["token_dropping/importance"][0].value  # [k, 3]
    assert buckets[:, 2].sum() == 49
    assert buckets[:, 0].min() >= 0.5 and buckets[:, 1].max() <= 5.0

    # The sample histogram: one count per ordinary token of the batch.
    word_ids = inputs["input_word_ids"].numpy()
    real = inputs["input_mask"].numpy() > 0
    ordinary = real & ~np.isin(word_ids, [PAD, UNK, CLS, SEP, MASK])
    buckets = events["token_dropping/importance_of_sample_tokens"][0].value
    assert buckets[:, 2].sum() == ordinary.sum()
    assert buckets[:, 0].min() == table[word_ids[ordinary]].min()
    assert buckets[:, 1].max() == table[word_ids[ordinary]].max()

    # Tables: ordinary tokens only, counted against numpy on the batch.
    totals = 0
    for tag in TEXTS:
        lines = text(events[tag][0]).splitlines()
        verb = tag.rsplit("_", 1)[1]
        assert lines[0].startswith(
            f"Counted on 1 fixed sample batches (3 sequences, "
            f"{ordinary.sum()} ordinary tokens)")
        assert "always kept `100` (100), `101` (101)" in lines[0]
        assert "always dropped `0` (0)." in lines[0]
        assert lines[2] == (f"| piece | id | times {verb} | % of its "
                            f"occurrences {verb} | importance (nats) |")
        rows = [line.split(" | ") for line in lines[4:]]
        ids = [int(row[1]) for row in rows]
        assert not set(ids) & {PAD, UNK, CLS, SEP, MASK}
        totals += sum(int(row[2]) for row in rows)
        for row, token in zip(rows, ids):
            assert row[4].startswith("10 (not measured yet)"
                                     if token >= 50 else f"{table[token]:.3f}")
    assert totals == ordinary.sum()  # every ordinary token, kept or dropped


def test_nothing_measured_yet(tmp_path):
    enc = token_dropping.TokenDropBertEncoder(
        **BERT_KWARGS, token_keep_k=6, token_loss_init_value=0.1)
    enc(batch())
    output = {}
    action = TokenDropSummaries(enc, str(tmp_path), tf.Variable(0), [], 1.0,
                                12)
    action(output)  # 0.1 is inexact in float32: still nothing measured
    events = read_events(str(tmp_path))
    assert float(events["token_dropping/measured_vocab_percent"][0].value) == 0
    assert "token_dropping/importance" not in events  # nothing measured yet


def test_a_short_run_writes_one_described_group(records, tmp_path):
    """tools/train.py, 2 loops: the token-dropping cards as TensorBoard sees
    them, from one writer, each described, none duplicated under the task's
    metric names."""
    vocab = write_vocab(str(tmp_path / "vocab.txt"))
    model_dir = str(tmp_path / "run")
    result = train_py("--experiment=token_drop_bert_tiny", "--mode=train",
                      f"--model_dir={model_dir}", "--params_override="
                      + overrides(records, 4, f"task.vocab_file={vocab}"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| dropped " in result.stderr  # the progress line still has it

    events = read_events(os.path.join(model_dir, "train"))
    ours = {tag for tag in events if tag.startswith("token_dropping/")}
    assert ours == TAGS
    assert not set(ROUTING_METRICS) & set(events)  # no second name
    assert len({e.file for tag in TAGS for e in events[tag]}) == 1
    assert "lm_example_loss" in events  # Model Garden's own scalars stay
    for tag in TAGS:
        assert [e.step for e in events[tag]] == [2, 4], tag
        words = description(events[tag])
        assert words.endswith(".") and words.count(". ") == 0, (tag, words)
    for e in events["token_dropping/dropped_percent"]:
        assert np.float32(e.value) == np.float32(round(float(e.value), 1))
    measured = [float(e.value)
                for e in events["token_dropping/measured_vocab_percent"]]
    assert 0 < measured[0] <= measured[1] < 100

    header = text(events["token_dropping/most_kept"][-1]).splitlines()
    assert header[0].startswith("Counted on 2 fixed sample batches (8 "
                                "sequences, ")
    assert ("always kept `[UNK]` (100), `[CLS]` (101), `[SEP]` (102), "
            "`[MASK]` (103); always dropped `[PAD]` (0).") in header[0]
    assert header[2] == ("| piece | id | times kept | % of its occurrences "
                         "kept | importance (nats) |")
    assert not any(p in line for line in header[4:]
                   for p in ("[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]"))


def allowed_and_ordinary(inputs):
    """Per row: the allow-listed tokens (kept by rule, first) and the
    ordinary real tokens of a `helpers.batch`."""
    word_ids = inputs["input_word_ids"].numpy()
    real = inputs["input_mask"].numpy() > 0
    allowed = (real & np.isin(word_ids, [UNK, CLS, SEP, MASK])).sum(axis=1)
    ordinary = (real & ~np.isin(word_ids, [PAD, UNK, CLS, SEP, MASK]))
    return allowed, ordinary.sum(axis=1)


def table_totals(event):
    """(header line, {id: times}, sum of times) of a text table."""
    lines = text(event).splitlines()
    times = {int(row.split(" | ")[1]): int(row.split(" | ")[2])
             for row in lines[4:]}
    return lines[0], times, sum(times.values())


def test_schedule_stages_in_the_description_and_tables(tmp_path):
    """keep_k schedule 12 -> 4 -> 8 over 8 steps (stages start at steps 0,
    2, 6): the dropped_percent card names each stage, and each loop's tables
    use the keep_k of its last step, counted against numpy."""
    enc = token_dropping.TokenDropBertEncoder(
        **BERT_KWARGS, token_keep_k=6,
        keep_k_schedule=[(0.0, 12), (0.25, 4), (0.75, 8)])
    inputs = batch()
    enc(inputs)
    step = tf.Variable(0, dtype=tf.int64)
    action = TokenDropSummaries(enc, str(tmp_path), step, [inputs], 0.8, SEQ,
                                top_n=VOCAB, schedule_steps=8)
    # Written at step s: the loop's last step is the 0-based step s - 1.
    expected_keep_k = {1: 12, 2: 12, 3: 4, 6: 4, 7: 8, 8: 8}
    for s in expected_keep_k:
        step.assign(s)
        action({"dropped_token_fraction": tf.constant(0.5)})

    events = read_events(str(tmp_path))
    assert description(events["token_dropping/dropped_percent"]) == (
        "Share of real (non-padding) tokens that skip layers 1 to 2, in "
        "percent rounded to 0.1 and averaged over the loop's training steps; "
        "it should follow the keep_k schedule over the run's 8 steps, 0.0% "
        "(keep 12 of 12 positions) up to step 2, 66.7% (keep 4 of 12 "
        "positions) up to step 6, then 33.3% (keep 8 of 12 positions), a "
        "loop across two stages averaging them, lower only where padding "
        "takes dropped slots.")
    allowed, ordinary = allowed_and_ordinary(inputs)
    kept_events = events["token_dropping/most_kept"]
    dropped_events = events["token_dropping/most_dropped"]
    assert [e.step for e in kept_events] == list(expected_keep_k)
    for kept, dropped in zip(kept_events, dropped_events):
        keep_k = expected_keep_k[kept.step]
        header, _, times_kept = table_totals(kept)
        assert f"keeping {keep_k} of 12 positions" in header, kept.step
        # Allow-listed tokens take their slots first, ordinary ones the rest.
        assert times_kept == np.minimum(keep_k - allowed, ordinary).sum()
        assert times_kept + table_totals(dropped)[2] == ordinary.sum()


def test_random_ltd_tables_count_every_layers_draw(tmp_path):
    """random_per_layer, 4 layers: layers 1 and 2 each draw their own
    subset, so the tables count each token once per layer."""
    random.seed(0)  # the draws: the encoder seeds its generator from it
    enc = token_dropping.TokenDropBertEncoder(
        **BERT_KWARGS, token_keep_k=6, selection="random_per_layer")
    inputs = batch()
    enc(inputs)
    action = TokenDropSummaries(enc, str(tmp_path), tf.Variable(1), [inputs],
                                0.8, SEQ, top_n=VOCAB)
    action({})
    events = read_events(str(tmp_path))
    allowed, ordinary = allowed_and_ordinary(inputs)
    header, times_kept, total_kept = table_totals(
        events["token_dropping/most_kept"][0])
    total_dropped = table_totals(events["token_dropping/most_dropped"][0])[2]
    assert "each of the 2 dropped layers draws its own subset" in header
    assert f"sequences, {ordinary.sum()} ordinary tokens)" in header
    assert total_kept == 2 * np.minimum(6 - allowed, ordinary).sum()
    assert total_kept + total_dropped == 2 * ordinary.sum()
    # One draw counted twice would make every count even.
    assert any(times % 2 for times in times_kept.values())
    assert "a token counts once per layer" in description(
        events["token_dropping/most_kept"])


def test_schedule_without_its_step_count_is_one_clear_line(tmp_path):
    enc = token_dropping.TokenDropBertEncoder(
        **BERT_KWARGS, token_keep_k=6, keep_k_schedule=[(0.0, 12), (0.5, 6)])
    with pytest.raises(ValueError, match="schedule_steps=0: the encoder's "
                       "keep_k schedule needs"):
        TokenDropSummaries(enc, str(tmp_path), tf.Variable(0), [], 0.8, SEQ)


class FixedOutputTrainer(orbit.AbstractTrainer):
    """orbit trainer whose every loop returns the same output."""

    def __init__(self, global_step, output):
        self.global_step = global_step
        self.output = output

    def train(self, num_steps):
        self.global_step.assign_add(tf.cast(num_steps, tf.int64))
        return dict(self.output)


def test_actions_in_either_order_see_the_routing_metrics(tmp_path, caplog):
    """orbit's controller runs the summaries before the progress line: both
    read the routing metrics, and TensorBoard holds them once, under
    token_dropping/, beside Model Garden's own scalars."""
    enc = token_dropping.TokenDropBertEncoder(**BERT_KWARGS, token_keep_k=6)
    enc(batch())
    step = tf.Variable(0, dtype=tf.int64)
    summaries = TokenDropSummaries(enc, str(tmp_path), step, [], 0.8, SEQ)
    progress = ProgressLog(step, total_steps=4, global_batch_size=3)
    trainer = FixedOutputTrainer(step, {
        "dropped_token_fraction": tf.constant(0.25),
        "kept_token_importance": tf.constant(4.0),
        "dropped_token_importance": tf.constant(2.0),
        "lm_example_loss": tf.constant(6.0)})
    controller = orbit.Controller(  # as the driver builds it
        trainer=trainer, global_step=step, steps_per_loop=2,
        summary_dir=str(tmp_path), train_actions=[summaries, progress],
        summary_manager=summaries.summary_manager())
    with caplog.at_level("INFO", logger="absl"):
        controller.train(steps=4)

    lines = [r.getMessage() for r in caplog.records
             if r.getMessage().startswith("step ")]
    assert len(lines) == 2 and all(
        line.endswith("| MLM loss 6.000 | dropped 25.0%") for line in lines)
    assert progress.logs == {"dropped_token_fraction": 0.25,
                             "kept_token_importance": 4.0,
                             "dropped_token_importance": 2.0,
                             "lm_example_loss": 6.0}
    events = read_events(str(tmp_path))
    values = lambda tag: [(e.step, float(e.value)) for e in events[tag]]
    assert values("token_dropping/dropped_percent") == [(2, 25.0), (4, 25.0)]
    assert values("token_dropping/importance_kept") == [(2, 4.0), (4, 4.0)]
    assert values("token_dropping/importance_dropped") == [(2, 2.0), (4, 2.0)]
    assert values("lm_example_loss") == [(2, 6.0), (4, 6.0)]
    assert not set(ROUTING_METRICS) & set(events)  # no second name

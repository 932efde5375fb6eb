"""Shared test helpers: tiny shapes, tiny records, the shrunk experiment.

One place for what several test modules use (no test module imports
another). Fixtures built on these are in `conftest.py`.

- Tiny shapes and batches (BERT's special-token ids).
- `run_layer_checks`: the standard Keras checks every layer of ours passes.
- `write_records`: tiny pretraining records in Model Garden's format.
- `SHRINK`, `overrides`, `train_py`, `shrunk_tiny_config`: token_drop_bert_tiny
  shrunk to seconds, through tools/train.py or as a config;
  `write_init_checkpoint`: its initial weights, for runs that must start alike.
- `event_tags`, `importance_in`, `write_vocab`: reading what a run wrote.
- `sctd_loss_and_grads`: a consistency step's loss by plain autodiff.
- `run_tool`: a tool's command line in a subprocess (`in_process.py` runs
  further cases of a tool in the test process).
- `study_params`: a study model's run config, without data.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import tensorflow as tf
import tf_keras
from official.core import exp_factory
from official.modeling.hyperparams import params_dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "tools", "train.py")


# Tiny shapes and batches.

PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103
VOCAB = 120
SEQ = 12

# A 4-layer BERT small enough to run in milliseconds; dropout off so outputs
# can be compared exactly.
BERT_KWARGS = dict(
    vocab_size=VOCAB, hidden_size=16, num_layers=4, num_attention_heads=2,
    inner_dim=32, max_sequence_length=SEQ, type_vocab_size=2,
    output_dropout=0.0, attention_dropout=0.0)


def batch(batch_size=3, seq_length=SEQ, seed=0, pad_from=(None, 9, 5)):
    """A batch of [CLS] words [SEP] [PAD]..., with a [MASK] in each row.

    `pad_from[i]` is where row i's padding starts (None: no padding).
    """
    rng = np.random.RandomState(seed)
    word_ids = rng.randint(1, UNK, size=(batch_size, seq_length))
    mask = np.ones((batch_size, seq_length), np.int32)
    for row in range(batch_size):
        end = pad_from[row % len(pad_from)] or seq_length
        word_ids[row, 0] = CLS
        word_ids[row, 2] = MASK
        word_ids[row, end - 1] = SEP
        word_ids[row, end:] = PAD
        mask[row, end:] = 0
    type_ids = np.zeros_like(mask)
    type_ids[:, seq_length // 2:] = 1
    return dict(input_word_ids=tf.constant(word_ids, tf.int32),
                input_mask=tf.constant(mask * (word_ids != PAD), tf.int32),
                input_type_ids=tf.constant(type_ids * mask, tf.int32))


def bert_with_same_weights(enc, inputs, tmp_path, **options):
    """A Model Garden BertEncoderV2 restored from a checkpoint of `enc` (a
    TokenDropBertEncoder with BERT_KWARGS' sizes and `options`)."""
    from official.nlp.modeling.networks import bert_encoder  # pylint: disable=import-outside-toplevel
    enc(inputs)  # build
    path = tf.train.Checkpoint(encoder=enc).save(str(tmp_path / "ckpt"))
    bert = bert_encoder.BertEncoderV2(**BERT_KWARGS, **options)
    bert(inputs)  # build, so the restore is checked object by object
    status = tf.train.Checkpoint(encoder=bert).restore(path)
    status.assert_existing_objects_matched()
    status.expect_partial()  # the importance table has no place in BERT
    return bert


# The standard Keras checks.

def _first_output(outputs):
    return outputs["sequence_output"] if isinstance(outputs, dict) else outputs


def run_layer_checks(layer_cls, init_kwargs, inputs, expected_output_shape,
                     expected_num_trainable_weights,
                     expected_num_non_trainable_weights, call_kwargs=None):
    call_kwargs = call_kwargs or {}

    # Config: plain JSON, and it rebuilds a layer with the same config.
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    restored = layer_cls.from_config(json.loads(json.dumps(config)))
    assert restored.get_config() == config

    # Eager call.
    outputs = _first_output(layer(inputs, **call_kwargs))
    assert tuple(outputs.shape) == tuple(expected_output_shape)
    assert len(layer.trainable_weights) == expected_num_trainable_weights
    assert len(layer.non_trainable_weights) == (
        expected_num_non_trainable_weights)

    # Symbolic call inside a functional model.
    symbolic_inputs = tf.nest.map_structure(
        lambda t: tf_keras.Input(shape=t.shape[1:], dtype=t.dtype), inputs)
    symbolic = _first_output(layer_cls(**init_kwargs)(symbolic_inputs,
                                                      **call_kwargs))
    assert tuple(symbolic.shape[1:]) == tuple(expected_output_shape[1:])

    # One training step moves every trainable weight.
    before = [w.numpy().copy() for w in layer.trainable_weights]
    optimizer = tf_keras.optimizers.SGD(learning_rate=0.1)
    with tf.GradientTape() as tape:
        # A fixed random projection of every output reaches every weight
        # (a mean square would not: layer norm makes it nearly constant).
        outputs = [t for t in tf.nest.flatten(layer(inputs, training=True))
                   if t.dtype.is_floating]
        loss = tf.add_n([
            tf.reduce_sum(t * tf.random.stateless_normal(tf.shape(t), [0, i]))
            for i, t in enumerate(outputs)])
    grads = tape.gradient(loss, layer.trainable_weights)
    optimizer.apply_gradients(zip(grads, layer.trainable_weights))
    unchanged = [w.name for w, b in zip(layer.trainable_weights, before)
                 if np.array_equal(w.numpy(), b)]
    assert not unchanged, f"not trained by one step: {unchanged}"
    return layer


# Tiny pretraining records.



def write_records(path, num_examples=16, seq_length=32, max_predictions=5,
                  vocab_size=200, seed=0):
    rng = np.random.RandomState(seed)
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(num_examples):
            length = rng.randint(seq_length // 2, seq_length + 1)
            ids = np.zeros(seq_length, np.int64)
            words = rng.randint(1, vocab_size, size=length)
            words[(words >= 100) & (words <= 103)] = 7  # no special ids
            ids[:length] = words
            ids[0], ids[length - 1] = CLS, SEP
            mask = (np.arange(seq_length) < length).astype(np.int64)
            count = min(max_predictions, length - 2)
            positions = np.zeros(max_predictions, np.int64)
            positions[:count] = np.sort(rng.choice(
                np.arange(1, length - 1), size=count, replace=False))
            labels = np.zeros(max_predictions, np.int64)
            labels[:count] = ids[positions[:count]]
            weights = (np.arange(max_predictions) < count).astype(np.float32)
            ids[positions[:count]] = MASK
            feature = dict(
                input_word_ids=_ints(ids), input_mask=_ints(mask),
                input_type_ids=_ints(np.zeros(seq_length, np.int64)),
                masked_lm_positions=_ints(positions),
                masked_lm_ids=_ints(labels),
                masked_lm_weights=tf.train.Feature(
                    float_list=tf.train.FloatList(value=weights)))
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature)).SerializeToString())
    return path


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


# token_drop_bert_tiny shrunk to seconds: 2 layers, width 16, seq 32, keep 16.
SHRINK = (
    "task.model.encoder.any.num_layers=2,"
    "task.model.encoder.any.hidden_size=16,"
    "task.model.encoder.any.num_attention_heads=2,"
    "task.model.encoder.any.intermediate_size=32,"
    "task.model.encoder.any.vocab_size=200,"
    "task.model.encoder.any.max_position_embeddings=32,"
    "task.model.encoder.any.token_keep_k=16,"
    "task.train_data.seq_length=32,task.validation_data.seq_length=32,"
    "task.train_data.max_predictions_per_seq=5,"
    "task.validation_data.max_predictions_per_seq=5,"
    "task.train_data.global_batch_size=4,"
    "task.validation_data.global_batch_size=4,"
    "trainer.steps_per_loop=2,trainer.summary_interval=2,"
    "trainer.checkpoint_interval=2,trainer.validation_interval=2,"
    "trainer.validation_steps=2,"
    "trainer.optimizer_config.warmup.polynomial.warmup_steps=1,"
    "runtime.enable_xla=false")


def overrides(records, train_steps, extra="", decay_steps=None):
    """SHRINK for `records` (train, validation); the learning rate decays over
    `decay_steps` (default: `train_steps`). A run extended by a rerun keeps
    the decay it started with: a rerun may not change it (`recorded_run`)."""
    train, valid = records
    text = (f"{SHRINK},trainer.train_steps={train_steps},"
            f"trainer.optimizer_config.learning_rate.polynomial.decay_steps="
            f"{decay_steps or train_steps},task.train_data.input_path={train},"
            f"task.validation_data.input_path={valid}")
    return text + ("," + extra if extra else "")


def event_tags(folder):
    tags = set()
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    return tags


def importance_in(checkpoint):
    reader = tf.train.load_checkpoint(checkpoint)
    keys = [k for k in reader.get_variable_to_shape_map()
            if "_token_importance/importance" in k and "OPTIMIZER" not in k]
    assert len(keys) == 1, keys
    return reader.get_tensor(keys[0])


def shrunk_tiny_config(train_path):
    """token_drop_bert_tiny shrunk by SHRINK, as a config object."""
    config = exp_factory.get_exp_config("token_drop_bert_tiny")
    return params_dict.override_params_dict(
        config, f"{SHRINK},task.train_data.input_path={train_path}",
        is_strict=True)


def write_init_checkpoint(path, train_path):
    """The shrunk model's initial weights (`task.init_checkpoint`), so runs
    in different processes start alike."""
    from official.core import task_factory  # pylint: disable=import-outside-toplevel
    task = task_factory.get_task(shrunk_tiny_config(train_path).task)
    model = task.build_model()
    model(next(iter(task.build_inputs(task.task_config.train_data))))
    return tf.train.Checkpoint(**model.checkpoint_items).save(path)


def mirrored_task(config):
    """`(strategy, task, model, optimizer, metrics, batch)` of `config` under
    a two-replica MirroredStrategy on the two logical CPUs (conftest); the
    batch is one distributed global batch."""
    from official.core import task_factory  # pylint: disable=import-outside-toplevel
    from official.core import train_utils  # pylint: disable=import-outside-toplevel
    devices = [d.name for d in tf.config.list_logical_devices("CPU")[:2]]
    # Reduction through one device: collective ops keyed per process clash
    # when several tests each make a MirroredStrategy.
    strategy = tf.distribute.MirroredStrategy(
        devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    with strategy.scope():
        task = task_factory.get_task(config.task)
        model = task.build_model()
        optimizer = train_utils.create_optimizer(task, config)
        metrics = task.build_metrics(training=True)
    batch = next(iter(strategy.distribute_datasets_from_function(
        lambda ctx: task.build_inputs(config.task.train_data, ctx))))
    return strategy, task, model, optimizer, metrics, batch


SHRINK_SEQ, SHRINK_VOCAB, SHRINK_HIDDEN = 32, 200, 16  # as in SHRINK


def sctd_loss_and_grads(model, batch, weight=0.05, stop_gradient=False,
                        share=0.5):
    """ScTD's consistency-step loss (1 - share) MLM(dropped) + share
    MLM(full) + `weight` KL(full || dropped) (the paper: share 0.5), by
    plain autodiff outside the task, with
    the gradients to `model.trainable_variables` (None where none reaches).
    Dropout must be off: the full training pass is the `training=False`
    output. Returns `(loss, grads, (dropped_mlm, full_mlm, kl))`."""
    from token_dropping.train.consistency import cls_consistency_loss  # pylint: disable=import-outside-toplevel
    from token_dropping.train.task import per_prediction_losses  # pylint: disable=import-outside-toplevel
    weights = batch["masked_lm_weights"]
    mean = lambda out: tf.reduce_sum(
        per_prediction_losses(batch, out) * weights) / tf.reduce_sum(weights)
    with tf.GradientTape() as tape:
        dropped = model(batch, training=True)
        full = model(batch, training=False)
        parts = (mean(dropped), mean(full), cls_consistency_loss(
            full["encoder_outputs"], dropped["encoder_outputs"],
            stop_gradient))
        loss = (1 - share) * parts[0] + share * parts[1] + weight * parts[2]
    grads = tape.gradient(loss, model.trainable_variables)
    return float(loss), grads, tuple(float(p) for p in parts)


def write_vocab(path, edit=None, size=SHRINK_VOCAB):
    """BERT's layout: [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103;
    `edit(pieces)` changes the list in place first."""
    pieces = (["[PAD]"] + [f"[unused{i}]" for i in range(99)]
              + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
              + [f"piece{i}" for i in range(size - 104)])
    if edit:
        edit(pieces)
    with open(path, "w") as f:
        f.write("\n".join(pieces) + "\n")
    return path


def run_tool(name, *args):
    """`tools/<name>` in a subprocess, GPUs hidden, offline.

    GCE_METADATA_IP: TF's preemption handler asks GCE's metadata server
    whether it runs on GCE; a closed loopback port answers "no" offline.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               GCE_METADATA_IP="127.0.0.1:9")
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", name), *args],
        capture_output=True, text=True, env=env, cwd=ROOT)


def train_py(*args):
    return run_tool("train.py", *args)


def run_and_sigterm(argv, when, timeout):
    """Runs `python argv...` from the repository root (GPUs hidden, offline),
    reading its stderr as it comes; sends one SIGTERM after the first line
    for which `when(line)` is true (never if `when` is None). Killed after
    `timeout` seconds.

    Returns:
        (returncode, stderr lines, index of the line the signal followed or
        None).
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               GCE_METADATA_IP="127.0.0.1:9")
    process = subprocess.Popen([sys.executable, *argv],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=env,
                               cwd=ROOT)
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    lines, sent = [], None
    try:
        for line in process.stderr:
            lines.append(line)
            if when is not None and sent is None and when(line):
                process.send_signal(signal.SIGTERM)
                sent = len(lines) - 1
        process.wait()
    finally:
        watchdog.cancel()
    return process.returncode, lines, sent


def pretraining_model(run):
    """The pretraining model (`BertPretrainerV2`: encoder and MLM head) of a
    `run` fixture, rebuilt the way Model Garden's trainer builds it from
    params.yaml, restored from the trainer's checkpoint."""
    from official.core import task_factory  # pylint: disable=import-outside-toplevel
    from official.core import train_utils  # pylint: disable=import-outside-toplevel
    params = train_utils.parse_configuration(train_utils.ParseConfigOptions(
        experiment="token_drop_bert_tiny",
        config_file=[os.path.join(run["model_dir"], "params.yaml")]),
        print_return=False)
    model = task_factory.get_task(params.task).build_model()
    tf.train.Checkpoint(**model.checkpoint_items).read(
        run["checkpoint"]).expect_partial().assert_existing_objects_matched()
    return model


def padded_inputs(batch_size=3, seed=0, seq=SHRINK_SEQ, vocab=SHRINK_VOCAB):
    """Encoder inputs at the shrunk shape, two rows padded."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(104, vocab, size=(batch_size, seq)).astype(np.int32)
    mask = np.ones((batch_size, seq), np.int32)
    mask[1, 20:] = 0
    mask[2, 9:] = 0
    ids[:, 0] = 101
    ids = ids * mask
    types = (np.arange(seq)[None, :] >= 12).astype(np.int32) * mask
    return dict(input_word_ids=tf.constant(ids),
                input_mask=tf.constant(mask),
                input_type_ids=tf.constant(types))


def study_params(spec, train_steps=100):
    """The study's run config of `spec` (a `ModelSpec`) on the committed
    study's data shapes, without data (paths are placeholders)."""
    import types  # pylint: disable=import-outside-toplevel
    from token_dropping.study import prepare  # pylint: disable=import-outside-toplevel
    from token_dropping.study import runs  # pylint: disable=import-outside-toplevel
    from token_dropping.train.warmup_stable_decay import WarmupStableDecay  # pylint: disable=import-outside-toplevel
    data = types.SimpleNamespace(
        train_input_path="train-*", validation_input_path="validation-*",
        **prepare._DATA)  # pylint: disable=protected-access
    return runs.make_params(
        spec, train_steps=train_steps, eval_every=50, loop_steps=10,
        optimizer_config=WarmupStableDecay(1e-3, 10).stable(), seed=1,
        data=data)

"""export_bert: a token-dropping pretraining run as an ordinary BERT.

The paper's promise is that token dropping changes pretraining only: the
result is a plain BERT, fine-tuned on full sequences. `export_bert` turns a
run directory of `tools/train.py` into what Model Garden's fine-tuning tasks
and TF-Hub-style users expect, all of it checked before anything is written:

1. read the run's `params.yaml` onto the registered experiment it came from
   and derive the `BertEncoderV2` it describes (Model Garden's
   `encoders.build_encoder` with `type: bert_v2`);
2. find the checkpoint (the latest, or the one asked for) and compare its
   encoder, variable by variable through the checkpoint's object graph, with
   that `BertEncoderV2`; a different encoder size is named with both shapes,
   and a checkpoint of another run that params.yaml would describe wrongly
   (`run_reader.check_checkpoint_run`) is refused;
3. restore the encoder exactly as Model Garden's `SentencePredictionTask.
   initialize` does, `tf.train.Checkpoint(encoder=...)` with every encoder
   variable matched; the importance table is not part of it;
4. write into a temporary sibling directory, renamed at the end:

   bert_model.ckpt.*     the encoder checkpoint, root `encoder` (an
                         `init_checkpoint` for bert/sentence_prediction and
                         bert/squad; `checkpoint` makes the directory one too)
   bert_config.json      `BertEncoderV2(**json.load(f))` rebuilds the encoder
   encoder.yaml          `--config_file` for tools/train.py fine-tuning:
                         task.model.encoder as the matching `bert_v2` config
   vocab.txt             the WordPiece vocabulary
   saved_model/          the full encoder (no dropping) as a SavedModel, as
                         Model Garden's TF-Hub export (export_tfhub_lib)
                         writes it, plus a serving signature over
                         input_word_ids, input_mask, input_type_ids (int32,
                         [batch, seq])
   token_importance.npy  [vocab_size] float32 moving-average MLM loss per id
   token_importance.tsv  id, piece, importance (token-dropping runs only)
   hf/                   the same BERT and its MLM head as a Hugging Face
                         folder (`token_dropping.export.hf`: safetensors, config,
                         tokenizer files); converted before anything is
                         written, like the rest

Example:
>>> result = export_bert("runs/token_drop_bert_tiny", "exports/tiny")
>>> result.saved_model
'exports/tiny/saved_model'
"""

import dataclasses
import json
import os
import re
from typing import Optional

import numpy as np
import tensorflow as tf
import tf_keras
import yaml
from absl import logging
from official.nlp.configs import encoders

from token_dropping.export import hf
from token_dropping.data import vocab as vocab_lib
from token_dropping.common import checkpoint_graph
from token_dropping.export import run_reader
from token_dropping.common import files
from token_dropping.common.errors import UserError
from token_dropping.common.errors import first_line
from token_dropping.common.paths import check_apart
from token_dropping.common.paths import check_output_path
from token_dropping.train import random_state
from token_dropping.train import run_vocab

CHECKPOINT_NAME = "bert_model.ckpt"  # BERT's conventional name
_IMPORTANCE = "_token_importance"  # TokenDropBertEncoder's extra child
# Root objects of a trainer checkpoint that are not the model.
# `checkpointed_runs`: TF's PreemptionCheckpointHandler's counter, which
# the trainer's checkpoint carries since SIGTERM saves (preemption.py);
# `random_layers`: the dropout and selection generators (train.random_state).
_NOT_MODEL = ("optimizer", "global_step", "save_counter", "checkpointed_runs",
              random_state.CHECKPOINT_KEY)
INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
SERVING_OUTPUTS = ("pooled_output", "sequence_output", "default")


@dataclasses.dataclass
class ExportResult:
    """Where an export went and what it came from."""
    output_dir: str
    source_checkpoint: str
    global_step: int
    checkpoint: str
    bert_config: str
    encoder_yaml: str
    vocab_file: str
    saved_model: str
    token_importance: Optional[str] = None  # None: a plain BERT run
    huggingface: Optional[str] = None  # None: not asked for
    do_lower_case: bool = True  # written into the SavedModel and hf/
    do_lower_case_source: str = ""  # where that value came from


def export_bert(model_dir, output_dir, checkpoint=None, vocab_file=None,
                overwrite=False, do_lower_case=None, huggingface=True):
    """Exports a pretraining run's encoder as an ordinary BERT.

    Args:
        model_dir: str. A run directory of tools/train.py (params.yaml and
            checkpoints `ckpt-N`).
        output_dir: str. Where the export goes; must be empty or missing
            unless `overwrite`.
        checkpoint: str or None. A checkpoint path or directory; default the
            latest checkpoint in `model_dir`.
        vocab_file: str or None. The vocabulary; default the run's
            `task.vocab_file`.
        overwrite: bool. Replace a non-empty `output_dir`.
        do_lower_case: bool or None. Stored in the SavedModel and hf/ for
            users' tokenizers; None: what the run's dataset manifest records
            (the records were tokenized so); only when none records it, a
            guess from the vocab's file name (False if it says "cased", not
            "uncased", else True), logged as a guess.
        huggingface: bool. Also write the Hugging Face folder `hf/`.

    Returns:
        An `ExportResult`.

    Raises:
        UserError: bad input, before anything is written.
    """
    if not model_dir:
        raise UserError("--model_dir is required: a run directory of "
                        "tools/train.py.")
    if not output_dir:
        raise UserError("--output_dir is required.")
    _check_output_dir(output_dir, model_dir, overwrite)
    params, experiment = run_reader.read_run_params(model_dir)
    encoder_config = run_reader.bert_encoder_config(params)
    source = run_reader.find_checkpoint(model_dir, checkpoint)
    run_reader.check_checkpoint_run(model_dir, source, vocab_file)
    flag = "--vocab_file" if vocab_file else "task.vocab_file (params.yaml)"
    vocab_file, pieces = run_reader.find_vocab(vocab_file, params,
                                     encoder_config.get().vocab_size)
    run_vocab.check(os.path.dirname(source), vocab_file, flag)
    lower_case, lower_case_source = _lower_case(do_lower_case, vocab_file,
                                                params)
    # What the export reads, now all known, stays apart from what it replaces.
    check_apart(output_dir, "--output_dir", [("--checkpoint", source),
                                             ("--vocab_file", vocab_file)])

    # Steps 1-3: the BertEncoderV2, checked against the checkpoint, restored.
    encoder = encoders.build_encoder(encoder_config)
    encoder(_dummy_inputs())  # creates the variables
    try:
        reader = tf.train.load_checkpoint(source)
    except (tf.errors.OpError, ValueError) as e:
        raise UserError(f"cannot read checkpoint {source}: "
                        f"{first_line(e)}") from None
    graph = checkpoint_graph.object_graph(reader, source)
    encoder_node = _encoder_node(graph, source)
    checkpoint_graph.check_same_variables(
        graph, reader, encoder_node, encoder, ignore=(_IMPORTANCE,),
        prefix=(f"{source} does not fit the encoder params.yaml describes "
                f"({_describe(encoder_config.get())}):"))
    status = tf.train.Checkpoint(encoder=encoder).read(source)
    status.expect_partial().assert_existing_objects_matched()
    importance = _read_importance(graph, reader, encoder_node)
    logging.info("Restored the %s encoder from %s.", experiment, source)
    hf_model = None
    if huggingface:  # converted before anything is written
        try:
            hf_model = hf.convert(
                _model_values(graph, reader), encoder_config.get(),
                params.task.model.mlm_activation, pieces.index(vocab_lib.PAD))
        except UserError as e:
            raise UserError(f"Hugging Face folder: {e}") from None

    # Step 4: everything into a temporary sibling, renamed at the end.
    output_dir = output_dir.rstrip("/")
    with files.replacing_directory(output_dir) as partial:
        _write(partial, encoder, encoder_config, vocab_file, pieces,
               importance, lower_case)
        if hf_model:
            hf.write_folder(os.path.join(partial, hf.FOLDER), *hf_model,
                            vocab_file, lower_case)
    out = lambda name: os.path.join(output_dir, name)
    return ExportResult(
        output_dir=output_dir, source_checkpoint=source,
        global_step=_global_step(reader),
        checkpoint=out(CHECKPOINT_NAME), bert_config=out("bert_config.json"),
        encoder_yaml=out("encoder.yaml"), vocab_file=out("vocab.txt"),
        saved_model=out("saved_model"),
        token_importance=(out("token_importance.npy")
                          if importance is not None else None),
        huggingface=out(hf.FOLDER) if hf_model else None,
        do_lower_case=lower_case, do_lower_case_source=lower_case_source)


def _check_output_dir(output_dir, model_dir, overwrite):
    # The output (replaced with --overwrite, its temporary sibling beside it)
    # is not, holds not and is not inside the run, through symlinks too.
    check_apart(output_dir, "--output_dir", [("--model_dir", model_dir)])
    check_output_path(output_dir, "--output_dir", directory=True)
    if tf.io.gfile.exists(output_dir) and tf.io.gfile.listdir(
            output_dir) and not overwrite:
        raise UserError(
            f"--output_dir={output_dir!r} is not empty; pass --overwrite to "
            "replace it.")


def _dummy_inputs():
    ids = tf.zeros((1, 1), tf.int32)  # [batch, seq]
    return dict(input_word_ids=ids, input_mask=tf.ones_like(ids),
                input_type_ids=ids)


def _encoder_node(graph, source):
    """The checkpoint's `encoder` object: Model Garden's trainer saves
    `BertPretrainerV2.checkpoint_items` (`encoder`, `masked_lm`) at the root."""
    for child in graph.nodes[0].children:
        if child.local_name == "encoder":
            return child.node_id
    raise UserError(
        f"{source} has no `encoder`; expected a Model Garden pretraining "
        "checkpoint (tools/train.py) or an encoder checkpoint.")


def _read_importance(graph, reader, encoder_node):
    """The `[vocab_size]` importance table, or None for a plain BERT run."""
    node_id = checkpoint_graph.follow(graph, encoder_node, (_IMPORTANCE,))
    if node_id is None:
        return None
    keys = [checkpoint_graph.variable_key(graph, n)
            for n in checkpoint_graph.checkpoint_variables(graph, node_id).values()]
    if len(keys) != 1:
        raise UserError(f"expected one importance table, found {len(keys)}.")
    return reader.get_tensor(keys[0]).astype(np.float32)


def _model_values(graph, reader):
    """`{path: value}` of every model variable in a trainer checkpoint: by
    its path under `encoder` or `masked_lm`, any other (a classification
    head, say) by its first path; the importance table aside."""
    values, seen = {}, set()
    core = ("encoder", "masked_lm")
    for child in sorted(graph.nodes[0].children,
                        key=lambda c: c.local_name not in core):
        if child.local_name in _NOT_MODEL:
            continue
        for path, node_id in checkpoint_graph.checkpoint_variables(graph,
                                                   child.node_id).items():
            if node_id in seen and child.local_name not in core:
                continue
            seen.add(node_id)
            if path[:1] == (_IMPORTANCE,):
                continue
            values["/".join((child.local_name,) + path)] = reader.get_tensor(
                checkpoint_graph.variable_key(graph, node_id))
    return values


def _global_step(reader):
    key = "global_step/.ATTRIBUTES/VARIABLE_VALUE"
    return int(reader.get_tensor(key)) if reader.has_tensor(key) else 0


def _describe(encoder):
    return ", ".join(f"{name}={getattr(encoder, name)}" for name in (
        "vocab_size", "hidden_size", "num_layers", "num_attention_heads",
        "intermediate_size", "max_position_embeddings", "type_vocab_size"))


def _lower_case(do_lower_case, vocab_file, params):
    """`(do_lower_case, where it came from)`: the flag, else the run's
    dataset manifest, else (logged as a guess) the vocab's file name."""
    recorded, manifest = run_reader.recorded_lower_case(params)
    if do_lower_case is not None:
        if recorded is not None and recorded != bool(do_lower_case):
            logging.warning(
                "--do_lower_case=%s, but the run's records were made with "
                "do_lower_case=%s (%s); writing yours.", bool(do_lower_case),
                recorded, manifest)
        return bool(do_lower_case), "--do_lower_case"
    if recorded is not None:
        return recorded, f"the run's dataset manifest {manifest}"
    name = os.path.basename(os.path.dirname(vocab_file)) + "/" + (
        os.path.basename(vocab_file))
    # BERT's releases: cased_L-12_H-768_A-12, multi_cased_...; not
    # "uncased", nor a word that merely ends in it ("showcased").
    guess = not re.search(r"(^|[^a-z])cased", name.lower())
    source = (f"a guess from the vocab's name {name!r} (no dataset manifest "
              "of the run records it; --do_lower_case sets it)")
    logging.warning("do_lower_case=%s: %s.", guess, source)
    return guess, source


def _write(folder, encoder, encoder_config, vocab_file, pieces, importance,
           do_lower_case):
    """Every artifact into `folder` (module docstring, step 4)."""
    tf.io.gfile.makedirs(folder)
    path = lambda name: os.path.join(folder, name)
    tf.io.gfile.copy(vocab_file, path("vocab.txt"))
    # The encoder alone, under the root name Model Garden's tasks read; with
    # a save counter, as `Checkpoint.restore` (the TF-Hub export) expects.
    checkpoint = tf.train.Checkpoint(encoder=encoder)
    checkpoint.save_counter.assign(1)
    checkpoint.write(path(CHECKPOINT_NAME))
    with tf.io.gfile.GFile(path("checkpoint"), "w") as f:  # CheckpointState
        f.write(f'model_checkpoint_path: "{CHECKPOINT_NAME}"\n'
                f'all_model_checkpoint_paths: "{CHECKPOINT_NAME}"\n')
    with tf.io.gfile.GFile(path("bert_config.json"), "w") as f:
        json.dump(encoder.get_config(), f, indent=2, sort_keys=True)
    with tf.io.gfile.GFile(path("encoder.yaml"), "w") as f:
        f.write("# The exported encoder for Model Garden's fine-tuning tasks "
                "(bert/sentence_prediction,\n# bert/squad): pass it as "
                "--config_file to tools/train.py.\n")
        yaml.safe_dump({"task": {"model": {"encoder": encoder_config.as_dict()
                                           }}}, f, sort_keys=True)
    _write_saved_model(path("saved_model"), encoder_config,
                       path(CHECKPOINT_NAME), path("vocab.txt"), do_lower_case)
    if importance is not None:
        with tf.io.gfile.GFile(path("token_importance.npy"), "wb") as f:
            np.save(f, importance)
        with tf.io.gfile.GFile(path("token_importance.tsv"), "w") as f:
            f.write("id\tpiece\timportance\n")
            for i, value in enumerate(importance):
                piece = pieces[i] if i < len(pieces) else ""
                f.write(f"{i}\t{piece}\t{value:.6g}\n")


def _write_saved_model(folder, encoder_config, checkpoint_path, vocab_file,
                       do_lower_case):
    """The encoder as a SavedModel, after Model Garden's TF-Hub export.

    As `export_tfhub_lib.export_model` (with_mlm=False) does: a fresh encoder
    from the config restores the checkpoint just written, with every object
    matched; a Keras model maps the input dict to the encoder's outputs plus
    "default" (= pooled_output); the vocab is an asset beside
    `do_lower_case`. Unlike it, the inputs are named, and a `serving_default`
    signature takes `input_word_ids`, `input_mask`, `input_type_ids` (int32,
    [batch, seq]) and returns pooled_output, sequence_output and default.
    """
    encoder = encoders.build_encoder(encoder_config)
    checkpoint = tf.train.Checkpoint(encoder=encoder)
    inputs = {name: tf_keras.Input(shape=(None,), dtype=tf.int32, name=name)
              for name in INPUT_NAMES}
    outputs = dict(encoder(inputs))
    outputs["default"] = outputs["pooled_output"]
    model = tf_keras.Model(inputs=inputs, outputs=outputs)
    checkpoint.restore(checkpoint_path).assert_existing_objects_matched()
    model.vocab_file = tf.saved_model.Asset(vocab_file)
    model.do_lower_case = tf.Variable(do_lower_case, trainable=False)

    @tf.function(input_signature=[
        tf.TensorSpec([None, None], tf.int32, name=name)
        for name in INPUT_NAMES])
    def serve(input_word_ids, input_mask, input_type_ids):
        result = model(dict(input_word_ids=input_word_ids,
                            input_mask=input_mask,
                            input_type_ids=input_type_ids), training=False)
        return {key: result[key] for key in SERVING_OUTPUTS}

    model.save(folder, include_optimizer=False, save_format="tf",
               signatures={"serving_default": serve})

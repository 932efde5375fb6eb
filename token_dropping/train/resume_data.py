"""The training input stream, resumable exactly: a resumed step n reads the
batch the uninterrupted run read at step n.

Model Garden's trainer builds the training dataset afresh in every process,
so a resumed run starts its data from the beginning again and re-reads what
it already trained on. Here `train_dataset_fn` builds the same stream as
the task (Model Garden's data loaders, `task.build_inputs`) and skips, in
each input pipeline, the per-replica batches the checkpoint's steps consumed.

Why a skip and not a checkpoint of the `tf.data` iterator (which
`tf.train.Checkpoint` can track):
- under MultiWorkerMirroredStrategy each worker's iterator holds its own
  shard's position, but a worker other than the chief saves into a temp dir
  nobody reads again and resumes from the chief's checkpoint (`runner`), so
  it would restore the chief's shard position and shuffle buffer;
- TPUStrategy's distributed iterators cannot be saved at all;
- an iterator checkpoint stores the shuffle and prefetch buffers: 156 KB
  on token_drop_bert_tiny's pipeline (shuffle_buffer_size=100, batch 32,
  seq 128; its model checkpoint is 7.6 MB), growing with the buffer and the
  example size;
- stateful random ops (dynamic masking) are not part of the iterator state,
  so the masks after a restore would differ anyway.
A skip needs no state but the step number, works alike on one process,
several workers and TPUs, and costs reading (not training on) the consumed
records once at the start of a resumed run.

It is exact because the stream is a pure function of the data seed:
1. `task.train_data.seed` seeds Model Garden's shuffles (files and records);
   when the user leaves it unset, `fix_data_seed` derives one from the run
   directory and params.yaml records it, so every worker and every resume
   shuffles alike;
2. static records (`BertPretrainDataLoader`) are decoded as stored;
3. text records (`BertPretrainTextDataLoader`'s dynamic masking) are masked
   by `ExactTextDataLoader` with stateless random ops seeded per example by
   (data seed, input pipeline, example index), instead of stateful ops whose
   draws depend on the order parallel map calls happen to run; its skip is
   of raw texts, before tokenizing.

Example:
>>> fn = train_dataset_fn(task, params.task.train_data, start_step=400)
>>> dataset = orbit.utils.make_distributed_dataset(strategy, fn)
"""

import zlib

import tensorflow as tf
import tensorflow_text as tf_text
from absl import logging
from official.common import dataset_fn as dataset_fns
from official.core import input_reader
from official.nlp.data import pretrain_text_dataloader

from token_dropping.train import recorded_run
from token_dropping.train.params import DUMMY


def fix_data_seed(data, model_dir):
    """Sets `data.seed` (a training data config) where the user left it unset.

    The seed params.yaml of `model_dir` recorded at the first start wins (so a
    moved run directory resumes alike); otherwise one derived from the
    `model_dir` string: every worker of a run computes the same one without
    talking, and different runs shuffle differently. Returns the seed.
    """
    if data.seed is not None:
        return data.seed
    recorded = _recorded_seed(model_dir)
    if recorded is not None:
        data.seed = recorded
        source = "params.yaml of this run"
    else:
        data.seed = zlib.crc32(model_dir.rstrip("/").encode()) & 0x7FFFFFFF
        source = "the run directory; params.yaml records it"
    logging.info("task.train_data.seed was unset: %d, from %s, so a resumed "
                 "run reads the data an uninterrupted one would.", data.seed,
                 source)
    return data.seed


def _recorded_seed(model_dir):
    seed = (recorded_run.read(model_dir) or {}).get("task.train_data.seed")
    return None if seed is None else int(seed)


def batches_per_step(input_context):
    """Per-replica batches one input pipeline yields per training step."""
    if input_context is None:
        return 1
    return (input_context.num_replicas_in_sync
            // input_context.num_input_pipelines)


def train_dataset_fn(task, data, start_step):
    """A dataset function for `orbit.utils.make_distributed_dataset`: the
    training data of `task` as `task.build_inputs(data)` reads it, from the
    batch of step `start_step` on."""

    def dataset_fn(input_context=None):
        skip = int(start_step) * batches_per_step(input_context)
        if (isinstance(data, pretrain_text_dataloader.BertPretrainTextDataConfig)
                and data.input_path != DUMMY):
            if not data.use_next_sentence_label:
                return ExactTextDataLoader(data).load(input_context,
                                                      skip_batches=skip)
            logging.warning(
                "task.train_data.use_next_sentence_label=true with text "
                "records: Model Garden's sentence pairing and masking are "
                "stateful random ops, so batches after a resume keep their "
                "texts but not their masks.")
        dataset = task.build_inputs(data, input_context)
        return dataset.skip(skip) if skip else dataset

    return dataset_fn


class ExactTextDataLoader(pretrain_text_dataloader.BertPretrainTextDataLoader):
    """`BertPretrainTextDataLoader` (no next-sentence labels) whose dynamic
    masks are a function of (data seed, input pipeline, example index).

    Model Garden's loader tokenizes and masks each batch with tf.random ops
    (`RandomItemSelector`, `MaskValuesChooser`); here each example is masked
    alone with the same tensorflow-text ops given stateless randomness, so
    the same example gets the same mask in every process and after a skip.
    The distribution is the same: `masking_rate` of the selectable pieces,
    at most `max_predictions_per_seq`, 80% [MASK] / 10% random / 10% kept.
    """

    def load(self, input_context=None, skip_batches=0):
        params = self._params
        per_replica = (input_context.get_per_replica_batch_size(
            params.global_batch_size) if input_context
                       else params.global_batch_size)
        pipeline = input_context.input_pipeline_id if input_context else 0
        base_seed = tf.constant([params.seed or 0, pipeline], tf.int64)

        def mask_one(index, record):
            seed = tf.random.experimental.stateless_fold_in(base_seed, index)
            return self._mask(record, seed)

        def skip_mask_and_batch(dataset, unused_context):
            dataset = dataset.enumerate().skip(skip_batches * per_replica)
            dataset = dataset.map(mask_one,
                                  num_parallel_calls=tf.data.AUTOTUNE)
            return dataset.batch(per_replica, params.drop_remainder)

        reader = input_reader.InputReader(
            params=params,
            dataset_fn=dataset_fns.pick_dataset_fn(params.file_type),
            decoder_fn=self._decode,
            transform_and_batch_fn=skip_mask_and_batch)
        return reader.read(input_context)

    def _mask(self, record, seed):
        """MG's `_bert_preprocess` (no NSP) for one example: a batch of 1."""
        seeds = [tf.random.experimental.stateless_fold_in(seed, i)
                 for i in range(3)]
        segments = [record[name][tf.newaxis]
                    for name in self._params.text_field_names]
        ids, segment_ids = self._tokenize(segments)  # [1, (pieces)]
        selector = tf_text.RandomItemSelector(
            self._max_predictions_per_seq, selection_rate=self._masking_rate,
            unselectable_ids=[self._cls_token, self._sep_token],
            shuffle_fn=lambda x: tf.gather(x, tf.argsort(
                tf.random.stateless_uniform(tf.shape(x), seeds[0]))))
        chooser = _StatelessMaskValuesChooser(
            seeds[1:], vocab_size=self._vocab_size,
            mask_token=self._mask_token)
        masked_ids, positions, masked_lm_ids = tf_text.mask_language_model(
            ids, item_selector=selector, mask_values_chooser=chooser)
        lengths = dict(input_word_ids=self._seq_length,
                       input_type_ids=self._seq_length,
                       masked_lm_positions=self._max_predictions_per_seq,
                       masked_lm_ids=self._max_predictions_per_seq)
        padded = {name: tf_text.pad_model_inputs(value, lengths[name])
                  for name, value in dict(
                      input_word_ids=masked_ids, input_type_ids=segment_ids,
                      masked_lm_positions=positions,
                      masked_lm_ids=masked_lm_ids).items()}
        inputs = {name: value[0][0] for name, value in padded.items()}
        inputs["masked_lm_weights"] = tf.cast(
            padded["masked_lm_ids"][1][0], tf.float32)
        inputs["input_mask"] = padded["input_word_ids"][1][0]
        return {name: tf.cast(t, tf.int32) if t.dtype == tf.int64 else t
                for name, t in inputs.items()}


class _StatelessMaskValuesChooser(tf_text.MaskValuesChooser):
    """tensorflow-text's `MaskValuesChooser.get_mask_values` with stateless
    draws: `seeds[0]` picks [MASK] / random / kept, `seeds[1]` the random
    token."""

    def __init__(self, seeds, **kwargs):
        super().__init__(**kwargs)
        self._seeds = seeds

    def get_mask_values(self, masked_lm_ids):
        ids = (masked_lm_ids if masked_lm_ids.ragged_rank == 1
               else masked_lm_ids.merge_dims(1, -1))
        flat = ids.flat_values
        draw = tf.random.stateless_uniform(tf.shape(flat), self._seeds[0])
        random_ids = tf.cast(tf.random.stateless_uniform(
            tf.shape(flat), self._seeds[1],
            maxval=tf.cast(self.vocab_size, tf.float32)), flat.dtype)
        mask_rate = self._mask_token_rate  # no public property
        values = tf.where(draw < mask_rate,
                          tf.cast(self.mask_token, flat.dtype), flat)
        values = tf.where((draw > mask_rate)
                          & (draw < mask_rate + self.random_token_rate),
                          random_ids, values)
        return ids.with_flat_values(values)

"""DatasetInfo: where a prepared dataset is and what shape it has.

A prepared directory holds the TFRecord shards, `vocab.txt`,
`special_tokens.json` and `manifest.json`; the manifest is written last, so a
directory with a manifest is complete. `DatasetInfo` is read from it.
"""

import dataclasses
import json
import os

import tensorflow as tf

from token_dropping.common.errors import UserError
from token_dropping.common.errors import first_line

MANIFEST_FILENAME = "manifest.json"
STATIC_FORMAT = "bert_pretrain_v2"  # For Model Garden's BertPretrainDataLoader.
TEXT_FORMAT = "bert_pretrain_text"  # For BertPretrainTextDataLoader.
STATIC_FEATURE_NAMES = (
    "input_word_ids", "input_mask", "input_type_ids", "masked_lm_positions",
    "masked_lm_ids", "masked_lm_weights")
TEXT_FEATURE_NAMES = ("text",)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A prepared pretraining dataset, as recorded in its manifest.

    Example:
    >>> info = ensure_default_dataset(seq_length=128)
    >>> info.train_input_path
    '/root/.cache/token_dropping/.../train-*-of-00004.tfrecord'
    >>> config = info.data_config("train", global_batch_size=32)

    Attributes:
        output_dir: the dataset directory.
        data_format: `bert_pretrain_v2` (static masks) or `bert_pretrain_text`.
        train_input_path: glob of the training shards, for a data config's
            `input_path`.
        validation_input_path: glob of the validation shards ("" if none).
        vocab_file: the WordPiece vocab the records were made with.
        vocab_size: the number of tokens (lines) in `vocab_file`.
        token_allow_list: ids of [UNK], [CLS], [SEP], [MASK] in that vocab.
        token_deny_list: the id of [PAD].
        seq_length: tokens per example.
        max_predictions_per_seq: masked-LM targets per example.
        manifest_path: the JSON manifest with source, counts and settings.
        special_tokens_path: the JSON with the special ids and allow/deny lists.
        num_train_examples: examples in the training shards.
        num_validation_examples: examples in the validation shards.
    """
    output_dir: str
    data_format: str
    train_input_path: str
    validation_input_path: str
    vocab_file: str
    vocab_size: int
    token_allow_list: tuple[int, ...]
    token_deny_list: tuple[int, ...]
    seq_length: int
    max_predictions_per_seq: int
    manifest_path: str
    special_tokens_path: str
    num_train_examples: int
    num_validation_examples: int

    @classmethod
    def from_manifest(cls, manifest_path: str) -> "DatasetInfo":
        """Reads the `DatasetInfo` of the dataset whose manifest is given.

        Raises:
            UserError: naming the manifest if it is damaged or incomplete.
        """
        try:
            return cls._from_manifest(manifest_path)
        except (KeyError, TypeError, AttributeError) as e:
            raise UserError(
                f"{manifest_path} is damaged (no {first_line(e)} where a "
                "manifest has it); remove it and prepare the dataset again "
                "(tools/prepare_data.py).") from None

    @classmethod
    def _from_manifest(cls, manifest_path: str) -> "DatasetInfo":
        manifest = read_manifest(manifest_path)
        # abspath would turn "gs://bucket/x" into "/cwd/gs:/bucket/x".
        output_dir = os.path.dirname(manifest_path if "://" in manifest_path
                                     else os.path.abspath(manifest_path))
        splits = manifest["splits"]
        special = manifest["special_tokens"]

        def input_path(split):
            pattern = splits[split]["input_path"] if split in splits else ""
            return os.path.join(output_dir, pattern) if pattern else ""

        def num_examples(split):
            return int(splits.get(split, {}).get("num_examples", 0))

        return cls(
            output_dir=output_dir,
            data_format=manifest["format"],
            train_input_path=input_path("train"),
            validation_input_path=input_path("validation"),
            vocab_file=os.path.join(output_dir, manifest["vocab_file"]),
            vocab_size=int(special["vocab_size"]),
            token_allow_list=tuple(special["token_allow_list"]),
            token_deny_list=tuple(special["token_deny_list"]),
            seq_length=int(manifest["seq_length"]),
            max_predictions_per_seq=int(manifest["max_predictions_per_seq"]),
            manifest_path=os.path.join(output_dir, MANIFEST_FILENAME),
            special_tokens_path=os.path.join(output_dir,
                                             manifest["special_tokens_file"]),
            num_train_examples=num_examples("train"),
            num_validation_examples=num_examples("validation"),
        )

    def data_config(self, split: str = "train", global_batch_size: int = 32,
                    **overrides):
        """Model Garden's data config that reads `split` of this dataset.

        Args:
            split: `train` or `validation`.
            global_batch_size: examples per step over all replicas.
            **overrides: other fields of the config (e.g. `drop_remainder`).

        Returns:
            A `BertPretrainDataConfig` (static masking, v2 feature names, no
            next-sentence labels) or a `BertPretrainTextDataConfig` (dynamic
            masking).
        """
        # Lazy: Model Garden's loaders only when asked for.
        from official.nlp.data import pretrain_dataloader
        from official.nlp.data import pretrain_text_dataloader
        if split not in ("train", "validation"):
            raise UserError(f"split={split!r} is not 'train' or 'validation'.")
        input_path = (self.train_input_path if split == "train"
                      else self.validation_input_path)
        common = dict(input_path=input_path,
                      global_batch_size=global_batch_size,
                      is_training=split == "train", seq_length=self.seq_length,
                      max_predictions_per_seq=self.max_predictions_per_seq,
                      use_next_sentence_label=False)
        common.update(overrides)
        if self.data_format == TEXT_FORMAT:
            return pretrain_text_dataloader.BertPretrainTextDataConfig(
                vocab_file_path=self.vocab_file, **common)
        return pretrain_dataloader.BertPretrainDataConfig(
            use_v2_feature_names=True, **common)


def read_manifest(manifest_path: str) -> dict:
    """Reads a manifest JSON.

    Raises:
        UserError: naming the file if it is not a JSON object (cut short by
            a full disk, say, or edited by hand).
    """
    try:
        with tf.io.gfile.GFile(manifest_path, "r") as f:
            manifest = json.load(f)
    except (ValueError, tf.errors.OpError) as e:  # JSONDecodeError, bad UTF-8
        raise UserError(
            f"{manifest_path} is damaged ({first_line(e)}); remove it and "
            "prepare the dataset again (tools/prepare_data.py).") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{manifest_path} is damaged (not a JSON object); "
                        "remove it and prepare the dataset again "
                        "(tools/prepare_data.py).")
    return manifest

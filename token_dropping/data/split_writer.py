"""SplitWriter: packs, masks and writes one split of a prepared dataset.

Tokenized documents come in (`add_document`, or `add_document_ids` for the
static packed layout); `SequencePacker` (`TokenPacker` for that layout) fills
sequences of `seq_length`; the static format adds [CLS]/[SEP] and masks each sequence
`dupe_factor` times (`MaskedLmMasker`), the text format keeps the text; the
examples go through `ShardedRecordWriter`'s seeded shuffle into the shards.
`DocumentRouter` decides each document's split (or drops a duplicate), and
`add_documents` tokenizes a batch of routed documents into their splits.
"""

import hashlib

import numpy as np

from token_dropping.data import examples
from token_dropping.data import masking
from token_dropping.data import record_writer
from token_dropping.data import sequence_packer
from token_dropping.data import token_packer
from token_dropping.data import vocab
from token_dropping.data import wordpiece

# Sequences masked and serialized together: enough to make numpy's per-call
# cost small, few enough that a batch's arrays stay small.
_MASK_BATCH_SEQUENCES = 256


class SplitWriter:
    """Packs, masks and writes one split's examples, counting as it goes."""

    def __init__(self, name, config, tokens, special, output_dir, profile,
                 input_shard: int | None = None, run_suffix: str = ""):
        """`input_shard`: a worker's input file (`sharded_build`); its
        records are kept in order, unshuffled, in one file for the merge.
        `run_suffix`: marks the shard names (a build written in place)."""
        self.run_suffix = run_suffix
        self.name = name
        self.profile = profile  # Times pack, mask, serialize and write.
        self.config = config
        self.static = config.output_format == "static"
        self.num_shards = (config.num_train_shards if name == "train"
                           else config.num_validation_shards)
        self.dupe_factor = config.dupe_factor if name == "train" else 1
        split_seed = [config.seed, 0 if name == "train" else 1]
        # Input shard 0 continues the one-stream masking, so one input file
        # gives the same records with any num_workers.
        self.rng = np.random.default_rng(
            split_seed + [0] + ([input_shard] if input_shard else []))
        if input_shard is None:
            self.writer = record_writer.ShardedRecordWriter(
                output_dir, name, self.num_shards, config.shuffle_buffer_size,
                rng=np.random.default_rng(split_seed + [1]),
                run_suffix=run_suffix)
        else:
            self.writer = record_writer.ShardedRecordWriter(
                output_dir, f"{name}-input{input_shard:05d}", 1,
                shuffle_buffer_size=1)
        self.packer = sequence_packer.SequencePacker(
            config.budget, packed=config.packed, split_sentences=self.static,
            separate_documents=self.static)
        # The static packed layout cuts whole documents of ids (the same
        # sequences, without a Python step per sentence).
        self.token_packer = token_packer.TokenPacker(
            config.budget, special["sep_id"]) if (
                self.static and config.packed) else None
        self.special = special
        self.masker = _masker(config, tokens, special) if self.static else None
        self._pending = []  # Static sequences not yet masked.
        self.counts = dict(documents=0, sentences=0, word_pieces=0, sequences=0,
                           tokens=0, padding_tokens=0)

    @property
    def num_examples(self) -> int:
        return self.writer.num_records

    def add_document_ids(self, num_sentences: int, ids: np.ndarray) -> None:
        """Adds a document as its sentences' ids end to end (needs
        `token_packer`: the static packed layout)."""
        self.counts["documents"] += 1
        self.counts["sentences"] += num_sentences
        self.counts["word_pieces"] += len(ids)
        self.profile.push("pack")
        for body in self.token_packer.add_document(ids):
            self._add_static(body)
        self.profile.pop()

    def add_document(self, texts: list[str], ids: list[np.ndarray]) -> None:
        self.counts["documents"] += 1
        self.counts["sentences"] += len(ids)
        self.counts["word_pieces"] += sum(len(x) for x in ids)
        payloads = ids if self.static else texts
        self.profile.push("pack")
        for pieces in self.packer.add_document(payloads, [len(x) for x in ids]):
            self._write_sequence(pieces)
        self.profile.pop()

    def close(self) -> None:
        self.profile.push("pack")
        for pieces in self.packer.finish():
            self._write_sequence(pieces)
        for body in (self.token_packer.finish() if self.token_packer
                     else ()):
            self._add_static(body)
        self.profile.pop()
        if self.static:
            self._write_static()
        with self.profile.stage("write"):
            self.writer.close()

    def stats(self) -> dict:
        input_path = record_writer.shard_pattern(self.name, self.num_shards,
                                                 self.run_suffix)
        stats = {"input_path": input_path, "files": self.writer.filenames,
                 "num_examples": self.num_examples,
                 "num_overlong_sentences": self.packer.num_overlong}
        stats.update({f"num_{k}": value for k, value in self.counts.items()})
        if self.static:
            stats["non_padding_fraction"] = self.counts["tokens"] / max(
                1, self.counts["tokens"] + self.counts["padding_tokens"])
        return stats

    def _write_sequence(self, pieces) -> None:
        if self.static:
            sep = self.special["sep_id"]
            self._add_static(np.concatenate(
                [np.array([sep]) if p is sequence_packer.SEPARATOR
                 else p.payload[p.start:p.end] for p in pieces]))
            return
        self.counts["sequences"] += 1
        text = " ".join(p.payload for p in pieces
                        if p is not sequence_packer.SEPARATOR)
        self.profile.push("serialize")
        record = examples.text_example(text)
        self.profile.pop()
        self._write(record)

    def _add_static(self, body: np.ndarray) -> None:
        """Adds [CLS] body [SEP] to the sequences to mask."""
        self.counts["sequences"] += 1
        ids = np.empty(len(body) + 2, np.int64)
        ids[0], ids[1:-1], ids[-1] = (self.special["cls_id"], body,
                                      self.special["sep_id"])
        self.counts["tokens"] += len(ids)
        self.counts["padding_tokens"] += self.config.seq_length - len(ids)
        self._pending.append(ids)
        if len(self._pending) >= _MASK_BATCH_SEQUENCES:
            self._write_static()

    def _write_static(self) -> None:
        """Masks the pending sequences `dupe_factor` times each and writes
        their records in that order (each sequence's maskings together)."""
        if not self._pending:
            return
        sequences, self._pending = self._pending, []
        profile = self.profile
        profile.push("mask")
        batch = self.masker.mask_batch(sequences, self.rng,
                                       repeats=self.dupe_factor)
        profile.pop()
        profile.push("serialize")
        records = examples.static_examples(
            batch, self.config.seq_length, self.config.max_predictions_per_seq,
            self.special["pad_id"])
        profile.pop()
        with profile.stage("write"):
            self.writer.write_many(records)

    def _write(self, record: bytes) -> None:
        self.profile.push("write")
        self.writer.write(record)
        self.profile.pop()


def document_digest(document: list[str]) -> bytes:
    return hashlib.sha256("\n".join(document).encode("utf-8")).digest()


class DocumentRouter:
    """Sends each document to a split by a hash of its text; drops repeats.

    A document is held out for validation when its hash falls under
    `validation_fraction`, and the first document always is (when > 0).
    """

    def __init__(self, validation_fraction: float):
        self.validation_fraction = validation_fraction
        self.num_duplicates = 0
        self._seen = set()

    def route(self, digest: bytes) -> str | None:
        """`train`, `validation`, or None for a duplicate."""
        key = int.from_bytes(digest[:8], "little")
        if key in self._seen:
            self.num_duplicates += 1
            return None
        held_out = (int.from_bytes(digest[8:16], "little") / 2**64 <
                    self.validation_fraction) or not self._seen
        self._seen.add(key)
        return "validation" if held_out and self.validation_fraction else (
            "train")


def add_documents(tokenizer, batch, config, profile) -> None:
    """Tokenizes a batch of `(SplitWriter, document)` and hands each over."""
    sentences = [s for _, document in batch for s in document]
    if not sentences:
        return
    profile.push("tokenize")
    flat, splits = tokenizer.tokenize(sentences)
    texts = (wordpiece.normalize_text(sentences, config.do_lower_case)
             if config.output_format == "text" else sentences)
    profile.pop()
    first = 0
    for split, document in batch:
        end = first + len(document)
        if split.token_packer is not None:
            split.add_document_ids(len(document),
                                   flat[splits[first]:splits[end]])
        else:
            split.add_document(texts[first:end], [
                flat[splits[i]:splits[i + 1]] for i in range(first, end)])
        first = end


def _masker(config, tokens, special) -> masking.MaskedLmMasker:
    """BERT's masking for this vocab; random replacements are real pieces."""
    continuations = [i for i, t in enumerate(tokens) if t.startswith("##")]
    return masking.MaskedLmMasker(
        mask_id=special["mask_id"],
        special_ids=[special["cls_id"], special["sep_id"]],
        replacement_ids=[i for i, t in enumerate(tokens)
                         if not vocab.is_special(t)],
        max_predictions_per_seq=config.max_predictions_per_seq,
        masked_lm_prob=config.masked_lm_prob,
        continuation_ids=continuations if config.whole_word_masking else None)

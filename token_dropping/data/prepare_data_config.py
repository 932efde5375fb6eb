"""PrepareDataConfig: every choice that decides a prepared dataset's bytes.

The fields mirror the flags of `tools/prepare_data.py`. Two configs with the
same fields (and the same source text and vocab) give the same records, which
is how an output directory or the cache recognizes its own dataset. Fields in
`NOT_IN_FINGERPRINT` decide only whether a run may go ahead, never the bytes.
"""

import dataclasses

from token_dropping.data import default_corpus
from token_dropping.data import text_files
from token_dropping.data import tfds_corpus
from token_dropping.data import vocab
from token_dropping.common.checks import as_int
from token_dropping.common.errors import UserError

OUTPUT_FORMATS = ("static", "text")
# Apache Beam runners for `runner` (`beam_build`); "" builds in local processes.
RUNNERS = ("DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner",
           "PortableRunner")
# num_workers and the Beam runner only spread the work: the records are
# decided by the shard layout (`input_shards`), which the fingerprint holds.
NOT_IN_FINGERPRINT = ("allow_undecodable", "num_workers", "runner",
                      "beam_pipeline_options")


def input_shards(num_workers, runner) -> str:
    """The shard layout `num_workers` and `runner` build with: `per_file`
    (workers or Beam: each input file is built alone) or `one` stream."""
    return "per_file" if num_workers > 1 or runner else "one"


@dataclasses.dataclass(frozen=True)
class PrepareDataConfig:
    """How to turn a corpus into pretraining records.

    Example:
    >>> config = PrepareDataConfig(
    ...     input_files="wiki/*.txt.gz", vocab_file="uncased/vocab.txt",
    ...     seq_length=512, max_predictions_per_seq=76, dupe_factor=5)
    >>> config.validate()

    Attributes:
        input_files: comma-separated globs of text files; "" for another source.
        input_format: `sentence_per_line` (BERT's) or `document_per_line`.
        tfds_name: a prepared TFDS dataset to read instead ("" for none).
        tfds_split: its split.
        tfds_data_dir: where it is prepared ("" for TFDS's default).
        tfds_text_key: its text feature.
        vocab_file: a WordPiece vocab to use; "" learns one from the corpus.
        vocab_size: the size to learn (BERT's layout reserves 104 ids).
        do_lower_case: uncased tokenization (lower case, accents stripped).
        vocab_max_sentences: learn the vocab from at most this many sentences
            (the first ones); bounds the learning time on large corpora.
        output_format: `static` (masked records for `BertPretrainDataLoader`) or
            `text` (raw text for `BertPretrainTextDataLoader`'s dynamic
            masking).
        seq_length: tokens per example, [CLS] and [SEP] included.
        max_predictions_per_seq: masked-LM targets per example (static).
        masked_lm_prob: fraction of tokens to predict (static), BERT's 0.15.
        dupe_factor: maskings of each training sequence (static); validation
            sequences are masked once.
        whole_word_masking: mask all pieces of a word together (static).
        packed: fill sequences across sentences and documents (the paper's
            sequence packing); False keeps each sequence inside one document.
        validation_fraction: share of documents held out, chosen by a hash of
            their text; the first document is always held out when > 0.
        num_train_shards: training TFRecord files.
        num_validation_shards: validation TFRecord files.
        shuffle_buffer_size: examples shuffled together before writing.
        seed: seeds masking and shuffling.
        max_documents: read only this many documents of the source (quick
            trials); None reads all.
        allow_undecodable: read input files of which more than 1% of the
            bytes are not UTF-8 text (replaced by U+FFFD); False stops at the
            first such file, naming it.
        num_workers: local processes building one input file each; above 1
            the records depend on the files, not on the count.
        runner: an Apache Beam runner (`RUNNERS`) that builds one input file
            per element instead of local processes, with the records of
            num_workers > 1; "" for none. Needs the `beam` extra.
        beam_pipeline_options: the runner's Beam pipeline options, comma-
            separated `name=value` pairs (TFDS's `--beam_pipeline_options`),
            e.g. `direct_num_workers=2,direct_running_mode=multi_processing`.
    """
    input_files: str = ""
    input_format: str = "sentence_per_line"
    tfds_name: str = ""
    tfds_split: str = "train"
    tfds_data_dir: str = ""
    tfds_text_key: str = "text"
    vocab_file: str = ""
    vocab_size: int = 8000  # Enough for the ~3 MB default corpus; BERT: 30522.
    do_lower_case: bool = True
    vocab_max_sentences: int = 1_000_000
    output_format: str = "static"
    seq_length: int = 128
    max_predictions_per_seq: int = 20  # BERT's for 128: 0.15 * 128, rounded up.
    masked_lm_prob: float = 0.15
    dupe_factor: int = 2  # Model Garden's create_pretraining_data uses 10.
    whole_word_masking: bool = False
    packed: bool = True
    validation_fraction: float = 0.05
    num_train_shards: int = 4
    num_validation_shards: int = 1
    shuffle_buffer_size: int = 10_000  # Examples; ~15 MB at seq_length 128.
    seed: int = 12345
    max_documents: int | None = None
    allow_undecodable: bool = False
    num_workers: int = 1
    runner: str = ""
    beam_pipeline_options: str = ""

    @property
    def input_shards(self) -> str:
        """How the input is cut for building: `one` stream or `per_file`."""
        return input_shards(self.num_workers, self.runner)

    @property
    def budget(self) -> int:
        """Word pieces per example: the room left by the special tokens."""
        # BertPretrainTextDataLoader trims to seq_length - 3 ([CLS], 2 [SEP]).
        return self.seq_length - (3 if self.output_format == "text" else 2)

    def validate(self) -> None:
        """Checks the fields against each other.

        Raises:
            UserError: naming the first bad value and what would be valid.
        """
        if self.input_files and self.tfds_name:
            raise UserError(
                f"input_files={self.input_files!r} and tfds_name="
                f"{self.tfds_name!r} are both set; give one source (or neither "
                "for the default corpus).")
        if self.input_format not in text_files.INPUT_FORMATS:
            raise UserError(
                f"input_format={self.input_format!r} is not one of "
                f"{', '.join(text_files.INPUT_FORMATS)}.")
        if self.output_format not in OUTPUT_FORMATS:
            raise UserError(
                f"output_format={self.output_format!r} is not one of "
                f"{', '.join(OUTPUT_FORMATS)}.")
        minimum_length = self.seq_length - self.budget + 1
        if self.seq_length < minimum_length:
            raise UserError(
                f"seq_length={self.seq_length} leaves no room for text next to "
                f"[CLS] and [SEP]; use seq_length >= {minimum_length}.")
        if self.output_format == "static" and not (
            1 <= self.max_predictions_per_seq <= self.budget):
            raise UserError(
                f"max_predictions_per_seq={self.max_predictions_per_seq} must "
                f"be in [1, {self.budget}]: seq_length={self.seq_length} minus "
                "[CLS] and [SEP].")
        if not 0.0 < self.masked_lm_prob <= 1.0:
            raise UserError(
                f"masked_lm_prob={self.masked_lm_prob} must be in (0, 1].")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise UserError(
                f"validation_fraction={self.validation_fraction} must be in "
                "[0, 1).")
        for name in ("dupe_factor", "num_train_shards", "num_validation_shards",
                     "vocab_max_sentences", "shuffle_buffer_size",
                     "num_workers"):
            as_int(name, getattr(self, name), 1)
        if self.max_documents is not None:
            as_int("max_documents", self.max_documents, 1, why="or None")
            if self.max_documents < 2 and self.validation_fraction > 0:
                raise UserError(
                    f"max_documents={self.max_documents} leaves nothing to "
                    "train on: validation always takes the first document "
                    f"(validation_fraction={self.validation_fraction}); give "
                    "at least 2, or validation_fraction=0.")
        self._validate_workers()
        if not self.vocab_file:
            vocab.check_learnable_vocab_size(self.vocab_size)

    def _validate_workers(self) -> None:
        """Checks num_workers, runner and beam_pipeline_options."""
        if self.runner and self.runner not in RUNNERS:
            raise UserError(f"runner={self.runner!r} is not one of "
                            f"{', '.join(RUNNERS)} (or empty for local "
                            "processes).")
        if self.beam_pipeline_options and not self.runner:
            raise UserError(
                f"beam_pipeline_options={self.beam_pipeline_options!r} needs "
                f"a runner (one of {', '.join(RUNNERS)}).")
        if self.runner and self.num_workers > 1:
            raise UserError(
                f"num_workers={self.num_workers} and runner={self.runner!r} "
                "are both set: with a runner its options set the parallelism "
                "(e.g. beam_pipeline_options=direct_num_workers=2); use "
                "num_workers=1.")
        spread = (f"runner={self.runner!r}" if self.runner
                  else f"num_workers={self.num_workers}")
        if self.input_shards == "per_file" and not self.input_files:
            raise UserError(
                f"{spread} needs input_files: workers build one input file "
                "each, and the "
                f"{'TFDS dataset' if self.tfds_name else 'default corpus'} is "
                "read by one process; use num_workers=1 and no runner.")

    def make_corpus(self, paths: list[str] | None = None):
        """The corpus this config reads (checks that text files exist).

        `paths`: read only these files, already matched (an input shard).
        """
        if self.input_files:
            return text_files.TextFileCorpus(
                self.input_files, self.input_format,
                allow_undecodable=self.allow_undecodable, paths=paths)
        if self.tfds_name:
            return tfds_corpus.TfdsCorpus(self.tfds_name, self.tfds_split,
                                          self.tfds_data_dir,
                                          self.tfds_text_key)
        return default_corpus.DefaultCorpus()

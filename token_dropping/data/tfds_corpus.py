"""TfdsCorpus: documents from a prepared TensorFlow Datasets dataset.

Each example's text feature is one document (e.g. a `wikipedia/20230601.en`
article), split into sentences. Nothing is ever downloaded: the dataset must
already be prepared in `data_dir` (`tfds build` or `download_and_prepare`).
"""

from typing import Iterator

from token_dropping.data import text
from token_dropping.common.errors import UserError


class TfdsCorpus:
    """Documents (lists of sentences) from a TFDS split.

    Example:
    >>> corpus = TfdsCorpus("wikipedia/20230601.en", "train", "/data/tfds")
    >>> next(iter(corpus.documents()))[:2]  # the first two sentences

    Args:
        name: the TFDS name, with config and version if needed.
        split: the split, any TFDS split expression (`train[:10%]`).
        data_dir: where the prepared dataset lives; TFDS's default when empty.
        text_key: the string feature holding the text.
    """

    def __init__(self, name: str, split: str = "train", data_dir: str = "",
                 text_key: str = "text"):
        self.name = name
        self.split = split
        self.data_dir = data_dir
        self.text_key = text_key
        self.undecodable_replacements = 0

    def describe(self) -> dict:
        """What the corpus is, for the manifest and the fingerprint: with the
        prepared dataset's version and each split's shard lengths and bytes
        (TFDS's `dataset_info.json`), so a dataset prepared again under the
        same name, other examples in it, makes a different dataset."""
        info = self._builder().info
        return {"name": "tfds", "tfds_name": self.name, "split": self.split,
                "data_dir": self.data_dir, "text_key": self.text_key,
                "version": str(info.version), "splits": {
                    name: dict(shard_lengths=list(split.shard_lengths),
                               num_bytes=split.num_bytes)
                    for name, split in sorted(info.splits.items())}}

    def _builder(self):
        """The dataset builder, checked to be prepared and to hold the text."""
        import tensorflow_datasets as tfds  # Lazy: slow to import.
        try:
            builder = tfds.builder(self.name, data_dir=self.data_dir or None)
        except Exception as e:  # TFDS raises several types for unknown names.
            # Its message lists every dataset; keep the first line and the hint.
            lines = str(e).splitlines()
            hints = [line for line in lines if "Did you mean" in line]
            raise UserError(
                f"tfds_name={self.name!r} is not a known TFDS dataset "
                f"({' '.join(lines[:1] + hints[:1])})") from e
        if not builder.is_prepared():
            raise UserError(
                f"tfds_name={self.name!r} is not prepared in "
                f"{builder.data_dir!r}; run `tfds build {self.name}` (or pass "
                "--tfds_data_dir where it is); nothing is downloaded here.")
        features = builder.info.features
        if self.text_key not in features:
            raise UserError(
                f"tfds_text_key={self.text_key!r} is not a feature of "
                f"{self.name!r}; it has {', '.join(sorted(features.keys()))}.")
        return builder

    def documents(self) -> Iterator[list[str]]:
        """Yields each example's text as a list of sentences."""
        import tensorflow_datasets as tfds  # Lazy: slow to import.
        builder = self._builder()
        try:
            dataset = builder.as_dataset(split=self.split, shuffle_files=False)
        except ValueError as e:
            raise UserError(f"tfds_split={self.split!r} is not valid for "
                            f"{self.name!r}: {e}") from e
        self.undecodable_replacements = 0
        for example in tfds.as_numpy(dataset):
            body, replaced = text.decode_text(example[self.text_key])
            self.undecodable_replacements += replaced
            sentences = [s for paragraph in body.split("\n")
                         for s in text.split_sentences(paragraph)]
            if sentences:
                yield sentences

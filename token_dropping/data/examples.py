"""tf.Example bytes in the formats of Model Garden's pretraining loaders.

`static_examples` writes the v2 features `BertPretrainDataLoader` reads
(`use_v2_feature_names=True`, no next-sentence label); `text_example` writes
the `text` feature `BertPretrainTextDataLoader` tokenizes and masks itself.

`static_examples` encodes a whole batch of masked sequences at once, without a
`tf.train.Example` per record: every record has the same six features, so its
bytes are fixed pieces (the feature names and the all-zero `input_type_ids`),
pieces that depend only on a row's length and number of targets (cached), and
three packed varint lists, encoded for the whole batch with numpy. The layout
is protobuf's wire format for `tf.train.Example` serialized with
`deterministic=True` (map entries sorted by feature name), which the tests
check against `tf.train.Example` itself, record by record.
"""

import functools

import numpy as np
import tensorflow as tf

_INT64_LIST, _FLOAT_LIST = 3, 2  # tf.train.Feature's fields.
_ONE, _ZERO = np.float32(1).tobytes(), np.float32(0).tobytes()


def static_examples(batch, seq_length: int, max_predictions_per_seq: int,
                    pad_id: int) -> list[bytes]:
    """Model Garden's v2 pretraining features, one record per batch row.

    Args:
        batch: a `masking.MaskedBatch`, rows no longer than `seq_length` and
            `max_predictions_per_seq` wide.
        seq_length: the padded length of the token features.
        max_predictions_per_seq: the padded length of the target features.
        pad_id: the id after each row's tokens in `input_word_ids`.

    Returns:
        Each row's serialized tf.Example, the bytes
        `tf.train.Example.SerializeToString(deterministic=True)` gives.
    """
    if seq_length < 1 or max_predictions_per_seq < 1:
        raise ValueError(f"seq_length={seq_length} and max_predictions_per_seq="
                         f"{max_predictions_per_seq} must be at least 1.")
    lengths = batch.lengths
    if len(lengths) and lengths.max() > seq_length:
        raise ValueError(f"A sequence of {lengths.max()} tokens does not fit "
                         f"seq_length={seq_length}.")
    if batch.positions.shape[1] != max_predictions_per_seq:
        raise ValueError(
            f"The batch has {batch.positions.shape[1]} target columns, not "
            f"max_predictions_per_seq={max_predictions_per_seq}.")
    word_ids = np.full([len(lengths), seq_length], pad_id, np.int64)
    width = min(seq_length, batch.masked.shape[1])
    in_row = np.arange(width) < lengths[:, None]
    word_ids[:, :width][in_row] = batch.masked[:, :width][in_row]
    layout = _layout(seq_length, max_predictions_per_seq)
    lists = [_Varints(values) for values in
             (word_ids, batch.labels, batch.positions)]
    # One pass per record, everything looked up once (the per-record cost).
    (words, words_at), (labels, labels_at), (positions, positions_at) = (
        (varints.data, varints.bounds) for varints in lists)
    word_key, label_key, position_key = layout.list_keys
    mask_and_type_ids, header = layout.mask_and_type_ids, layout.list_header
    weights, record_header = layout.weights, _record_header
    records = []
    for row, length, num_targets in zip(range(len(lengths)), lengths.tolist(),
                                        batch.num_targets.tolist()):
        w, w_end = words_at[row], words_at[row + 1]
        l, l_end = labels_at[row], labels_at[row + 1]
        p, p_end = positions_at[row], positions_at[row + 1]
        body = b"".join((
            mask_and_type_ids(length),
            header(word_key, w_end - w), words[w:w_end],
            header(label_key, l_end - l), labels[l:l_end],
            header(position_key, p_end - p), positions[p:p_end],
            weights(num_targets)))
        records.append(record_header(len(body)) + body)
    return records


@functools.lru_cache(maxsize=4096)
def _record_header(body_size: int) -> bytes:
    """A record's bytes before its body: `Example.features` (field 1)."""
    return b"\x0a" + _varint(body_size)


def static_example(masked, positions, labels, seq_length,
                   max_predictions_per_seq, pad_id) -> bytes:
    """One sequence's record (see `static_examples`)."""
    from token_dropping.data import masking  # pylint: disable=import-outside-toplevel
    num_targets = len(positions)
    padded = np.zeros([2, 1, max_predictions_per_seq], np.int64)
    padded[:, 0, :num_targets] = positions, labels
    return static_examples(masking.MaskedBatch(
        np.asarray(masked, np.int64)[None], np.array([len(masked)]),
        padded[0], padded[1], np.array([num_targets])),
        seq_length, max_predictions_per_seq, pad_id)[0]


def text_example(text: str) -> bytes:
    return serialize({"text": tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))})


def serialize(features: dict) -> bytes:
    """A tf.Example's bytes, the same in every process.

    Protobuf writes map entries (the feature names) in an order that varies
    between processes unless asked to sort them.
    """
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString(deterministic=True)


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint of a length (non-negative)."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _map_entry(key: str, feature: bytes) -> bytes:
    """One `Features.feature` entry (field 1): key (1), Feature (2)."""
    return _field(1, _field(1, key.encode("utf-8")) + _field(2, feature))


class _Varints:
    """The packed varint bytes of each row of an int array.

    Ids and positions under 2**16 come from a table of their 1 to 3 bytes;
    other values (and negatives, as protobuf's 10-byte two's complement) are
    encoded 7 bits at a time.
    """

    def __init__(self, values: np.ndarray):
        if values.size and 0 <= values.min() and values.max() < 1 << 16:
            codes, sizes = _small_varints()
            num_bytes = sizes[values]
            groups = codes[values].view(np.uint8).reshape(*values.shape, 4)
        else:
            num_bytes, groups = _any_varints(values)
        keep = np.arange(groups.shape[-1]) < num_bytes[..., None]
        self.data = groups[keep].tobytes()
        ends = np.cumsum(num_bytes.sum(axis=-1))
        self.bounds = [0] + ends.tolist()


@functools.lru_cache(maxsize=1)
def _small_varints():
    """Each value under 2**16: its varint bytes (little-endian in a uint32)
    and their number."""
    num_bytes, groups = _any_varints(np.arange(1 << 16))
    codes = np.zeros([1 << 16, 4], np.uint8)
    codes[:, :groups.shape[1]] = groups
    return codes.view("<u4")[:, 0], num_bytes


def _any_varints(values):
    """(bytes per value, [..., most bytes] the bytes, 7 bits each)."""
    values = values.astype(np.uint64)  # Negatives: two's complement.
    num_bytes = np.ones(values.shape, np.int64)
    for group in range(1, 10):
        more = values >= np.uint64(1 << 7 * group)
        if not more.any():
            break
        num_bytes += more
    most = int(num_bytes.max(initial=1))
    shifts = np.arange(most, dtype=np.uint64) * np.uint64(7)
    groups = ((values[..., None] >> shifts) & np.uint64(0x7F)).astype(
        np.uint8)
    groups[np.arange(most) < num_bytes[..., None] - 1] |= 0x80
    return num_bytes, groups


@functools.lru_cache(maxsize=8)
def _layout(seq_length: int, max_predictions_per_seq: int) -> "_Layout":
    return _Layout(seq_length, max_predictions_per_seq)


class _Layout:
    """The byte pieces of one record shape, in feature-name order."""

    # The int lists whose sizes vary, in sorted order between the fixed ones.
    list_keys = ("input_word_ids", "masked_lm_ids", "masked_lm_positions")

    def __init__(self, seq_length, max_predictions_per_seq):
        self.seq_length = seq_length
        self.max_predictions_per_seq = max_predictions_per_seq
        self._headers = {}
        self._mask_and_type_ids = {}
        self._weights = {}

    def mask_and_type_ids(self, length: int) -> bytes:
        """`input_mask` (1s then 0s) and `input_type_ids` (0s)."""
        if length not in self._mask_and_type_ids:
            pad = self.seq_length - length
            self._mask_and_type_ids[length] = _map_entry(
                "input_mask", _int_list(b"\x01" * length + b"\x00" * pad)
            ) + _map_entry("input_type_ids",
                           _int_list(b"\x00" * self.seq_length))
        return self._mask_and_type_ids[length]

    def list_header(self, key: str, payload_size: int) -> bytes:
        """An int list entry's bytes before its `payload_size` packed bytes."""
        if (key, payload_size) not in self._headers:
            marker = b"\xff" * payload_size  # Stands for the payload.
            entry = _map_entry(key, _int_list(marker))
            self._headers[key, payload_size] = entry[:-payload_size]
        return self._headers[key, payload_size]

    def weights(self, num_targets: int) -> bytes:
        """`masked_lm_weights`: 1.0 per target, then 0.0."""
        if num_targets not in self._weights:
            values = _ONE * num_targets + _ZERO * (
                self.max_predictions_per_seq - num_targets)
            self._weights[num_targets] = _map_entry(
                "masked_lm_weights", _field(_FLOAT_LIST, _field(1, values)))
        return self._weights[num_targets]


def _int_list(packed: bytes) -> bytes:
    """A Feature holding an Int64List (field 3) of packed varints (field 1)."""
    return _field(_INT64_LIST, _field(1, packed))

"""DropLayout: which layers run on the kept tokens, and how many are kept.

Every rule about the layout lives here, each with one message, in pure
Python (no TensorFlow): the encoder, the FLOP model, the benchmark and the
trainer's config checks all resolve and validate through `DropLayout`.

With `num_layers` layers, layers `[0, drop_start_layer)` see every token;
`drop_start_layer` is the transition layer (kept tokens attend to all);
layers `(drop_start_layer, drop_end_layer)` see the kept tokens only; layers
`[drop_end_layer, num_layers)` see every token again.

Example:
>>> DropLayout.resolve(num_layers=12, token_keep_k=256, seq_length=512)
DropLayout(num_layers=12, token_keep_k=256, drop_start_layer=5, drop_end_layer=11)

Reference: Hou et al., "Token Dropping for Efficient BERT Pretraining",
ACL 2022, arXiv 2203.13240 (section 3: the last layer sees all tokens).
"""

import dataclasses

from token_dropping.common.checks import as_int
from token_dropping.common.checks import as_positive_int
from token_dropping.common.errors import UserError


def default_drop_layers(num_layers):
    """The paper's layer range: `(num_layers // 2 - 1, num_layers - 1)`.

    For 12 layers: layers 0-4 see every token, layer 5 is the transition,
    layers 6-10 see the kept tokens only, and layer 11 sees every token again.
    Very shallow models (1-3 layers) clamp the range so that it stays valid:
    it starts at 0 and ends at least one layer later.
    """
    num_layers = as_positive_int("num_layers", num_layers)
    start = max(0, num_layers // 2 - 1)
    end = num_layers - 1 if num_layers - 1 > start else num_layers
    return start, end


def check_keep_k_fits(token_keep_k, length_name, length):
    """Raises UserError unless `token_keep_k <= length`."""
    if token_keep_k > length:
        raise UserError(
            f"token_keep_k={token_keep_k} exceeds {length_name}={length}; "
            f"choose token_keep_k <= {length_name} (the paper keeps half).")


@dataclasses.dataclass(frozen=True)
class DropLayout:
    """A validated token-drop layout (see the module docstring)."""
    num_layers: int
    token_keep_k: int
    drop_start_layer: int
    drop_end_layer: int

    @classmethod
    def resolve(cls, *, num_layers, token_keep_k, drop_start_layer=None,
                drop_end_layer=None, seq_length=None,
                seq_length_name="seq_length"):
        """Fills the default layer range and checks every rule.

        Args:
            num_layers: int. Transformer layers.
            token_keep_k: int. Tokens kept per sequence in the dropped layers.
            drop_start_layer, drop_end_layer: int or None (the paper's range).
            seq_length: int or None. If given, `token_keep_k` must fit in it.
            seq_length_name: how to name `seq_length` in a message.

        Raises:
            UserError: one line naming the offending values.
        """
        num_layers = as_positive_int("num_layers", num_layers)
        token_keep_k = as_positive_int("token_keep_k", token_keep_k)
        default_start, default_end = default_drop_layers(num_layers)
        start = default_start if drop_start_layer is None else drop_start_layer
        end = default_end if drop_end_layer is None else drop_end_layer
        try:
            start, end = as_int("drop_start_layer", start), as_int(
                "drop_end_layer", end)
            valid = 0 <= start < end <= num_layers
        except UserError:
            valid = False
        if not valid:
            raise UserError(
                f"drop_start_layer={start!r} and drop_end_layer={end!r} must "
                f"satisfy 0 <= drop_start_layer < drop_end_layer <= "
                f"num_layers={num_layers}.")
        if seq_length is not None:
            check_keep_k_fits(token_keep_k, seq_length_name,
                              as_positive_int(seq_length_name, seq_length))
        return cls(num_layers, token_keep_k, start, end)

    @property
    def full_layers(self):
        """Layers that see every token (before and after the drop)."""
        return self.drop_start_layer + (self.num_layers - self.drop_end_layer)

    @property
    def kept_only_layers(self):
        """Layers after the transition that see the kept tokens only."""
        return self.drop_end_layer - self.drop_start_layer - 1

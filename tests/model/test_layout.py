"""model/layout.py: the default layer range and every rule, by hand."""

import numpy as np
import pytest

from token_dropping.common.errors import UserError
from token_dropping.model.layout import DropLayout
from token_dropping.model.layout import default_drop_layers


@pytest.mark.parametrize("num_layers,start,end", [
    (1, 0, 1),   # the one layer is the transition
    (2, 0, 1),
    (3, 0, 2),
    (4, 1, 3),
    (6, 2, 5),
    (12, 5, 11),  # BERT-base: 0-4 full, 5 transition, 6-10 kept, 11 full
    (24, 11, 23),  # BERT-large
])
def test_default_range(num_layers, start, end):
    assert default_drop_layers(num_layers) == (start, end)
    layout = DropLayout.resolve(num_layers=num_layers, token_keep_k=1)
    assert (layout.drop_start_layer, layout.drop_end_layer) == (start, end)


def test_layer_counts_of_bert_base():
    layout = DropLayout.resolve(num_layers=12, token_keep_k=256,
                                seq_length=512)
    assert layout == DropLayout(12, 256, 5, 11)
    assert layout.full_layers == 6  # 0-4 and 11
    assert layout.kept_only_layers == 5  # 6-10
    # Every layer is full, the transition, or kept-only.
    assert layout.full_layers + 1 + layout.kept_only_layers == 12


def test_an_explicit_range_and_numpy_integers():
    layout = DropLayout.resolve(num_layers=np.int64(4), token_keep_k=np.int32(3),
                                drop_start_layer=np.int64(0),
                                drop_end_layer=4, seq_length=3)
    assert layout == DropLayout(4, 3, 0, 4)
    assert all(type(v) is int for v in (layout.num_layers,
                                        layout.drop_end_layer))
    assert layout.full_layers == 0 and layout.kept_only_layers == 3


@pytest.mark.parametrize("kwargs,message", [
    (dict(drop_start_layer=2, drop_end_layer=2),
     "drop_start_layer=2 and drop_end_layer=2 must satisfy 0 <= "
     "drop_start_layer < drop_end_layer <= num_layers=4."),
    (dict(drop_start_layer=-1), "drop_start_layer=-1 and drop_end_layer=3"),
    (dict(drop_end_layer=5), "drop_end_layer=5 must satisfy"),
    (dict(drop_start_layer=1.5), "drop_start_layer=1.5 and"),
    (dict(token_keep_k=0), "token_keep_k=0 must be a positive integer."),
    (dict(num_layers=0), "num_layers=0 must be a positive integer."),
    (dict(seq_length=4),
     "token_keep_k=6 exceeds seq_length=4; choose token_keep_k <= "
     "seq_length (the paper keeps half)."),
    (dict(seq_length=4, seq_length_name="max_sequence_length"),
     "token_keep_k=6 exceeds max_sequence_length=4"),
])
def test_each_rule_is_one_line_naming_the_values(kwargs, message):
    kwargs = dict(dict(num_layers=4, token_keep_k=6), **kwargs)
    with pytest.raises(UserError) as error:
        DropLayout.resolve(**kwargs)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_keep_k_may_equal_the_sequence_length():
    assert DropLayout.resolve(num_layers=4, token_keep_k=12,
                              seq_length=12).token_keep_k == 12

"""train/params.py: what a mode reads, pretraining or not, the encoder."""

import pytest
from official.core import exp_factory

import token_dropping  # noqa: F401  (registers the experiments)
from token_dropping.model.encoder_config import TokenDropBertEncoderConfig
from token_dropping.train import finetuning_experiments  # noqa: F401
from token_dropping.train import params as run_params


@pytest.mark.parametrize("mode,splits", [
    ("train", ["train_data"]),
    ("eval", ["validation_data"]),
    ("continuous_eval", ["validation_data"]),
    ("train_and_eval", ["train_data", "validation_data"]),
    ("train_and_post_eval", ["train_data", "validation_data"]),
])
def test_uses_is_the_data_a_mode_reads(mode, splits):
    assert run_params.uses(mode) == splits


def test_pretraining_and_encoder_config():
    ours = exp_factory.get_exp_config("token_drop_bert_tiny")
    plain = exp_factory.get_exp_config("bert_tiny")
    finetune = exp_factory.get_exp_config("bert/sentence_prediction")
    assert run_params.is_pretraining(ours)
    assert run_params.is_pretraining(plain)
    assert not run_params.is_pretraining(finetune)
    assert isinstance(run_params.encoder_config(ours),
                      TokenDropBertEncoderConfig)
    assert not isinstance(run_params.encoder_config(plain),
                          TokenDropBertEncoderConfig)

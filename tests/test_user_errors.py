"""Every user-facing entry rejects bad input with one `UserError` line naming
the offending value (tools print it as `<tool>.py: error: <message>`)."""

import pytest

from token_dropping.bench import benchmark
from token_dropping.train import experiment_configs as experiments
from token_dropping.model import flops
from token_dropping.model.encoder_config import TokenDropBertEncoderConfig
from token_dropping.model.encoder_config import build_token_drop_bert_encoder
from token_dropping.data import PackageDocsCorpus
from token_dropping.data import PrepareDataConfig
from token_dropping.data import TextFileCorpus
from token_dropping.data import special_token_ids
from token_dropping.common.errors import UserError


@pytest.mark.parametrize("call,value", [
    (lambda: flops.flop_ratio(seq_length=8, hidden_size=4, num_layers=4,
                              inner_dim=16, token_keep_k=4, vocab_size=10),
     "max_predictions_per_seq=None"),
    (lambda: benchmark.check_arguments(preset="tiny", steps=0), "steps=0"),
    (lambda: benchmark.resolve_sizes("huge"), "preset='huge'"),
    (lambda: experiments.variant_experiment("tiny", "nope"),
     "variant='nope'"),
    (lambda: build_token_drop_bert_encoder(TokenDropBertEncoderConfig(
        return_attention_scores=True)), "return_attention_scores"),
    (lambda: PrepareDataConfig(input_format="xml").validate(),
     "input_format='xml'"),
    (lambda: PrepareDataConfig(runner="Spark!").validate(), "runner='Spark!'"),
    # Validation takes the first document: the message blamed the source.
    (lambda: PrepareDataConfig(max_documents=1).validate(),
     "max_documents=1 leaves nothing to train on"),
    (lambda: TextFileCorpus("a.txt", input_format="xml"),
     "input_format='xml'"),
    (lambda: PackageDocsCorpus(heldout_share=2), "heldout_share=2"),
    (lambda: special_token_ids("/no/such/vocab.txt"),
     "vocab_file='/no/such/vocab.txt'"),
])
def test_bad_input_is_one_user_error_line(call, value):
    with pytest.raises(UserError) as error:
        call()
    message = str(error.value)
    assert value in message and "\n" not in message, message

"""The export's Hugging Face folder, checked by a loader we did not write.

test_export's tiny token-dropping run is exported through the real
tools/export_bert.py; its `hf/` folder is then loaded by KerasHub (Keras 3,
TensorFlow backend, no PyTorch): `BertBackbone.from_preset` runs KerasHub's
own converter of Hugging Face BERT safetensors
(keras_hub/src/utils/transformers/convert_bert.py). Its outputs must equal
those of Model Garden's `BertEncoderV2` restored from the export's checkpoint,
on a batch with padding. Keras 3 and tf_keras live side by side in this
process: KerasHub builds Keras 3 layers, Model Garden tf_keras ones.

KerasHub's `BertMaskedLM` does not load a Hugging Face MLM head (its loader
ports the backbone only, and its head differs from BERT's: exact gelu,
LayerNorm epsilon 1e-5), so the head is checked by Hugging Face's
`BertLMPredictionHead` transcribed to numpy over KerasHub's sequence output,
reading the safetensors file by Hugging Face's names.
"""

import json
import os

import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from official.core import task_factory
from official.modeling import activations
from official.nlp.configs import bert as bert_configs
from official.nlp.modeling.networks import BertEncoderV2
from safetensors import safe_open
from safetensors.numpy import load_file

from helpers import SHRINK_HIDDEN as HIDDEN
from helpers import SHRINK_SEQ as SEQ
from helpers import SHRINK_VOCAB as VOCAB
from helpers import padded_inputs as inputs
from helpers import pretraining_model
from in_process import tool_in_process
from token_dropping.export import hf
from token_dropping.common.errors import UserError
from token_dropping.export.bert import export_bert
from token_dropping.export.run_reader import read_run_params

LAYERS = 2  # token_drop_bert_tiny shrunk by test_training's SHRINK
# Per layer: Q, K, V, attention output (weight, bias), 2 LayerNorms
# (gamma, beta), intermediate and output dense (weight, bias).
PER_LAYER = 4 * 2 + 2 * 2 + 2 * 2
# Embeddings (3 tables, LayerNorm), pooler, MLM head (transform dense,
# LayerNorm, output bias); the decoder is tied to the word embeddings.
OUTSIDE_LAYERS = 3 + 2 + 2 + 2 + 2 + 1


@pytest.fixture(scope="module")
def folder(exported):
    return os.path.join(exported, "hf")


def gelu_new(x):
    """Hugging Face's `gelu_new` (activations.NewGELUActivation), in numpy."""
    return 0.5 * x * (1.0 + np.tanh(
        np.sqrt(2.0 / np.pi) * (x + 0.044715 * np.power(x, 3.0))))


def layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def keras_hub_inputs(batch):
    return {"token_ids": batch["input_word_ids"],
            "segment_ids": batch["input_type_ids"],
            "padding_mask": batch["input_mask"]}


@pytest.fixture(scope="module")
def backbone(folder):
    # KerasHub's converter takes the sizes from config.json but not the
    # positions and segments: it assumes BERT-base's 512 and 2.
    return keras_hub.models.BertBackbone.from_preset(
        folder, max_sequence_length=SEQ, num_segments=2)


def test_folder_has_config_weights_and_tokenizer_files(folder, run):
    assert sorted(os.listdir(folder)) == [
        "config.json", "model.safetensors", "special_tokens_map.json",
        "tokenizer_config.json", "vocab.txt"]
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    assert config["model_type"] == "bert"
    assert config["architectures"] == ["BertForMaskedLM"]
    assert (config["vocab_size"], config["hidden_size"],
            config["num_hidden_layers"], config["max_position_embeddings"],
            config["type_vocab_size"], config["pad_token_id"]) == (
                VOCAB, HIDDEN, LAYERS, SEQ, 2, 0)
    assert config["hidden_act"] == "gelu_new"
    assert config["tie_word_embeddings"] is True
    with open(os.path.join(folder, "tokenizer_config.json")) as f:
        tokenizer = json.load(f)
    assert tokenizer["do_lower_case"] is True
    assert tokenizer["tokenizer_class"] == "BertTokenizer"
    with open(os.path.join(folder, "special_tokens_map.json")) as f:
        assert set(json.load(f).values()) == {
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    with open(os.path.join(folder, "vocab.txt")) as a, open(run["vocab"]) as b:
        assert a.read() == b.read()
    with safe_open(os.path.join(folder, "model.safetensors"),
                   framework="np") as f:
        assert f.metadata() == {"format": "pt"}
        names = set(f.keys())
    assert len(names) == LAYERS * PER_LAYER + OUTSIDE_LAYERS
    assert "cls.predictions.decoder.weight" not in names  # tied


def test_gelu_new_is_model_gardens_gelu():
    """config.json's hidden_act: Model Garden's "gelu" (bert_config.json's
    "Text>gelu") is the tanh approximation, which `gelu_new` writes out;
    the exact erf gelu (Hugging Face's "gelu") differs by far more than the
    tolerance."""
    x = np.linspace(-6.0, 6.0, 1201).astype(np.float32)
    model_garden = activations.gelu(tf.constant(x)).numpy()
    np.testing.assert_allclose(gelu_new(x), model_garden, atol=1e-6)
    exact = tf.nn.gelu(tf.constant(x), approximate=False).numpy()
    assert np.abs(exact - model_garden).max() > 1e-4


def test_keras_hub_backbone_equals_bert_encoder_v2(exported, backbone):
    with open(os.path.join(exported, "bert_config.json")) as f:
        encoder = BertEncoderV2(**json.load(f))
    batch = inputs(seed=2)  # rows 1 and 2 padded
    encoder(batch)
    tf.train.Checkpoint(encoder=encoder).read(
        os.path.join(exported, "bert_model.ckpt")
    ).assert_existing_objects_matched()
    expected = encoder(batch, training=False)
    actual = backbone(keras_hub_inputs(batch), training=False)
    assert np.asarray(batch["input_mask"]).min() == 0
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(np.asarray(actual[key]),
                                   expected[key].numpy(), atol=1e-4,
                                   err_msg=key)


def test_hf_mlm_head_gives_the_pretraining_models_logits(folder, backbone,
                                                         run):
    model = pretraining_model(run)  # BertPretrainerV2, its own MLM head
    batch = inputs(seed=3)
    positions = np.array([[1, 5, 30], [2, 7, 19], [1, 3, 8]], np.int32)
    expected = model(dict(batch, masked_lm_positions=tf.constant(positions)),
                     training=False)["mlm_logits"].numpy()

    weights = load_file(os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json")) as f:
        eps = json.load(f)["layer_norm_eps"]
    sequence = np.asarray(backbone(keras_hub_inputs(batch),
                                   training=False)["sequence_output"])
    hidden = np.take_along_axis(sequence, positions[..., None], axis=1)
    # BertLMPredictionHead: transform (dense, gelu_new, LayerNorm), then the
    # decoder tied to the word embeddings, plus its own bias.
    prefix = "cls.predictions.transform."
    hidden = gelu_new(hidden @ weights[prefix + "dense.weight"].T
                      + weights[prefix + "dense.bias"])
    hidden = layer_norm(hidden, weights[prefix + "LayerNorm.gamma"],
                        weights[prefix + "LayerNorm.beta"], eps)
    logits = (hidden @ weights["bert.embeddings.word_embeddings.weight"].T
              + weights["cls.predictions.bias"])
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    assert np.abs(weights["cls.predictions.bias"]).max() > 0  # trained


def test_keras_hub_tokenizer_reads_the_tokenizer_files(folder):
    tokenizer = keras_hub.models.BertTokenizer.from_preset(folder)
    assert tokenizer.lowercase
    assert [tokenizer.token_to_id(t) for t in (
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 100, 101, 102,
                                                           103]
    ids = tokenizer("PIECE7 piece95")
    assert np.asarray(ids).tolist() == [111, 199]


def write_checkpoint_with_head(run, folder):
    """The run's model plus a next-sentence head (a BertPretrainerV2
    classification head), saved as Model Garden's trainer saves it."""
    params, _ = read_run_params(run["model_dir"])
    params.task.model.cls_heads = [bert_configs.ClsHeadConfig(
        inner_dim=HIDDEN, num_classes=2, name="next_sentence")]
    model = task_factory.get_task(params.task).build_model()
    model(dict(inputs(), masked_lm_positions=tf.ones((3, 2), tf.int32)))
    return tf.train.Checkpoint(**model.checkpoint_items).write(
        str(folder / "ckpt-1"))


def test_unmapped_variable_is_one_line_and_nothing_written(run, tmp_path):
    checkpoint = write_checkpoint_with_head(run, tmp_path)
    output_dir = tmp_path / "out" / "bert"
    with pytest.raises(UserError) as error:
        export_bert(run["model_dir"], str(output_dir), checkpoint=checkpoint)
    message = str(error.value)
    assert message.startswith("Hugging Face folder: the checkpoint's "
                              "variable next_sentence"), message
    assert ("is not one of BERT's encoder or MLM-head variables (a "
            "next-sentence head's, say), so Hugging Face's BERT has no name "
            "for it") in message
    assert "TABLE" not in message and "hf.py" not in message
    assert message.endswith("export with --nohuggingface.")
    assert "\n" not in message
    assert not (tmp_path / "out").exists()
    # Without the folder, the rest exports as before (the tool's main in this
    # process: the session's `exported` fixture runs its command line).
    result = tool_in_process(
        "export_bert.py", f"--model_dir={run['model_dir']}",
        f"--checkpoint={checkpoint}", "--nohuggingface",
        f"--output_dir={output_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "hf" not in os.listdir(output_dir)


def test_table_refuses_unknown_and_missing_variables():
    with pytest.raises(UserError, match=(
            r"variable encoder/_extra/kernel \[2, 2\] is not one of BERT's "
            r"encoder or MLM-head variables")):
        hf.to_hf_tensors({"encoder/_extra/kernel": np.zeros((2, 2))}, 1)
    with pytest.raises(UserError, match=(
            "lacks 1 variables Hugging Face's BERT needs, e.g. "
            "encoder/_pooler_layer/bias")):
        hf.to_hf_tensors({mg.format(i=0): np.zeros((2, 2, 2))
                          for mg, name, _ in hf.TABLE if name != hf.TIED
                          and mg.startswith("encoder/")
                          and not mg.endswith("_pooler_layer/bias")}, 1)


def test_encoder_only_checkpoint_gives_bert_model(run, exported, tmp_path):
    # The export's own bert_model.ckpt holds the encoder without the head.
    result = export_bert(
        run["model_dir"], str(tmp_path / "again"),
        checkpoint=os.path.join(exported, "bert_model.ckpt"))
    with open(os.path.join(result.huggingface, "config.json")) as f:
        assert json.load(f)["architectures"] == ["BertModel"]
    again = load_file(os.path.join(result.huggingface, "model.safetensors"))
    first = load_file(os.path.join(exported, "hf", "model.safetensors"))
    assert len(again) == LAYERS * PER_LAYER + OUTSIDE_LAYERS - 5
    for name, value in again.items():
        np.testing.assert_array_equal(value, first[name], err_msg=name)

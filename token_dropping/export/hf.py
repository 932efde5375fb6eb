"""hf: a Model Garden BERT as a Hugging Face folder.

`export_bert` writes, beside the Model Garden checkpoint, the folder that
Hugging Face's `BertModel` / `BertForMaskedLM` (`from_pretrained(folder)`) and
KerasHub's `BertBackbone.from_preset(folder)` load:

    config.json              model_type "bert", the sizes, hidden_act
    model.safetensors        Hugging Face's parameter names and layouts,
                             written with the `safetensors` package's numpy API
                             (no PyTorch needed)
    vocab.txt                the WordPiece vocabulary
    tokenizer_config.json    BertTokenizer, do_lower_case, special tokens
    special_tokens_map.json  [UNK] [SEP] [PAD] [CLS] [MASK]

The conversion is one table (`TABLE`) from Model Garden's variable paths (the
pretraining checkpoint's object graph: `encoder/...` is the
`BertEncoderV2`, `masked_lm/...` the MLM head of `BertPretrainerV2`) to
Hugging Face's names, with the layout change each needs. A variable the
table does not name is refused, never dropped. A checkpoint with the MLM
head gives `BertForMaskedLM`, an encoder-only one (such as the export's own
`bert_model.ckpt`) `BertModel`.

Choices, and why:

- `hidden_act: "gelu_new"`. Model Garden's "gelu" is the tanh approximation
  (`tf_keras.activations.gelu(x, approximate=True)`); Hugging Face's
  `gelu_new` (NewGELUActivation) is that formula written out,
  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), and every `transformers`
  version knows it. `gelu_pytorch_tanh` is the same function fused in PyTorch,
  but newer; plain `gelu` would be the exact erf form, which is not this model.
- LayerNorm parameters are named `gamma` / `beta`, the TensorFlow-era names:
  KerasHub's BERT converter reads only these, and `transformers` renames
  them to `weight` / `bias` when it loads (its "legacy" renaming).
- The MLM head's output weights are the word embeddings (tied, as in
  `BertForMaskedLM`), so `cls.predictions.decoder.weight` is not stored, as
  `save_pretrained` does not store it either.
- The tensors keep PyTorch's layout (`nn.Linear` weights are
  [out_features, in_features]), so the file says `format: pt`.
"""

import json
import os
import re

import numpy as np
import tensorflow as tf
from safetensors import numpy as safetensors_numpy

from token_dropping.common.errors import UserError

FOLDER = "hf"  # inside the export
SAFETENSORS_NAME = "model.safetensors"
# Model Garden's activation name -> Hugging Face's (module docstring).
ACTIVATIONS = {"gelu": "gelu_new", "relu": "relu"}
SPECIAL_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]",
                  "pad_token": "[PAD]", "cls_token": "[CLS]",
                  "mask_token": "[MASK]"}
TIED = "tied to bert.embeddings.word_embeddings.weight"
_HEAD_PREFIX = "masked_lm/"


# Layouts: Keras keeps a Dense kernel as [in, out] and an attention kernel
# per head; a PyTorch nn.Linear weight is [out, in] over all heads.
def _same(x):
    return x


def _dense(x):  # [in, out] -> [out, in]
    return x.T


def _heads_in(x):  # [hidden, heads, head_size] -> [heads * head_size, hidden]
    return x.reshape(x.shape[0], -1).T


def _heads_bias(x):  # [heads, head_size] -> [heads * head_size]
    return x.reshape(-1)


def _heads_out(x):  # [heads, head_size, hidden] -> [hidden, heads * head_size]
    return x.reshape(-1, x.shape[-1]).T


_LAYER = "encoder/_transformer_layers/{i}/"
_HF_LAYER = "bert.encoder.layer.{i}."
_ATTENTION = _LAYER + "_attention_layer/"
# (Model Garden variable path, Hugging Face name, layout); {i} is the layer.
TABLE = (
    ("encoder/_embedding_layer/embeddings",
     "bert.embeddings.word_embeddings.weight", _same),
    ("encoder/_position_embedding_layer/embeddings",
     "bert.embeddings.position_embeddings.weight", _same),
    ("encoder/_type_embedding_layer/embeddings",
     "bert.embeddings.token_type_embeddings.weight", _same),
    ("encoder/_embedding_norm_layer/gamma", "bert.embeddings.LayerNorm.gamma",
     _same),
    ("encoder/_embedding_norm_layer/beta", "bert.embeddings.LayerNorm.beta",
     _same),
    *((_ATTENTION + f"_{mg}_dense/kernel",
       _HF_LAYER + f"attention.self.{hf}.weight", _heads_in)
      for mg, hf in (("query", "query"), ("key", "key"), ("value", "value"))),
    *((_ATTENTION + f"_{mg}_dense/bias",
       _HF_LAYER + f"attention.self.{hf}.bias", _heads_bias)
      for mg, hf in (("query", "query"), ("key", "key"), ("value", "value"))),
    (_ATTENTION + "_output_dense/kernel",
     _HF_LAYER + "attention.output.dense.weight", _heads_out),
    (_ATTENTION + "_output_dense/bias",
     _HF_LAYER + "attention.output.dense.bias", _same),
    (_LAYER + "_attention_layer_norm/gamma",
     _HF_LAYER + "attention.output.LayerNorm.gamma", _same),
    (_LAYER + "_attention_layer_norm/beta",
     _HF_LAYER + "attention.output.LayerNorm.beta", _same),
    (_LAYER + "_intermediate_dense/kernel",
     _HF_LAYER + "intermediate.dense.weight", _dense),
    (_LAYER + "_intermediate_dense/bias",
     _HF_LAYER + "intermediate.dense.bias", _same),
    (_LAYER + "_output_dense/kernel", _HF_LAYER + "output.dense.weight",
     _dense),
    (_LAYER + "_output_dense/bias", _HF_LAYER + "output.dense.bias", _same),
    (_LAYER + "_output_layer_norm/gamma", _HF_LAYER + "output.LayerNorm.gamma",
     _same),
    (_LAYER + "_output_layer_norm/beta", _HF_LAYER + "output.LayerNorm.beta",
     _same),
    ("encoder/_pooler_layer/kernel", "bert.pooler.dense.weight", _dense),
    ("encoder/_pooler_layer/bias", "bert.pooler.dense.bias", _same),
    # BertPretrainerV2's MLM head (official.nlp.modeling.layers.MaskedLM).
    ("masked_lm/dense/kernel", "cls.predictions.transform.dense.weight",
     _dense),
    ("masked_lm/dense/bias", "cls.predictions.transform.dense.bias", _same),
    ("masked_lm/layer_norm/gamma", "cls.predictions.transform.LayerNorm.gamma",
     _same),
    ("masked_lm/layer_norm/beta", "cls.predictions.transform.LayerNorm.beta",
     _same),
    ("masked_lm/output_bias/bias", "cls.predictions.bias", _same),
    ("masked_lm/embedding_table", TIED, None),
)
_PATTERNS = [(re.compile(re.escape(mg).replace(r"\{i\}", r"(\d+)") + "$"),
              hf, layout) for mg, hf, layout in TABLE]


def hf_config(encoder, mlm_activation, pad_id, with_head):
    """`config.json` of Hugging Face's BERT for a `BertEncoderConfig`.

    Raises:
        UserError: an encoder Hugging Face's BERT cannot express.
    """
    if encoder.norm_first:
        raise UserError(
            "norm_first=True (pre-LayerNorm) has no Hugging Face BERT "
            "equivalent, which normalizes after each sub-layer; export with "
            "--nohuggingface.")
    if encoder.embedding_size not in (None, encoder.hidden_size):
        raise UserError(
            f"embedding_size={encoder.embedding_size} differs from "
            f"hidden_size={encoder.hidden_size}; Hugging Face's BERT has no "
            "embedding projection; export with --nohuggingface.")
    activations = {"hidden_activation": encoder.hidden_activation}
    if with_head:
        activations["task.model.mlm_activation"] = mlm_activation
    for name, value in activations.items():
        if value not in ACTIVATIONS:
            raise UserError(
                f"{name}={value!r} has no Hugging Face name here; supported: "
                f"{', '.join(ACTIVATIONS)}; export with --nohuggingface.")
    if with_head and mlm_activation != encoder.hidden_activation:
        raise UserError(
            f"task.model.mlm_activation={mlm_activation!r} differs from "
            f"hidden_activation={encoder.hidden_activation!r}; Hugging Face's "
            "BERT uses one hidden_act for both; export with --nohuggingface.")
    return {
        "architectures": ["BertForMaskedLM" if with_head else "BertModel"],
        "model_type": "bert",
        "vocab_size": encoder.vocab_size,
        "hidden_size": encoder.hidden_size,
        "num_hidden_layers": encoder.num_layers,
        "num_attention_heads": encoder.num_attention_heads,
        "intermediate_size": encoder.intermediate_size,
        "hidden_act": ACTIVATIONS[encoder.hidden_activation],
        "hidden_dropout_prob": encoder.dropout_rate,
        "attention_probs_dropout_prob": encoder.attention_dropout_rate,
        "max_position_embeddings": encoder.max_position_embeddings,
        "type_vocab_size": encoder.type_vocab_size,
        "initializer_range": encoder.initializer_range,
        "layer_norm_eps": 1e-12,  # BertEncoderV2's and MaskedLM's
        "pad_token_id": pad_id,
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
    }


def _hf_name(path):
    """(Hugging Face name, layout) of a Model Garden path, or None."""
    for pattern, hf, layout in _PATTERNS:
        match = pattern.match(path)
        if match:
            return (hf.format(i=match.group(1)) if match.groups() else hf,
                    layout)
    return None


def to_hf_tensors(variables, num_layers):
    """Hugging Face's tensors from Model Garden's, through `TABLE`.

    Args:
        variables: `{path: np.ndarray}`, paths as in `TABLE`
            ("encoder/..." and, for the MLM head, "masked_lm/...").
        num_layers: the encoder's number of transformer layers.

    Returns:
        `{hf_name: float32 np.ndarray}`.

    Raises:
        UserError: a variable the table does not name, or one it
            expects that is missing.
    """
    tensors, words = {}, variables.get(TABLE[0][0])
    for path in sorted(variables):
        found = _hf_name(path)
        if found is None:
            raise UserError(
                f"the checkpoint's variable {path} "
                f"{list(variables[path].shape)} is not one of BERT's encoder "
                "or MLM-head variables (a next-sentence head's, say), so "
                "Hugging Face's BERT has no name for it; export with "
                "--nohuggingface.")
        name, layout = found
        if name == TIED:
            if words is None or not np.array_equal(variables[path], words):
                raise UserError(
                    f"{path} is not the word embedding table; Hugging Face's "
                    "BertForMaskedLM ties them; export with --nohuggingface.")
            continue
        tensors[name] = np.ascontiguousarray(layout(variables[path]),
                                             dtype=np.float32)
    with_head = any(path.startswith(_HEAD_PREFIX) for path in variables)
    expected = [(mg.format(i=i), hf.format(i=i)) for mg, hf, _ in TABLE
                if hf != TIED
                and (with_head or not mg.startswith(_HEAD_PREFIX))
                for i in range(num_layers if "{i}" in mg else 1)]
    missing = [(mg, hf) for mg, hf in expected if hf not in tensors]
    if missing:
        raise UserError(
            f"the checkpoint lacks {len(missing)} variables Hugging Face's "
            f"BERT needs, e.g. {missing[0][0]} ({missing[0][1]}).")
    return tensors


def convert(variables, encoder, mlm_activation, pad_id):
    """`(tensors, config)` of the Hugging Face folder; UserError if the
    checkpoint (`to_hf_tensors`) or the config (`hf_config`) does not fit."""
    with_head = any(path.startswith(_HEAD_PREFIX) for path in variables)
    return (to_hf_tensors(variables, encoder.num_layers),
            hf_config(encoder, mlm_activation, pad_id, with_head))


def write_folder(folder, tensors, config, vocab_file, do_lower_case):
    """Writes the Hugging Face folder (module docstring) into `folder`."""
    tf.io.gfile.makedirs(folder)
    path = lambda name: os.path.join(folder, name)
    with tf.io.gfile.GFile(path(SAFETENSORS_NAME), "wb") as f:
        f.write(safetensors_numpy.save(tensors, metadata={"format": "pt"}))
    tokenizer = {"tokenizer_class": "BertTokenizer",
                 "do_lower_case": bool(do_lower_case),
                 "model_max_length": config["max_position_embeddings"],
                 **SPECIAL_TOKENS}
    for name, value in (("config.json", config),
                        ("tokenizer_config.json", tokenizer),
                        ("special_tokens_map.json", SPECIAL_TOKENS)):
        with tf.io.gfile.GFile(path(name), "w") as f:
            json.dump(value, f, indent=2, sort_keys=True)
            f.write("\n")
    tf.io.gfile.copy(vocab_file, path("vocab.txt"))

"""Token dropping for efficient BERT pretraining (Hou et al., ACL 2022).

Importing this package registers the encoder config, the task and our
experiments with Model Garden's registries and the custom layers with Keras
serialization, so configs and saved models that name them load; the same
job as Model Garden's `registry_imports.py`. It loads nothing else: the
trainer (`token_dropping.train.driver`), data, export, benchmark, study and
Model Garden's fine-tuning experiments
(`token_dropping.train.finetuning_experiments`) are imported by name.
`export_bert`, `ExportResult` and the `data`, `flops` and `callbacks`
modules are loaded on first use.
"""

import importlib

# Registers the experiments and the task.
from token_dropping.train import experiment_configs  # noqa: F401
from token_dropping.model.encoder_config import TokenDropBertEncoderConfig
from token_dropping.model.encoder import TokenDropBertEncoder
from token_dropping.common.errors import UserError
from token_dropping.model.layout import DropLayout
from token_dropping.model.layout import default_drop_layers
from token_dropping.train.task import TokenDropMaskedLMConfig
from token_dropping.train.task import TokenDropMaskedLMTask
from token_dropping.model.importance import TokenImportance
from token_dropping.model.selection import SELECTION_STRATEGIES
from token_dropping.model.selection import select_kept_positions

# Public names loaded on first use (PEP 562): name -> (module, attribute).
_LAZY = {
    "ExportResult": ("token_dropping.export.bert", "ExportResult"),
    "export_bert": ("token_dropping.export.bert", "export_bert"),
    "callbacks": ("token_dropping.train.callbacks", None),
    "data": ("token_dropping.data", None),
    "flops": ("token_dropping.model.flops", None),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


__all__ = [
    "DropLayout",
    "ExportResult",
    "SELECTION_STRATEGIES",
    "TokenDropBertEncoder",
    "TokenDropBertEncoderConfig",
    "TokenDropMaskedLMConfig",
    "TokenDropMaskedLMTask",
    "TokenImportance",
    "UserError",
    "default_drop_layers",
    "export_bert",
    "select_kept_positions",
]

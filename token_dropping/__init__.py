"""Token dropping for efficient BERT pretraining (Hou et al., ACL 2022).

Importing this package registers every custom Keras class with Keras
serialization and Model Garden's task, encoder and experiment registries, so
configs and saved models that name them load. It does not import the trainer
(`token_dropping.train.driver`), the benchmark or gin: import those by name.
"""

from token_dropping.train import callbacks
from token_dropping import data
# Registers the experiments and the task.
from token_dropping.train import experiment_configs  # noqa: F401
from token_dropping.model import flops
from token_dropping.model.encoder_config import TokenDropBertEncoderConfig
from token_dropping.model.encoder import TokenDropBertEncoder
from token_dropping.common.errors import UserError
from token_dropping.export.bert import ExportResult
from token_dropping.export.bert import export_bert
from token_dropping.model.layout import DropLayout
from token_dropping.model.layout import default_drop_layers
from token_dropping.train.task import TokenDropMaskedLMConfig
from token_dropping.train.task import TokenDropMaskedLMTask
from token_dropping.model.importance import TokenImportance
from token_dropping.model.selection import SELECTION_STRATEGIES
from token_dropping.model.selection import select_kept_positions

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

"""Token dropping for efficient BERT pretraining (Hou et al., ACL 2022).

Importing this package registers every custom Keras class with Keras
serialization and Model Garden's task, encoder and experiment registries, so
configs and saved models that name them load. It does not import the trainer
(`token_dropping.training`), the benchmark or gin: import those by name.
"""

from token_dropping import callbacks
from token_dropping import data
from token_dropping import experiments  # registers experiments and the task
from token_dropping import flops
from token_dropping.configs import TokenDropBertEncoderConfig
from token_dropping.encoder import TokenDropBertEncoder
from token_dropping.errors import UserError
from token_dropping.export import ExportResult
from token_dropping.export import export_bert
from token_dropping.layout import DropLayout
from token_dropping.layout import default_drop_layers
from token_dropping.masked_lm import TokenDropMaskedLMConfig
from token_dropping.masked_lm import TokenDropMaskedLMTask
from token_dropping.token_importance import TokenImportance
from token_dropping.token_selection import SELECTION_STRATEGIES
from token_dropping.token_selection import select_kept_positions

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

"""intra's slim runtime: pick the sticker to reply with, on onnxruntime (no torch, no transformers).

The dataset format and the label set live here because the runtime reads them too; training and
export build on them.
"""

from .dataset import Conversation, Dataset, Sticker, Turn, load_dataset
from .errors import DatasetError, IntraError, MissingExtraError
from .labels import ATTRIBUTES, KNOWLEDGE_RELATIONS, LABELS

__all__ = [
    "ATTRIBUTES", "KNOWLEDGE_RELATIONS", "LABELS",
    "Conversation", "Dataset", "DatasetError", "IntraError", "MissingExtraError", "Sticker", "Turn",
    "load_dataset",
]
__version__ = "0.1.0"

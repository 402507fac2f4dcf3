"""intra's slim runtime: pick the sticker to reply with, on onnxruntime (no torch, no transformers).

    import sdk
    result = sdk.rank("I finally passed my exam!", "path/to/pack")
    for m in result.matches: print(m.sticker_id, m.score, m.file)

What apps use is exported here. The dataset format (``sdk.dataset``: ``load_dataset``, ``Dataset``,
``Conversation``...) lives in the runtime too, because packs are built from dataset directories,
but it is tooling, imported from its module.
"""

from .bundle import Bundle, BundleError
from .context import ContextError, parse_context
from .errors import ArgumentError, DatasetError, IntraError, MissingExtraError, OutputError
from .history import History, HistoryError
from .imageprep import ImageError
from .labels import ATTRIBUTES, KNOWLEDGE_RELATIONS, LABELS
from .pack import Pack, PackError, load_pack, merge_packs
from .pack_build import build_pack
from .providers import ProviderError, choose_providers
from .ranker import Match, Ranker, RankerOptions, RankResult, rank
from .scoring import ScoreWeights
from .suggest import SuggestSettings
from .why import Why

__all__ = [
    "ATTRIBUTES", "KNOWLEDGE_RELATIONS", "LABELS",
    "ArgumentError", "Bundle", "BundleError", "ContextError", "DatasetError", "History", "HistoryError",
    "ImageError", "IntraError", "Match", "MissingExtraError", "OutputError", "Pack", "PackError", "ProviderError", "RankResult", "Ranker",
    "RankerOptions", "ScoreWeights", "SuggestSettings", "Why",
    "build_pack", "choose_providers", "load_pack", "merge_packs", "parse_context", "rank",
]
__version__ = "0.1.0"

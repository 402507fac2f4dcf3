"""Rank a pack's stickers for a conversation: one text-encoder pass, the head, one product.

:class:`Ranker` loads a bundle and a pack once (sessions and vectors cached) and serves
`rank` / `rank_many` from any number of threads: onnxruntime sessions are safe to share and the
ranking itself only reads shared state. Exact top-k uses argpartition; above `ann_threshold`
stickers (or when asked) an ANN index from the `ann` extra (FAISS HNSW) is used instead.
Scores are the cosine plus the usage prior, the pack's biases and the label term of :mod:`sdk.scoring`, with the weights
the bundle carries (`weights` overrides them); an ANN index is built over the augmented vectors,
so it ranks by the same score.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from . import atomic
from .ann import ANN_THRESHOLD, AnnIndex, vectors_digest
from .bundle import MANIFEST, Bundle, BundleError
from .context import Context, ContextError, own_turns, parse_knowledge, parse_turns
from .diversity import DIVERSE_THRESHOLD, candidate_count, check_diverse_top_k, check_threshold, drop_near_duplicates
from .errors import ArgumentError, MissingExtraError, check_count
from .history import DEFAULT_HISTORY_WEIGHT, History, check_nonnegative
from .jsonfile import read_json_object
from .locate import find_bundle
from .pack import PACK_FILE, Pack, PackError, load_pack, sticker_turn_text
from .scoring import ScoreTerms, ScoreWeights, softmax
from .suggest import confidence
from .textprep import Knowledge
from .why import Why, sticker_focus

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack is Python 3.11+; annotations only

log = logging.getLogger("intra")


@dataclass(frozen=True)
class Match:
    """One ranked sticker.

    Attributes:
        sticker_id: the sticker's id in the pack.
        score: cosine (-1 to 1) plus the label term and usage prior (logarithms, at most 0), the pack's bias, plus the
            history term (at least 0); usually negative, and only the order matters.
        file: the sticker's image in the pack; None for a text-only sticker.
        label: the sticker's intention label, None when it has none.
        why: the parts of the score and what drew the selector (``rank(..., explain=True)``; else None).
        descriptions: a text-only sticker's texts (what an app shows, e.g. the kaomoji itself); empty
            for an image sticker.
    """

    sticker_id: str
    score: float
    file: Path | None
    label: str | None
    why: Why | None = None
    descriptions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sticker_id": self.sticker_id, "score": self.score,
                               "file": None if self.file is None else str(self.file), "label": self.label}
        if self.descriptions:
            out["descriptions"] = list(self.descriptions)
        if self.why is not None:
            out["why"] = self.why.to_dict()
        return out


@dataclass(frozen=True)
class RankResult:
    """The ranking of one conversation.

    Attributes:
        matches: the top k stickers, best first.
        intention: the predicted intention of the conversation (None: the bundle has no intention head).
        intention_probability: its probability, 0 to 1.
        provider: the onnxruntime provider the text encoder ran on.
        precision: the graphs' precision (fp32, int8 or fp16).
        mode: the query mode (paper, soft or fused).
        search: "exact", or "ann" above the pack size where the FAISS index takes over.
        notes: messages about this ranking (kept for compatibility; rank() adds none today).
        suggest: does this moment call for a sticker? (True, with confidence None, without a suggest head).
        confidence: the suggest head's probability that a sticker fits here, 0 to 1; None without the head.
    """

    matches: tuple[Match, ...]
    intention: str | None
    intention_probability: float | None
    provider: str
    precision: str
    mode: str
    search: str = "exact"
    notes: tuple[str, ...] = field(default_factory=tuple)
    suggest: bool = True
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"matches": [m.to_dict() for m in self.matches],
                "intention": self.intention, "intention_probability": self.intention_probability, "provider": self.provider,
                "precision": self.precision, "mode": self.mode, "search": self.search, "suggest": self.suggest,
                "confidence": self.confidence}


def best_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, scores) of the k best per row, best first: argpartition, then a sort of k."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def _check_options(mode: Any, ann: Any, ann_threshold: Any, verify: Any, weights: Any) -> None:
    if mode is not None and not isinstance(mode, str):
        raise ArgumentError(f"mode must be a query mode name or None, got {mode!r}")
    if ann is not None and not isinstance(ann, bool):
        raise ArgumentError(f"ann must be True, False or None, got {ann!r}")
    check_count("ann_threshold", ann_threshold, 10**12)
    if not isinstance(verify, bool):
        raise ArgumentError(f"verify must be True or False, got {verify!r}")
    if weights is not None and not isinstance(weights, ScoreWeights):
        raise ArgumentError(f"weights must be an sdk.ScoreWeights or None, got {type(weights).__name__}")


def _check_knowledge(knowledge: object, count: int) -> None:
    """`knowledge` is a sequence of one entry (a mapping or None) per context (ContextError otherwise)."""
    if isinstance(knowledge, (str, bytes, Mapping)) or not isinstance(knowledge, Sequence):
        raise ContextError(f"knowledge: expected one entry (a mapping or None) per context, got {type(knowledge).__name__}")
    if len(knowledge) != count:
        raise ContextError(f"knowledge: {len(knowledge)} entries for {count} contexts")


class Ranker:
    """A bundle and a pack, loaded once, ranking conversations.

    `precision`, `providers` and `threads` choose how the bundle runs (see :class:`sdk.Bundle`;
    `cache_dir` is where the CPU precision verdict is kept, never the bundle); `mode` the query
    mode; `ann` / `ann_threshold` the search (:mod:`sdk.ann`: the pack's stored index when it has
    one); `weights` replaces the bundle's score weights; `history` and `history_weight` add a
    personal history's term; `verify` hashes every file on load.
    """

    def __init__(self, model: Bundle | Path | str, pack: Pack | Path | str, precision: str | None = None,
                 providers: str | Sequence[str] = "auto", threads: int | None = None, mode: str | None = None,
                 ann: bool | None = None, ann_threshold: int = ANN_THRESHOLD, verify: bool = True,
                 weights: ScoreWeights | None = None, history: History | Path | str | None = None,
                 history_weight: float = DEFAULT_HISTORY_WEIGHT, cache_dir: Path | str | None = None) -> None:
        _check_options(mode, ann, ann_threshold, verify, weights)
        self.history_weight = check_nonnegative("history_weight", history_weight)
        if history is not None and not isinstance(history, (History, str, Path)):
            raise ArgumentError(f"history must be a file path, an sdk.History or None, got {type(history).__name__}")
        # the history file is read first: a corrupt one fails before any model is loaded
        self.history = history if isinstance(history, History) else History(history)
        self.bundle = model if isinstance(model, Bundle) else Bundle(model, precision=precision, providers=providers, threads=threads, verify=verify,
                                                                        cache_dir=cache_dir)
        self.pack = pack if isinstance(pack, Pack) else load_pack(pack, verify=verify)
        if len(self.pack) == 0:
            raise PackError(f"{self.pack.root}: the pack has no stickers to rank")
        if self.pack.fingerprint != self.bundle.fingerprint:
            raise PackError(f"{self.pack.root}: built by model {self.pack.fingerprint}, but the model at {self.bundle.root} is "
                            f"{self.bundle.fingerprint}; rebuild the pack with this model (intra pack build)")
        if self.pack.meta.dim != self.bundle.manifest.dim:
            raise PackError(f"{self.pack.root}: its vectors have {self.pack.meta.dim} values, but the model at "
                            f"{self.bundle.root} makes {self.bundle.manifest.dim}; rebuild the pack with this model")
        self.mode = mode or self.bundle.main_mode
        if self.mode not in self.bundle.modes:
            raise BundleError(f"query mode {self.mode!r} not in this bundle (has {', '.join(self.bundle.modes)})")
        self.use_knowledge = "knowledge" in self.bundle.manifest.inputs
        self.terms = ScoreTerms(weights if weights is not None else self.bundle.score_weights, self.pack.label_ids(),
                                self.pack.usage_counts(), self.bundle.has_intention, self.pack.sticker_bias())
        self._ann = None
        if ann or (ann is None and (len(self.pack) > ann_threshold or self.pack.ann_data is not None)):
            try:
                self._ann = self._ann_index(own_weights=weights is None)
            except MissingExtraError:
                if ann:  # asked for explicitly: say what is missing
                    raise
                log.warning("pack of %d stickers: exact search (install the 'ann' extra for an ANN index)", len(self.pack))
        self._labels = self.bundle.labels
        self._index = {sid: i for i, sid in enumerate(self.pack.ids)}
        self._history_cache: tuple[int, tuple[np.ndarray, np.ndarray] | None] = (-1, None)
        for graph in ("text_encoder", "intention_head"):  # a damaged graph fails here, not at the first rank()
            self.bundle.session(graph)

    def _rows(self, contexts: Sequence[Context], knowledge: Sequence[Knowledge | None] | None,
              me: str | None = None) -> tuple[list[list[str]], list, list[list[bool]]]:
        """(turn texts, knowledge, which turns are the user's own) of each context."""
        parsed, own = [], []
        for i, c in enumerate(contexts):
            try:
                turns = parse_turns(c, self.sticker_text)
            except ContextError as e:
                raise ContextError(f"contexts[{i}]: {e}" if len(contexts) > 1 else str(e)) from None
            parsed.append([text for _, text in turns])
            own.append(own_turns([who for who, _ in turns], me))
        if knowledge is None:
            return parsed, [None] * len(parsed), own
        _check_knowledge(knowledge, len(parsed))
        know = [parse_knowledge(k, f"knowledge[{i}]") for i, k in enumerate(knowledge)]
        return parsed, know if self.use_knowledge else [None] * len(parsed), own

    def sticker_text(self, sticker_id: str) -> str | None:
        """How a sticker sent earlier in the chat is read: its label or descriptions (None: not in the pack)."""
        i = self._index.get(sticker_id)
        return None if i is None else sticker_turn_text(self.pack.stickers[i])

    def sticker_files(self, context: Context) -> dict[str, Path]:
        """Image files of the pack's stickers that `context` holds as sticker turns (for galleries)."""
        if isinstance(context, (str, bytes)):
            return {}
        ids = [t["sticker"] for t in context if isinstance(t, Mapping) and t.get("sticker") in self._index]
        found = {sid: self.pack.path_of(self._index[sid]) for sid in ids}
        return {sid: path for sid, path in found.items() if path is not None}

    def query(self, contexts: Sequence[Context], knowledge: Sequence[Knowledge | None] | None = None,
              me: str | None = None) -> tuple[np.ndarray | None, np.ndarray]:
        """(intention logits or None, normalised query vectors) for several contexts."""
        logits, queries, _ = self._query(contexts, knowledge, with_suggest=False, me=me)
        return logits, queries

    def _query(self, contexts: Sequence[Context], knowledge: Sequence[Knowledge | None] | None,
               with_suggest: bool = True, me: str | None = None) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
        parsed, know, own = self._rows(contexts, knowledge, me)
        pooled = self.bundle.encode_contexts(parsed, know, own)
        logits, queries, suggest = self.bundle.head_outputs(pooled, self.mode, with_suggest)
        if queries.ndim != 2 or queries.shape[1] != self.pack.embeddings.shape[1]:
            raise BundleError(f"{self.bundle.root}: the {self.bundle.precision} graphs return queries of shape {queries.shape}, "
                              f"but the pack's vectors have {self.pack.embeddings.shape[1]} values; the graphs do not match the manifest")
        finite = np.isfinite(queries).all(1) & (np.isfinite(logits).all(1) if logits is not None else True)
        if not finite.all():  # a damaged or hostile graph, or an fp16 overflow: never rank by NaN
            raise BundleError(f"{self.bundle.root}: the {self.bundle.precision} graphs returned NaN or infinite values for "
                              f"context {int(np.argmin(finite))}; the bundle may be damaged (try precision='fp32')")
        return logits, queries, suggest

    def record(self, sticker_id: str) -> None:
        """Note that the user sent `sticker_id` (a sticker of this pack): later rankings favour it."""
        if sticker_id not in self._index:
            raise ArgumentError(f"sticker {sticker_id!r} is not in the pack {self.pack.root}")
        self.history.record(sticker_id)

    def forget(self) -> None:
        """Erase the personal history (the file too, when there is one)."""
        self.history.forget()

    def _history_term(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The history's term for this pack, recomputed only after the history changed."""
        if not len(self.history):
            return None
        cached, term = self._history_cache
        version = self.history.version  # read first: a use recorded meanwhile makes the next call recompute
        if cached != version:
            term = self.history.term(self._index, self.history_weight)
            self._history_cache = (version, term)  # one assignment: safe to race
        return term

    def scores(self, queries: np.ndarray, logits: np.ndarray | None) -> np.ndarray:
        """(Q, S) final scores of every sticker: cosine plus the prior, label and history terms."""
        out = self.terms.scores(queries @ self.pack.embeddings.T, logits)
        hist = self._history_term()
        if hist is not None:  # out is a fresh array (the product or its copy): safe to add in place
            out[:, hist[0]] += hist[1][None, :]
        return out

    def score_matrix(self, contexts: Sequence[Context], knowledge: Sequence[Knowledge | None] | None = None,
                     batch_size: int = 32, me: str | None = None) -> tuple[np.ndarray | None, np.ndarray]:
        """(intention logits or None, (Q, S) scores of every sticker) exactly as `rank_many` ranks them."""
        check_count("batch_size", batch_size)
        if knowledge is not None:
            _check_knowledge(knowledge, len(contexts))
        logits, scores = [], []
        for start in range(0, len(contexts), batch_size):
            kn = knowledge[start:start + batch_size] if knowledge is not None else None
            lg, q = self.query(contexts[start:start + batch_size], kn, me)
            scores.append(self.scores(q, lg))
            if lg is not None:
                logits.append(lg)
        return (np.concatenate(logits) if logits else None), np.concatenate(scores)

    def _ann_index(self, own_weights: bool) -> AnnIndex:
        """The pack's stored index when it indexes exactly these vectors and score weights; else one
        built here (a pack without one, or weights the caller chose). PackError for a stale one."""
        vectors = self.terms.sticker_side(self.pack.embeddings)
        stored = self.pack.meta.ann
        if stored is not None and self.pack.ann_data is not None:
            where = f"{self.pack.root / stored['file']}"
            if stored["digest"] == vectors_digest(vectors):
                return AnnIndex.from_bytes(self.pack.ann_data, len(vectors), vectors.shape[1], where, PackError)
            if own_weights:
                raise PackError(f"{where}: the ANN index was built over other vectors or score weights than this pack's "
                                f"with model {self.bundle.fingerprint[:12]} (stale or edited); rebuild the pack")
            log.info("%s: score weights other than the bundle's: building an ANN index in memory", self.pack.root)
        elif len(self.pack) > ANN_THRESHOLD:
            log.info("%s: no stored ANN index (`intra pack build` writes one): building it in memory", self.pack.root)
        return AnnIndex(vectors)

    def search(self, queries: np.ndarray, k: int, logits: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(indices, scores) of the k best stickers per query."""
        if self._ann is None:
            return best_rows(self.scores(queries, logits), k)
        extended = np.hstack([queries, self.terms.query_extra(logits, len(queries))]) if self.terms.active else queries
        idx, scores = self._ann.search(extended, k)
        hist = self._history_term()
        return (idx, scores) if hist is None else self._merge_history(queries, logits, idx, scores, hist, k)

    def _merge_history(self, queries: np.ndarray, logits: np.ndarray | None, idx: np.ndarray, scores: np.ndarray,
                       hist: tuple[np.ndarray, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        """ANN candidates merged with the history's stickers, those scored exactly with their term."""
        hidx, hval = hist
        cand = np.broadcast_to(hidx, (len(queries), len(hidx)))
        exact = (queries @ self.pack.embeddings[hidx].T + self.terms.label_terms(logits, cand)
                 + self.terms.prior_at(hidx)[None, :] + hval[None, :])
        scores = np.where(np.isin(idx, hidx), -np.inf, scores)  # those come back exactly, from `exact`
        all_idx, all_scores = np.hstack([idx, cand]), np.hstack([scores, exact]).astype(np.float32)
        pos, best = best_rows(all_scores, k)
        return np.take_along_axis(all_idx, pos, axis=1), best

    def _explain(self, r: int, idx: np.ndarray, queries: np.ndarray, logits: np.ndarray | None,
                 intention: tuple[str | None, float | None]) -> list[Why]:
        """The parts of row r's scores for the stickers `idx` (read, not recomputed through a graph)."""
        idx = idx[idx >= 0]
        cos = self.pack.embeddings[idx] @ queries[r]
        label = self.terms.label_terms(None if logits is None else logits[r:r + 1], idx[None, :])[0]
        prior = self.terms.prior_moves(idx)
        term = self._history_term()
        hist = dict(zip(term[0].tolist(), term[1].tolist())) if term is not None else {}
        return [Why(intention[0], intention[1], float(cos[j]), float(label[j]), float(prior[j]), float(hist.get(i, 0.0)),
                    *sticker_focus(self.pack.stickers[i])) for j, i in enumerate(idx)]

    def rank_many(self, contexts: Sequence[Context], top_k: int = 5, knowledge: Sequence[Knowledge | None] | None = None,
                  batch_size: int = 32, diverse: bool = False, diverse_threshold: float = DIVERSE_THRESHOLD,
                  explain: bool = False, me: str | None = None) -> list[RankResult]:
        """Rank several conversations, batched through the graphs; `diverse` drops near-duplicate
        stickers (vectors with a cosine above `diverse_threshold`) from each top k; `explain` fills
        each match's `why`; `me` names the speaker who replies (:func:`sdk.context.own_turns`; read
        only by a bundle trained with speaker markers)."""
        check_count("top_k", top_k)
        check_count("batch_size", batch_size)
        for name, flag in (("diverse", diverse), ("explain", explain)):
            if not isinstance(flag, bool):
                raise ArgumentError(f"{name} must be True or False, got {flag!r}")
        if diverse:
            check_threshold(diverse_threshold)
            check_diverse_top_k(top_k)
        if isinstance(contexts, (str, bytes)) or not isinstance(contexts, Sequence):
            raise ContextError("rank_many expects a list of contexts; use rank() for one")
        if knowledge is not None:
            _check_knowledge(knowledge, len(contexts))  # before it is sliced into batches
        results: list[RankResult] = []
        for start in range(0, len(contexts), batch_size):
            kn = knowledge[start:start + batch_size] if knowledge is not None else None
            logits, queries, suggest = self._query(contexts[start:start + batch_size], kn, me=me)
            idx: np.ndarray | list[np.ndarray]
            scores: np.ndarray | list[np.ndarray]
            if diverse:
                wide = self.search(queries, candidate_count(top_k, len(self.pack)), logits)
                idx, scores = drop_near_duplicates(*wide, self.pack.embeddings, top_k, diverse_threshold)
            else:
                idx, scores = self.search(queries, top_k, logits)
            results.extend(self._results(idx, scores, queries, logits, explain, suggest))
        return results

    def _results(self, idx: np.ndarray | list[np.ndarray], scores: np.ndarray | list[np.ndarray], queries: np.ndarray,
                 logits: np.ndarray | None, explain: bool, suggest_logits: np.ndarray | None) -> list[RankResult]:
        probs = softmax(logits) if logits is not None else None
        conf = confidence(suggest_logits) if suggest_logits is not None else None
        threshold = self.bundle.suggest.threshold if self.bundle.suggest is not None else 0.0
        out = []
        for r in range(len(queries)):
            intention = (None, None) if probs is None else (self._labels[int(probs[r].argmax())], float(probs[r].max()))
            rows = np.asarray(idx[r])
            whys: list[Why | None] = list(self._explain(r, rows, queries, logits, intention)) if explain else [None] * len(rows)
            kept = [(int(i), float(s)) for i, s in zip(rows, scores[r]) if i >= 0]
            matches = tuple(Match(self.pack.stickers[i].id, s, self.pack.path_of(i), self.pack.stickers[i].label, why,
                                  self.pack.stickers[i].descriptions) for (i, s), why in zip(kept, whys))
            out.append(RankResult(matches=matches, intention=intention[0], intention_probability=intention[1],
                                  provider=self.bundle.provider, precision=self.bundle.precision, mode=self.mode,
                                  search="ann" if self._ann is not None else "exact",
                                  suggest=True if conf is None else bool(conf[r] >= threshold),
                                  confidence=None if conf is None else float(conf[r])))
        return out

    def rank(self, context: Context, top_k: int = 5, knowledge: Knowledge | None = None, diverse: bool = False,
             diverse_threshold: float = DIVERSE_THRESHOLD, explain: bool = False, me: str | None = None) -> RankResult:
        """Rank the pack for one conversation (`diverse`: no near-duplicates in the top k; `explain`:
        each match's `why`; `me`: the speaker who replies, by default whoever said the newest turn)."""
        return self.rank_many([context], top_k, [knowledge] if knowledge is not None else None, diverse=diverse,
                              diverse_threshold=diverse_threshold, explain=explain, me=me)[0]


class RankerOptions(TypedDict, total=False):
    """The options of :class:`Ranker` that :func:`rank` and :func:`get_ranker` pass on (see Ranker)."""

    precision: str | None
    providers: str | Sequence[str]
    threads: int | None
    mode: str | None
    ann: bool | None
    ann_threshold: int
    verify: bool
    weights: ScoreWeights | None
    history: History | Path | str | None
    history_weight: float
    cache_dir: Path | str | None


#: checked at run time too, for callers that pass a dict mypy cannot see into
RANKER_OPTIONS = tuple(RankerOptions.__annotations__)
CACHE_SIZE = 8
_CACHE: OrderedDict[tuple, Ranker] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_LOADING: dict[tuple, threading.Lock] = {}  # one lock per key being loaded


def _model_for(pack: Pack | Path, model: Any) -> Any:
    """`model`, else the bundle the pack names (sdk.locate: by fingerprint, beside the pack or where it was)."""
    if model is not None:
        return model
    if isinstance(pack, Pack):
        return find_bundle(pack.root, pack.fingerprint, pack.meta.model_relpath, pack.meta.model_path)
    obj = read_json_object(pack / PACK_FILE, PackError, f"is {pack} a pack made by `intra pack build`?")
    return find_bundle(pack, obj.get("fingerprint"), obj.get("model_relpath"), obj.get("model_path"))


def _file_identity(path: Path) -> tuple[int, int, int, int]:
    """What changes whenever a writer replaces the file: device, inode, mtime and size."""
    try:
        st = path.stat()
    except OSError:
        return (0, 0, 0, 0)  # the loader says what is missing
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _cache_key(pack: Pack | Path, model: Bundle | Path | None, options: Mapping[str, Any]) -> tuple:
    unknown = sorted(set(options) - set(RANKER_OPTIONS))
    if unknown:
        raise ArgumentError(f"unknown option(s) {', '.join(unknown)}; rank() takes {', '.join(RANKER_OPTIONS)}")
    if isinstance(pack, Pack):
        pack_key: tuple = ("object", id(pack))  # the cached Ranker holds the object, so its id stays its own
    else:
        atomic.restore(pack)  # every sdk.rank call passes here: no tidying of the parent directory
        pack_key = (str(pack.resolve()), _file_identity(pack / PACK_FILE))
    if model is None:
        model_key: tuple = ("named by the pack",)  # a new bundle there needs a new pack, which changes pack_key
    elif isinstance(model, Bundle):
        model_key = ("object", id(model))
    else:
        model_key = (str(model.resolve()), _file_identity(model / MANIFEST))
    opts = tuple(sorted((k, v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)) for k, v in options.items()))
    return pack_key, model_key, opts


def get_ranker(pack: Pack | Path | str, model: Bundle | Path | str | None = None, **options: Unpack[RankerOptions]) -> Ranker:
    """A cached Ranker for (pack, model, options): repeated `sdk.rank` calls load nothing again.

    Directories are keyed by the identity of their pack.json and manifest.json (device, inode,
    mtime, size), so a rebuilt pack or bundle is loaded afresh; Pack and Bundle objects by the
    object. The CACHE_SIZE most recently used Rankers are kept.
    """
    if not isinstance(pack, (Pack, str, Path)):
        raise ArgumentError(f"pack must be a pack directory or an sdk.Pack, got {type(pack).__name__}")
    if model is not None and not isinstance(model, (Bundle, str, Path)):
        raise ArgumentError(f"model must be a bundle directory, an sdk.Bundle or None, got {type(model).__name__}")
    pack = pack if isinstance(pack, Pack) else Path(pack)
    model = Path(model) if isinstance(model, str) else model
    key = _cache_key(pack, model, options)
    with _CACHE_LOCK:
        ranker = _CACHE.get(key)
        if ranker is not None:
            _CACHE.move_to_end(key)
            return ranker
        loading = _LOADING.setdefault(key, threading.Lock())
    with loading:  # one load per key, and the global lock is free meanwhile: cached packs are served
        try:
            with _CACHE_LOCK:
                ranker = _CACHE.get(key)
            if ranker is None:
                ranker = Ranker(_model_for(pack, model), pack, **options)
            with _CACHE_LOCK:
                _CACHE[key] = ranker
                _CACHE.move_to_end(key)
                while len(_CACHE) > CACHE_SIZE:
                    _CACHE.popitem(last=False)
            return ranker
        finally:
            with _CACHE_LOCK:
                _LOADING.pop(key, None)


def rank(context: Context, pack: Pack | Path | str, top_k: int = 5, model: Bundle | Path | str | None = None,
         knowledge: Knowledge | Mapping[str, Sequence[str]] | None = None, diverse: bool = False, explain: bool = False,
         me: str | None = None, **options: Unpack[RankerOptions]) -> RankResult:
    """Rank `pack`'s stickers for `context` (a string, a list of turns or of (speaker, text) pairs);
    `diverse=True` keeps near-duplicate stickers out of the top k, `explain=True` fills `Match.why`,
    `me` names the speaker who replies (default: whoever said the newest turn).
    `options` are :class:`Ranker`'s (:class:`RankerOptions`: precision, providers, threads, ...); the
    Ranker they make is cached."""
    return get_ranker(pack, model, **options).rank(context, top_k, knowledge, diverse=diverse, explain=explain, me=me)

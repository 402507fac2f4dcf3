"""A model bundle made by `intra-export`: verification and onnxruntime sessions.

The bundle's layout and manifest are defined in :mod:`sdk.manifest`. Loading checks the manifest
field by field and every file against its sha256; sessions are created on first use.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic
from .cache import cache_root
from .errors import ArgumentError, IntraError, check_path
from .jsonfile import read_json_value
from .labels import ATTRIBUTES
from .manifest import ATTRIBUTE_SHARE_OUTPUT, GRAPHS, MANIFEST, PRECISIONS, TOKENIZER, BundleManifest, check_seal, fingerprint
from .paths import inside
from .precision_choice import fastest_cpu_precision
from .providers import ProviderChoice, check_threads, choose_providers, make_session
from .sticker_texts import Slots, slot_table, sticker_slots
from .suggest import SUGGEST_OUTPUT
from .textprep import ContextTokenizer, Knowledge

log = logging.getLogger("intra")
#: the text the precision choice is timed on (repeated to fill the bundle's context length)
SPEED_PROBE = "honestly I can't believe how well that went today, thank you so much for helping me out"


class BundleError(IntraError, ValueError):
    """A bundle is missing, tampered with or incompatible: the message names the file."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(root: Path) -> BundleManifest:
    """manifest.json of the bundle at `root`, checked field by field (BundleError names the field)."""
    path = root / MANIFEST
    obj = read_json_value(path, BundleError, f"is {root} a model bundle made by intra-export?")
    manifest = BundleManifest.from_json(obj, str(path), BundleError)
    check_seal(obj, str(path), BundleError)
    if fingerprint(manifest) != manifest.fingerprint:
        # the fingerprint is what packs trust: it must be the one of these graphs and settings
        raise BundleError(f"{path}: field 'fingerprint' does not match the graphs, tokenizer and settings it lists "
                          "(the manifest was edited)")
    return manifest


def is_current(root: Path) -> bool:
    """`root` holds a bundle whose manifest this intra reads (benchmarks export again when not)."""
    try:
        read_manifest(Path(root))
    except BundleError:
        return False
    return True


def _load_tokenizer(path: Path, settings) -> ContextTokenizer:
    try:
        return ContextTokenizer.from_file(path, settings)
    except Exception as e:  # the tokenizers library raises plain Exception for a malformed file
        raise BundleError(f"{path}: not a tokenizer the `tokenizers` library can load ({str(e)[:200]})") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def verify_file(root: Path, rel: str, expected: str, verify: bool = True) -> Path:
    """`root / rel`, kept inside the bundle always; with `verify`, present and matching `expected`."""
    path = inside(root, rel, str(root / MANIFEST), BundleError, "bundle directory")
    if not verify:
        return path
    if not path.is_file():
        raise BundleError(f"{path}: listed in the manifest but missing")
    got = sha256_file(path)
    if got != expected:
        raise BundleError(f"{path}: sha256 {got[:12]}... does not match the manifest ({expected[:12]}...): the file was changed or damaged")
    return path


def _pick_precision(manifest: BundleManifest, root: Path, precision: str | None, default: str) -> str:
    """The precision to load: the one asked for, else the device's default unless it failed its gate."""
    if precision is not None and precision not in PRECISIONS:
        raise BundleError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    available = manifest.available()
    if not available:
        raise BundleError(f"{root / MANIFEST}: no precision has all four graphs")
    if precision is not None:
        if precision not in available:
            raise BundleError(f"{root}: precision {precision!r} not in this bundle (has {', '.join(available)})")
        return precision
    wanted = default
    if wanted in manifest.failed:
        # an export kept with --allow-degraded: do not pick a precision that failed its gate unasked
        log.warning("%s graphs of %s failed the parity gate at export; using fp32 (ask for %s explicitly to use them)",
                    wanted, root, wanted)
        wanted = "fp32"
    if wanted not in available:
        log.info("precision %s not in bundle %s; using %s", wanted, root, available[0])
        wanted = "fp32" if "fp32" in available else available[0]
    return wanted


class Bundle:
    """The four graphs of one precision, loaded into onnxruntime sessions (created on first use).

    Nothing is ever written into the bundle directory: the CPU precision verdict goes to
    `cache_dir` (default: :func:`sdk.cache.cache_root`)."""

    def __init__(self, root: Path | str, precision: str | None = None, providers: str | Sequence[str] = "auto",
                 threads: int | None = None, verify: bool = True, cache_dir: Path | str | None = None) -> None:
        self.threads = check_threads(threads)
        self.cache_dir = None if cache_dir is None else check_path("cache_dir", cache_dir)
        if precision is not None and not isinstance(precision, str):
            raise ArgumentError(f"precision must be a string ({', '.join(PRECISIONS)}) or None, got {precision!r}")
        self.root = check_path("model", root)
        atomic.recover(self.root)
        if not self.root.is_dir():
            raise BundleError(f"{self.root}: bundle directory not found")
        self.manifest = read_manifest(self.root)
        self.choice: ProviderChoice = choose_providers(providers)
        if verify:
            verify_file(self.root, TOKENIZER, self.manifest.tokenizer_sha256)
        self.labels = self.manifest.labels
        self.text_settings, self.image_settings = self.manifest.text, self.manifest.image
        self.tokenizer = _load_tokenizer(self.root / TOKENIZER, self.text_settings)
        self.precision = _pick_precision(self.manifest, self.root, precision, self.choice.default_precision)
        if precision is None and self.choice.device == "cpu" and self.precision == "int8" and "fp32" in self.manifest.available():
            self.precision = self._fastest_on_this_cpu(verify)
        if self.precision == "int8" and self.choice.device == "cuda":
            log.warning("int8 graphs are made for the CPU (onnxruntime's int8 kernels); on CUDA ask for fp16")
        # dynamic int8 quantizes activations with one scale per tensor: a row's result would depend
        # on the other rows of its batch and on padding, so such graphs run one row at a time
        self.row_by_row = self.precision == "int8" and self.manifest.int8_kind == "dynamic"
        self._paths: dict[str, Path] = {}
        for graph in GRAPHS:
            entry = self.manifest.graphs[graph][self.precision]
            self._paths[graph] = verify_file(self.root, entry.file, entry.sha256, verify)
        self.fingerprint: str = self.manifest.fingerprint
        self.modes: tuple[str, ...] = self.manifest.modes
        self.main_mode: str = self.manifest.main_mode
        # weights of the usage prior and label term, chosen on validation at training time
        self.score_weights = self.manifest.scoring
        self.suggest = self.manifest.suggest
        self.has_intention: bool = "paper" in self.modes
        self.text_hidden: int = self.manifest.text_hidden
        self._sessions: dict[str, Any] = {}
        self._providers: dict[str, str] = {}
        self._lock = threading.Lock()

    def _fastest_on_this_cpu(self, verify: bool) -> str:
        """int8 or fp32, whichever text encoder is faster on this CPU (sdk.precision_choice)."""
        graphs = {}
        for p in ("fp32", "int8"):
            entry = self.manifest.graphs["text_encoder"][p]
            graphs[p] = verify_file(self.root, entry.file, entry.sha256, verify)
        ids, mask = self.tokenizer.encode_contexts([[SPEED_PROBE] * 8])
        try:
            return fastest_cpu_precision(cache_root(self.cache_dir), self.manifest.fingerprint, graphs, ids, mask, self.threads)
        except Exception as e:  # onnxruntime could not load or run a graph: the gate's default stands
            log.warning("could not time the precisions of %s (%s); using int8", self.root, _first_line(e))
            return "int8"

    # ------------------------------------------------------------------ sessions
    def session(self, graph: str):
        """The onnxruntime session of a graph (created once; sessions are safe to share)."""
        s = self._sessions.get(graph)
        if s is None:
            with self._lock:
                s = self._sessions.get(graph)
                if s is None:
                    choice = self.choice
                    if self.precision == "int8":
                        choice = ProviderChoice(("CPUExecutionProvider",), "int8 graphs run on the CPU")
                    try:
                        s, got = make_session(str(self._paths[graph]), choice, self.threads)
                    except IntraError:
                        raise
                    except Exception as e:  # onnxruntime's errors share no public base class
                        raise BundleError(f"{self._paths[graph]}: onnxruntime cannot load this graph ({_first_line(e)}); "
                                          "the bundle is damaged or made for another onnxruntime") from None
                    self._check_outputs(graph, s)
                    self._sessions[graph], self._providers[graph] = s, got
        return s

    def _check_outputs(self, graph: str, session: Any) -> None:
        """The widths the graph declares are the manifest's (a graph swapped under a matching manifest)."""
        dims = self.manifest.dim, self.text_hidden
        wanted = {"text_encoder": {"pooled": dims[1]}, "selector": {"sticker": dims[0]},
                  "intention_head": {f"query_{m}": dims[0] for m in self.modes}}.get(graph, {})
        for out in session.get_outputs():
            width = out.shape[-1] if out.shape else None
            if out.name in wanted and isinstance(width, int) and width != wanted[out.name]:
                raise BundleError(f"{self._paths[graph]}: output {out.name!r} has width {width}, but the manifest says "
                                  f"{wanted[out.name]}; the graph does not belong to this manifest")

    def _run(self, graph: str, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        session = self.session(graph)
        try:
            return [np.asarray(o) for o in session.run(outputs, feeds)]
        except Exception as e:  # a graph that loads but does not match its manifest fails here
            raise BundleError(f"{self._paths[graph]}: onnxruntime could not run {graph} ({_first_line(e)}); "
                              "the graph does not match its manifest") from None

    @property
    def provider(self) -> str:
        """The provider the text encoder really runs on (created if needed)."""
        self.session("text_encoder")
        return self._providers["text_encoder"]

    # ------------------------------------------------------------------ graph calls
    def pooled(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if not self.row_by_row:
            return self._run("text_encoder", ["pooled"], {"input_ids": ids, "attention_mask": mask})[0]
        # one scale per tensor would mix the rows of a batch and its padding into every result
        lengths = np.maximum(mask.sum(1), 1)
        return np.concatenate([self._run("text_encoder", ["pooled"], {"input_ids": ids[i:i + 1, :n], "attention_mask": mask[i:i + 1, :n]})[0]
                               for i, n in enumerate(lengths)])

    def _rows(self, graph: str, outputs: list[str], inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run a graph on a batch, or row by row when its int8 activation scales are per tensor."""
        if not self.row_by_row:
            return self._run(graph, outputs, inputs)
        n = len(next(iter(inputs.values())))
        rows = [self._run(graph, outputs, {k: v[i:i + 1] for k, v in inputs.items()}) for i in range(n)]
        return [np.concatenate([r[j] for r in rows]) for j in range(len(outputs))]

    def encode_contexts(self, contexts: Sequence[Sequence[str]], knowledge: Sequence[Knowledge | None] | None = None,
                        own: Sequence[Sequence[bool] | None] | None = None) -> np.ndarray:
        ids, mask = self.tokenizer.encode_contexts(contexts, knowledge, own)
        return self.pooled(ids, mask)

    def encode_texts(self, texts: Sequence[str], batch: int = 64) -> np.ndarray:
        out = [self.pooled(*self.tokenizer.encode_texts(texts[k:k + batch])) for k in range(0, len(texts), batch)]
        return np.concatenate(out) if out else np.zeros((0, self.text_hidden), np.float32)

    def head(self, pooled: np.ndarray, mode: str | None = None) -> tuple[np.ndarray | None, np.ndarray]:
        """(logits or None, normalised query) for `mode` (default: the run's own)."""
        logits, query, _ = self.head_outputs(pooled, mode, with_suggest=False)
        return logits, query

    def head_outputs(self, pooled: np.ndarray, mode: str | None = None,
                     with_suggest: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
        """(logits or None, normalised query, suggest logits or None) from one run of the intention graph."""
        mode = mode or self.main_mode
        if mode not in self.modes:
            raise BundleError(f"query mode {mode!r} not in this bundle (has {', '.join(self.modes)})")
        suggest = with_suggest and self.suggest is not None
        names = (["logits"] if self.has_intention else []) + [f"query_{mode}"] + ([SUGGEST_OUTPUT] if suggest else [])
        out = self._rows("intention_head", names, {"pooled": pooled})
        logits = out.pop(0) if self.has_intention else None
        return logits, out[0], (out[1].reshape(-1) if suggest else None)

    def regions(self, pixels: np.ndarray) -> np.ndarray:
        return self._rows("vision_encoder", ["regions"], {"pixel_values": pixels})[0]

    def stickers(self, regions: np.ndarray, attributes: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self._rows("selector", ["sticker"], {"regions": regions, "attributes": attributes, "attribute_mask": mask})[0]

    @property
    def has_attribute_share(self) -> bool:
        """The selector also says how much each attribute drew it (bundles exported since `why`)."""
        return any(o.name == ATTRIBUTE_SHARE_OUTPUT for o in self.session("selector").get_outputs())

    def sticker_vectors(self, pixels: np.ndarray, descriptions: Sequence[Sequence[str]]) -> np.ndarray:
        """Normalised sticker vectors for pixels (S, 3, H, W) and per-sticker attribute texts (S, A)."""
        return self.sticker_side(pixels, descriptions, with_share=False)[0]

    def sticker_side(self, pixels: np.ndarray, descriptions: Sequence[Sequence[str]],
                     with_share: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """(normalised sticker vectors, (S, A) attribute shares or None when the bundle lacks them)
        of image stickers: pixels (S, 3, H, W) and attribute texts (S, A) in ATTRIBUTES order."""
        slots = [sticker_slots(dict(zip(ATTRIBUTES, row)), (), True) for row in descriptions]
        return self.sticker_rows(pixels, slots, np.zeros(len(slots), bool), with_share)

    def sticker_rows(self, pixels: np.ndarray, slots: Sequence[Slots], text_only: np.ndarray,
                     with_share: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Sticker vectors (and attribute shares) of a mix of image and text-only stickers.

        `slots[i]`: sticker i's texts by :func:`sdk.sticker_texts.sticker_slots`; `text_only[i]`:
        it has no image; `pixels`: the images of the other stickers, in order. A text-only sticker
        reaches the selector with all-zero regions (the descriptions-only path)."""
        text_only = np.asarray(text_only, bool)
        if text_only.any() and not self.manifest.text_only:
            raise BundleError(f"{self.root}: this bundle cannot embed stickers without an image (its sticker side reads "
                              "no descriptions, or it was exported before text-only stickers: re-export it)")
        shown = np.flatnonzero(~text_only)
        if len(pixels) != len(shown):
            raise ArgumentError(f"{len(shown)} image stickers but {len(pixels)} images")
        attrs, mask = slot_table(slots, self.encode_texts, self.text_hidden)
        image_regions = self.regions(pixels) if len(shown) else None
        shape = image_regions.shape[1:] if image_regions is not None else self.region_shape
        regions = np.zeros((len(slots), *shape), np.float32)
        if image_regions is not None:
            regions[shown] = image_regions
        names = ["sticker", ATTRIBUTE_SHARE_OUTPUT] if with_share and self.has_attribute_share else ["sticker"]
        out = self._rows("selector", names, {"regions": regions, "attributes": attrs, "attribute_mask": mask})
        return out[0], (out[1] if len(out) > 1 else None)

    @functools.cached_property
    def region_shape(self) -> tuple[int, ...]:
        """(regions, dim) of one image through the vision encoder (the zero regions of a text-only sticker)."""
        size = self.image_settings.image_size
        return tuple(self.regions(np.zeros((1, 3, size, size), np.float32)).shape[1:])

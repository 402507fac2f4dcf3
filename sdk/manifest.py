"""The bundle's manifest.json: one typed format, written by `intra-export` and read by the SDK.

Layout of a bundle directory (format 3)::

    manifest.json              this file: graphs and their sha256, precisions, query modes,
                               text and image settings, labels, scoring weights, the suggest
                               threshold (when the run has a suggest head), parity, provenance,
                               whether text-only stickers can be embedded
    tokenizer.json             the fast tokenizer (`tokenizers` alone loads it)
    <precision>/<graph>.onnx   for each precision in fp32, int8, fp16 and each of the four graphs

Format 1 kept the settings in preprocessing.json and the labels in labels.json; format 2 had no
seal; both are refused with a message to re-export. The ``seal`` is a digest of every other field:
an edit of anything that changes a result (the int8 kind, the scoring weights, the inputs, any
graph's sha256) is refused at load, not only an edit of what the ``fingerprint`` covers. :meth:`BundleManifest.from_json` checks every field's type and names
the one at fault.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import IntraError
from .imageprep import ImageSettings
from .labels import ATTRIBUTES, CONTEXT_MODE, LABELS, QUERY_MODES
from .schema import Int, ListOf, MapOf, Obj, OneOf, Opt, check_document
from .scoring import ScoreWeights
from .suggest import SuggestSettings
from .textprep import TextSettings

BUNDLE_FORMAT_VERSION = 3
MANIFEST = "manifest.json"
TOKENIZER = "tokenizer.json"
PRECISIONS = ("fp32", "int8", "fp16")
GRAPHS = ("text_encoder", "intention_head", "vision_encoder", "selector")
#: the selector's second output (bundles exported since `why`): each attribute's share of its region weights
ATTRIBUTE_SHARE_OUTPUT = "attribute_share"
MODES = (*QUERY_MODES, CONTEXT_MODE)
INPUTS = ("context", "knowledge")
#: How int8 activations are scaled: "dynamic" is one scale per tensor computed over the whole
#: batch (so the SDK runs such graphs one row at a time); the others are per block or fixed.
INT8_KINDS = ("dynamic", "weight-only", "static")


class ManifestError(IntraError, ValueError):
    """manifest.json is missing a field, has one of the wrong type, or is of another format."""


@dataclass(frozen=True)
class GraphFile:
    file: str
    sha256: str
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "bytes": self.bytes}


@dataclass(frozen=True)
class Gate:
    """The parity gate's verdict: which precisions failed it and why."""

    passed: bool
    failed: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    allow_degraded: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "failed": list(self.failed), "failures": list(self.failures),
                "allow_degraded": self.allow_degraded}


_GRAPH_FILE = Obj({"file": str, "sha256": str, "bytes": Int(0)})
SCHEMA = Obj(
    {"format_version": int, "fingerprint": str, "seal": str,
     "graphs": Obj({g: MapOf(_GRAPH_FILE) for g in GRAPHS}),
     "tokenizer": Obj({"file": OneOf((TOKENIZER,)), "sha256": str}),
     "opset": Int(1, 100), "precisions": ListOf(OneOf(PRECISIONS), min_len=1),
     "modes": ListOf(OneOf(MODES), min_len=1), "main_mode": OneOf(MODES),
     "inputs": ListOf(OneOf(INPUTS), min_len=1),
     "dims": Obj({"text_hidden": Int(1, 65_536), "dim": Int(1, 65_536)}),
     "text": dict, "image": dict, "pooling": str,
     "labels": ListOf(str), "attributes": ListOf(str),
     "parity": MapOf(dict)},
    {"scoring": Opt(dict), "suggest": Opt(dict),
     "gate": Opt(Obj({"passed": bool, "failed": ListOf(OneOf(PRECISIONS)), "failures": ListOf(str), "allow_degraded": bool})),
     "precision_notes": Opt(MapOf(dict)), "about": Opt(dict), "text_only": Opt(bool)},
)


@dataclass(frozen=True)
class BundleManifest:
    """Everything a bundle says about itself."""

    fingerprint: str
    graphs: dict[str, dict[str, GraphFile]]
    tokenizer_sha256: str
    opset: int
    precisions: tuple[str, ...]
    modes: tuple[str, ...]
    main_mode: str
    inputs: tuple[str, ...]
    text_hidden: int
    dim: int
    text: TextSettings
    image: ImageSettings
    pooling: str
    scoring: ScoreWeights = ScoreWeights()
    #: the suggest head's threshold and calibration (None: the bundle has no suggest head)
    suggest: SuggestSettings | None = None
    #: figures keyed by precision, and "reference" (the split, its size, PyTorch's mAP)
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)
    gate: Gate | None = None
    #: how each precision was made (int8: scheme, kind, schemes tried)
    precision_notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: provenance, not read by the runtime: versions, training config, dataset, metrics, encoder config
    about: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = LABELS
    attributes: tuple[str, ...] = ATTRIBUTES
    #: the selector embeds a sticker from its descriptions alone (zero regions: sdk.sticker_texts);
    #: False for sticker sides that read no descriptions and for bundles exported before it
    text_only: bool = False

    @property
    def int8_kind(self) -> str:
        """How the int8 graphs scale activations (bundles that do not say are treated as dynamic)."""
        return str(self.precision_notes.get("int8", {}).get("kind", "dynamic"))

    @property
    def failed(self) -> tuple[str, ...]:
        """Precisions that failed the parity gate (kept only with --allow-degraded)."""
        return self.gate.failed if self.gate is not None else ()

    def available(self) -> list[str]:
        """Precisions that have all four graphs."""
        return [p for p in PRECISIONS if all(p in self.graphs[g] for g in GRAPHS)]

    def to_json(self) -> dict[str, Any]:
        obj = {
            "format_version": BUNDLE_FORMAT_VERSION, "fingerprint": self.fingerprint,
            "graphs": {g: {p: f.to_json() for p, f in by_p.items()} for g, by_p in self.graphs.items()},
            "tokenizer": {"file": TOKENIZER, "sha256": self.tokenizer_sha256}, "opset": self.opset,
            "precisions": list(self.precisions), "modes": list(self.modes), "main_mode": self.main_mode,
            "inputs": list(self.inputs), "dims": {"text_hidden": self.text_hidden, "dim": self.dim},
            "text": self.text.to_json(), "image": self.image.to_json(), "pooling": self.pooling,
            "labels": list(self.labels), "attributes": list(self.attributes), "scoring": self.scoring.to_json(),
            "suggest": self.suggest.to_json() if self.suggest is not None else None, "parity": self.parity, "gate": self.gate.to_json() if self.gate is not None else None,
            "precision_notes": self.precision_notes, "about": self.about, "text_only": self.text_only,
        }
        return {**obj, "seal": seal(obj)}

    @classmethod
    def from_json(cls, obj: Any, where: str, error: type[IntraError] = ManifestError) -> BundleManifest:
        """Parse and check manifest.json's object; `error` names `where` and the field at fault."""
        version = obj.get("format_version") if isinstance(obj, dict) else BUNDLE_FORMAT_VERSION
        if version != BUNDLE_FORMAT_VERSION:
            newer = isinstance(version, int) and not isinstance(version, bool) and version > BUNDLE_FORMAT_VERSION
            fix = ("a newer intra wrote it: upgrade intra to load it" if newer
                   else "re-export the run with this intra's intra-export")
            raise error(f"{where}: field 'format_version' is {version!r}; this intra reads version {BUNDLE_FORMAT_VERSION} ({fix})")
        check_document(obj, BUNDLE_FORMAT_VERSION, SCHEMA, where, error)
        if obj["main_mode"] not in obj["modes"]:
            raise error(f"{where}: field 'main_mode' {obj['main_mode']!r} is not one of its 'modes'")
        if obj["labels"] != list(LABELS) or obj["attributes"] != list(ATTRIBUTES):
            raise error(f"{where}: field 'labels' or 'attributes' differs from this intra's; re-export with this intra")
        gate = obj.get("gate")
        return cls(
            fingerprint=obj["fingerprint"],
            graphs={g: {p: GraphFile(f["file"], f["sha256"], f["bytes"]) for p, f in by_p.items()} for g, by_p in obj["graphs"].items()},
            tokenizer_sha256=obj["tokenizer"]["sha256"], opset=obj["opset"], precisions=tuple(obj["precisions"]),
            modes=tuple(obj["modes"]), main_mode=obj["main_mode"], inputs=tuple(obj["inputs"]),
            text_hidden=obj["dims"]["text_hidden"], dim=obj["dims"]["dim"],
            text=TextSettings.from_json(obj["text"], f"{where}: text", error),
            image=ImageSettings.from_json(obj["image"], f"{where}: image", error), pooling=obj["pooling"],
            scoring=ScoreWeights.from_json(obj.get("scoring"), where, error), parity=obj["parity"],
            suggest=SuggestSettings.from_json(obj.get("suggest"), where, error),
            gate=Gate(gate["passed"], tuple(gate["failed"]), tuple(gate["failures"]), gate["allow_degraded"]) if gate else None,
            precision_notes=obj.get("precision_notes") or {}, about=obj.get("about") or {},
            text_only=bool(obj.get("text_only", False)),
        )


def seal(obj: dict[str, Any]) -> str:
    """The digest of every field of manifest.json's object but ``seal`` itself (32 hex digits)."""
    body = {k: v for k, v in obj.items() if k != "seal"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def check_seal(obj: dict[str, Any], where: str, error: type[IntraError] = ManifestError) -> None:
    """`error` unless the object's ``seal`` is the digest of its other fields (call after the schema check)."""
    if seal(obj) != obj["seal"]:
        raise error(f"{where}: field 'seal' does not match the manifest's other fields: the manifest was edited "
                    "after export (re-export the run with intra-export)")


def fingerprint(manifest: BundleManifest) -> str:
    """What identifies a model: its fp32 graphs, tokenizer, settings and labels (32 hex digits).
    Packs record it, so a pack is only ever ranked by the model that embedded it."""
    h = hashlib.sha256()
    for g in sorted(manifest.graphs):
        if "fp32" in manifest.graphs[g]:
            h.update(f"{g}:{manifest.graphs[g]['fp32'].sha256}\n".encode())
    h.update(f"tokenizer:{manifest.tokenizer_sha256}\n".encode())
    settings = {"text": manifest.text.to_json(), "image": manifest.image.to_json(), "pooling": manifest.pooling,
                "labels": list(manifest.labels), "attributes": list(manifest.attributes)}
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()[:32]

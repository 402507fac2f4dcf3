"""Personal history: which stickers this user sent, kept on the device, blended into the ranking.

Every :meth:`History.record` adds one use. A sticker's history weight is the sum over its uses of
``0.5 ** (later uses / half_life)``: frequency and recency in one number (a sticker sent often and
lately weighs most; one not sent for `half_life` uses of other stickers counts half). The ranker adds

    w_history * log(1 + weight(s))

to the score of each sticker of the pack that has a weight (others get nothing, so an empty history
costs `rank()` nothing). History file (JSON, written atomically after every change)::

    {"format_version": 1, "kind": "intra-history", "clock": N,
     "stickers": {id: {"count": uses, "last": clock at its last use, "weight": weight at that time}}}

Ids that are not in the pack being ranked are ignored for it (one history may serve several packs).
A file that is not such a history raises :class:`HistoryError` and is never overwritten.

Several processes may record into one file: every change takes an exclusive lock on the file
(:mod:`sdk.locks`), reads what another process wrote since, adds its use and writes, so no
acknowledged use is lost. A file holding more than :data:`MAX_STICKERS` stickers is trimmed to
the heaviest on load.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic, locks
from .errors import ArgumentError, IntraError, check_path, is_number
from .jsonfile import read_json_value
from .schema import Int, MapOf, Obj, OneOf, check_document

HISTORY_FORMAT_VERSION = 1
HISTORY_KIND = "intra-history"
#: Uses of other stickers after which a use counts half; chosen with the weight on the validation
#: conversations of the simulated users of experiments.history (10, 50 and no decay tried).
DEFAULT_HALF_LIFE = 50.0
#: w_history, chosen there too (0.1 to 3.2 tried; docs/results/history.md).
DEFAULT_HISTORY_WEIGHT = 0.8
#: Stickers kept; beyond this the lightest are dropped, so the file stays small.
MAX_STICKERS = 5000

HISTORY_SCHEMA = Obj({"format_version": int, "kind": OneOf((HISTORY_KIND,)), "clock": Int(0),
                      "stickers": MapOf(Obj({"count": Int(1), "last": Int(0), "weight": float}))})


class HistoryError(IntraError, ValueError):
    """A history file is corrupt or not a history; the message names the file and the field."""


@dataclass
class Use:
    count: int
    last: int
    weight: float


def check_nonnegative(name: str, value: Any) -> float:
    """`value` as a float when it is a finite number >= 0; ArgumentError naming `name` otherwise."""
    if not is_number(value, lo=0.0):
        raise ArgumentError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class History:
    """One user's sticker uses: in memory (`path` None) or in a local JSON file."""

    def __init__(self, path: Path | str | None = None, half_life: float = DEFAULT_HALF_LIFE) -> None:
        self.half_life = check_nonnegative("history_half_life", half_life)
        if self.half_life == 0:
            raise ArgumentError("history_half_life must be > 0")
        self.path = check_path("history", path) if path is not None else None
        self.clock = 0
        self.uses: dict[str, Use] = {}
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None  # the file as this object last read or wrote it
        #: bumped by every change, so users of `term` can keep its result until the next one
        self.version = 0
        if self.path is not None:
            atomic.remove_stale_files(self.path)  # temporary files of writers that were killed
        if self.path is not None and self.path.exists():
            self._load(self.path)

    def _load(self, path: Path) -> None:
        where = str(path)
        stamp = self._stamp()
        try:
            obj = read_json_value(path, HistoryError)
            check_document(obj, HISTORY_FORMAT_VERSION, HISTORY_SCHEMA, where, HistoryError)
        except HistoryError as e:
            raise HistoryError(f"{e} (not overwritten: fix or delete the file, or use another path)") from None
        uses = {}
        for sid, u in obj["stickers"].items():
            # each use adds at most 1 and then decays, so a weight above the count was never written by a History
            if u["last"] > obj["clock"] or not is_number(u["weight"], lo=0.0) or u["weight"] > u["count"] * (1 + 1e-9):
                raise HistoryError(f"{where}: field 'stickers.{sid}' is inconsistent (last {u['last']} after clock "
                                   f"{obj['clock']}, or a weight that is negative or above its count); not overwritten: "
                                   "fix or delete the file")
            uses[sid] = Use(u["count"], u["last"], float(u["weight"]))
        self.clock, self.uses, self._seen = obj["clock"], uses, stamp
        self._trim()
        self.version += 1

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path) if self.path is not None else None
        except OSError:
            return None
        return None if st is None else (st.st_ino, st.st_mtime_ns, st.st_size)

    def _trim(self) -> None:
        """Keep the MAX_STICKERS heaviest stickers."""
        if len(self.uses) > MAX_STICKERS:
            keep = heapq.nlargest(MAX_STICKERS, self.uses, key=self.weight)
            self.uses = {sid: self.uses[sid] for sid in keep}

    @contextlib.contextmanager
    def _changing(self):
        """Thread and file lock for a change, with what other processes wrote since read in first."""
        with self._lock, (locks.exclusive(self.path) if self.path is not None else contextlib.nullcontext()):
            if self.path is not None and self._stamp() not in (None, self._seen):
                self._load(self.path)
            yield
            self.version += 1
            self._save()

    def __len__(self) -> int:
        return len(self.uses)

    def weight(self, sticker_id: str) -> float:
        """The sticker's recency-weighted use count now (0 if never sent)."""
        u = self.uses.get(sticker_id)
        return 0.0 if u is None else u.weight * 0.5 ** ((self.clock - u.last) / self.half_life)

    def record(self, sticker_id: str) -> None:
        """Note one use of `sticker_id` and save the file (atomically) when there is one."""
        if not isinstance(sticker_id, str) or not sticker_id:
            raise ArgumentError(f"sticker_id must be a non-empty string, got {sticker_id!r}")
        try:  # checked before any change: an id the file cannot hold would block every later save
            sticker_id.encode("utf-8")
        except UnicodeEncodeError:
            raise ArgumentError(f"sticker_id must be valid Unicode text (no lone surrogates), got {sticker_id!r}") from None
        with self._changing():
            self.clock += 1
            prev = self.uses.get(sticker_id)
            self.uses[sticker_id] = Use((prev.count if prev else 0) + 1, self.clock, self.weight(sticker_id) + 1.0)
            self._trim()

    def forget(self) -> None:
        """Erase every recorded use (and write the empty history to the file)."""
        with self._changing():
            self.clock, self.uses = 0, {}

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            atomic.write_json(self.path, {
                "format_version": HISTORY_FORMAT_VERSION, "kind": HISTORY_KIND, "clock": self.clock,
                "stickers": {k: {"count": u.count, "last": u.last, "weight": u.weight} for k, u in self.uses.items()}})
        except OSError as e:
            raise HistoryError(f"{self.path}: could not be written ({e.strerror}); the change is kept in memory only, "
                               "the file is as it was") from None
        self._seen = self._stamp()

    def term(self, index: Mapping[str, int], weight: float) -> tuple[np.ndarray, np.ndarray] | None:
        """(pack indices, w * log(1 + weight)) of the pack's stickers in the history; None when none are."""
        if weight == 0.0:
            return None
        with self._lock:
            pairs = [(index[sid], self.weight(sid)) for sid in self.uses if sid in index]
        if not pairs:
            return None
        idx = np.array([p[0] for p in pairs], np.int64)
        return idx, (weight * np.log1p(np.array([p[1] for p in pairs]))).astype(np.float32)

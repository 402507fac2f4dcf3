"""The `intra` command line: the runtime's commands, and those other packages register.

The runtime owns `info` (check a dataset), `pack build|info|merge`, `rank` and `history`; they need only the
base install. Other packages add theirs through the ``intra.commands`` entry-point group (a
function that takes the root typer app), the way pytest finds plugins: training adds `data`,
`train` and `eval`, export adds `export`, pipeline adds `demo`, benchmarks add `bench`. The runtime never
imports them by name.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import typer

from .cli_base import DTYPES_HELP, PRECISION_HELP, PROVIDERS_HELP, choice, fail, new_app, run_guarded, say
from .diversity import DIVERSE_THRESHOLD
from .errors import IntraError
from .history import DEFAULT_HISTORY_WEIGHT
from .manifest import PRECISIONS
from .pack import DTYPES
from .pack_build import ENGINES
from .providers import PROVIDER_REQUESTS

COMMANDS_GROUP = "intra.commands"
log = logging.getLogger("intra")

app = new_app("intra: pick the right sticker to reply with (Int-RA), trained in PyTorch, run on onnxruntime.")
pack_app = new_app("Build, inspect and merge sticker packs (runs on onnxruntime only).")
app.add_typer(pack_app, name="pack")
history_app = new_app("Keep a user's sticker history on the device (blended into `intra rank --history`).")
app.add_typer(history_app, name="history")


def _version(value: bool) -> None:
    if value:
        import onnxruntime

        from . import __version__

        say(f"intra {__version__} (onnxruntime {onnxruntime.__version__}, Python {sys.version.split()[0]})")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print intra's version (and onnxruntime's) and exit.")) -> None:
    """intra: pick the right sticker to reply with (Int-RA), trained in PyTorch, run on onnxruntime."""


def add_registered_commands(root: typer.Typer, group: str = COMMANDS_GROUP) -> list[str]:
    """Let every installed ``group`` entry point add its commands to `root`; their names."""
    added = []
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            ep.load()(root)
        except Exception as e:  # a broken plugin must not take the runtime's commands down with it
            log.warning("commands %r (%s) could not be added: %s", ep.name, ep.value, e)
            continue
        added.append(ep.name)
    return added


def _shard(value: str | None) -> tuple[int, int] | None:
    """--shard I/N as (I, N), checked before any work."""
    if value is None:
        return None
    parts = value.split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise typer.BadParameter(f"expected I/N (build shard I of N, counting from 0), got {value!r}")
    index, count = int(parts[0]), int(parts[1])
    if not 0 <= index < count:
        raise typer.BadParameter(f"I/N needs 0 <= I < N, got {value!r}")
    return index, count


@app.command("info")
def info(path: Path = typer.Argument(..., help="A dataset directory.")) -> None:
    """Validate a dataset directory and print its counts."""
    from .dataset import load_dataset

    try:
        ds = load_dataset(path)
    except IntraError as e:
        fail(e)
    out = {"name": ds.info.name, "synthetic": ds.info.synthetic, "stickers": len(ds.stickers),
           "splits": {k: len(v) for k, v in ds.splits.items()}}
    say(json.dumps(out, ensure_ascii=False, indent=2))


@pack_app.command("build")
def pack_build(
    source: Path = typer.Argument(..., help="A folder of images (optional descriptions.json/.jsonl sidecar), a dataset directory, or a JSON file listing stickers [{\"id\", \"descriptions\", \"image\"?}, ...] (entries without an image are text-only stickers)."),
    model: Path = typer.Option(..., "--model", help="Model bundle made by intra-export."),
    out: Path = typer.Option(..., "--out", help="Pack directory to write: free, empty or an earlier pack (replaced atomically); never the source or the bundle."),
    precision: str | None = typer.Option(None, callback=choice(PRECISIONS), help=f"{PRECISION_HELP} [default: fp16 on CUDA; on the CPU the faster of int8 and fp32 on this CPU, timed once and cached]"),
    providers: str = typer.Option("auto", callback=choice(PROVIDER_REQUESTS), help=PROVIDERS_HELP),
    batch_size: int = typer.Option(32, min=1, max=4096, help="Stickers per batch through the graphs (results do not depend on it)."),
    dtype: str = typer.Option("float16", callback=choice(DTYPES), help=DTYPES_HELP),
    ocr: bool = typer.Option(False, "--ocr", help="Read captions drawn on stickers into the 'verbal' attribute (the 'ocr' extra)."),
    shard: str | None = typer.Option(None, callback=_shard, help="I/N: build only shard I of N, counting from 0 (merge shards with `intra pack merge`)."),
    usage: Path | None = typer.Option(None, "--usage", help="JSON file {sticker id: count}: usage counts for the usage prior. [default: a dataset's training-split counts; none for a folder]"),
    bias: Path | None = typer.Option(None, "--bias", help="JSON file {sticker id: number}: a per-sticker bias added to every score (a calibration of this pack, e.g. fitted on held-out chats). [default: none]"),
    ann: bool | None = typer.Option(None, "--ann/--no-ann", help="Store an ANN index in the pack (the 'ann' extra), which a Ranker loads instead of building. [default: above 200,000 stickers]"),
    engine: str = typer.Option("local", callback=choice(ENGINES), help="local (this process) or ray (a Ray Data job with one ONNX session per actor; the 'ray' extra). The pack is the same."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="With --engine ray: the cluster to run on (e.g. ray://head:10001 or auto). [default: a local Ray for this build]"),
    workers: int | None = typer.Option(None, min=1, max=1024, help="With --engine ray: how many actors embed in parallel. [default: one per CPU of the cluster]"),
) -> None:
    """Embed stickers with a bundle and write a pack (pack.json, embeddings.npy, images)."""
    from .pack_build import build_pack

    try:
        pack = build_pack(source, model, out, batch_size=batch_size, dtype=dtype, ocr=ocr, shard=shard,  # type: ignore[arg-type]
                          providers=providers, precision=precision, usage=usage, ann=ann, engine=engine,
                          ray_address=ray_address, workers=workers, bias=bias)
    except IntraError as e:
        fail(e)
    counts = "no usage counts" if pack.usage is None else f"usage counts for {sum(1 for v in pack.usage.values() if v)} stickers"
    if pack.meta.bias is not None:
        counts += f", biases for {len(pack.meta.bias)} stickers"
    say(f"wrote pack {out}: {len(pack)} stickers, dim {pack.meta.dim}, {pack.meta.dtype}, "
               f"model {pack.fingerprint} ({pack.meta.precision}), {counts}")


@pack_app.command("info")
def pack_info(pack: Path = typer.Argument(..., help="Pack directory.")) -> None:
    """Verify a pack (every sha256) and print its summary."""
    from collections import Counter

    from .pack import load_pack

    try:
        p = load_pack(pack)
    except IntraError as e:
        fail(e)
    labels = Counter(s.label or "(none)" for s in p.stickers)
    say(json.dumps({"path": str(p.root), "stickers": len(p), "dim": p.meta.dim, "dtype": p.meta.dtype,
                           "fingerprint": p.fingerprint, "precision": p.meta.precision, "model_path": p.meta.model_path,
                           "model_relpath": p.meta.model_relpath, "ann_index": p.meta.ann is not None,
                           "created": p.meta.created, "labels": dict(labels.most_common(10)),
                           "usage": None if p.usage is None else {"stickers": len(p.usage), "total": sum(p.usage.values())},
                           "bias": None if p.meta.bias is None else {"stickers": len(p.meta.bias)}},
                          indent=2, ensure_ascii=False))


@pack_app.command("merge")
def pack_merge(
    shards: list[Path] = typer.Argument(..., help="Pack directories built by the same model."),
    out: Path = typer.Option(..., "--out", help="Merged pack directory: free, empty or an earlier pack, never a shard."),
) -> None:
    """Merge shards built by the same model into one pack."""
    from .pack import load_pack, merge_packs

    try:
        merge_packs(shards, out)
        n = len(load_pack(out))
    except IntraError as e:
        fail(e)
    say(f"wrote merged pack {out}: {n} stickers")


STICKER_TURN_PREFIX = "@sticker:"


def _turns(args: list[str]) -> list[dict[str, str]]:
    """CLI turns as context dicts: `@sticker:ID` is a sticker the chat already holds."""
    return [{"sticker": t[len(STICKER_TURN_PREFIX):]} if t.startswith(STICKER_TURN_PREFIX) else {"text": t} for t in args]


def _print_table(result, elapsed: float) -> None:
    if result.confidence is not None:
        say(f"suggest a sticker: {'yes' if result.suggest else 'no'} (confidence {result.confidence:.2f})")
    if result.intention is not None:
        say(f"intention: {result.intention} ({result.intention_probability:.2f})   "
                   f"[{result.provider}, {result.precision}, mode {result.mode}, {elapsed * 1000:.0f} ms incl. loading]")
    say(f"{'#':>2}  {'sticker':<24} {'score':>6}  {'label':<15} why")
    for i, m in enumerate(result.matches, 1):
        say(f"{i:>2}  {m.sticker_id:<24} {m.score:6.3f}  {m.label or '-':<15} {m.why.summary() if m.why else ''}")
        say(f"    {m.file if m.file is not None else 'text: ' + ' | '.join(m.descriptions)}")


@app.command("rank")
def rank_cmd(
    turns: list[str] = typer.Argument(..., help=f"The conversation, one argument per turn, oldest first (the newest is yours, and the turns alternate back from it); {STICKER_TURN_PREFIX}ID is a sticker of the pack sent earlier in the chat."),
    pack: Path = typer.Option(..., "--pack", help="Pack directory."),
    model: Path | None = typer.Option(None, "--model", help="Model bundle. [default: the one that built the pack]"),
    top_k: int = typer.Option(5, "--top-k", min=1, max=1_000_000, help="How many stickers to return."),
    precision: str | None = typer.Option(None, callback=choice(PRECISIONS), help=f"{PRECISION_HELP} [default: fp16 on CUDA; on the CPU the faster of int8 and fp32 on this CPU, timed once and cached]"),
    providers: str = typer.Option("auto", callback=choice(PROVIDER_REQUESTS), help=PROVIDERS_HELP),
    threads: int | None = typer.Option(None, min=1, help="onnxruntime intra-op threads, at most the CPUs this process may use. [default: onnxruntime's]"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (with each match's why) instead of a table."),
    diverse: bool = typer.Option(False, "--diverse", help=f"Keep near-duplicate stickers (pack vectors with cosine above {DIVERSE_THRESHOLD}) out of the top k."),
    history: Path | None = typer.Option(None, "--history", help="Personal history file (intra history record) blended into the ranking. [default: none]"),
    history_weight: float = typer.Option(DEFAULT_HISTORY_WEIGHT, "--history-weight", min=0.0, help="Weight of the history term w * log(1 + recency-weighted uses)."),
    html: Path | None = typer.Option(None, "--html", help="Also write a self-contained HTML page of the ranking (images inlined)."),
) -> None:
    """Rank a pack's stickers as the reply to a conversation, with why each was picked."""
    from .ranker import get_ranker

    context = _turns(turns)
    try:
        t0 = time.perf_counter()
        ranker = get_ranker(pack, model, precision=precision, providers=providers, threads=threads, history=history,
                            history_weight=history_weight)
        result = ranker.rank(context, top_k=top_k, diverse=diverse, explain=True)
        elapsed = time.perf_counter() - t0
        if html is not None:
            from .gallery import Entry, write_gallery

            write_gallery(html, [Entry(context, result)], title="intra rank", files=ranker.sticker_files(context))
    except IntraError as e:
        fail(e)
    if as_json:
        say(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_table(result, elapsed)


@history_app.command("record")
def history_record(
    file: Path = typer.Argument(..., help="History file (created if missing)."),
    sticker_ids: list[str] = typer.Argument(..., help="Sticker ids the user sent, oldest first."),
    pack: Path | None = typer.Option(None, "--pack", help="Refuse ids that are not in this pack. [default: no check]"),
) -> None:
    """Note that the user sent these stickers."""
    from .history import History
    from .pack import load_pack

    try:
        if pack is not None:
            known = set(load_pack(pack, verify=False).ids)
            unknown = [s for s in sticker_ids if s not in known]
            if unknown:
                fail(f"{pack}: sticker(s) {', '.join(map(repr, unknown))} not in the pack; nothing recorded")
        h = History(file)
        for sid in sticker_ids:
            h.record(sid)
    except IntraError as e:
        fail(e)
    say(f"{file}: {len(sticker_ids)} use(s) recorded; {len(h)} sticker(s), {h.clock} use(s) in all")


@history_app.command("show")
def history_show(file: Path = typer.Argument(..., help="History file.")) -> None:
    """Print the stickers of a history, heaviest first."""
    from .history import History

    try:
        if not file.is_file():
            fail(f"{file}: no history file there")
        h = History(file)
    except IntraError as e:
        fail(e)
    rows = sorted(h.uses, key=h.weight, reverse=True)
    say(json.dumps({"uses": h.clock, "stickers": [{"id": k, "count": h.uses[k].count, "weight": round(h.weight(k), 4)}
                                                         for k in rows]}, ensure_ascii=False, indent=2))


@history_app.command("forget")
def history_forget(file: Path = typer.Argument(..., help="History file to erase.")) -> None:
    """Erase a history (the file is kept, empty)."""
    from .history import History

    try:
        if not file.is_file():
            fail(f"{file}: no history file there")
        History(file).forget()
    except IntraError as e:
        fail(e)
    say(f"{file}: history erased")


add_registered_commands(app)


def main() -> None:
    """The `intra` console command, behind the last-resort error handler."""
    run_guarded(app, "intra")


if __name__ == "__main__":
    main()

"""`intra demo`: the main job on the built-in SYNTHETIC world, as seven named steps.

data -> train -> evaluate -> export -> pack -> rank -> latency. Each step prints what it did and
how long it took; the outputs land under one work directory.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from sdk.dataset import Conversation, load_dataset
from sdk.pack import Pack
from sdk.pack_build import build_pack
from sdk.ranker import Ranker


@dataclass(frozen=True)
class DemoPaths:
    workdir: Path

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @property
    def run(self) -> Path:
        return self.workdir / "run"

    @property
    def model(self) -> Path:
        return self.workdir / "model"

    @property
    def pack(self) -> Path:
        return self.workdir / "pack"

    @property
    def report(self) -> Path:
        return self.workdir / "report"


def say(text: str) -> None:
    typer.echo(f"    {text}")


def make_world(paths: DemoPaths, seed: int) -> None:
    from training.data.synthetic import SyntheticConfig, generate

    counts = generate(paths.data, SyntheticConfig(seed=seed), progress=True)
    say(f"{paths.data}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def train_model(paths: DemoPaths, seed: int, preset: str, epochs: int | None) -> None:
    from training.config import preset as make_preset
    from training.run_dir import RunError
    from training.trainer import train

    cfg = make_preset(preset, seed=seed, epochs=epochs)
    try:
        result = train(cfg, paths.data, paths.run)
    except RunError:  # a run with other settings is there: the demo starts it over
        result = train(cfg, paths.data, paths.run, resume=False)
    say(f"best validation {result['select_on']} {result['best_val']:.4f}")


def evaluate_model(paths: DemoPaths) -> None:
    from training.evaluate import evaluate, write_report

    report = evaluate(paths.run, paths.data, "test")
    write_report(report, paths.report)
    for name, m in report["models"].items():
        say(f"{name:<22} P@1 {100 * m['P@1']:5.1f}  mAP {100 * m['mAP']:5.1f}  R@5 {100 * m['R@5']:5.1f}  MRR {100 * m['MRR']:5.1f}")
    say(f"intention accuracy {100 * report['intention'].get('accuracy', 0):.1f}%")


def export_model(paths: DemoPaths) -> None:
    from export.exporter import export_run
    from export.report import summary

    manifest = export_run(paths.run, paths.model, data=paths.data, allow_degraded=True)
    say(summary(manifest).replace("\n", "\n    "))


def make_pack(paths: DemoPaths) -> Pack:
    pack = build_pack(paths.data, paths.model, paths.pack, precision="int8", providers="cpu")
    say(f"{paths.pack}: {len(pack)} stickers")
    return pack


def rank_examples(paths: DemoPaths, convs: list[Conversation]) -> None:
    ranker = Ranker(paths.model, paths.pack, precision="int8", providers="cpu")
    for conv in convs[:5]:
        res = ranker.rank([turn.text for turn in conv.context], top_k=3)
        hit = "  <- gold in top 3" if conv.sticker_id in {m.sticker_id for m in res.matches} else ""
        say(f"...{conv.context[-1].text!r}  (gold {conv.sticker_id}, {conv.label})")
        say(f"   intention {res.intention} ({res.intention_probability:.2f}); top 3: "
            + ", ".join(f"{m.sticker_id} [{m.label}] {m.score:.2f}" for m in res.matches) + hit)


def latency(paths: DemoPaths, convs: list[Conversation], pack_size: int) -> None:
    contexts = [[turn.text for turn in c.context] for c in convs[:60]]
    for precision in ("fp32", "int8"):
        ranker = Ranker(paths.model, paths.pack, precision=precision, providers="cpu")
        ranker.rank(contexts[0])
        times = []
        for c in contexts:
            t0 = time.perf_counter()
            ranker.rank(c)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        say(f"{precision}: p50 {statistics.median(times):.2f} ms, p95 {times[int(0.95 * (len(times) - 1))]:.2f} ms "
            f"over {len(times)} contexts, {pack_size} stickers, {ranker.bundle.provider}")


def run_demo(workdir: Path, seed: int, preset: str, epochs: int | None) -> None:
    """Every step in order, each with its title and time."""
    paths = DemoPaths(workdir)
    t_all = time.perf_counter()

    def step(n: int, title: str, action: Callable[[], Any]) -> Any:
        typer.secho(f"\n[{n}] {title}", bold=True)
        t0 = time.perf_counter()
        result = action()
        say(f"({time.perf_counter() - t0:.1f}s)")
        return result

    step(1, "synthetic world (SYNTHETIC data, drawn by intra's generator)", lambda: make_world(paths, seed))
    step(2, f"train Int-RA ({preset} preset; an unfinished or finished run in {paths.run} is reused)",
         lambda: train_model(paths, seed, preset, epochs))
    step(3, "evaluate on the test split against the baselines", lambda: evaluate_model(paths))
    step(4, "export to ONNX (fp32, int8, fp16) with the parity gate", lambda: export_model(paths))
    pack = step(5, "build the sticker pack on onnxruntime (int8)", lambda: make_pack(paths))
    convs = list(load_dataset(paths.data, splits=["test"]).split("test"))
    step(6, "rank test conversations through the SDK (no torch on this path)", lambda: rank_examples(paths, convs))
    step(7, "latency of rank() at batch 1 (this machine)", lambda: latency(paths, convs, len(pack)))
    typer.secho(f"\ndone in {time.perf_counter() - t_all:.0f}s; outputs in {workdir}", bold=True)

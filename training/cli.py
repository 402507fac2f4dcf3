"""`intra data`, `intra train`, `intra distill`, `intra suggest` and `intra eval`: the training side's commands.

Registered into `intra` through the ``intra.commands`` entry point (:func:`register`); also a
command line of its own, which `torchrun --nproc_per_node 2 -m training.cli train ...` uses for
DDP. The data commands need only the base install; train and eval import torch lazily and, when
it is missing, say which extra to install.
"""

from __future__ import annotations

from pathlib import Path

import typer

from sdk import atomic
from sdk.cli_base import MODES_HELP, PRECISION_HELP, choice, fail, new_app, require_extra, run_guarded
from sdk.errors import ArgumentError, IntraError
from sdk.labels import QUERY_MODES
from sdk.manifest import PRECISIONS

from .config import CJK_INITS, SPEAKER_MARKING, TEXT_SCHEDULES

app = new_app("Train and evaluate Int-RA, and build its datasets.")
data_app = new_app("Build dataset directories: the built-in synthetic world or the real GoEmoji, TweetEval emoji and StickerQueries data.")
app.add_typer(data_app, name="data")


def _report(title: str, counts: dict[str, int], rules: dict[str, str]) -> None:
    """What a real-data builder wrote: its counts and the rules it applied."""
    typer.echo(title)
    for key, value in counts.items():
        typer.echo(f"  {key:28s} {value}")
    for key, rule in rules.items():
        typer.echo(f"  rule {key}: {rule}")


@data_app.command("synthetic")
def data_synthetic(
    out: Path = typer.Option(..., "--out", help="Dataset directory to write: free, empty or an earlier dataset (replaced atomically)."),
    seed: int = typer.Option(0, help="Random seed; the same seed draws the same world."),
    stickers: int = typer.Option(140, min=28, max=100_000, help="Number of stickers (spread over the 28 intentions)."),
    conversations: int = typer.Option(3000, min=20, max=10_000_000, help="Number of conversations over train/validation/test."),
) -> None:
    """Draw the built-in SYNTHETIC sticker world (stickers + bilingual conversations)."""
    from .data.synthetic import SyntheticConfig, generate

    try:
        counts = generate(out, SyntheticConfig(seed=seed, stickers=stickers, conversations=conversations), progress=True)
    except IntraError as e:
        fail(e)
    typer.echo(f"wrote SYNTHETIC dataset to {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@data_app.command("goemoji")
def data_goemoji(
    source: Path = typer.Option(Path("../shared/data"), help="The shared data directory (with goemotions/ and emoji/)."),
    out: Path = typer.Option(..., "--out", help="Dataset directory to write: free, empty or an earlier dataset (replaced atomically)."),
    seed: int = typer.Option(0, help="Seed of the validation split carved out of train."),
    validation_fraction: float = typer.Option(0.15, min=0.01, max=0.9, help="Fraction of train.tsv's emoji comments kept for validation."),
) -> None:
    """Build the real GoEmoji dataset: GoEmotions comments with an emoji, the emoji as gold sticker."""
    try:
        require_extra("`intra data goemoji`", "data", "regex")
        from .data.goemoji import RULES, build

        counts = build(source, out, seed=seed, validation_fraction=validation_fraction)
    except IntraError as e:
        fail(e)
    _report(f"wrote GoEmoji dataset to {out}", counts, RULES)


@data_app.command("tweeteval")
def data_tweeteval(
    source: Path = typer.Option(Path("../shared/data"), help="The shared data directory (with tweeteval-emoji/, emoji/ and goemotions/)."),
    out: Path = typer.Option(..., "--out", help="Dataset directory to write: free, empty or an earlier dataset (replaced atomically)."),
    catalog: str = typer.Option("full", callback=choice(("full", "task")), help="Stickers: all 646 emoji of the catalog (full) or the 20 task emoji (task)."),
    seed: int = typer.Option(0, help="Seed of the validation split carved out of train (and of the held-out emoji)."),
    validation_fraction: float = typer.Option(0.1, min=0.01, max=0.9, help="Fraction of train_text.txt kept for validation."),
    hold_out: int = typer.Option(0, min=0, max=19, help="Hold this many task emoji out: their tweets leave train and validation, and test keeps only theirs."),
    extra_intention: bool = typer.Option(True, help="Write GoEmotions' labelled comments as the extra_intention split (tweets have no intention label)."),
) -> None:
    """Build the real TweetEval emoji dataset: tweets (cleaned of the U+FE0F leak), their emoji as gold sticker."""
    try:
        require_extra("`intra data tweeteval`", "data", "regex")
        from .data.tweeteval import RULES, build

        counts = build(source, out, catalog=catalog, seed=seed, validation_fraction=validation_fraction,
                       held_out=hold_out, extra_intention=extra_intention)
    except IntraError as e:
        fail(e)
    _report(f"wrote TweetEval emoji dataset to {out}", counts, RULES)


@data_app.command("sticker-queries")
def data_sticker_queries(
    source: Path = typer.Option(Path("../shared/data"), help="The shared data directory (with sticker-queries/)."),
    lang: str = typer.Option("zh", callback=choice(("zh", "en")), help="Which half: real Chinese (zh, 615 stickers) or English (en, 1,115)."),
    out: Path = typer.Option(..., "--out", help="Dataset directory to write: free, empty or an earlier dataset (replaced atomically)."),
    seed: int = typer.Option(0, help="Seed of the held-out test and validation query of each sticker."),
) -> None:
    """Build StickerQueries query -> sticker retrieval: text-only stickers described by their other queries."""
    try:
        from .data.sticker_queries import RULES, build

        counts = build(source, out, lang=lang, seed=seed)
    except IntraError as e:
        fail(e)
    _report(f"wrote StickerQueries-{lang} dataset to {out}", counts, RULES)


@app.command("train")
def train_cmd(
    data: Path = typer.Option(..., "--data", help="Dataset directory (see `intra data`)."),
    out: Path = typer.Option(..., "--out", help="Run directory to write; an unfinished run there is resumed."),
    preset: str = typer.Option("small", help="tiny (tests, seconds), small (the demo, minutes on 2 cores), tweet (TweetEval emoji, under 45 minutes on 2 cores), tweet-full (tweet with every encoder layer tuned, slower) or base."),
    text_model: str | None = typer.Option(None, help="Hugging Face encoder directory, 'minilm' (all-MiniLM-L6-v2 from its package) or 'tiny'. [default: the preset's]"),
    vision_model: str | None = typer.Option(None, help="Local CLIP vision / ViT directory, 'vit-config' (a ViT built from a config) or 'efficientnet-lite0' (ImageNet weights from its package, frozen; 4x4 regions). [default: the preset's]"),
    mode: str = typer.Option("fused", callback=choice(QUERY_MODES), help=MODES_HELP),
    no_knowledge: bool = typer.Option(False, "--no-knowledge", help="Ablation: never feed commonsense knowledge."),
    no_attributes: bool = typer.Option(False, "--no-attributes", help="Ablation: H^R is the mean of the region features."),
    no_intention: bool = typer.Option(False, "--no-intention", help="Ablation: the query is the projected context, no intention head."),
    dual_encoder: bool = typer.Option(False, "--dual-encoder", help="Baseline: CLIP-style dual encoder (context vs image, InfoNCE), no intention."),
    extra_intention: bool = typer.Option(False, "--extra-intention", help="Also train the intention head on extra_intention.jsonl."),
    cjk_vocab: bool = typer.Option(True, "--cjk-vocab/--no-cjk-vocab", help="Add the training data's CJK characters that the encoder's vocabulary lacks as new trained tokens (else they read as [UNK])."),
    cjk_init: str | None = typer.Option(None, "--cjk-init", callback=choice(CJK_INITS), help="Where the new CJK rows start: multilingual (by meaning, through the multilingual USE) or mean (the vocabulary's mean). [default: the preset's: multilingual; tiny: mean]"),
    speakers: str | None = typer.Option(None, "--speaker-markers", callback=choice(SPEAKER_MARKING), help="Read each turn behind 'me:' (the replying user's own) or 'them:' (anyone else's): auto (when a training chat has more than one speaker), on or off. [default: the preset's: auto]"),
    extra_intention_max: int = typer.Option(8192, min=1, help="With --extra-intention: use at most this many extra comments (a fixed random subset per seed)."),
    epochs: int | None = typer.Option(None, min=1, max=10_000, help="Epochs. [default: the preset's]"),
    loss: str | None = typer.Option(None, "--loss", help="Retrieval loss: hinge or infonce. [default: the preset's]"),
    negatives: int | None = typer.Option(None, "--negatives", help="Sampled negatives per batch; -1: the whole catalog. [default: the preset's]"),
    text_schedule: str | None = typer.Option(None, "--text-schedule", callback=choice(TEXT_SCHEDULES), help="The text encoder's learning rate: run (the whole run's cosine) or tuned (warm-up, then a linear decay to 0 over its tuned epochs). [default: the preset's: run]"),
    select_on: str | None = typer.Option(None, "--select-on", help="Best checkpoint by validation 'mAP' (of the cosine) or 'final' (mean of MRR, R@10, mAP of the final score). [default: the preset's]"),
    seed: int = typer.Option(0, help="Seed; the same seed and flags give the same run."),
    fresh: bool = typer.Option(False, "--fresh", help="Start over instead of resuming a run found in --out."),
) -> None:
    """Train Int-RA (or an ablation, or the dual-encoder baseline) on a dataset directory."""
    try:
        require_extra("`intra train`", "train", "torch", "transformers", "safetensors")
        from .config import preset as make_preset
        from .trainer import train

        cfg = make_preset(preset, text_model=text_model, vision_model=vision_model, mode=mode, epochs=epochs, seed=seed,
                          use_knowledge=not no_knowledge, use_attributes=not no_attributes, use_intention=not no_intention,
                          dual_encoder=dual_encoder, extra_intention=extra_intention,
                          extra_intention_max=extra_intention_max, retrieval_loss=loss, sampled_negatives=negatives,
                          select_on=select_on, extend_cjk_vocab=cjk_vocab, cjk_init=cjk_init, text_schedule=text_schedule,
                          speaker_markers=speakers)
        result = train(cfg, data, out, progress=True, resume=not fresh)
    except IntraError as e:
        fail(e)
    typer.echo(f"run {result['run']}: best validation {result['select_on']} {result['best_val']:.4f}; scoring weights {result['scoring']}")


@app.command("eval")
def eval_cmd(
    run: Path = typer.Option(..., "--run", help="Run directory made by `intra train`."),
    data: Path = typer.Option(..., "--data", help="Dataset directory."),
    split: str = typer.Option("test", help="Split to evaluate."),
    out: Path = typer.Option(..., "--out", help="Report directory (report.json, report.md, pr_curve.png)."),
    compare: list[str] = typer.Option([], "--compare", help="NAME=RUN_DIR: another trained run to put in the table (ablation, dual encoder, other mode). Repeatable."),
    probes: bool = typer.Option(False, "--probes", help="Add the probe-emoji and probe-intention baselines (frozen all-MiniLM-L6-v2 features; cached in OUT/cache)."),
    model: Path | None = typer.Option(None, "--model", help="Also rank through this exported bundle with the SDK (a pack is built from --data)."),
    precision: str | None = typer.Option(None, callback=choice(PRECISIONS), help=f"With --model: {PRECISION_HELP} [default: the SDK's choice]"),
    html: Path | None = typer.Option(None, "--html", help="With --model: also write a self-contained HTML gallery of the SDK's top 5 (with why) for the split's first 40 conversations, gold marked."),
) -> None:
    """Evaluate a run against the baselines (random, popular, intention-only) and any --compare runs."""
    try:
        if html is not None and model is None:
            raise ArgumentError("--html shows the SDK's ranking: pass --model BUNDLE too")
        require_extra("`intra eval`", "train", "torch", "transformers", "matplotlib")
        from .evaluate import evaluate, write_report

        others = {}
        for item in compare:
            if "=" not in item:
                raise ArgumentError(f"--compare {item!r}: expected NAME=RUN_DIR")
            name, path = item.split("=", 1)
            others[name] = Path(path)
        report = evaluate(run, data, split, others, probes=probes, cache_dir=out / "cache", bundle=model, precision=precision,
                          html=html)
        write_report(report, out)
    except IntraError as e:
        fail(e)
    from .evaluate import markdown

    typer.echo(markdown(report))
    typer.echo(f"wrote {out}/report.json, report.md, pr_curve.png" + (f"; gallery {html}" if html is not None else ""))


@app.command("distill")
def distill_cmd(
    run: Path = typer.Option(..., "--run", help="The teacher: a run directory made by `intra train`."),
    out: Path = typer.Option(..., "--out", help="Run directory to write for the student: free, empty or an earlier distilled run (replaced atomically)."),
    layers: int = typer.Option(3, min=1, help="Text-encoder layers of the student: fewer than the teacher's, or as many with --fake-quant."),
    epochs: int = typer.Option(3, min=1, help="Passes over the distillation texts."),
    extra_max: int = typer.Option(4096, min=0, help="At most this many extra intention-only comments among the texts."),
    data: Path | None = typer.Option(None, help="Dataset directory. [default: the teacher's]"),
    seed: int = typer.Option(0, help="Random seed."),
    fake_quant: bool = typer.Option(False, "--fake-quant", help="Train under dynamic int8's rounding (quantization-aware; --layers may then equal the teacher's)."),
) -> None:
    """Distil a shallower text encoder from a trained run (fewer FLOPs per rank); writes a run to export."""
    try:
        require_extra("`intra distill`", "train", "torch", "transformers")
        from .distill import DistillConfig, distill, read_record

        distill(run, out, DistillConfig(layers=layers, epochs=epochs, extra_max=extra_max, seed=seed, fake_quant=fake_quant), data)
        record = read_record(out)
    except IntraError as e:
        fail(e)
    typer.echo(f"wrote {out}: {layers}-layer text encoder from teacher layers {record['kept_layers']}, "
               f"loss by epoch {record['epoch_losses']}; export it with `intra export {out} --out MODEL`")


@app.command("suggest")
def suggest_cmd(
    run: Path = typer.Option(..., "--run", help="Run directory made by `intra train`: gets suggest.safetensors and suggest.json."),
    source: Path = typer.Option(Path("../shared/data"), "--source", help="The shared data directory (goemotions/train.tsv and dev.tsv)."),
    out: Path = typer.Option(..., "--out", help="Report directory (suggest.json, suggest.md, reliability.png)."),
    target_precision: float = typer.Option(0.05, min=0.0, max=1.0, help="Precision the threshold must reach on validation (GoEmotions: 2.6x the base rate of 1.9%; 0.1 is out of reach there)."),
    negatives: int = typer.Option(0, min=0, help="Comments without an emoji kept for training, 0 for all (when fewer, the intercept is corrected for the rest)."),
    seed: int = typer.Option(0, help="Random seed."),
) -> None:
    """Fit the suggest head (does this moment call for a sticker?) on GoEmotions; export then carries it."""
    try:
        require_extra("`intra suggest`", "train", "torch", "transformers", "matplotlib")
        from .suggest import SuggestConfig, fit, goemotions_texts, markdown, plot_reliability

        cfg = SuggestConfig(target_precision=target_precision, negatives=negatives, seed=seed)
        cfg.check()
        for name in ("train.tsv", "dev.tsv"):
            if not (source / "goemotions" / name).is_file():
                raise ArgumentError(f"{source / 'goemotions' / name}: not found; --source must be the shared data directory")
        figures = fit(run, goemotions_texts(source, cfg), cfg)
        out.mkdir(parents=True, exist_ok=True)
        atomic.write_json(out / "suggest.json", figures)
        atomic.write_text(out / "suggest.md", markdown(figures))
        plot_reliability(figures["test"]["calibration"], out / "reliability.png")
    except IntraError as e:
        fail(e)
    typer.echo(markdown(figures))
    typer.echo(f"wrote {run}/suggest.safetensors and suggest.json, {out}/suggest.md and reliability.png; "
               f"export the run again to ship it (intra export {run} --out MODEL)")


def register(root: typer.Typer) -> None:
    """Add `data`, `train`, `distill`, `suggest` and `eval` to the `intra` app."""
    root.add_typer(data_app, name="data")
    root.command("train")(train_cmd)
    root.command("distill")(distill_cmd)
    root.command("suggest")(suggest_cmd)
    root.command("eval")(eval_cmd)


def main() -> None:
    """`python -m training.cli`: the training commands alone, behind the last-resort handler."""
    run_guarded(app, "intra")


if __name__ == "__main__":
    main()

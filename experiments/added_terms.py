"""GoEmoji, measured on validation only: do terms added to Int-RA's final score carry anything it lacks?

    python -m experiments.added_terms --model BUNDLE [--model BUNDLE ...] --data DIR --out DIR

For each bundle (one per seed), validation is ranked by the final score and by the final score plus
one more term, each at a few weights:

- the two probes' log-probabilities (frozen all-MiniLM-L6-v2 features; the baselines themselves),
  alone, added, and both added;
- a zero-shot term: the frozen encoder's cosine between the context and each sticker's descriptions;
- label terms built from the training split's counts: the sticker's label distribution
  ``sum_l P(l | s) log P(l | ctx)`` in place of the hard label, and ``log sum_l P(l | ctx) P(s | l)``
  (probe-intention's composition with the bundle's own head) added.

It also reads the weight grid the training code chooses from (``training.score_weights``) for the
points whose validation mAP reaches probe-intention's, and the best MRR and R@10 among them: what
meeting the mAP target would cost. Writes DIR/added_terms.json and .md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from benchmarks.output import write_result

from .validation_scores import METRICS, ValidationScores, rows_table, validation_scores

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
PROBE_WEIGHTS = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
ZERO_SHOT_WEIGHTS = (0.1, 0.2, 0.5, 1.0, 2.0)
SOFT_LABEL_SCALES = (0.5, 1.0, 2.0)
MIXTURE_WEIGHTS = (0.1, 0.2, 0.5, 1.0)
SMOOTHING = 0.1


def label_counts(v: ValidationScores) -> np.ndarray:
    """(L, S) training-split counts of each intention with each sticker as gold, in pack order."""
    from sdk.labels import LABELS

    column = {s: i for i, s in enumerate(v.ranker.pack.ids)}
    counts = np.zeros((len(LABELS), len(column)))
    for c in v.ds.split("train"):
        counts[c.label_index, column[c.gold]] += 1
    return counts


def zero_shot(v: ValidationScores, cache: Path | None) -> np.ndarray:
    """(Q, S) frozen-encoder cosine between each context and each sticker's descriptions."""
    from training.probes import FrozenFeatures, ProbeConfig, context_text

    features = FrozenFeatures(None, cache, ProbeConfig(), progress=False)
    descriptions = [" ; ".join(str(x) for x in s.attributes.values()) or s.id for s in v.ds.stickers]
    return v.pack_order(features([context_text(c) for c in v.convs]) @ features(descriptions).T)


def label_rows(v: ValidationScores) -> dict[str, dict[str, float]]:
    from sdk.scoring import log_softmax

    if v.logits is None:
        return {}
    lp = log_softmax(v.logits.astype(np.float64))
    counts = label_counts(v) + SMOOTHING
    soft = lp @ (counts / counts.sum(0, keepdims=True))  # sum_l P(l | s) log P(l | ctx)
    mixture = np.log(np.exp(lp) @ (counts / counts.sum(1, keepdims=True)))  # log sum_l P(l | ctx) P(s | l)
    w = v.ranker.terms.weights.label
    rows = {f"soft label term ({x} x the label weight)": v.metrics(v.cosine + v.prior[None, :] + x * w * soft) for x in SOFT_LABEL_SCALES}
    rows.update({f"final + {a} log sum_l P(l|ctx) P(s|l)": v.metrics(v.final + a * mixture) for a in MIXTURE_WEIGHTS})
    return rows


def map_frontier(v: ValidationScores, target_map: float) -> dict[str, Any]:
    """Among the weight grid's points, the best MRR and R@10 of those whose validation mAP reaches `target_map`."""
    from training.score_weights import choose_weights

    order = [v.ranker.pack.ids.index(s.id) for s in v.ds.stickers]  # dataset order, as training scores
    index = v.ds.sticker_index()
    gold = np.array([index[c.gold] for c in v.convs])
    chosen, tried = choose_weights(v.cosine[:, order], v.logits, v.ds, gold)
    pct = [{**t, **{k: 100 * t[k] for k in METRICS}} for t in tried]
    ok = [t for t in pct if t["mAP"] >= target_map - 1e-9]
    pick = next(t for t in pct if (t["prior_weight"], t["label_weight"]) == (chosen.prior, chosen.label))
    return {"target_mAP": target_map, "chosen": pick, "points_reaching": len(ok), "points": len(pct),
            "best_MRR": max(ok, key=lambda t: t["MRR"]) if ok else None, "best_R@10": max(ok, key=lambda t: t["R@10"]) if ok else None}


def measure_bundle(model: Path, data: Path, cache: Path | None = None, v: ValidationScores | None = None) -> dict[str, Any]:
    from training.probes import probe_scores

    v = v if v is not None else validation_scores(model, data)
    probes = {k: v.pack_order(s) for k, s in probe_scores(v.ds, v.convs, cache, progress=False).items()}
    pe, pi = probes["probe-emoji"], probes["probe-intention"]
    rows = {"final score (the default)": v.metrics(v.final), "probe-emoji alone": v.metrics(pe), "probe-intention alone": v.metrics(pi)}
    for name, term in (("log P_probe-emoji", pe), ("log P_probe-intention", pi), ("both probes (mean)", (pe + pi) / 2)):
        rows.update({f"final + {a} {name}": v.metrics(v.final + a * term) for a in PROBE_WEIGHTS})
    zs = zero_shot(v, cache)
    rows.update({f"final + {a} zero-shot description cosine": v.metrics(v.final + a * zs) for a in ZERO_SHOT_WEIGHTS})
    rows.update(label_rows(v))
    return {"model": str(model), "rows": rows, "frontier": map_frontier(v, rows["probe-intention alone"]["mAP"])}


def seed_ensemble(scores: list[ValidationScores]) -> dict[str, float] | None:
    """The bundles' final scores averaged (one model per seed): whether the seeds' spread is what limits the ranking."""
    if len(scores) < 2 or any(list(v.ranker.pack.ids) != list(scores[0].ranker.pack.ids) for v in scores):
        return None
    return scores[0].metrics(np.mean([v.final for v in scores], axis=0))


def markdown(r: dict[str, Any]) -> str:
    lines = rows_table(f"Terms added to Int-RA's final score (validation, {r['conversations']} conversations, {len(r['runs'])} seeds)",
                       r["runs"])
    if r.get("seed_ensemble"):
        e = r["seed_ensemble"]
        lines += ["", f"The {len(r['runs'])} bundles' final scores averaged (an ensemble of the seeds): "
                  + ", ".join(f"{m} {e[m]:.2f}" for m in METRICS) + "."]
    lines += ["", "What reaching probe-intention's validation mAP costs, on the weight grid the training code chooses from "
              "(prior weight, label weight; MRR / R@10 / mAP):", "",
              "| bundle | target mAP | chosen weights | best MRR reaching it | best R@10 reaching it | grid points reaching it |",
              "|---|---|---|---|---|---|"]

    def point(t: dict[str, Any] | None) -> str:
        return "none" if t is None else (f"({t['prior_weight']}, {t['label_weight']}): {t['MRR']:.1f} / {t['R@10']:.1f} / {t['mAP']:.1f}")

    for run in r["runs"]:
        f = run["frontier"]
        lines.append(f"| {Path(run['model']).name} | {f['target_mAP']:.2f} | {point(f['chosen'])} | {point(f['best_MRR'])} "
                     f"| {point(f['best_R@10'])} | {f['points_reaching']} of {f['points']} |")
    return "\n".join(lines) + "\n"


@app.command()
def main(model: list[Path] = typer.Option(..., help="Bundle(s), one per seed."), data: Path = typer.Option(..., help="Dataset directory."),
         out: Path = typer.Option(..., help="Directory for added_terms.json and added_terms.md."),
         cache: Path = typer.Option(Path("artifacts/cache"), help="Cache of the frozen encoder's features.")) -> None:
    """Measure terms added to the final score on validation, and what the mAP target would cost."""
    from sdk.dataset import load_dataset

    scores = [validation_scores(m, data) for m in model]
    r = {"data": str(data), "conversations": len(load_dataset(data).split("validation")),
         "runs": [measure_bundle(m, data, cache, v) for m, v in zip(model, scores)], "seed_ensemble": seed_ensemble(scores)}
    write_result(out, "added_terms", r, markdown(r))


if __name__ == "__main__":
    app()

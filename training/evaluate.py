"""`intra eval`: score a trained run and the baselines on one split; write report.json/.md and a PR plot.

Rows: ``int-ra`` (the run, in its own query mode, scored as the SDK ranks: cosine plus the usage
prior and label term with the run's validation-chosen weights; ``int-ra (cosine only)`` and
``int-ra (no prior)`` show the same run without them), other trained runs given by name
(ablations, the CLIP-style dual encoder, other modes), three untrained baselines on the same split:
``random`` (seeded uniform scores), ``popular`` (how often each sticker is gold in train) and
``intention-only`` (the run's intention head alone: a sticker scores the predicted probability of
its label, ties broken by popularity; no sticker side), optionally the two frozen-feature probes
of :mod:`training.probes`, and the row of an exported bundle ranked through the SDK.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sdk import atomic
from sdk.dataset import load_dataset
from sdk.labels import label_id
from sdk.scoring import ScoreWeights, softmax, usage_vector

from .catalog_scores import score_conversations
from .metrics import (
    bootstrap_interval,
    classification_metrics,
    gold_ranks,
    mean_metrics,
    per_query_metrics,
    pr_curve,
    ranked_relevance,
    relevance_matrix,
)
from .model_inputs import sticker_inputs, sticker_labels
from .run_dir import load_run
from .score_weights import read_weights, score_terms

METRIC_KEYS = ("P@1", "P@3", "P@5", "mAP", "R@1", "R@5", "R@10", "MRR")
#: metrics whose per-conversation values travel in the report, for paired tests between rows
PAIRED_KEYS = ("MRR", "R@10", "mAP")
MAIN = "int-ra"  # the report's main row: the run being evaluated


def popularity(ds) -> np.ndarray:
    """How often each sticker is gold in the training split (the popular baseline's scores)."""
    return usage_vector(ds.usage_counts(), ds.sticker_ids)


def _row(scores: np.ndarray, gold: np.ndarray, labels: list[int]) -> tuple[dict[str, float], dict[str, list[float]], dict[str, list[float]]]:
    """A row's metrics, its precision-recall curve and the per-conversation values of PAIRED_KEYS
    (for paired tests between rows)."""
    per = per_query_metrics(scores, gold, labels)
    metrics = mean_metrics(per)
    curve = pr_curve(ranked_relevance(scores, relevance_matrix(labels, gold)))
    return metrics, curve, {k: [round(float(v), 6) for v in per[k]] for k in PAIRED_KEYS}


def command_line(argv: list[str]) -> str:
    """The command as a user would retype it: `python -m pkg.mod` for a module run, the script's
    name for an installed command (not the absolute paths that sys.argv holds)."""
    import shlex

    first = Path(argv[0])
    root = Path(__file__).resolve().parent.parent
    if first.suffix == ".py" and first.resolve().is_relative_to(root):
        module = ".".join(first.resolve().relative_to(root).with_suffix("").parts)
        head = ["python", "-m", module.removesuffix(".__main__")]
    else:
        head = [first.name]
    return " ".join(shlex.quote(a) for a in head + list(argv[1:]))


def _score_runs(runs: Mapping[str, Path | str], ds, convs) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Each run's final scores (cosine plus its own prior and label terms, as the SDK ranks), the
    main run's cosine-only and no-prior scores, and per-run details (variant, weights, logits)."""
    scores: dict[str, np.ndarray] = {}
    details: dict[str, Any] = {"variants": {}, "weights": {}, "logits": {}}
    for name, path in runs.items():
        model, tokenizer, image_settings, conf = load_run(path)
        details["variants"][name] = conf["variant"]
        cosines, logits = score_conversations(model, tokenizer, sticker_inputs(ds, image_settings), convs)
        weights = read_weights(path)
        details["weights"][name] = weights.to_json()
        scores[name] = score_terms(ds, weights, logits is not None).scores(cosines, logits)
        if logits is not None:
            details["logits"][name] = logits
        if name == MAIN and weights.active:
            # the same run without its added terms: what the prior and label term bring
            scores[f"{MAIN} (cosine only)"] = cosines
            if weights.prior and weights.label:
                no_prior = ScoreWeights(prior=0.0, label=weights.label, smoothing=weights.smoothing)
                scores[f"{MAIN} (no prior)"] = score_terms(ds, no_prior, logits is not None).scores(cosines, logits)
    return scores, details


def _baselines(ds, convs, labels: list[int], main_logits: np.ndarray | None, seed: int) -> dict[str, np.ndarray]:
    pop = popularity(ds)
    rng = np.random.default_rng(seed)
    out = {"random": rng.random((len(convs), len(ds.stickers))), "popular": np.broadcast_to(pop, (len(convs), len(pop))).copy()}
    if main_logits is not None:
        probs = softmax(main_logits)
        lab = np.asarray(labels)
        by_label = np.where(lab[None, :] >= 0, probs[:, np.clip(lab, 0, None)], 0.0)
        out["intention-only"] = by_label + 1e-6 * pop[None, :] / max(pop.max(), 1.0)
    return out


def evaluate(run: Path | str, data: Path | str, split: str = "test", compare: Mapping[str, Path | str] | None = None,
             seed: int = 0, probes: bool = False, cache_dir: Path | str | None = None,
             bundle: Path | str | None = None, precision: str | None = None, html: Path | None = None) -> dict[str, Any]:
    """Metrics of the run, the named comparison runs and the baselines on `split` of `data`.

    `probes`: add the two frozen-feature probes (features cached in `cache_dir`); `bundle`: add the
    row of that exported bundle ranked through the SDK (`precision`, default the SDK's); `html`:
    with `bundle`, also write a gallery of that ranking.
    """
    ds = load_dataset(data)
    convs = ds.split(split)
    index = ds.sticker_index()
    gold = np.array([index[c.gold] for c in convs])
    labels, label_rule = sticker_labels(ds)
    scores, details = _score_runs({MAIN: run, **(compare or {})}, ds, convs)
    scores.update(_baselines(ds, convs, labels, details["logits"].get(MAIN), seed))
    if probes:
        from .probes import probe_scores

        scores.update(probe_scores(ds, convs, Path(cache_dir) if cache_dir else None, seed=seed))
    if bundle is not None:
        from .bundle_eval import sdk_scores

        name, scores[name] = sdk_scores(bundle, data, convs, precision, html=html)
        details["variants"][name] = details["variants"][MAIN]
    models, curves, paired = {}, {}, {}
    for name, sc in scores.items():
        models[name], curves[name], paired[name] = _row(sc, gold, labels)
    gold_labels = np.array([label_id(c.label) for c in convs])
    known = gold_labels >= 0  # a split without intention labels gets no intention figures, never invented ones
    intention = {name: classification_metrics(lg.argmax(1)[known], gold_labels[known])
                 for name, lg in details["logits"].items()} if known.any() else {}
    per_query = per_query_metrics(scores[MAIN], gold, labels)
    ranks = gold_ranks(scores["random"], gold)  # sanity anchor for the report: expected ~ S/2
    return {
        "split": split, "n": len(convs), "stickers": len(ds.stickers),
        "dataset": {"name": ds.info.name, "synthetic": ds.info.synthetic, "source": ds.info.source,
                    "split_rule": ds.info.details.get("split_rule"), "rules": ds.info.details.get("rules")},
        "label_rule": label_rule,
        "tie_rule": "ties in scores are broken pessimistically (relevant stickers rank after irrelevant ones with the same score)",
        "models": models, "variants": details["variants"], "scoring_weights": details["weights"],
        "main_interval95": {k: bootstrap_interval(v, seed=seed) for k, v in per_query.items()},
        "per_query": paired,
        "intention": intention.get(MAIN, {}), "intention_by_model": intention,
        "pr_curves": curves, "random_median_gold_rank": float(np.median(ranks)),
        "command": command_line(sys.argv),
    }


def write_report(report: dict[str, Any], out: Path | str) -> None:
    """report.json, report.md and pr_curve.png in `out` (each written atomically)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "report.json", report)
    atomic.write_text(out / "report.md", markdown(report))
    plot_pr(report, out / "pr_curve.png")


def markdown(report: dict[str, Any]) -> str:
    ds = report["dataset"]
    lines = [f"# Evaluation on {ds.get('name')} / {report['split']}", ""]
    if ds.get("synthetic"):
        lines += ["**SYNTHETIC data** (intra's procedural world), not real users.", ""]
    if ds.get("source"):
        lines += [f"Source: {ds['source']}", ""]
    lines += [f"{report['n']} conversations, {report['stickers']} candidate stickers. Metrics in percent.", "",
              "| model | " + " | ".join(METRIC_KEYS) + " |", "|---" * (len(METRIC_KEYS) + 1) + "|"]
    for name, m in report["models"].items():
        variant = report["variants"].get(name)
        label = f"{name} [{variant}]" if variant and variant != name else name
        lines.append(f"| {label} | " + " | ".join(f"{100 * m[k]:.2f}" for k in METRIC_KEYS) + " |")
    lines.append("")
    if report["intention_by_model"]:
        lines += ["| intention head | accuracy | macro-F1 |", "|---|---|---|"]
        for name, m in report["intention_by_model"].items():
            lines.append(f"| {name} | {100 * m['accuracy']:.2f} | {100 * m['macro_f1']:.2f} |")
        lines.append("")
    lines += ["P@k and mAP count a sticker as correct when its label equals the gold sticker's label; "
              "R@k and MRR count only the gold sticker.", "",
              f"- Label rule: {report['label_rule']}.", f"- Tie rule: {report['tie_rule']}."]
    for key, rule in (ds.get("rules") or {}).items():
        lines.append(f"- Data rule ({key}): {rule}.")
    if ds.get("split_rule"):
        lines.append(f"- Splits: {ds['split_rule']}.")
    lines += ["", f"Command: `{report['command']}`", ""]
    return "\n".join(lines)


def plot_pr(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, curve in report["pr_curves"].items():
        ax.plot(curve["recall"], curve["precision"], marker="o", markersize=3, label=name)
    ax.set_xlabel("recall (label match)")
    ax.set_ylabel("interpolated precision")
    title = f"{report['dataset'].get('name')} / {report['split']}"
    ax.set_title(title + (" (SYNTHETIC)" if report["dataset"].get("synthetic") else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)

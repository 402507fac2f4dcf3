"""A readable summary of a bundle's manifest: sizes per graph and precision, parity figures."""

from __future__ import annotations

from sdk.manifest import GRAPHS, BundleManifest


def summary(manifest: BundleManifest) -> str:
    precisions = manifest.precisions
    lines = ["| graph | " + " | ".join(f"{p} (MB)" for p in precisions) + " |", "|---" * (len(precisions) + 1) + "|"]
    totals = dict.fromkeys(precisions, 0)
    for g in GRAPHS:
        cells = []
        for p in precisions:
            entry = manifest.graphs[g].get(p)
            b = entry.bytes if entry is not None else None
            totals[p] += b or 0
            cells.append(f"{b / 1e6:.2f}" if b else "-")
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    lines.append("| total | " + " | ".join(f"{totals[p] / 1e6:.2f}" for p in precisions) + " |")
    parity = manifest.parity
    lines += ["", "| precision | top-5 agreement | mAP delta (points) | notes |", "|---|---|---|---|"]
    for p in precisions:
        f = parity.get(p, {})
        note = ", ".join(f"{k} {v:.6f}" for k, v in f.get("graph_cosine", {}).items()) if p == "fp32" else f.get("scheme", "")
        ref = "vs PyTorch" if p == "fp32" else "vs fp32"
        lines.append(f"| {p} | {f.get('top5_agreement', float('nan')):.4f} ({ref}) | {f.get('map_delta', float('nan')):+.3f} | {note} |")
    gate = manifest.gate
    lines.append("")
    lines.append("parity gate: " + ("passed" if gate is not None and gate.passed else "FAILED: " + "; ".join(gate.failures if gate else ())))
    return "\n".join(lines)

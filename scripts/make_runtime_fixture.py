"""Regenerate tests/runtime/bundle: the tiny fp32 bundle the torch-free test tier ranks with.

The runtime's tests must run where torch does not (the SDK never imports it), so their model is a
committed file, not one trained in a fixture. This trains the smallest Int-RA that still ranks
sensibly (a 1-layer BERT of width 16 with a 400-token vocabulary, a 1-layer ViT) on a small
synthetic world for 3 epochs, exports fp32 only, and replaces tests/runtime/bundle (under 200 KB).
Run it after a change of the bundle format: `.venv/bin/python scripts/make_runtime_fixture.py`.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "runtime" / "bundle"
LIMIT = 200_000


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from export.exporter import export_run
    from training.config import TinyTextConfig, VitConfig, preset
    from training.data.synthetic import SyntheticConfig, generate
    from training.trainer import train

    with tempfile.TemporaryDirectory() as tmp:
        world, run, bundle = Path(tmp) / "world", Path(tmp) / "run", Path(tmp) / "model"
        generate(world, SyntheticConfig(seed=5, stickers=40, conversations=600, chinese_fraction=0.0))
        cfg = preset("tiny", epochs=3, dim=16, key_dim=8, vit=VitConfig(32, 8, 16, 1, 1, 32),
                     tiny_text=TinyTextConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
                                              intermediate_size=32, vocab_size=400), extend_cjk_vocab=False)
        train(cfg, world, run, progress=False)
        export_run(run, bundle, precisions=("fp32",), data=world, progress=False)
        size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
        if size > LIMIT:
            raise SystemExit(f"the fixture bundle is {size:,} bytes, over {LIMIT:,}: shrink the config")
        shutil.rmtree(OUT, ignore_errors=True)
        shutil.copytree(bundle, OUT)
        print(f"wrote {OUT} ({size:,} bytes)")


if __name__ == "__main__":
    main()

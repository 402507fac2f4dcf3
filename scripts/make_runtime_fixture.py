"""Make the tiny fp32 bundle the torch-free test tier ranks with: `python scripts/make_runtime_fixture.py OUT`.

The runtime's tests run a second time where torch is not installed (the SDK never imports it), so
their model is made beforehand, in the training environment, by this script (scripts/test.sh
runs it into build/runtime-bundle): the smallest Int-RA that still ranks sensibly (a 1-layer BERT
of width 16 with a 400-token vocabulary, a 1-layer ViT) trained on a small synthetic world for 3
epochs, exported in fp32 only (about 124 KB). OUT is replaced only if it is an earlier bundle.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 200_000


def main(out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from export.exporter import export_run
    from training.config import TinyTextConfig, VitConfig, preset
    from training.data.synthetic import SyntheticConfig, generate
    from training.trainer import train

    with tempfile.TemporaryDirectory() as tmp:
        world, run = Path(tmp) / "world", Path(tmp) / "run"
        generate(world, SyntheticConfig(seed=5, stickers=40, conversations=600, chinese_fraction=0.0))
        cfg = preset("tiny", epochs=3, dim=16, key_dim=8, vit=VitConfig(32, 8, 16, 1, 1, 32),
                     tiny_text=TinyTextConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
                                              intermediate_size=32, vocab_size=400), extend_cjk_vocab=False)
        train(cfg, world, run, progress=False)
        export_run(run, out, precisions=("fp32",), data=world, progress=False)  # atomic; refuses foreign folders
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    if size > LIMIT:
        raise SystemExit(f"the fixture bundle is {size:,} bytes, over {LIMIT:,}: shrink the config")
    print(f"wrote {out} ({size:,} bytes)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/make_runtime_fixture.py OUT")
    main(Path(sys.argv[1]))

"""`python -m benchmarks --model MODEL_DIR --pack PACK --out BENCH_DIR` (same as `intra bench`)."""

from sdk.cli import app

if __name__ == "__main__":
    import sys

    sys.argv.insert(1, "bench")
    app()

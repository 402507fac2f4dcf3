"""`python -m benchmarks --model MODEL_DIR --pack PACK --out BENCH_DIR` (same as `intra bench`)."""

from .cli import main

if __name__ == "__main__":
    main()

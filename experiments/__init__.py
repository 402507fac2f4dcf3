"""Research behind intra's choices, kept out of the package and the wheel.

Each module answers one question and writes its table to ``docs/results/<name>.md`` (its docstring
says which question and which page); run one from the repository root with
``python -m experiments.<name> --help``. They build on every layer: the runtime (``sdk``), training,
export and the product's benchmarks.
"""

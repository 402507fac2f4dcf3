"""The house rules a reader relies on: layers point one way, functions fit on a screen."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the layers, lowest first: each may import only itself and the layers before it
LAYERS = ("sdk", "training", "export", "pipeline", "benchmarks", "experiments")
ABOVE_SDK = LAYERS[1:]
MODULE_PATH = re.compile(r"^(sdk|training|export|pipeline|benchmarks|experiments)(\.\w+)*(:\w+)?$")
MAX_FUNCTION_LINES = 80


def _sources(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (REPO / pkg).rglob("*.py"))


def _imported(tree: ast.AST):
    """(line, module) of every import in `tree`, and of modules named by string (importlib, entry points)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_PATH.match(node.value):
            yield node.lineno, node.value


@pytest.mark.parametrize("path", _sources(*LAYERS), ids=lambda p: str(p.relative_to(REPO)))
def test_layers_import_only_the_layers_below_them(path):
    layer = LAYERS.index(path.relative_to(REPO).parts[0])
    above = LAYERS[layer + 1:]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = [f"{line}: {name}" for line, name in _imported(tree) if name.split(".")[0].split(":")[0] in above]
    assert not bad, f"{path.relative_to(REPO)} ({LAYERS[layer]}) imports a higher layer: {bad}"


def test_importing_the_runtime_loads_no_higher_layer():
    code = ("import sys, sdk, sdk.ranker, sdk.pack_build; "
            f"bad = [m for m in sys.modules if m.split('.')[0] in {ABOVE_SDK!r} + ('torch', 'transformers')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_no_function_is_longer_than_a_screen():
    long = []
    for path in _sources(*LAYERS):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_every_command_is_registered_and_listed():
    from importlib.metadata import entry_points

    from sdk.cli import COMMANDS_GROUP

    assert {e.name for e in entry_points(group=COMMANDS_GROUP)} == {"training", "export", "pipeline", "benchmarks"}
    out = subprocess.run([sys.executable, "-m", "sdk.cli", "--help"], capture_output=True, text=True, check=True, cwd=REPO).stdout
    for command in ("info", "pack", "rank", "data", "train", "eval", "export", "bench", "demo"):
        assert re.search(rf"^\s+{command}\s", out, re.M), (command, out)


def test_the_wheel_holds_the_product_and_no_experiment():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    packages = re.search(r"^packages = \[(.*?)\]", text, re.M)
    assert packages is not None and "experiments" not in packages.group(1)
    assert {"sdk", "training", "export", "pipeline", "benchmarks"} <= set(re.findall(r'"(\w+)"', packages.group(1)))

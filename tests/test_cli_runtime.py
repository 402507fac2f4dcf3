"""The runtime's commands (pack, rank) and every command under bad input: one error line, exit 2, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sdk.bundle import Bundle
from sdk.pack import load_pack
from sdk.providers import CPU


def test_cli_pack_and_rank(tiny_bundle, synthetic_dir, tmp_path):
    from typer.testing import CliRunner

    from sdk.cli import app

    runner = CliRunner()
    out = tmp_path / "pack"
    result = runner.invoke(app, ["pack", "build", str(synthetic_dir), "--model", str(tiny_bundle), "--out", str(out), "--providers", "cpu"])
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["pack", "info", str(out)])
    assert info.exit_code == 0 and json.loads(info.output)["stickers"] == 56
    ranked = runner.invoke(app, ["rank", "--pack", str(out), "--json", "--top-k", "3", "hello", "thank you so much"])
    assert ranked.exit_code == 0, ranked.output
    data = json.loads(ranked.output)
    # the default precision is the faster on this CPU, chosen once and cached beside the bundle
    default = Bundle(tiny_bundle, providers="cpu").precision
    assert len(data["matches"]) == 3 and data["precision"] == default == load_pack(out).meta.precision and data["provider"] == CPU
    table = runner.invoke(app, ["rank", "--pack", str(out), "so happy"])
    assert table.exit_code == 0 and "intention:" in table.output
    bad = runner.invoke(app, ["rank", "--pack", str(out), "   "])
    assert bad.exit_code == 2 and "empty" in bad.output


def _intra(*args: str | bytes, module: str = "sdk.cli") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True)


def test_cli_errors_end_in_one_line_and_exit_2(tiny_bundle, tiny_pack, synthetic_dir, tmp_path):
    cases = [
        ("rank", b"caf\xff", "--pack", str(tiny_pack), "--providers", "cpu"),
        ("pack", "build", str(synthetic_dir), "--model", str(tiny_bundle), "--out", str(tmp_path / "p"), "--shard", "1"),
        ("pack", "build", str(synthetic_dir), "--model", str(tiny_bundle), "--out", str(tmp_path / "p"), "--batch-size", "0"),
        ("pack", "build", str(synthetic_dir), "--model", str(tiny_bundle), "--out", str(tmp_path / "p"), "--dtype", "float64"),
        ("rank", "hi", "--pack", str(tiny_pack), "--threads", "100000"),
        ("pack", "info", str(tmp_path / b"\xff-missing".decode("utf-8", "surrogateescape"))),
    ]
    for args in cases:
        proc = _intra(*args)
        err = proc.stderr.decode("utf-8", "replace")
        assert proc.returncode == 2, (args, err)
        assert "Traceback" not in err and ("error:" in err or "Invalid value" in err), (args, err)
    assert not (tmp_path / "p").exists()
    proc = _intra("RUN", "--out", str(tmp_path / "b"), "--opset", "5", module="export.cli")
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr and b"--opset" in proc.stderr


def test_the_last_resort_handler_turns_a_bug_into_one_line(capsys, monkeypatch):
    import typer

    from sdk.cli_base import run_guarded

    broken = typer.Typer()

    @broken.command()
    def boom() -> None:
        raise KeyError("oops")

    monkeypatch.setattr(sys, "argv", ["intra"])
    monkeypatch.delenv("INTRA_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        run_guarded(broken, "intra")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected KeyError") and "Traceback" not in err and err.count("\n") == 1

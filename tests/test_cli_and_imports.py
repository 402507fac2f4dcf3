import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from sdk.cli import app
from sdk.cli_base import require_extra
from sdk.errors import MissingExtraError

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("data", "demo", "info"):
        assert command in result.output


def test_data_synthetic_then_info(tmp_path):
    out = tmp_path / "w"
    result = runner.invoke(app, ["data", "synthetic", "--out", str(out), "--stickers", "28", "--conversations", "40"])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output
    result = runner.invoke(app, ["info", str(out)])
    assert result.exit_code == 0
    assert json.loads(result.output)["stickers"] == 28


def test_cli_errors_are_clear(tmp_path):
    result = runner.invoke(app, ["data", "synthetic", "--out", str(tmp_path / "w"), "--stickers", "3"])
    assert result.exit_code == 2 and "greater than or equal to 28" in result.output and not (tmp_path / "w").exists()
    result = runner.invoke(app, ["info", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "not a dataset directory" in result.output


def test_missing_extra_names_the_extra():
    with pytest.raises(MissingExtraError, match=r"pip install 'intra\[train\]'"):
        require_extra("training", "train", "no_such_module_xyz")


def test_importing_sdk_and_data_tools_does_not_import_torch():
    code = ("import sys, sdk, sdk.cli, training, training.data.synthetic, training.data.goemoji; "
            "bad = [m for m in ('torch', 'transformers', 'optimum') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "sdk.cli", "--help"], capture_output=True, text=True, check=True)
    assert "intra" in out.stdout

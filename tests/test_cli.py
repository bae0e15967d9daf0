"""`benchmark-rc` entry point: help, version, error handling and doctor."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import benchmark_rc
from benchmark_rc import cli
from benchmark_rc.errors import UserError

SCRIPT = str(Path(sys.executable).parent / "benchmark-rc")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=600)


def test_help_lists_every_available_subcommand():
    result = run_cli("--help")
    assert result.returncode == 0
    available = cli._available_commands()
    assert "doctor" in available
    for name in available:
        assert name in result.stdout


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"benchmark-rc {benchmark_rc.__version__}"


def test_unknown_subcommand_fails():
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_user_error_is_printed_without_traceback(monkeypatch, capsys):
    def failing(args):
        raise UserError("peaks.bed line 3: expected 3 columns, got 2")

    fake = types.SimpleNamespace(configure=lambda parser: None, run=failing)
    monkeypatch.setattr(cli, "_available_commands", lambda: {"fail": (fake, "always fails")})
    assert cli.main(["fail"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: peaks.bed line 3: expected 3 columns, got 2"
    assert "Traceback" not in err


def test_doctor_reports_registered_layers_round_tripping():
    result = run_cli("doctor", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["keras_backend"] == "tensorflow"
    assert any(d.startswith("CPU") for d in report["devices"])
    layers = report["registered_layers"]
    for name in ("RevCompConv1D", "RevCompConv1DBatchNorm", "RevCompSumPool", "WeightedSum1D",
                 "ReverseComplement"):
        assert f"benchmark_rc>{name}" in layers
    assert all(status == "ok" for status in layers.values()), layers
    assert report["model_round_trip"] == "ok"
    assert report["versions"]["tensorflow"].startswith("2.21")

"""`benchmark-rc` entry point: help, version, start-up cost and noise, error handling, doctor."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import benchmark_rc
from benchmark_rc import cli, startup
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


def test_train_help_names_every_architecture_protocol_and_compat_mode():
    """The names `train --help` writes out (no Keras import at --help) are the registries'."""
    from benchmark_rc.architectures import ARCHITECTURES
    from benchmark_rc.architectures.kit import COMPAT_MODES
    from benchmark_rc.commands import train
    from benchmark_rc.training.protocol import PROTOCOLS, SELECTS

    assert train.ARCHITECTURE_NAMES == tuple(ARCHITECTURES)
    assert train.PROTOCOL_NAMES == tuple(PROTOCOLS)
    assert train.COMPAT_NAMES == COMPAT_MODES
    assert train.SELECT_NAMES == tuple(SELECTS)


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
                 "RCTransform"):
        assert f"benchmark_rc>{name}" in layers
    assert all(status == "ok" for status in layers.values()), layers
    assert report["model_round_trip"] == "ok"
    assert report["versions"]["tensorflow"].startswith("2.21")


# ----------------------------------------------------------------------------- start-up

# Runs the console script's launcher in a fresh interpreter, then reports which heavy modules
# the command imported (argparse's --help/--version exit through SystemExit).
_PROBE = """
import json, sys
from benchmark_rc_launcher import main
try:
    status = main(sys.argv[1:])
except SystemExit as stop:
    status = stop.code
heavy = sorted(m for m in ("tensorflow", "keras", "jax", "torch") if m in sys.modules)
print(json.dumps({"status": status, "heavy": heavy}))
"""


def launch(*args: str, cwd: Path | None = None) -> dict:
    result = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True,
                            text=True, timeout=600, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def small_genome(tmp_path_factory) -> dict[str, Path]:
    """chr1/chr2/chr3 (the default valid/test/train split) with peaks and negatives in each."""
    d = tmp_path_factory.mktemp("startup")
    rng = np.random.default_rng(3)
    fasta, peaks, negatives = [], [], []
    for chrom in ("chr1", "chr2", "chr3"):
        fasta += [f">{chrom}", "".join(rng.choice(list("ACGT"), 6000))]
        peaks += [f"{chrom}\t{s}\t{s + 200}" for s in (1000, 2500, 4000)]
        negatives += [f"{chrom}\t{s}\t{s + 300}" for s in (600, 3300, 4800)]
    paths = {"genome": d / "genome.fa", "peaks": d / "peaks.bed", "negatives": d / "neg.bed"}
    for key, lines in (("genome", fasta), ("peaks", peaks), ("negatives", negatives)):
        paths[key].write_text("\n".join(lines) + "\n")
    paths["dir"] = d
    return paths


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("prepare", "--help"),
                                  ("report", "--help"), ("train", "--help")])
def test_help_and_version_do_not_import_tensorflow_or_keras(args):
    report = launch(*args)
    assert report == {"status": 0, "heavy": []}


def test_prepare_does_not_import_tensorflow_or_keras(small_genome):
    out = small_genome["dir"] / "binary.h5"
    report = launch("prepare", "binary", "--genome", str(small_genome["genome"]),
                    "--peaks", str(small_genome["peaks"]), "--negatives",
                    str(small_genome["negatives"]), "--window", "500", "--out", str(out),
                    "--no-progress")
    assert report == {"status": 0, "heavy": []}
    assert out.is_file()


def test_a_model_command_still_registers_the_layers_first(monkeypatch):
    # The launcher defers registration only while the package is imported; every command that
    # may load a model finds the layers registered before it runs.
    seen = {}

    def probe(args):
        import keras

        seen["registered"] = "benchmark_rc>RevCompConv1D" in keras.saving.get_custom_objects()
        return 0

    fake = types.SimpleNamespace(configure=lambda parser: None, run=probe)
    monkeypatch.setattr(cli, "_available_commands", lambda: {"probe": (fake, "probe")})
    assert cli.main(["probe"]) == 0 and seen == {"registered": True}


def test_import_benchmark_rc_registers_every_layer_in_a_fresh_interpreter():
    code = ("import benchmark_rc, keras; "
            "print(sorted(k for k in keras.saving.get_custom_objects() "
            "if k.startswith('benchmark_rc>')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    names = eval(result.stdout.strip().splitlines()[-1])  # a printed list of strings
    for name in ("RevCompConv1D", "RevCompConv1DBatchNorm", "StrandMerge", "MultinomialNLL"):
        assert f"benchmark_rc>{name}" in names


def test_tensorflow_log_level_hides_cuda_probe_errors_only_without_a_gpu_driver(monkeypatch):
    assert startup.tensorflow_log_level(gpu_driver=False) == "3"
    assert startup.tensorflow_log_level(gpu_driver=True) == "1"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setattr(startup, "gpu_driver_present", lambda: False)
    startup.configure_tensorflow_logging()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # the user's choice wins
    startup.configure_tensorflow_logging()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


NATIVE_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1.0 2866 port.cc:153] oneDNN custom operations are on. You may see slightly\n",
    "I0000 00:00:1.0 2866 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.\n",
    "I0000 00:00:1.0 2866 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.\n",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with "
    "the appropriate compiler flags.\n",
]


@pytest.mark.parametrize("gpu_driver", [False, True])
def test_quiet_native_stderr_drops_only_known_start_up_noise(capfd, gpu_driver):
    real = ["E0000 00:00:1.0 2866 some_op.cc:10] a real error\n", "a Python warning\n"]
    with startup.quiet_native_stderr(startup.native_startup_noise(gpu_driver)):
        for line in NATIVE_LINES[:2] + real[:1] + NATIVE_LINES[2:]:
            os.write(2, line.encode())  # as C++ code writes: straight to file descriptor 2
        print(real[1], end="", file=sys.stderr)
    err = capfd.readouterr().err
    assert real[0] in err and real[1] in err
    assert ("cudart_stub" in err) == gpu_driver  # "no GPU" is news on a machine with a driver
    for line in NATIVE_LINES[:2] + NATIVE_LINES[3:]:
        assert line not in err


def test_cli_start_up_on_this_machine_prints_no_tensorflow_noise():
    # The whole chain on this (GPU-less) machine: TensorFlow loads (doctor needs it) and nothing
    # of its start-up reaches stderr; in particular not the cuInit ERROR.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([SCRIPT, "doctor"], capture_output=True, text=True, timeout=600,
                            env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    # With a driver cuInit succeeds, so a cuInit line would be real news and stays visible.
    assert not re.search(r"cuInit|cuda_platform|oneDNN|absl::InitializeLog|cpu_feature_guard",
                         result.stderr), result.stderr
    if not startup.gpu_driver_present():
        assert "no NVIDIA driver on this machine" in result.stdout
    assert "benchmark_rc.load_model(path)" in result.stdout

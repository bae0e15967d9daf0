"""Documentation the code points users to exists and stays true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from benchmark_rc import benchmark
from benchmark_rc.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SWEEP_DOC = ROOT / "docs" / "sweep.md"


def doc_references() -> set[str]:
    """docs/*.md paths named in the package, the README and the CLI help texts."""
    found = set()
    for path in [ROOT / "README.md", *ROOT.glob("benchmark_rc/**/*.py"),
                 *ROOT.glob("data_prep/*.py")]:
        found.update(re.findall(r"docs/[\w-]+\.md", path.read_text()))
    return found


def test_every_referenced_doc_page_exists():
    refs = doc_references()
    assert "docs/sweep.md" in refs  # presets.py and `sweep --config --help` point here
    assert sorted(r for r in refs if not (ROOT / r).is_file()) == []


def sweep_example() -> dict:
    blocks = re.findall(r"```yaml\n(.*?)```", SWEEP_DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/sweep.md has one full YAML example"
    return yaml.safe_load(blocks[0])


def test_sweep_doc_example_resolves(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(sweep_example()))
    config = benchmark.resolve_config(benchmark.load_config(path),
                                      data_paths={"oct4": "oct4.h5"})
    assert [d["name"] for d in config["datasets"]] == ["sim200", "ctcf", "oct4"]
    assert config["strategies"] == ["standard", "rcaug", "posthoc", "conjoined", "rcps"]
    jobs = benchmark.make_jobs(config)
    # posthoc rows ride on the rcaug job: 4 trained strategies x 3 datasets x 3 seeds
    assert len(jobs) == 4 * 3 * 3
    assert {s for j in jobs for s in j.rows} == set(config["strategies"])


def test_sweep_doc_names_every_training_override_and_the_checker_enforces_them(tmp_path):
    text = SWEEP_DOC.read_text()
    for key in benchmark._TRAIN_KEYS:
        assert f"`{key}`" in text, f"docs/sweep.md does not document train key {key!r}"
    config = sweep_example()
    config["train"]["epochz"] = 3
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(UserError, match="epochz"):
        benchmark.resolve_config(benchmark.load_config(path), data_paths={"oct4": "oct4.h5"})


def test_sweep_doc_lists_the_result_columns():
    text = " ".join(SWEEP_DOC.read_text().split())
    assert ", ".join(benchmark.RESULT_COLUMNS) in text.replace("`", "")


def test_sweep_doc_lists_every_preset():
    """The preset table of docs/sweep.md names every preset of benchmark_rc.presets, and only
    those."""
    from benchmark_rc.presets import PRESETS

    table = SWEEP_DOC.read_text().split("| preset | what it runs |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([\w-]+)` \|", table, re.M)
    assert sorted(rows) == sorted(PRESETS)

"""`sweep --backend ray` and `attribute --backend ray` on a local Ray of 2 one-CPU workers.

The reference is the in-process backend run by the command line in a subprocess with
TensorFlow single-threaded, as the Ray tasks run it (``--cpus-per-run 1``): same seeds, same
data, same kernels and thread counts, so the same float64 metrics and float32 attributions,
compared exactly. A worker is killed (SIGKILL, by the pid its task recorded, after checking the
process descends from this test's Ray) mid-training: Ray retries the job, which resumes from
the killed attempt's epoch checkpoint, and results.csv holds every row exactly once, equal to
the uninterrupted reference.

Skipped when ray is not installed (``pip install 'benchmark_rc[ray]'``), except the test of
the message that says how to install it.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import benchmark_rc.benchmark as benchmark
from benchmark_rc.benchmark import read_results, run_sweep
from benchmark_rc.cli import main
from benchmark_rc.presets import get_preset

CLI = Path(sys.executable).parent / "benchmark-rc"
SINGLE_THREADED = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                   "CUDA_VISIBLE_DEVICES": ""}
STRATEGIES = ["standard", "posthoc", "rcps"]  # 3 jobs per dataset: rcaug (-> posthoc) too
KILLED_RUN = "smoke-sim-rcps-s1"
# columns that must match the in-process run exactly (train_seconds is a wall-clock time)
COMPARED = [c for c in benchmark.RESULT_COLUMNS if c != "train_seconds"]


def sweep_config() -> dict:
    """The smoke preset (tiny sim + tiny bpnet), three strategies; smoke-sim trains 3 epochs of
    12 steps so that a kill after its first epoch checkpoint lands well before its end."""
    config = get_preset("smoke")
    config["strategies"] = STRATEGIES
    config["datasets"][0]["train"] = {"epochs": 3, "steps_per_epoch": 12}
    assert config["datasets"][0]["name"] == "smoke-sim"
    return config


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`benchmark-rc ARGS` in a fresh process, TensorFlow single-threaded."""
    env = {**os.environ, **SINGLE_THREADED}
    result = subprocess.run([str(CLI), *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def by_run_id(rows: list[dict]) -> dict[str, dict]:
    ids = [r["run_id"] for r in rows]
    assert len(ids) == len(set(ids)), f"duplicated rows: {sorted(ids)}"
    return {r["run_id"]: {c: r[c] for c in COMPARED} for r in rows}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The in-process backend's sweep (command line, subprocess)."""
    root = tmp_path_factory.mktemp("ray_reference")
    (root / "grid.json").write_text(json.dumps(sweep_config()))
    cli("sweep", "--config", "grid.json", "--out", "ref", "--no-report", "--no-progress",
        cwd=root)
    rows = read_results(root / "ref" / "results.csv")
    assert len(rows) == 2 * len(STRATEGIES) and all(r["status"] == "ok" for r in rows), rows
    return root / "ref"


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray of 2 CPUs (2 one-CPU workers at a time), shut down after the module."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             logging_level=logging.WARNING, object_store_memory=200 * 2**20)
    yield ray
    ray.shutdown()


def test_ray_sweep_gives_the_rows_of_the_in_process_backend(reference, ray_local, tmp_path,
                                                            monkeypatch):
    appended = []
    real_append = benchmark.append_row

    def driver_append(path, row):  # every row the driver (this process) writes
        appended.append(row["run_id"])
        real_append(path, row)

    monkeypatch.setattr(benchmark, "append_row", driver_append)
    out = tmp_path / "ray"
    summary = run_sweep(sweep_config(), out, progress=False, backend="ray")
    assert summary["ok"] == 2 * len(STRATEGIES) and summary["failed"] == 0, summary
    rows = read_results(out / "results.csv")
    assert by_run_id(rows) == by_run_id(read_results(reference / "results.csv"))
    # only the driver wrote results.csv: its lines are exactly the driver's appends
    assert sorted(r["run_id"] for r in rows) == sorted(appended)
    # datasets generated once (by the dataset task) into OUT/data, as the in-process run did
    for name in ("smoke-sim", "smoke-profile"):
        with h5py.File(out / "data" / f"{name}.h5") as a, \
                h5py.File(reference / "data" / f"{name}.h5") as b:
            assert np.array_equal(a["train/x"][:], b["train/x"][:])
    # each job's run directory says where its attempt ran
    worker = json.loads((out / "runs" / KILLED_RUN / "worker.json").read_text())
    assert worker["pid"] != os.getpid()
    # posthoc rows come from the rcaug run, conjoined after its training
    posthoc = json.loads((out / "runs" / "smoke-sim-posthoc-s1" / "config.json").read_text())
    assert posthoc["posthoc_of"] == "smoke-sim-rcaug-s1"
    # a rerun skips every finished run and writes nothing
    before = (out / "results.csv").read_text()
    again = run_sweep(sweep_config(), out, progress=False, backend="ray")
    assert again["skipped"] == 2 * len(STRATEGIES) and again["ok"] == 0
    assert (out / "results.csv").read_text() == before


def _descends_from_this_test(pid: int) -> bool:
    """Whether process ``pid`` is a descendant of this process (Ray's raylet, and so its
    workers, are children of the process that called ray.init)."""
    me = os.getpid()
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state: ppid
        if pid == me:
            return True
    return False


def test_killed_worker_is_retried_and_every_row_written_once(reference, ray_local, tmp_path):
    config = sweep_config()
    sim = dict(config["datasets"][0], path=str(reference / "data" / "smoke-sim.h5"))
    config["datasets"] = [sim]  # only smoke-sim: 3 jobs, the rcps one killed
    out = tmp_path / "killed"
    run_dir = out / "runs" / KILLED_RUN
    killed: dict = {}

    def kill_after_first_epoch():
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if (run_dir / "checkpoint" / "state.json").is_file():
                pid = json.loads((run_dir / "worker.json").read_text())["pid"]
                assert _descends_from_this_test(pid), pid  # never anyone else's process
                assert not (run_dir / "config.json").exists()  # still training
                os.kill(pid, signal.SIGKILL)
                killed["pid"] = pid
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_after_first_epoch, daemon=True)
    killer.start()
    summary = run_sweep(config, out, progress=False, backend="ray")
    killer.join(timeout=5)
    assert "pid" in killed, "the worker was never killed"
    assert summary["ok"] == len(STRATEGIES) and summary["failed"] == 0, summary
    rows = read_results(out / "results.csv")
    expected = {k: v for k, v in by_run_id(read_results(reference / "results.csv")).items()
                if k.startswith("smoke-sim-")}
    assert by_run_id(rows) == expected  # every row once, equal to the uninterrupted run
    # the retry ran in another process and resumed from the killed attempt's checkpoint
    assert json.loads((run_dir / "worker.json").read_text())["pid"] != killed["pid"]
    resumed = json.loads((run_dir / "config.json").read_text())["resumed_from_epochs"]
    assert resumed and resumed[0] >= 1, resumed


def _read_outputs(out: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for path in sorted(out.glob("*.h5")):
        with h5py.File(path) as f:
            f.visititems(lambda name, obj, stem=path.stem: arrays.__setitem__(
                f"{stem}:{name}", obj[()]) if isinstance(obj, h5py.Dataset) else None)
    for path in sorted(out.glob("*.npz")):
        with np.load(path) as f:
            arrays.update({f"{path.name}:{k}": f[k] for k in f.files})
    return arrays


def test_ray_attribute_gives_identical_arrays(reference, ray_local, tmp_path):
    model = reference / "runs" / KILLED_RUN / "model.keras"
    data = reference / "data" / "smoke-sim.h5"
    args = ["attribute", "--model", str(model), "--data", str(data), "--methods",
            "deepshap,ism,saliency", "--n-shuffles", "3", "--max-seqs", "10", "--score",
            "--no-progress"]
    cli(*args, "--out", "local", cwd=tmp_path)
    # 3 chunks (4 + 4 + 2 sequences) on the 2 workers
    assert main([*args, "--out", str(tmp_path / "ray"), "--backend", "ray",
                 "--chunk-size", "4"]) == 0
    local, ray = _read_outputs(tmp_path / "local"), _read_outputs(tmp_path / "ray")
    assert sorted(local) == sorted(ray) and any(k.startswith("deepshap:") for k in local)
    for key, value in local.items():
        assert value.dtype == ray[key].dtype and np.array_equal(value, ray[key]), key
    assert len(local["deepshap:contrib_scores"]) == 10
    with open(tmp_path / "local" / "scores.csv") as a, open(tmp_path / "ray" / "scores.csv") as b:
        assert list(csv.DictReader(a)) == list(csv.DictReader(b))  # AUROC/AUPRC, RC-consistency
    assert not (tmp_path / "ray" / "chunks").exists()  # merged chunks are removed


def test_ray_attribute_of_a_sweep_gives_the_same_table(reference, ray_local, tmp_path):
    """`attribute --sweep`: every run of the sweep (sim and bpnet) sharded the same way."""
    args = ["attribute", "--sweep", str(reference), "--score", "--methods", "deepshap",
            "--n-shuffles", "2", "--max-seqs", "3", "--no-progress"]
    cli(*args, "--out", "local", cwd=tmp_path)
    assert main([*args, "--out", str(tmp_path / "ray"), "--backend", "ray",
                 "--chunk-size", "2"]) == 0
    with open(tmp_path / "local" / "attribution_scores.csv") as a, \
            open(tmp_path / "ray" / "attribution_scores.csv") as b:
        local, ray = list(csv.DictReader(a)), list(csv.DictReader(b))
    runs = {r["run_id"] for r in read_results(reference / "results.csv")}
    assert {r["run_id"] for r in local} == runs and len(runs) == 2 * len(STRATEGIES)
    assert local == ray
    assert (tmp_path / "ray" / "attribution_table.md").read_text() == \
        (tmp_path / "local" / "attribution_table.md").read_text()


def test_ray_backend_without_ray_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert main(["sweep", "--preset", "smoke", "--out", str(tmp_path / "s"), "--backend",
                 "ray", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--backend ray needs the optional package ray" in err
    assert "pip install 'benchmark_rc[ray]'" in err
    assert not (tmp_path / "s").exists()  # refused before anything ran
    assert main(["attribute", "--model", "m.keras", "--data", "d.h5", "--out",
                 str(tmp_path / "a"), "--backend", "ray"]) == 2
    assert "pip install 'benchmark_rc[ray]'" in capsys.readouterr().err
    # Ray options without the Ray backend are an error, not silently ignored
    assert main(["sweep", "--preset", "smoke", "--out", str(tmp_path / "s"), "--address",
                 "10.0.0.1:6379"]) == 2
    assert "--address: only with --backend ray" in capsys.readouterr().err

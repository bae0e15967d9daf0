"""Benchmark: `sweep --backend ray` against the in-process backend (the engine's overhead).

For each preset (default: smoke; `--presets smoke,quick`), in fresh processes, TensorFlow
single-threaded everywhere (the Ray tasks' default, ``--cpus-per-run 1``), each into a fresh
OUT whose datasets are generated beforehand (not timed):

* ``in_process``: ``run_sweep(backend="local")``;
* ``ray_1``: a local Ray of 1 CPU (one worker at a time): the engine's overhead, as the ratio
  of wall times ray_1 / in_process (worker start-up with its TensorFlow import, task dispatch,
  object transfers);
* ``ray_2``: a local Ray of 2 CPUs (two workers): the speed-up in_process / ray_2, bounded by
  the free cores (``machine_busy_fraction`` of each run: the CPU share all processes, this run
  included, used while it ran, from /proc/stat; a single-threaded in-process run alone on 2
  cores shows ~0.5; on a 2-core machine with one core busy elsewhere no speed-up is possible).

Measured with other work on the machine, the ratios are noise: compare runs whose
``machine_busy_fraction`` shows the machine otherwise idle.

Each run also checks that its results equal the in-process rows (every column but
train_seconds), as tests/test_ray_backend.py does.

Writes bench/results/ray_backend.json (machine, versions, parameters, figures).
Usage: .venv/bin/python bench/ray_backend.py [--presets smoke] [--strategies a,b,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SINGLE_THREADED = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                   "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}

# one measured sweep in a fresh process: argv = config.json OUT BACKEND CPUS -> seconds on stdout
_CHILD = r"""
import json, logging, sys, time
from benchmark_rc.benchmark import run_sweep
config, out, backend, cpus = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], int(sys.argv[4])
if backend == "ray":
    import ray
    ray.init(address="local", num_cpus=cpus, include_dashboard=False,
             logging_level=logging.WARNING)
start = time.perf_counter()
summary = run_sweep(config, out, progress=False, backend=backend)
seconds = time.perf_counter() - start
assert summary["failed"] == 0, summary
print(json.dumps({"seconds": seconds, "ok": summary["ok"]}))
"""


def busy_seconds() -> float | None:
    """CPU seconds (all processes) since boot, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(v) for v in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def measure(config: dict, out: Path, backend: str, cpus: int) -> dict:
    config_file = out.with_suffix(".json")
    config_file.write_text(json.dumps(config))
    env = {**os.environ, **SINGLE_THREADED}
    busy0, wall0 = busy_seconds(), time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _CHILD, str(config_file), str(out), backend,
                             str(cpus)], env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - wall0
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["process_wall_seconds"] = wall
    busy = busy_seconds()
    if busy is not None and busy0 is not None:
        figures["machine_busy_fraction"] = (busy - busy0) / (wall * (os.cpu_count() or 1))
    return figures


def rows(out: Path) -> dict:
    from benchmark_rc.benchmark import RESULT_COLUMNS, read_results

    return {r["run_id"]: {c: r[c] for c in RESULT_COLUMNS if c != "train_seconds"}
            for r in read_results(out / "results.csv")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="smoke")
    parser.add_argument("--strategies", help="comma-separated strategies (default: the preset's)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ray_backend.json")
    args = parser.parse_args(argv)
    try:
        import ray  # noqa: F401
    except ImportError:
        print("bench/ray_backend.py not run: pip install -e '.[ray]' first")
        return 0
    sys.path.insert(0, str(ROOT))
    from benchmark_rc.benchmark import dataset_path, resolve_config
    from benchmark_rc.presets import get_preset
    from benchmark_rc.training import versions

    report = {"benchmark": "ray_backend", "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                   time.gmtime()),
              "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                          "python": platform.python_version()},
              "versions": versions(("benchmark_rc", "tensorflow", "keras", "ray")),
              "parameters": {"presets": args.presets, "strategies": args.strategies,
                             "environment": SINGLE_THREADED},
              "presets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets.split(","):
            config = get_preset(name)
            if args.strategies:
                config["strategies"] = args.strategies.split(",")
            data = Path(tmp) / f"{name}-data"  # datasets generated once, not timed
            config["datasets"] = [dict(d, path=dataset_path(d, data))
                                  for d in resolve_config(config)["datasets"]]
            figures = {}
            for label, backend, cpus in (("in_process", "local", 1), ("ray_1", "ray", 1),
                                         ("ray_2", "ray", 2)):
                out = Path(tmp) / f"{name}-{label}"
                figures[label] = measure(config, out, backend, cpus)
                figures[label]["rows_equal_in_process"] = rows(out) == rows(
                    Path(tmp) / f"{name}-in_process")
                print(name, label, json.dumps(figures[label]), flush=True)
            base = figures["in_process"]["seconds"]
            figures["overhead_ray_1"] = figures["ray_1"]["seconds"] / base
            figures["speedup_ray_2"] = base / figures["ray_2"]["seconds"]
            report["presets"][name] = {"runs": figures["in_process"]["ok"], **figures}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

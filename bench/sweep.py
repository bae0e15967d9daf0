"""Benchmark of the benchmark runner: wall time of the quick preset and of full paper-sim runs.

Three measurements, written to bench/results/sweep.json with machine info and versions:

1. ``quick``: wall time of ``benchmark-rc sweep --preset quick`` (data generation timed apart),
   and its results table.
2. ``loop_overhead``: the protocol loop (:func:`benchmark_rc.training.fit_model`: tf.data
   stream, per-epoch validation auROC + loss, best-weight keeping, checkpoint) against the
   obvious baseline, a bare ``model.fit(x, y, batch_size=500, validation_data=...)`` on numpy
   arrays, same model / data / epochs, measured in the same process: ratio of seconds per epoch.
3. ``full_runs``: one full paper-sim run per strategy (sim200, seed 1535, the full protocol: batch
   500, up to 200 epochs, early stopping patience 10, best-val-auROC weights) for as many
   strategies as fit into ``--budget-minutes``; the others are listed as not run. Post-hoc rows
   reuse the rcaug run (their time is the conjoin + evaluation time).

Usage: ``.venv/bin/python bench/sweep.py [--budget-minutes 50] [--out WORKDIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> dict:
    info = {"platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "python": platform.python_version()}
    try:
        info["loadavg_start"] = os.getloadavg()
    except OSError:
        pass
    return info


def bench_quick(out: Path) -> dict:
    from benchmark_rc.benchmark import dataset_path, run_sweep, summary_table
    from benchmark_rc.presets import get_preset

    config = get_preset("quick")
    t0 = time.perf_counter()
    data = dataset_path(config["datasets"][0], out)
    gen_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = run_sweep(config, out, progress=False)
    sweep_seconds = time.perf_counter() - t1
    from benchmark_rc.report import build_report

    t2 = time.perf_counter()
    build_report(out)
    report_seconds = time.perf_counter() - t2
    return {"preset": config, "data": data, "data_generation_seconds": gen_seconds,
            "sweep_seconds": sweep_seconds, "report_seconds": report_seconds,
            "total_seconds": gen_seconds + sweep_seconds + report_seconds,
            "counts": {k: result[k] for k in ("ok", "failed", "skipped")},
            "table": summary_table(out / "results.csv")}


def bench_loop_overhead(data: str, out: Path, epochs: int = 5) -> dict:
    import numpy as np

    from benchmark_rc.data.hdf5 import read_split
    from benchmark_rc.registry import build_model
    from benchmark_rc.training import (
        TrainConfig,
        dataset_info,
        fit_model,
        make_training_data,
        set_determinism,
    )

    config = TrainConfig(data=data, arch="sim", strategy="standard", seed=1535, epochs=epochs,
                         patience=0)
    protocol = config.resolved_protocol()
    info = dataset_info(data)
    # baseline: bare model.fit on numpy arrays (Keras shuffles; val_loss by Keras)
    train = read_split(data, "train", keys=("x", "y"))
    valid = read_split(data, "valid", keys=("x", "y"))
    set_determinism(1535)
    model = build_model("sim", "standard", input_length=info["x_length"])
    xt, yt = train["x"].astype(np.float32), train["y"]
    xv, yv = valid["x"].astype(np.float32), valid["y"]
    model.fit(xt, yt, batch_size=500, epochs=1, validation_data=(xv, yv), verbose=0)  # warm-up
    t0 = time.perf_counter()
    model.fit(xt, yt, batch_size=500, epochs=epochs, validation_data=(xv, yv), verbose=0)
    bare = (time.perf_counter() - t0) / epochs
    # ours: warm-up epoch excluded the same way (first epoch traces the graphs)
    set_determinism(1535)
    model = build_model("sim", "standard", input_length=info["x_length"])
    train_ds, steps, valid_data = make_training_data(config, protocol, info, rc_augment=False)
    run_dir = out / "overhead_run"
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)
    result = fit_model(model, train_ds, steps, valid_data, protocol, run_dir)
    per_epoch = [row["seconds"] for row in result.history]
    ours = float(np.mean(per_epoch[1:]))
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"epochs": epochs, "baseline": "bare keras model.fit on numpy arrays, "
            "validation_data=(x_valid, y_valid), batch 500",
            "baseline_seconds_per_epoch": bare, "ours_seconds_per_epoch": ours,
            "ours_first_epoch_seconds": per_epoch[0], "ratio_ours_over_baseline": ours / bare}


def bench_full_runs(data: str, out: Path, strategies: list[str], budget_s: float) -> dict:
    from benchmark_rc.benchmark import Job, run_job
    from benchmark_rc.strategies import get_strategy

    dataset = {"name": "sim200", "arch": "sim", "path": data}
    config = {"train": {}, "evaluate": {"split": "test"}}
    rows, not_run = [], []
    started = time.perf_counter()
    trained = [s for s in strategies if not get_strategy(s).posthoc]
    posthoc = [s for s in strategies if get_strategy(s).posthoc]
    for strategy in trained:
        if time.perf_counter() - started > budget_s:
            not_run.append(strategy)
            if strategy == "rcaug":
                not_run += posthoc
            continue
        job = Job(dataset, 1535, strategy,
                  [strategy] + (posthoc if strategy == "rcaug" else []))
        t0 = time.perf_counter()
        for row in run_job(job, out, config, job.rows, progress=False):
            row["wall_seconds_job"] = time.perf_counter() - t0
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"dataset": "sim200 (paper data, 12000/9000/9000)", "seed": 1535,
            "protocol": "sim: batch 500, <=200 epochs, early stopping val_loss patience 10, "
                        "best val auROC weights", "budget_seconds": budget_s, "rows": rows,
            "not_run_budget": not_run, "elapsed_seconds": time.perf_counter() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "benchmark_rc_sweep"),
                        help="work directory (data, models; kept outside the repository)")
    parser.add_argument("--budget-minutes", type=float, default=50.0,
                        help="time for the full paper-sim runs")
    parser.add_argument("--strategies", default="rcaug,posthoc,posthoc-prob,standard,rcps,"
                        "conjoined,rcps-half,rcps-avg,rcps-weighted,conjoined-max,"
                        "hybrid-all,hybrid-early,hybrid-later")
    parser.add_argument("--skip-quick", action="store_true")
    args = parser.parse_args()
    from benchmark_rc.training import versions

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"benchmark": "sweep", "machine": machine(), "versions": versions(),
                    "parameters": vars(args)}
    if not args.skip_quick:
        report["quick"] = bench_quick(out / "quick")
        print(report["quick"]["table"], flush=True)
        data = report["quick"]["data"]
    else:
        from benchmark_rc.benchmark import dataset_path
        from benchmark_rc.presets import get_preset

        data = dataset_path(get_preset("quick")["datasets"][0], out / "quick")
    report["loop_overhead"] = bench_loop_overhead(data, out)
    print(json.dumps(report["loop_overhead"]), flush=True)
    _write(report)
    report["full_runs"] = bench_full_runs(data, out / "full", args.strategies.split(","),
                                          args.budget_minutes * 60)
    try:
        report["machine"]["loadavg_end"] = os.getloadavg()
    except OSError:
        pass
    _write(report)
    return 0


def _write(report: dict) -> None:
    from benchmark_rc.fileio import atomic_write_text

    path = ROOT / "bench" / "results" / "sweep.json"
    # temp paths are recorded as $TMPDIR/..., not as this machine's absolute paths
    text = json.dumps(report, indent=2, default=str).replace(tempfile.gettempdir(), "$TMPDIR")
    atomic_write_text(path, text)
    print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

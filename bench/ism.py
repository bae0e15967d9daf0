"""Benchmark: restricted ISM (fastISM: recompute only what each mutation reaches) against plain
batched ISM, in one run, on the same random-weight models and sequences.

For each architecture (default: basset and beluga at 400 bp, Prakash et al.'s length, at full
width; koo-cnn-deep at 200 bp), standard strategy, random weights with non-trivial batch-norm
statistics: both methods are traced first on one sequence (not timed), then timed on
``--n-seqs`` sequences (3L mutants each) at the library's default batch size. Reported per
architecture: seconds and sequences/s of each (process CPU time, stable on a shared machine,
and wall-clock time), the speed-up, the largest absolute difference of the two ISM maps and
that difference relative to the scale of the explained logit, and the restricted plan (which
layers form the trunk, the head, the recomputed slice of each map the head reads).
Target (issue 17 item 4): a speed-up of at least 5x on basset and beluga on this CPU.

``machine.other_cpu_fraction``: CPU time other processes used during the run over wall time x
cores (~0: otherwise idle; the wall-clock figures are comparable across runs only then).

Writes bench/results/ism.json (machine, versions, parameters, figures).
Usage: .venv/bin/python bench/ism.py [--archs basset,beluga,koo-cnn-deep] [--n-seqs 8]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from attribution import CLOCKS, LoadMonitor, _ratio, _seconds, machine_info  # bench/

TARGET_SPEEDUP = {"basset": 5.0, "beluga": 5.0}


def _random_weights(model, seed: int) -> None:
    """Batch-norm statistics drawn away from their initial 0 / 1 (so that no layer is an
    identity and the attributions are not degenerate)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
        elif "moving_mean" in w.path:
            w.assign(rng.normal(0.0, 0.1, w.shape).astype("float32"))


def _one_hot(n: int, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))]


def bench_arch(arch: str, n_seqs: int, batch_size: int | None, seed: int) -> dict:
    import benchmark_rc as brc
    from benchmark_rc.attribution import ism, predict_target
    from benchmark_rc.attribution.fast_ism import RestrictedPlan
    from benchmark_rc.attribution.targets import model_spec

    model = brc.build_model(arch, "standard", seed=seed)
    _random_weights(model, seed)
    length = int(model.inputs[0].shape[1])
    x = _one_hot(n_seqs, length, seed)
    plan = RestrictedPlan(model, model_spec(model))
    runs = {"plain": lambda xs: ism(model, xs, 0, batch_size=batch_size),
            "restricted": lambda xs: ism(model, xs, 0, batch_size=batch_size, restricted=True)}
    maps, seconds = {}, {}
    for name, run in runs.items():
        run(x[:1])  # trace (not timed)
        seconds[name] = _seconds(lambda run=run, name=name: maps.__setitem__(name, run(x)))
    rate = {name: {k: n_seqs / v for k, v in s.items()} for name, s in seconds.items()}
    diff = float(np.abs(maps["restricted"] - maps["plain"]).max())
    scale = float(max(np.abs(predict_target(model, x, 0)).max(), np.abs(maps["plain"]).max()))
    print(f"{arch}: plain {seconds['plain']}, restricted {seconds['restricted']} s", flush=True)
    return {
        "input_length": length, "params": model.count_params(),
        "seconds": seconds, "seq_per_s": rate,
        "speedup": _ratio(rate["restricted"], rate["plain"]),
        "target_speedup": TARGET_SPEEDUP.get(arch),
        "max_abs_diff": diff, "max_abs_diff_rel_to_scale": diff / scale,
        "scale_max_abs_logit_or_ism": scale,
        "plan": plan.describe(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="basset,beluga,koo-cnn-deep",
                        help="comma-separated architectures (standard strategy, full width)")
    parser.add_argument("--n-seqs", type=int, default=8, help="sequences per timed ISM call")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="mutants per forward pass (default: the library's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "ism.json"))
    args = parser.parse_args(argv)


    from benchmark_rc.architectures import ARCHITECTURES
    from benchmark_rc.attribution.batching import default_batch_size
    from benchmark_rc.fileio import atomic_write_text
    from benchmark_rc.training import versions

    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    missing = [a for a in archs if a not in ARCHITECTURES]
    if missing:
        parser.error(f"unknown architecture(s) {missing}; registered: {sorted(ARCHITECTURES)}")
    monitor = LoadMonitor().start()
    figures = {arch: bench_arch(arch, args.n_seqs, args.batch_size, args.seed) for arch in archs}
    load = monitor.stop()
    result = {
        "benchmark": "ism",
        "machine": machine_info(load),
        "versions": versions(("tensorflow", "keras", "numpy", "benchmark_rc")),
        "params": {"archs": archs, "strategy": "standard", "n_seqs": args.n_seqs,
                   "mutants_per_seq": "3 x input_length",
                   "batch_size": args.batch_size or default_batch_size(), "seed": args.seed,
                   "weights": "random (build_model seed), batch-norm statistics drawn",
                   "explained": "logit, task 0", "clocks": list(CLOCKS)},
        "note": "one timed call per method after an untimed tracing call on one sequence; "
                "'cpu' figures use process CPU time (stable on a shared machine), 'wall' "
                "figures wall-clock time",
        "architectures": figures,
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    shown = {a: {k: f[k] for k in ("seconds", "speedup", "max_abs_diff",
                                   "max_abs_diff_rel_to_scale")} for a, f in figures.items()}
    print(json.dumps({"machine": result["machine"], "architectures": shown}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

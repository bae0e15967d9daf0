"""enformer (issue 13 item 5): training-step time of rcps vs standard vs conjoined, attention
memory at the default length, and the cost curve as the input length doubles.

1. Step time at the default geometry (4096 bp -> 32 bins of 128 bp, cropped to 24; batch 8):
   standard (F = 64 channels, 4 heads of key 16 / value 16), rcps at EQUAL CHANNELS (filters
   32 free -> 64 channels; heads 2 free -> 4 heads of value 16: the same widths as standard,
   half the free parameters), rcps at equal free filters (the registry default: 128 channels,
   8 heads), conjoined (the standard network on x and RC(x)) and irrep at rcps's equal channels
   (issue 14; also as a ratio to rcps). Timed with bench/strategies.py's
   interleaved rounds (every model once per round); ratios to standard of the median process
   CPU time per step (primary), median and minimum wall time.
2. Attention memory at the default length: the attention-logit tensor (B, heads, bins, bins)
   and the relative-position tensor (B, heads, bins, 2 bins - 1) per transformer block,
   analytically (float32), also at the published geometry for scale; peak RSS of a fresh
   process that builds the model and runs 3 training steps, minus its RSS after building.
3. Cost curve: standard vs rcps (equal channels) at 4, 8, 16, 32 kb (32 .. 256 bins), batch 2,
   ratio of each length's step time to the 4-kb one and rcps / standard per length.

The machine is shared (2 cores, other training running): absolute times are inflated and
noisy; the ratios measured in the same interleaved run are the result. Load averages are
recorded before and after.

Usage: .venv/bin/python bench/enformer.py [--rounds 5] [--curve-rounds 3] [--no-memory]
[--models NAME ...] [--lengths L ...]. Writes bench/results/enformer.json (--out to change).
The irrep comparison of issue 14: --models rcps irrep --no-memory --lengths
--out bench/results/enformer_irrep.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import strategies as timing

import benchmark_rc
from benchmark_rc.architectures import get_architecture
from benchmark_rc.architectures.enformer import bin_size, conv_receptive_field
from benchmark_rc.fileio import atomic_write_text
from benchmark_rc.training import versions

ROOT = timing.ROOT
DEFAULTS = get_architecture("enformer").defaults
# name -> (strategy, hparams); equal channels: rcps's RC-shared layers have twice the free
# filters (and heads) as channels (heads)
MODELS = {
    "standard": ("standard", {}),
    "rcps": ("rcps", {"filters": 32, "heads": 2}),
    "rcps-equal-free-filters": ("rcps", {}),
    "conjoined": ("conjoined", {}),
    # issue 14: irrep at the channels of rcps (equal channels): 64 channels, 4 heads
    "irrep": ("irrep", {"filters": 32, "heads": 2}),
}
CURVE = ("standard", "rcps")
LENGTHS = (4096, 8192, 16384, 32768)


def geometry(hparams: dict) -> dict:
    hp = {**DEFAULTS, **hparams}
    return {"bins": int(hp["input_length"]) // bin_size(hp), "output_bins": int(hp["output_bins"])}


def batch(n: int, hparams: dict, seed: int = 0):
    hp = {**DEFAULTS, **hparams}
    rng = np.random.default_rng(seed)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (n, int(hp["input_length"])))]
    bins = int(hp["output_bins"])
    y = {"tracks": rng.poisson(2.0, (n, bins, int(hp["num_tracks"]))).astype("float32"),
         "stranded_tracks": rng.poisson(2.0, (n, bins, 2 * int(hp["num_stranded"])))
         .astype("float32")}
    return x, y


def attention_sizes(strategy: str, hparams: dict, n: int = 1) -> dict:
    """Elements and float32 MiB of the logits (n, heads, bins, bins) and relative-position
    (n, heads, bins, 2 bins - 1) tensors of one transformer block."""
    hp = {**DEFAULTS, **hparams}
    heads = int(hp["heads"]) * (2 if strategy.startswith(("rcps", "irrep")) else 1)
    bins = int(hp["input_length"]) // bin_size(hp)
    logits = n * heads * bins * bins
    relative = n * heads * bins * (2 * bins - 1)
    return {"heads": heads, "bins": bins, "batch": n, "blocks": int(hp["n_transformer"]),
            "logits_elements": logits, "logits_mib": logits * 4 / 2**20,
            "relative_elements": relative, "relative_mib": relative * 4 / 2**20}


def make(name: str, hparams: dict):
    strategy, extra = MODELS[name]
    import keras

    keras.utils.set_random_seed(0)
    return benchmark_rc.build_model("enformer", strategy, **{**extra, **hparams})


def step_times(names, hparams: dict, n: int, rounds: int, warmup: int = 2) -> dict:
    x, y = batch(n, hparams)
    models, data, params = {}, {}, {}
    for name in names:
        models[name] = make(name, hparams)
        data[name] = (timing.to_tensors(x), timing.to_tensors(y))
        params[name] = models[name].count_params()
    wall, cpu = timing.interleaved_step_times(models, data, rounds, 1, warmup=warmup)
    base = timing.step_stats(wall["standard"], cpu["standard"])
    out = {}
    for name in names:
        stats = timing.step_stats(wall[name], cpu[name])
        out[name] = {"ratio_to_standard": {k: v / base[k] for k, v in stats.items()},
                     "step_seconds": stats, "wall_seconds_all": wall[name],
                     "cpu_seconds_all": cpu[name], "params": params[name]}
    if "rcps" in out:  # the RC-equivariant models against rcps at equal channels
        base = out["rcps"]["step_seconds"]
        for name in names:
            if name.startswith("irrep"):
                out[name]["ratio_to_rcps"] = {k: v / base[k]
                                              for k, v in out[name]["step_seconds"].items()}
    return out


def child_memory(name: str, n: int) -> None:
    """In a fresh process: RSS after building, peak RSS after 3 training steps (KiB)."""
    model = make(name, {})
    x, y = batch(n, {})
    built = _status_kib("VmRSS")
    for _ in range(3):
        model.train_on_batch(timing.to_tensors(x), timing.to_tensors(y))
    # VmHWM, not getrusage's ru_maxrss: Linux carries the parent's peak over fork + exec into
    # ru_maxrss (every child reported the parent's 2.0 GB)
    print(json.dumps({"rss_after_build_kib": built, "peak_rss_kib": _status_kib("VmHWM")}))


def _status_kib(field: str) -> int:
    """A memory field of /proc/self/status (KiB), -1 where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def memory(names, n: int) -> dict:
    """Peak RSS (VmHWM) of a fresh process per model: build, then 3 training steps."""
    out = {}
    for name in names:
        proc = subprocess.run([sys.executable, __file__, "--child-memory", name,
                               "--batch", str(n)], capture_output=True, text=True, timeout=900)
        if proc.returncode:
            out[name] = {"error": proc.stderr[-2000:]}
            continue
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        got["training_peak_minus_built_mib"] = (got["peak_rss_kib"]
                                                - got["rss_after_build_kib"]) / 1024
        out[name] = got
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--curve-rounds", type=int, default=3)
    parser.add_argument("--curve-batch", type=int, default=2)
    parser.add_argument("--lengths", type=int, nargs="*", default=list(LENGTHS),
                        help="cost-curve lengths (none: no curve)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                        help="models of the step-time comparison (standard is always timed: "
                             "the ratios are to it)")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--child-memory", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "enformer.json"))
    args = parser.parse_args()
    if args.child_memory:
        child_memory(args.child_memory, args.batch)
        return 0
    load_start = os.getloadavg()
    started = time.perf_counter()

    steps = step_times(list(dict.fromkeys(["standard", *args.models])), {}, args.batch,
                       args.rounds)
    print(f"step time / standard's (process-CPU median, wall median, wall min), batch "
          f"{args.batch}, {DEFAULTS['input_length']} bp:")
    for name, r in steps.items():
        q = r["ratio_to_standard"]
        print(f"  {name:24s} {q['cpu_median']:5.2f}x {q['wall_median']:5.2f}x "
              f"{q['wall_min']:5.2f}x  ({r['step_seconds']['cpu_median']:.2f} s CPU, "
              f"{r['params']} params)"
              + (f", {r['ratio_to_rcps']['cpu_median']:.2f}x rcps" if "ratio_to_rcps" in r
                 else ""))

    sizes = {
        name: attention_sizes(MODELS[name][0], MODELS[name][1], args.batch)
        for name in ("standard", "rcps", "rcps-equal-free-filters", "irrep")}
    published = {"input_length": 196608, "filters": 1536, "channel_step": 128,
                 "n_transformer": 11, "heads": 8, "key_size": 64, "position_features": 192,
                 "output_bins": 896}
    sizes["published-standard-batch1"] = attention_sizes("standard", published, 1)
    sizes["published-rcps-equal-channels-batch1"] = attention_sizes(
        "rcps", {**published, "filters": 768, "heads": 4}, 1)
    rss = {} if args.no_memory else memory(["standard", "rcps"], args.batch)
    for name, got in rss.items():
        print(f"  memory {name}: {got}")

    curve: dict = {}
    for length in args.lengths:
        hp = {"input_length": length, "output_bins": length // 128 - 8}
        curve[str(length)] = step_times(list(CURVE), hp, args.curve_batch, args.curve_rounds)
        curve[str(length)]["attention"] = {
            name: attention_sizes(MODELS[name][0], {**MODELS[name][1], **hp}, args.curve_batch)
            for name in CURVE}
        print(f"  {length} bp: " + ", ".join(
            f"{name} {curve[str(length)][name]['step_seconds']['cpu_median']:.2f} s CPU"
            for name in CURVE))
    first = str(args.lengths[0]) if args.lengths else None
    growth = {name: {length: curve[length][name]["step_seconds"]["cpu_median"]
                     / curve[first][name]["step_seconds"]["cpu_median"] for length in curve}
              for name in CURVE} if first else {}
    rcps_over_standard = {length: curve[length]["rcps"]["ratio_to_standard"]["cpu_median"]
                          for length in curve}

    report = {
        "benchmark": "enformer training step: rcps vs standard vs conjoined; attention memory; "
                     "cost vs input length",
        "parameters": vars(args) | {"out": timing._repo_relative(args.out),
                                    "models": {k: {"strategy": s, "hparams": h}
                                               for k, (s, h) in MODELS.items()},
                                    "defaults": DEFAULTS,
                                    "geometry": geometry({}),
                                    "conv_receptive_field_bp": conv_receptive_field(DEFAULTS)},
        "machine": timing.machine() | {"load_average_at_start": load_start,
                                       "seconds": time.perf_counter() - started},
        "versions": versions(("tensorflow", "keras", "numpy", "benchmark_rc")),
        "note": "shared machine (2 cores, long training sweeps running): absolute times are "
                "inflated by the other processes; ratios from the same interleaved run are the "
                "result",
        "primary_ratio": "ratio_to_standard.cpu_median (process CPU time per training step)",
        "step_time": steps,
        "attention_memory": {"analytic_float32_per_block": sizes, "process_rss": rss},
        "cost_curve": {"lengths_bp": args.lengths, "batch": args.curve_batch,
                       "cpu_step_growth_vs_first_length": growth,
                       "rcps_over_standard_cpu": rcps_over_standard, "runs": curve},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(report, indent=2, default=float) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

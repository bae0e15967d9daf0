"""Benchmark: DeepSHAP end to end, ours vs tangermeme 1.6 on the same network, CPU (issue 18).

The binary standard model of benchmark_rc (1000 bp) with seeded random weights (Glorot kernels
from ``build_model(seed)``, then biases, batch-norm scales/offsets and running statistics drawn
from a fixed seed so that no unit is trivially dead), ported to PyTorch with the SAME weights
(Conv1d / BatchNorm1d in eval mode / ReLU / MaxPool1d / Linear; the port's logits are checked
against Keras' before anything is timed). Then, on the same sequences, CPU, float32, 2 threads
each (TensorFlow's default on 2 cores, ``torch.set_num_threads(2)``):

* ours: ``benchmark_rc.attribution.deepshap(model, x, n_shuffles=20)``, references (seeded
  dinucleotide shuffles) made inside the call;
* peer: ``tangermeme.deep_lift_shap(model, X, n_shuffles=20, random_state=seed, device="cpu")``,
  which also makes its dinucleotide shuffles inside the call, at its default batch size (32
  sequence-reference pairs) and at the other ``--peer-batch-sizes``; the fastest is "the peer".

Each is timed on a first call (ours: a fresh model, so it pays tracing and XLA compilation;
the peer: its first call in this process, numba's shuffle kernels loaded from numba's on-disk
cache) and in the steady state (one warm-up call, then the best and the median of
``--repeats`` calls), as sequences/s of wall-clock time and per CPU-second of this process (all
threads). The ratio ours/peer is reported for both (target: 3x).

Agreement (the two make different shuffles, so it is checked on identical references): our
scores with the same (N, R, L, 4) references as the peer's ``references=`` tensor, per-position
sums (summed over the 4 channels) compared as max |ours - theirs| / max |theirs|, under our
"continuous" (default) and "shap" max-pool rules (tangermeme's own rule differs from both only
where a pooled input does not change at all).

``machine.other_cpu_fraction`` is the CPU time other processes used during the run (from
/proc/stat) over wall time x cores: ~0 on an idle machine.

Needs the ``bench`` extra (``pip install -e .[bench]``: torch 2.13.0 CPU, tangermeme 1.6.0);
exits with status 2 and a message when torch or tangermeme is missing.
Writes bench/results/attribution_peer.json.
Usage: .venv/bin/python bench/attribution_peer.py [--n-seqs 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from attribution import CLOCKS, LoadMonitor, _ratio, machine_info  # bench/attribution.py

ROOT = Path(__file__).resolve().parents[1]


def _require_peer() -> None:
    missing = []
    for name in ("torch", "tangermeme"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        print(f"bench/attribution_peer.py needs {' and '.join(missing)} (the peer): install the "
              "project's 'bench' extra, e.g. `.venv/bin/pip install -e .[bench]` (torch 2.13.0, "
              "CPU build; tangermeme 1.6.0)", file=sys.stderr)
        raise SystemExit(2)


def perturb_weights(model, seed: int) -> None:
    """Seeded non-trivial weights on top of the Glorot kernels: biases ~ N(0, 0.1), batch-norm
    gamma ~ U(0.8, 1.2), beta ~ N(0, 0.1), moving mean ~ N(0, 0.1), moving variance ~
    U(0.5, 1.5)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        path, shape = w.path, w.shape
        if "moving_variance" in path:
            value = rng.uniform(0.5, 1.5, shape)
        elif "moving_mean" in path:
            value = rng.normal(0, 0.1, shape)
        elif path.endswith("gamma"):
            value = rng.uniform(0.8, 1.2, shape)
        elif path.endswith("beta") or path.endswith("bias"):
            value = rng.normal(0, 0.1, shape)
        else:
            continue
        w.assign(value.astype("float32"))


def torch_port(model):
    """The Keras binary standard model (up to its logits) as a torch ``nn.Sequential`` with the
    same weights, input (N, 4, L). Conv1D (valid padding) -> Conv1d, BatchNormalization ->
    BatchNorm1d (eval), relu -> ReLU, MaxPooling1D -> MaxPool1d, Flatten + Dense -> Flatten +
    Linear with its rows reordered from Keras' (position, channel) flattening to torch's
    (channel, position). The final sigmoid is dropped (logits are explained)."""
    import torch
    from torch import nn

    def param(value):
        return nn.Parameter(torch.tensor(np.asarray(value, dtype=np.float32)),
                            requires_grad=False)

    modules: list = []
    pooled_shape = None
    for layer in model.layers:
        kind = type(layer).__name__
        cfg = layer.get_config()
        if kind == "InputLayer":
            continue
        if kind == "Conv1D":
            if cfg["padding"] != "valid" or cfg["activation"] != "linear":
                raise ValueError(f"{layer.name}: only valid, linear Conv1D is ported")
            kernel, bias = (w.numpy() for w in layer.weights)  # (k, cin, cout), (cout,)
            conv = nn.Conv1d(kernel.shape[1], kernel.shape[2], kernel.shape[0],
                             stride=cfg["strides"][0], dilation=cfg["dilation_rate"][0])
            conv.weight = param(kernel.transpose(2, 1, 0))
            conv.bias = param(bias)
            modules.append(conv)
        elif kind == "BatchNormalization":
            values = {w.path.rsplit("/", 1)[-1]: w.numpy() for w in layer.weights}
            bn = nn.BatchNorm1d(values["gamma"].shape[0], eps=cfg["epsilon"])
            bn.weight, bn.bias = param(values["gamma"]), param(values["beta"])
            bn.running_mean = torch.tensor(values["moving_mean"])
            bn.running_var = torch.tensor(values["moving_variance"])
            modules.append(bn)
        elif kind == "Activation" and cfg["activation"] == "relu":
            modules.append(nn.ReLU())
        elif kind == "MaxPooling1D":
            if cfg["padding"] != "valid":
                raise ValueError(f"{layer.name}: only valid max pooling is ported")
            modules.append(nn.MaxPool1d(cfg["pool_size"][0], cfg["strides"][0]))
            pooled_shape = tuple(layer.output.shape[1:])  # (positions, channels)
        elif kind == "Flatten":
            modules.append(nn.Flatten())
        elif kind == "Dense":
            kernel, bias = (w.numpy() for w in layer.weights)  # (P*C, units)
            positions, channels = pooled_shape
            kernel = kernel.reshape(positions, channels, -1).transpose(1, 0, 2)
            dense = nn.Linear(kernel.shape[0] * kernel.shape[1], kernel.shape[2])
            dense.weight = param(kernel.reshape(-1, kernel.shape[2]).T)
            dense.bias = param(bias)
            modules.append(dense)
        elif kind == "Activation" and cfg["activation"] == "sigmoid":
            break
        else:
            raise ValueError(f"layer {layer.name} ({kind}) is not ported")
    return nn.Sequential(*modules).eval()


def _timed(fn) -> dict[str, float]:
    start = {k: c() for k, c in CLOCKS.items()}
    fn()
    return {k: c() - start[k] for k, c in CLOCKS.items()}


def _rates(n: int, first: dict, steady: list[dict]) -> dict:
    """Sequences/s (wall) and per CPU-second: the first call, the best and the median steady."""
    return {
        "first_call_seq_per_s": {k: n / first[k] for k in CLOCKS},
        "steady_seq_per_s": {k: n / min(s[k] for s in steady) for k in CLOCKS},
        "steady_median_seq_per_s": {k: n / statistics.median(s[k] for s in steady)
                                    for k in CLOCKS},
        "first_call_s": first, "steady_s": steady,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-seqs", type=int, default=32)
    parser.add_argument("--n-refs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (TensorFlow: its "
                        "default, one per core, checked to equal this)")
    parser.add_argument("--peer-batch-sizes", default="32,128,640",
                        help="tangermeme batch sizes (sequence-reference pairs; 32 is its "
                             "default); the fastest is the peer")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows per forward pass of ours (default: the library's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" /
                                             "attribution_peer.json"))
    args = parser.parse_args(argv)
    _require_peer()

    import keras
    import tangermeme
    import tensorflow as tf
    import torch
    from tangermeme.deep_lift_shap import deep_lift_shap

    sys.path.insert(0, str(ROOT))
    import benchmark_rc as brc
    from benchmark_rc.attribution import deepshap, dinuc_shuffle_references
    from benchmark_rc.attribution.batching import default_batch_size
    from benchmark_rc.attribution.references import SHUFFLE_ALGORITHM
    from benchmark_rc.fileio import atomic_write_text
    from benchmark_rc.training import versions

    torch.set_num_threads(args.threads)
    monitor = LoadMonitor().start()

    def make_model():
        keras.utils.set_random_seed(args.seed)
        model = brc.build_model("binary", "standard", seed=args.seed)
        perturb_weights(model, args.seed)
        return model

    model = make_model()
    length = model.inputs[0].shape[1]
    rng = np.random.default_rng(args.seed)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (args.n_seqs, length))]
    X = torch.tensor(x.transpose(0, 2, 1).copy())

    # the port: same logits as Keras
    tmodel = torch_port(model)
    with torch.no_grad():
        logits_torch = tmodel(X).numpy()[:, 0]
    logits_keras = np.asarray(brc.logits_model(model)(x, training=False))[:, 0]
    port_err = float(np.abs(logits_torch - logits_keras).max() / np.abs(logits_keras).max())
    if port_err > 1e-5:
        raise SystemExit(f"the torch port's logits differ from Keras': {port_err:.2e} relative")

    n = args.n_seqs

    def ours() -> None:
        deepshap(model, x, n_shuffles=args.n_refs, seed=args.seed, output=0,
                 batch_size=args.batch_size)

    def peer(batch: int):
        def run() -> None:
            deep_lift_shap(tmodel, X, n_shuffles=args.n_refs, random_state=args.seed,
                           device="cpu", batch_size=batch, warning_threshold=1e9)
        return run

    # first calls: ours on the fresh model (trace + compile), the peer's first in this process
    peer_sizes = [int(v) for v in args.peer_batch_sizes.split(",")]
    first_ours = _timed(ours)
    first_peer = _timed(peer(peer_sizes[0]))

    def steady(fn) -> list[dict]:
        fn()
        return [_timed(fn) for _ in range(args.repeats)]

    ours_rates = _rates(n, first_ours, steady(ours))
    peer_rates = {}
    for size in peer_sizes:
        peer_rates[size] = _rates(n, first_peer if size == peer_sizes[0] else _timed(peer(size)),
                                  steady(peer(size)))
    best_size = max(peer_sizes, key=lambda s: peer_rates[s]["steady_seq_per_s"]["wall"])
    best_peer = peer_rates[best_size]
    load = monitor.stop()

    # agreement on identical references
    refs = dinuc_shuffle_references(x, args.n_refs, seed=args.seed)
    theirs = deep_lift_shap(tmodel, X, references=torch.tensor(refs.transpose(0, 1, 3, 2).copy()),
                            device="cpu", warning_threshold=1e9).numpy().sum(1)  # (N, L)
    agreement = {}
    for rule in ("continuous", "shap"):
        mine = deepshap(model, x, references=refs, output=0, maxpool_rule=rule).sum(-1)
        diff = np.abs(mine - theirs)
        agreement[rule] = {
            "max_rel_diff_position_sums": float(diff.max() / np.abs(theirs).max()),
            "rel_l2_diff_position_sums": float(np.linalg.norm(mine - theirs)
                                               / np.linalg.norm(theirs)),
            "max_rel_diff_sequence_totals": float(
                np.abs(mine.sum(1) - theirs.sum(1)).max() / np.abs(theirs.sum(1)).max()),
        }

    tf_threads = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                  "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    result = {
        "benchmark": "attribution_peer",
        "machine": machine_info(load),
        "versions": {**versions(("tensorflow", "keras", "numpy", "benchmark_rc")),
                     "torch": torch.__version__, "tangermeme": tangermeme.__version__},
        "params": {"arch": "binary", "strategy": "standard", "length": length,
                   "weights": "build_model(seed) Glorot kernels + seeded biases/BN (perturb_weights)",
                   "n_seqs": n, "n_refs": args.n_refs, "repeats": args.repeats,
                   "seed": args.seed, "dtype": "float32", "device": "cpu",
                   "torch_threads": torch.get_num_threads(),
                   "tensorflow_threads": tf_threads,
                   "ours_batch_size": args.batch_size or default_batch_size(),
                   "peer_batch_sizes": peer_sizes, "explained": "logit, task 0",
                   "ours_shuffle_algorithm": SHUFFLE_ALGORITHM,
                   "peer_references": "tangermeme.ersatz.dinucleotide_shuffle, random_state=seed"},
        "note": "rates: sequences/s end to end (references made inside the call); 'wall' by "
                "wall-clock time, 'cpu' per CPU-second of this process (all threads). steady = "
                "best of repeats after a warm-up call",
        "port_max_rel_logit_diff": port_err,
        "ours": ours_rates,
        "peer": {"best_batch_size": best_size, **best_peer,
                 "by_batch_size": {str(s): {k: peer_rates[s][k] for k in (
                     "first_call_seq_per_s", "steady_seq_per_s", "steady_median_seq_per_s")}
                     for s in peer_sizes}},
        "ratio_ours_over_peer": {
            "steady": _ratio(ours_rates["steady_seq_per_s"], best_peer["steady_seq_per_s"]),
            "steady_median": _ratio(ours_rates["steady_median_seq_per_s"],
                                    best_peer["steady_median_seq_per_s"]),
            "first_call": _ratio(ours_rates["first_call_seq_per_s"],
                                 peer_rates[peer_sizes[0]]["first_call_seq_per_s"]),
            "steady_vs_peer_default_batch": _ratio(
                ours_rates["steady_seq_per_s"],
                peer_rates[peer_sizes[0]]["steady_seq_per_s"]),
        },
        "target_ratio": 3.0,
        "agreement_identical_references": agreement,
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    summary = {k: result[k] for k in ("ratio_ours_over_peer", "agreement_identical_references")}
    summary["ours_steady"] = ours_rates["steady_seq_per_s"]
    summary["ours_first"] = ours_rates["first_call_seq_per_s"]
    summary["peer_steady"] = best_peer["steady_seq_per_s"]
    summary["peer_first"] = peer_rates[peer_sizes[0]]["first_call_seq_per_s"]
    summary["machine"] = result["machine"]
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: native DeepSHAP and ISM against shap.DeepExplainer and the forward-pass bounds.

One run, binary architecture (1000 bp), 20 dinucleotide-shuffled references per sequence:

* DeepSHAP sequences/s, ours (default continuous max-pool rule) vs shap.DeepExplainer (callable
  per-sequence references, the genomics usage) on the SAME model and references, with the
  agreement of per-position sums (ours with shap's max-pool rule, and with the default);
* ours as a fraction of the bound: 3 x n_refs forward passes per sequence at the model's batched
  forward speed (measured in the same run, before and after);
* ISM sequences/s vs its bound of 3L forward passes per sequence;
* references: sequences/s of the dinucleotide shuffle (20 shuffles per sequence), the old
  deeplift loop (``dinuc_shuffle`` per sequence) vs the vectorised one, and DeepSHAP end to end
  (references made inside the call) with the share of its time the references take;
* first call vs steady state: a fresh model's first DeepSHAP call (trace and XLA compilation),
  then a call on another number of sequences (compiles nothing new), then the same call again;
* before/after (issue 18), in the same run and on the same weights: DeepSHAP with the engine as
  it was (TensorFlow's ``Conv2DBackpropInput`` for convolution gradients, its argmax kernels
  for max pooling; :func:`engine_before`) at the old CPU batch size (64 rows), and ISM at 64
  rows, against today's engine at the library's default batch size, with the agreement of the
  two engines' scores;
* ``batch_sweep``: DeepSHAP (references given) and ISM at several batch sizes (how the CPU
  default of :func:`benchmark_rc.attribution.batching.default_batch_size` was chosen);
* ``paired``: the fractions of the bounds measured in rounds (the forward speed at its best
  batch size, then each method, right after it), median over rounds of each round's ratio; the
  best-of rates above compare measurements minutes apart, and this machine's speed drifts by
  several % (idle or not) between them.

``machine.other_cpu_fraction``: CPU time other processes used during the run over wall time x
cores (~0: the machine was otherwise idle); ``machine.onednn``: whether TensorFlow ran its
oneDNN kernels (TF_ENABLE_ONEDNN_OPTS; TensorFlow's default is off on CPUs without AVX-512
VNNI/BF16 or AMX, such as AMD EPYC).

Writes bench/results/attribution.json (machine, versions, parameters, figures).
Usage: .venv/bin/python bench/attribution.py [--n-seqs 48] [--n-shap 6] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _rate(fn, n_items: int, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` items/s of fn() (one warm-up call first), by wall-clock time and by
    process CPU time (all threads). On a shared machine the CPU-time rate is the stable one:
    other processes' load stretches wall time, not this process's CPU seconds."""
    fn()
    best = {k: float("inf") for k in CLOCKS}
    for _ in range(repeats):
        start = {k: c() for k, c in CLOCKS.items()}
        fn()
        for k, c in CLOCKS.items():
            best[k] = min(best[k], c() - start[k])
    return {k: n_items / max(v, 1e-9) for k, v in best.items()}


def _ratio(a: dict, b: dict) -> dict[str, float]:
    return {k: a[k] / b[k] for k in CLOCKS}


def _seconds(fn) -> dict[str, float]:
    """Seconds of one call of fn(), by each clock (no warm-up: for first calls)."""
    start = {k: c() for k, c in CLOCKS.items()}
    fn()
    return {k: c() - start[k] for k, c in CLOCKS.items()}


class LoadMonitor:
    """How busy the rest of the machine was while a benchmark ran: the CPU time of all
    processes (/proc/stat) less this process's own, over wall time x cores. ~0 when the machine
    was otherwise idle; wall-clock rates are only comparable across runs when it is."""

    @staticmethod
    def _busy_seconds() -> float | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
        return busy / os.sysconf("SC_CLK_TCK")

    def start(self) -> LoadMonitor:
        self._start = (self._busy_seconds(), time.process_time(), time.perf_counter(),
                       os.getloadavg()[0])
        return self

    def stop(self) -> dict:
        busy0, cpu0, wall0, load0 = self._start
        busy1, cpu1, wall1 = self._busy_seconds(), time.process_time(), time.perf_counter()
        out = {"loadavg_1min_start": load0, "loadavg_1min_end": os.getloadavg()[0],
               "other_cpu_fraction": None, "otherwise_idle": None}
        if busy0 is not None and busy1 is not None:
            other = max(0.0, (busy1 - busy0) - (cpu1 - cpu0))
            fraction = other / ((wall1 - wall0) * (os.cpu_count() or 1))
            out.update(other_cpu_fraction=fraction, otherwise_idle=fraction < 0.05)
        return out


def onednn_enabled() -> bool | None:
    """Whether TensorFlow runs its oneDNN kernels (TF_ENABLE_ONEDNN_OPTS, or TensorFlow's
    default: on only for CPUs with AVX-512 VNNI/BF16 or AMX)."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # pragma: no cover - private TensorFlow API
        return None


def machine_info(load: dict) -> dict:
    """The "machine" entry of a benchmark's JSON: platform, CPUs, the other load measured by
    :class:`LoadMonitor` (``load``), oneDNN, TensorFlow's thread pools and GPUs."""
    import tensorflow as tf

    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), **load, "onednn": onednn_enabled(),
            "tensorflow_threads": {
                "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
            "gpus": [d.name for d in tf.config.list_logical_devices("GPU")]}


@contextlib.contextmanager
def engine_before():
    """The DeepLIFT engine before issue 18's speed work, for before/after figures in one run:
    the ordinary ``Conv2DBackpropInput`` gradient of convolutions (no
    ``rules.LINEAR_GRADIENTS``) and TensorFlow's argmax kernels for max pooling (no block
    kernel). Traces are memoised per model: trace a separate model inside this context."""
    from benchmark_rc.attribution import rules

    saved = dict(rules.LINEAR_GRADIENTS), rules._pool_blocks
    rules.LINEAR_GRADIENTS.clear()
    rules._pool_blocks = lambda op: None
    try:
        yield
    finally:
        rules.LINEAR_GRADIENTS.update(saved[0])
        rules._pool_blocks = saved[1]


def _deeplift_loop_references(x: np.ndarray, n_shuffles: int, seed: int) -> np.ndarray:
    """The references before ``benchmark_rc-dinuc-v2``: deeplift's ``dinuc_shuffle`` on each
    sequence in a Python loop, ``RandomState(seed)`` per sequence (timed for comparison)."""
    from deeplift.dinuc_shuffle import dinuc_shuffle

    out = np.empty((x.shape[0], n_shuffles, *x.shape[1:]), dtype=np.float32)
    for i, seq in enumerate(x):
        out[i] = dinuc_shuffle(np.ascontiguousarray(seq, dtype=np.float32), n_shuffles,
                               np.random.RandomState(seed))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-seqs", type=int, default=48, help="sequences for our DeepSHAP")
    parser.add_argument("--n-shap", type=int, default=6, help="sequences for shap (slow)")
    parser.add_argument("--n-ism", type=int, default=2, help="sequences for ISM")
    parser.add_argument("--n-refs", type=int, default=20)
    parser.add_argument("--first-rows", default="5,13",
                        help="sequences of the first DeepSHAP call and of the next one")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows per forward pass of our methods (default: the library's)")
    parser.add_argument("--forward-batches", default="16,32,64,128,256,512",
                        help="batch sizes tried for the forward speed; the best sets the bound")
    parser.add_argument("--old-batch-size", type=int, default=64,
                        help="the CPU default before issue 18 (the 'before' figures)")
    parser.add_argument("--sweep-batches", default="64,128,256,512,1024",
                        help="batch sizes of the DeepSHAP and ISM batch sweep ('' : none)")
    parser.add_argument("--forward-seqs", type=int, default=2048,
                        help="sequences per timing of the forward speed")
    parser.add_argument("--paired-rounds", type=int, default=5,
                        help="rounds of the paired fractions of the bounds")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "attribution.json"))
    args = parser.parse_args(argv)

    import keras
    import shap
    from shap.explainers._deep import deep_tf
    from tensorflow.python.eager import backprop, execute

    import benchmark_rc as brc
    from benchmark_rc.attribution import deepshap, dinuc_shuffle_references, ism
    from benchmark_rc.attribution.batching import default_batch_size, device_scope
    from benchmark_rc.attribution.references import SHUFFLE_ALGORITHM
    from benchmark_rc.attribution.targets import model_spec, target_function
    from benchmark_rc.fileio import atomic_write_text
    from benchmark_rc.training import versions

    monitor = LoadMonitor().start()
    keras.utils.set_random_seed(args.seed)
    model = brc.build_model("binary", "standard", seed=args.seed)
    # non-trivial BN statistics so that attributions are not degenerate
    rng = np.random.default_rng(args.seed)
    for w in model.weights:
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
        elif "moving_mean" in w.path:
            w.assign(rng.normal(0, 0.1, w.shape).astype("float32"))
    length = model.inputs[0].shape[1]
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (args.n_seqs, length))]
    refs = dinuc_shuffle_references(x, args.n_refs, seed=args.seed)

    # first calls on the fresh model, before anything below traces its DeepSHAP function
    def shap_call(rows: int) -> None:
        deepshap(model, x[:rows], n_shuffles=args.n_refs, seed=args.seed, output=0,
                 batch_size=args.batch_size)

    first_rows, next_rows = (min(int(v), args.n_seqs) for v in args.first_rows.split(","))
    first_call = {"rows": [first_rows, next_rows],
                  "first_call_s": _seconds(lambda: shap_call(first_rows)),
                  "next_call_other_rows_s": _seconds(lambda: shap_call(next_rows)),
                  "steady_call_s": _seconds(lambda: shap_call(next_rows))}

    refs_old = _rate(lambda: _deeplift_loop_references(x, args.n_refs, args.seed), args.n_seqs,
                     args.repeats)
    refs_new = _rate(lambda: dinuc_shuffle_references(x, args.n_refs, seed=args.seed),
                     args.n_seqs, args.repeats)

    spec = model_spec(model)
    forward = target_function(model, spec, 0, True)
    sizes = [int(v) for v in args.forward_batches.split(",")]
    pool = np.concatenate([x] * (max(sizes) // len(x) + 1))[:max(sizes)]

    def forward_run(size: int):
        """fn() running ~--forward-seqs sequences forward in batches of ``size``, and that
        number: a timing window of about the length of an attribution call, so that the bound
        is a sustained speed, not the best of many short windows."""
        batch, reps = pool[:size], max(1, args.forward_seqs // size)

        def run() -> None:
            with device_scope():
                for _ in range(reps):
                    forward(batch, {}).numpy()

        return run, size * reps

    by_size: dict[str, dict] = {}

    def forward_rate() -> dict[str, float]:
        """Best batched forward speed over the batch sizes (the strictest bound)."""
        best = {k: 0.0 for k in CLOCKS}
        for size in sizes:
            rate = _rate(*forward_run(size), args.repeats + 2)
            by_size.setdefault(str(size), []).append(rate)
            best = {k: max(best[k], rate[k]) for k in CLOCKS}
        return best

    fwd_before = forward_rate()
    ours_rate = _rate(lambda: deepshap(model, x, references=refs, output=0,
                                       batch_size=args.batch_size), args.n_seqs, args.repeats)
    end_to_end = _rate(lambda: deepshap(model, x, n_shuffles=args.n_refs, seed=args.seed, output=0,
                                        batch_size=args.batch_size), args.n_seqs, args.repeats)
    ism_rate = _rate(lambda: ism(model, x[:args.n_ism], output=0, batch_size=args.batch_size),
                     args.n_ism, max(1, args.repeats - 1))
    # before/after: the old engine on a copy of the model (its own traces), old batch size
    old_model = brc.build_model("binary", "standard", seed=args.seed)
    old_model.set_weights(model.get_weights())
    with engine_before():
        old_scores = deepshap(old_model, x, references=refs, output=0,
                              batch_size=args.old_batch_size)
        ours_before = _rate(lambda: deepshap(old_model, x, references=refs, output=0,
                                             batch_size=args.old_batch_size),
                            args.n_seqs, args.repeats)
    new_scores = deepshap(model, x, references=refs, output=0, batch_size=args.batch_size)
    engines_rel_diff = float(np.abs(new_scores - old_scores).max() / np.abs(old_scores).max())
    ism_before = _rate(lambda: ism(model, x[:args.n_ism], output=0,
                                  batch_size=args.old_batch_size),
                       args.n_ism, max(1, args.repeats - 1))
    sweep = {"deepshap_seq_per_s": {}, "ism_seq_per_s": {}}
    for size in [int(v) for v in args.sweep_batches.split(",") if v]:
        sweep["deepshap_seq_per_s"][str(size)] = _rate(
            lambda size=size: deepshap(model, x, references=refs, output=0, batch_size=size),
            args.n_seqs, args.repeats)
        sweep["ism_seq_per_s"][str(size)] = _rate(
            lambda size=size: ism(model, x[:args.n_ism], output=0, batch_size=size),
            args.n_ism, max(1, args.repeats - 1))
    fwd_after = forward_rate()
    fwd = {k: max(fwd_before[k], fwd_after[k]) for k in CLOCKS}

    # paired fractions: rounds of (forward at its best batch size, then each method), each
    # method's rate over the forward bound of its own round, median over rounds: drifts of the
    # machine's speed between measurements (several % here, idle or not) cancel
    best_size = max(sizes, key=lambda size: max(r["wall"] for r in by_size[str(size)]))
    fwd_run, fwd_items = forward_run(best_size)
    # (old_model's traces were made under engine_before above: memoised per model)
    paired_methods = {
        "deepshap": (lambda: deepshap(model, x, references=refs, output=0,
                                      batch_size=args.batch_size), args.n_seqs,
                     3 * args.n_refs),
        "deepshap_before": (lambda: deepshap(old_model, x, references=refs, output=0,
                                             batch_size=args.old_batch_size),
                            args.n_seqs, 3 * args.n_refs),
        "ism": (lambda: ism(model, x[:args.n_ism], output=0, batch_size=args.batch_size),
                args.n_ism, 3 * length),
        "ism_before": (lambda: ism(model, x[:args.n_ism], output=0,
                                   batch_size=args.old_batch_size), args.n_ism, 3 * length),
    }
    rounds: dict[str, list] = {name: [] for name in paired_methods}
    fwd_run()
    for fn, _, _ in paired_methods.values():
        fn()
    for _ in range(args.paired_rounds):
        bound_seconds = _seconds(fwd_run)
        for name, (fn, items, passes) in paired_methods.items():
            took = _seconds(fn)
            rounds[name].append({k: (items / took[k]) / (fwd_items / bound_seconds[k] / passes)
                                 for k in CLOCKS})

    def median(name: str) -> dict[str, float]:
        return {k: float(np.median([r[k] for r in rounds[name]])) for k in CLOCKS}

    def paired_speedup(new: str, old: str) -> dict[str, float]:
        return {k: float(np.median([a[k] / b[k] for a, b in zip(rounds[new], rounds[old],
                                                                   strict=True)]))
                for k in CLOCKS}

    paired = {"forward_batch_size": best_size, "forward_seqs": fwd_items,
              "rounds": args.paired_rounds,
              **{f"{name}_fraction_of_bound": median(name) for name in rounds},
              "deepshap_speedup_vs_before": paired_speedup("deepshap", "deepshap_before"),
              "ism_speedup_vs_before": paired_speedup("ism", "ism_before"),
              "all_rounds": rounds}

    # shap.DeepExplainer on the same logits model and references (callable per-sequence refs)
    logits = brc.logits_model(model)
    lookup = {x[i].tobytes(): refs[i] for i in range(args.n_shap)}
    saved = dict(deep_tf.op_handlers)
    try:
        deep_tf.op_handlers["SpaceToBatchND"] = deep_tf.passthrough
        deep_tf.op_handlers["BatchToSpaceND"] = deep_tf.passthrough
        explainer = shap.DeepExplainer(
            logits, lambda inputs: [lookup[np.asarray(inputs[0], np.float32).tobytes()]])
        shap_out: list = []

        def run_shap() -> None:
            shap_out.clear()
            values = explainer.shap_values(x[:args.n_shap], check_additivity=False)
            shap_out.append(np.asarray(values))

        shap_rate = _rate(run_shap, args.n_shap, 1)
    finally:
        execute.record_gradient = backprop.record_gradient
        deep_tf.op_handlers.clear()
        deep_tf.op_handlers.update(saved)
    theirs = shap_out[0].reshape(args.n_shap, length, 4).sum(-1)
    agreement = {}
    for rule in ("shap", "continuous"):
        ours = deepshap(model, x[:args.n_shap], references=refs[:args.n_shap], output=0,
                        maxpool_rule=rule).sum(-1)
        agreement[rule] = float(np.abs(ours - theirs).max() / np.abs(theirs).max())

    deepshap_bound = {k: v / (3 * args.n_refs) for k, v in fwd.items()}
    ism_bound = {k: v / (3 * length) for k, v in fwd.items()}
    load = monitor.stop()
    result = {
        "benchmark": "attribution",
        "machine": machine_info(load),
        "versions": versions(("tensorflow", "keras", "shap", "numpy", "benchmark_rc")),
        "params": {"arch": "binary", "strategy": "standard", "length": length,
                   "n_refs": args.n_refs, "n_seqs": args.n_seqs, "n_shap": args.n_shap,
                   "n_ism": args.n_ism,
                   "batch_size": args.batch_size or default_batch_size(),
                   "old_batch_size": args.old_batch_size,
                   "forward_batches": sizes,
                   "repeats": args.repeats, "seed": args.seed, "explained": "logit, task 0",
                   "maxpool_rule_timed": "continuous", "shuffle_algorithm": SHUFFLE_ALGORITHM},
        "note": "rates are best-of-repeats; 'cpu' rates use process CPU time (stable on a "
                "shared machine), 'wall' rates wall-clock time",
        "forward_seq_per_s": {"before": fwd_before, "after": fwd_after, "best": fwd,
                              "by_batch_size": by_size},
        "paired": paired,
        "deepshap": {
            "ours_seq_per_s": ours_rate, "shap_seq_per_s": shap_rate,
            "speedup_vs_shap": _ratio(ours_rate, shap_rate), "target_speedup": 3.0,
            "bound_seq_per_s": deepshap_bound,
            "fraction_of_bound": _ratio(ours_rate, deepshap_bound),
            "target_fraction": 0.85,
            "before": {"engine": "Conv2DBackpropInput + argmax max-pool kernels",
                       "batch_size": args.old_batch_size, "seq_per_s": ours_before,
                       "fraction_of_bound": _ratio(ours_before, deepshap_bound)},
            "speedup_vs_before": _ratio(ours_rate, ours_before),
            "max_rel_diff_scores_vs_before": engines_rel_diff,
            "max_rel_diff_position_sums_vs_shap": agreement["shap"],
            "max_rel_diff_position_sums_vs_shap_default_rule": agreement["continuous"],
            "end_to_end_seq_per_s": end_to_end,
            "references_fraction_of_end_to_end": _ratio(end_to_end, refs_new),
            "target_references_fraction": 0.1,
            "first_call": first_call,
        },
        "references": {
            "old_deeplift_loop_seq_per_s": refs_old, "new_seq_per_s": refs_new,
            "speedup": _ratio(refs_new, refs_old),
        },
        "ism": {"ours_seq_per_s": ism_rate, "bound_seq_per_s": ism_bound,
                "fraction_of_bound": _ratio(ism_rate, ism_bound), "target_fraction": 0.85,
                "before": {"batch_size": args.old_batch_size, "seq_per_s": ism_before,
                           "fraction_of_bound": _ratio(ism_before, ism_bound)}},
        "batch_sweep": {**sweep, "note": "DeepSHAP with references given, n_seqs sequences; "
                        "ISM n_ism sequences; fractions of the bounds above",
                        "deepshap_fraction_of_bound": {
                            k: _ratio(v, deepshap_bound)
                            for k, v in sweep["deepshap_seq_per_s"].items()},
                        "ism_fraction_of_bound": {
                            k: _ratio(v, ism_bound) for k, v in sweep["ism_seq_per_s"].items()}},
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    shown = {k: result[k] for k in ("machine", "forward_seq_per_s", "deepshap", "ism",
                                    "references", "batch_sweep", "paired")}
    shown["paired"] = {k: v for k, v in paired.items() if k != "all_rounds"}
    print(json.dumps(shown, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

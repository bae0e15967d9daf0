"""Benchmark: extract + one-hot + write windows from a genome FASTA (issue 6).

Times, in one run on the same synthetic genome and windows:

* ``ours``: the extraction loop of ``benchmark-rc prepare`` (data_prep.extract.write_windows:
  BED parsing, per-chromosome bytes, vectorised gather, byte-LUT one-hot, chunked HDF5 writes);
* ``loop``: the obvious implementation, one pyfaidx fetch + one-hot per window, chunked writes;
* ``tangermeme``: the peer's ``extract_loci`` (numba one-hot from a memory map of the FASTA),
  run by another Python (``--peer-python``, a throwaway venv with torch + tangermeme + h5py),
  followed by one h5py write of its (N, 4, L) int8 output; at n_jobs=1 (single thread, like
  ours) and at its default n_jobs=4.

The synthetic genome (random ACGT with N blocks, 60-column lines) and all outputs live in
``--workdir`` (default: benchmark_rc_extract in the system temp directory), never in the repository. Results (machine,
versions, parameters, seconds, windows/s and the ratios) go to bench/results/extract.json.

    python bench/extract.py [--genome-mb 250] [--n-windows 100000] [--peer-python PY]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _repo_relative(path: str) -> str:
    """``path`` relative to the repository when inside it, so results carry no machine paths."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else path

# The peer lives in a throwaway venv outside the repo (see the module docstring).
TMP = Path(tempfile.gettempdir())
DEFAULT_PEER = str(TMP / "tgm-venv" / "bin" / "python")

PEER_SCRIPT = r"""
import json, sys, time
import numpy, h5py, torch, tangermeme
from tangermeme.io import extract_loci
fasta, bed, out, window, n_jobs, warm = sys.argv[1:7]
window, n_jobs = int(window), int(n_jobs)
torch.set_num_threads(max(1, n_jobs))
extract_loci(loci=warm, sequences=fasta, in_window=window, n_jobs=n_jobs)  # numba JIT warm-up
t0 = time.perf_counter()
X = extract_loci(loci=bed, sequences=fasta, in_window=window, n_jobs=n_jobs, verbose=False)
t1 = time.perf_counter()
X = X.numpy() if hasattr(X, "numpy") else numpy.asarray(X)
with h5py.File(out, "w") as f:
    f.create_dataset("x", data=X, chunks=(256, *X.shape[1:]))
t2 = time.perf_counter()
print(json.dumps({"extract_s": t1 - t0, "write_s": t2 - t1, "total_s": t2 - t0,
                  "n": int(X.shape[0]), "shape": list(X.shape), "dtype": str(X.dtype),
                  "versions": {"tangermeme": tangermeme.__version__, "torch": torch.__version__,
                               "numpy": numpy.__version__, "h5py": h5py.__version__,
                               "python": sys.version.split()[0]}}))
"""


def make_genome(workdir: Path, genome_mb: float, n_chroms: int, seed: int) -> Path:
    """Random ACGT genome of about ``genome_mb`` Mb in ``n_chroms`` chromosomes (cached)."""
    path = workdir / "genome.fa"
    meta = workdir / "genome.json"
    spec = {"genome_mb": genome_mb, "n_chroms": n_chroms, "seed": seed, "line": 60}
    if path.exists() and meta.exists() and json.loads(meta.read_text()) == spec:
        return path
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", np.uint8)
    size = int(genome_mb * 1e6 / n_chroms)
    with open(path, "wb") as f:
        for c in range(n_chroms):
            seq = letters[rng.integers(0, 4, size)]
            for start in rng.integers(0, size - 50_000, 5):  # a few N blocks
                seq[start:start + int(rng.integers(1000, 50_000))] = ord("N")
            full = size // 60
            lines = np.full((full, 61), ord("\n"), np.uint8)
            lines[:, :60] = seq[:full * 60].reshape(full, 60)
            f.write(f">chr{c + 1}\n".encode())
            f.write(lines.tobytes())
            if size % 60:
                f.write(seq[full * 60:].tobytes() + b"\n")
    for index in (workdir / "genome.fa.fai",):
        index.unlink(missing_ok=True)
    meta.write_text(json.dumps(spec))
    return path


def make_windows(workdir: Path, genome: Path, n: int, window: int, seed: int) -> Path:
    """``n`` random windows (BED, unsorted like a score-sorted peak file)."""
    from data_prep.genome import Genome

    with Genome(genome) as g:
        sizes = g.sizes
    names = list(sizes)
    span = np.array([sizes[c] - window for c in names], np.float64)
    rng = np.random.default_rng(seed + 1)
    which = rng.choice(len(names), n, p=span / span.sum())
    starts = (rng.random(n) * span[which]).astype(np.int64)
    path = workdir / f"windows_{n}.bed"
    lines = [f"{names[w]}\t{s}\t{s + window}\n"
             for w, s in zip(which.tolist(), starts.tolist(), strict=True)]
    path.write_text("".join(lines))
    (workdir / "warmup.bed").write_text("".join(lines[:1000]))
    return path


def run_ours(genome: Path, bed: Path, out: Path, window: int) -> dict:
    """The extraction loop of `prepare`: read BED, windows, one-hot, chunked HDF5 writes."""
    from benchmark_rc.data.hdf5 import DatasetWriter
    from data_prep.extract import write_windows
    from data_prep.genome import Genome
    from data_prep.regions import centred_windows, read_regions

    t0 = time.perf_counter()
    with Genome(genome) as g:
        regions = read_regions(bed, "windows")
        windows = centred_windows(regions, window)
        split_of = dict.fromkeys(g.sizes, "train")

        def arrays(chrom, chunk, x, idx):
            return {"y": np.zeros((len(idx), 1), np.float32)}

        with DatasetWriter(out, "classification", {"bench": "extract"}) as writer:
            stats = write_windows(writer, g, windows, window, split_of, arrays, max_n=1.0,
                                  progress=False)
    return {"total_s": time.perf_counter() - t0, "n": sum(stats.written.values())}


def run_loop(genome: Path, bed: Path, out: Path, window: int, chunk: int = 4096) -> dict:
    """Baseline: a plain per-window Python loop (pyfaidx fetch, one-hot, chunked writes)."""
    import pyfaidx

    from benchmark_rc.data.hdf5 import DatasetWriter
    from benchmark_rc.sequence import one_hot_encode

    t0 = time.perf_counter()
    fasta = pyfaidx.Fasta(str(genome), as_raw=True)
    n = 0
    with DatasetWriter(out, "classification", {"bench": "extract-loop"}) as writer, \
            open(bed) as f:
        xs = []
        for line in f:
            chrom, start, end = line.split("\t")[:3]
            mid = (int(start) + int(end)) // 2
            xs.append(one_hot_encode(fasta[chrom][mid - window // 2:mid - window // 2 + window]))
            if len(xs) == chunk:
                writer.append("train", x=np.stack(xs), y=np.zeros((len(xs), 1), np.float32))
                n += len(xs)
                xs = []
        if xs:
            writer.append("train", x=np.stack(xs), y=np.zeros((len(xs), 1), np.float32))
            n += len(xs)
    fasta.close()
    return {"total_s": time.perf_counter() - t0, "n": n}


def run_peer(python: str, genome: Path, bed: Path, out: Path, window: int, n_jobs: int,
             warm: Path) -> dict:
    """tangermeme in its own venv; a call on ``warm`` first compiles its numba kernels."""
    result = subprocess.run([python, "-c", PEER_SCRIPT, str(genome), str(bed), str(out),
                             str(window), str(n_jobs), str(warm)], capture_output=True,
                            text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"peer failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_same_windows(ours: Path, peer: Path | None, loop: Path, bed: Path, k: int = 2000):
    """Rows of the three outputs agree (ours is sorted by position; map by coords)."""
    import h5py

    with h5py.File(ours, "r") as f:
        x = f["train/x"][()]
        key = {(c, int(s)): i for i, (c, s) in enumerate(
            zip(f["train/coords/chrom"].asstr()[()], f["train/coords/start"][()],
                strict=True))}
    with open(bed) as handle:
        lines = [handle.readline().split("\t") for _ in range(k)]
    rows = np.array([key[(c, int(s))] for c, s, _ in lines])
    with h5py.File(loop, "r") as f:
        same_loop = bool(np.array_equal(f["train/x"][:k], x[rows]))
    same_peer = None
    if peer is not None:
        with h5py.File(peer, "r") as f:
            px = f["x"][:k]
        same_peer = bool(np.array_equal(np.transpose(px, (0, 2, 1)).astype(np.uint8), x[rows]))
    return same_loop, same_peer


def machine() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--genome-mb", type=float, default=250.0)
    parser.add_argument("--n-chroms", type=int, default=10)
    parser.add_argument("--n-windows", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=str(TMP / "benchmark_rc_extract"))
    parser.add_argument("--peer-python", default=DEFAULT_PEER,
                        help="python of a venv with torch, tangermeme and h5py ('' to skip)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "extract.json"))
    args = parser.parse_args(argv)

    # import everything the timed functions use up front (benchmark_rc imports Keras)
    import h5py  # noqa: F401
    import pyfaidx  # noqa: F401

    import benchmark_rc.data.hdf5  # noqa: F401
    import data_prep.extract  # noqa: F401
    from benchmark_rc.training import versions

    load_start = os.getloadavg()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    genome = make_genome(workdir, args.genome_mb, args.n_chroms, args.seed)
    bed = make_windows(workdir, genome, args.n_windows, args.window, args.seed)
    setup_s = time.perf_counter() - t0
    peer = args.peer_python if args.peer_python and Path(args.peer_python).exists() else None

    warm = workdir / "warmup.bed"
    run_ours(genome, warm, workdir / "warmup.h5", args.window)  # same warm-up as the peer's
    methods = {"ours": lambda out: run_ours(genome, bed, out, args.window),
               "loop": lambda out: run_loop(genome, bed, out, args.window)}
    if peer:
        for jobs in (1, 4):
            methods[f"tangermeme_n_jobs{jobs}"] = (
                lambda out, jobs=jobs: run_peer(peer, genome, bed, out, args.window, jobs, warm))
    # repeats run round-robin over the methods so that load from other processes hits all alike
    runs: dict[str, list[dict]] = {name: [] for name in methods}
    for r in range(args.repeats):
        for name, fn in methods.items():
            if name == "loop" and r > 0:
                continue
            out = workdir / f"{name}.h5"
            out.unlink(missing_ok=True)
            runs[name].append(fn(out))
            print(f"{name} run {r}: {runs[name][-1]['total_s']:.2f} s", file=sys.stderr)
    results: dict[str, dict] = {}
    for name, rs in runs.items():
        median = statistics.median(run["total_s"] for run in rs)
        best = min(run["total_s"] for run in rs)
        results[name] = {"runs": rs, "median_total_s": median, "best_total_s": best,
                         "windows_per_s": rs[0]["n"] / median,
                         "windows_per_s_best": rs[0]["n"] / best, "n": rs[0]["n"]}
    same_loop, same_peer = check_same_windows(
        workdir / "ours.h5", workdir / "tangermeme_n_jobs1.h5" if peer else None,
        workdir / "loop.h5", bed)
    ours = results["ours"]["windows_per_s"]
    ours_best = results["ours"]["windows_per_s_best"]
    ratios = {f"ours_over_{k}": ours / v["windows_per_s"] for k, v in results.items()
              if k != "ours"}
    ratios.update({f"ours_over_{k}_best": ours_best / v["windows_per_s_best"]
                   for k, v in results.items() if k != "ours"})
    report = {
        "benchmark": "extract + one-hot + write windows to HDF5",
        "machine": {**machine(), "load_average_1_5_15_min": {
            "start": load_start, "end": os.getloadavg()}},
        "versions": versions(("numpy", "h5py", "pyfaidx"), system=False),
        "params": {**vars(args), "out": _repo_relative(args.out), "genome": str(genome), "bed": str(bed),
                   "genome_bases": int(args.genome_mb * 1e6), "setup_s": setup_s,
                   "peer_python": peer},
        "results": results,
        "ratios": ratios,
        "same_windows": {"loop": same_loop, "tangermeme": same_peer},
        "notes": "ours and loop are single-threaded; tangermeme n_jobs=4 uses threads (the "
                 "machine has os.cpu_count() cores). Times include reading the BED, the "
                 "genome bytes and writing HDF5; tangermeme writes its (N, 4, L) int8 output "
                 "with one h5py call. Repeats run round-robin; ratios from medians and from best "
                 "runs. The loop baseline runs once. Each method is warmed up on the "
                 "first 1000 windows first (numba JIT compilation for tangermeme).",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # temp paths are recorded as $TMPDIR/..., not as this machine's absolute paths
    text = json.dumps(report, indent=2, default=str).replace(tempfile.gettempdir(), "$TMPDIR")
    out.write_text(text + "\n")
    for name, res in results.items():
        print(f"{name:>22}: {res['windows_per_s']:>10.0f} windows/s median "
              f"({res['median_total_s']:.2f} s), best {res['windows_per_s_best']:.0f}")
    print(json.dumps(ratios, indent=2))
    print(f"same windows: loop {same_loop}, tangermeme {same_peer}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

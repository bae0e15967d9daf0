"""Ray backend of ``benchmark-rc sweep`` and ``benchmark-rc attribute`` (``--backend ray``).

Ray (the optional extra ``pip install 'benchmark_rc[ray]'``) runs locally with no server
(``ray.init()``) and unchanged on a cluster (``--address``). This module only decides *where*
work runs; *what* runs is the in-process code:

* sweep: the job plan is :func:`benchmark_rc.benchmark.pending_jobs`, each job is one Ray task
  that calls :func:`benchmark_rc.benchmark.run_job` (train or resume from the run's last epoch
  checkpoint, evaluate its rows: the rcaug job makes the post-hoc rows after its training) and
  returns the rows; the driver (:func:`benchmark_rc.benchmark.run_sweep`) appends them to
  results.csv as tasks end. Workers never touch results.csv. A simulated dataset is generated
  once, by one task that every job of that dataset waits for. A worker that dies (killed, out
  of memory, node lost) is retried by Ray (:data:`MAX_RETRIES`); the retry resumes from the
  checkpoint the dead attempt left.
* attribute: the sequences are cut into chunks; one Ray task per chunk attributes it with
  :func:`benchmark_rc.attribution.runner.attribute_chunk` and writes
  ``OUT/chunks/<key>/<start>-<stop>.npz`` atomically; the driver merges the chunks in order
  and scores them with :func:`benchmark_rc.attribution.runner.score_rows`, so the outputs are
  those of the in-process path. Chunks already written (an interrupted run with the same
  model, data and parameters) are not recomputed.

Each task reserves ``cpus_per_run`` CPUs (default 1) and ``gpus_per_run`` GPUs (default 1 where
the cluster has GPUs, else 0), and TensorFlow in the task uses ``cpus_per_run`` threads per
thread pool (``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS``, unless set by the user),
so concurrent runs do not oversubscribe the cores Ray gave them; ``TF_ENABLE_ONEDNN_OPTS``, when
set where the command runs, is passed on to every task (the kernels, and so the last bits of
the results, of the in-process run).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.errors import UserError

BACKENDS = ("local", "ray")
INSTALL_HINT = ("pip install 'benchmark_rc[ray]' (or pip install 'ray>=2.9,<3') in the "
                "environment of benchmark-rc")
# system failures (a dead worker process or node) of one task retried before its rows fail
MAX_RETRIES = 3
WORKER_FILE = "worker.json"  # in the job's training run directory: where its latest attempt ran
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def require_ray() -> Any:
    """The ``ray`` module, or a UserError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--backend ray needs the optional package ray: {INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[Any]:
    """Ray, connected: an already initialised Ray is used as it is (and left running);
    otherwise ``ray.init(address)`` (None: Ray's own resolution: ``RAY_ADDRESS``, else a
    cluster started on this machine with ``ray start``, else a new local instance), shut down
    on exit."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    import logging

    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    except ConnectionError as err:
        raise UserError(f"no Ray cluster at {address!r}: {err}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def task_resources(ray: Any, cpus_per_run: float, gpus_per_run: float | None
                   ) -> dict[str, Any]:
    """Ray options of one run's task: its CPUs and GPUs (GPUs default to 1 where the cluster
    has any), TensorFlow's thread counts, and the retries of system failures."""
    if cpus_per_run <= 0:
        raise UserError(f"--cpus-per-run must be > 0, got {cpus_per_run}")
    if gpus_per_run is None:
        gpus_per_run = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
    if gpus_per_run < 0:
        raise UserError(f"--gpus-per-run must be >= 0, got {gpus_per_run}")
    threads = str(max(1, int(cpus_per_run)))
    env = {name: os.environ.get(name, threads) for name in THREAD_VARIABLES}
    if "TF_ENABLE_ONEDNN_OPTS" in os.environ:  # the driver's kernel choice, on every node
        env["TF_ENABLE_ONEDNN_OPTS"] = os.environ["TF_ENABLE_ONEDNN_OPTS"]
    options = {"num_cpus": cpus_per_run, "num_gpus": gpus_per_run, "max_retries": MAX_RETRIES,
               "runtime_env": {"env_vars": env}}
    if gpus_per_run:
        options["max_calls"] = 1  # a fresh process per GPU run: CUDA binds a process's devices
    return options


def _cause(err: BaseException) -> BaseException:
    """The exception a task raised (a RayTaskError wraps it), else the Ray error itself."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, BaseException) else err


# ---------------------------------------------------------------------------------------------
# sweep


def _write_worker_record(out_dir: Path, run_id: str) -> None:
    """``runs/<run_id>/worker.json``: the host and process of the job's latest attempt."""
    from benchmark_rc.fileio import atomic_write_text

    record = {"host": socket.gethostname(), "pid": os.getpid(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        import ray

        record["node_id"] = ray.get_runtime_context().get_node_id()
    except Exception:  # outside a Ray worker
        pass
    run_dir = out_dir / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / WORKER_FILE, json.dumps(record, indent=2))


def _prepare_dataset(dataset: Mapping[str, Any], out_dir: str) -> str:
    """Ray task: the dataset's file, simulated into ``OUT/data`` when it does not exist yet."""
    from benchmark_rc.benchmark import dataset_path

    return dataset_path(dataset, Path(out_dir))


def _sweep_job(job: Any, out_dir: str, config: Mapping[str, Any], todo: Sequence[str],
               distribute: str | None, dataset_file: str) -> list[dict[str, Any]]:
    """Ray task: one training job and its rows (``dataset_file``: the dataset task's result,
    an argument so that Ray starts the job only once its dataset exists)."""
    from benchmark_rc.benchmark import run_job

    out = Path(out_dir)
    _write_worker_record(out, job.run_id(job.train_strategy))
    return run_job(job, out, config, todo, distribute=distribute, progress=False)


def _absolute_paths(job: Any) -> Any:
    """The job with its dataset's ``path`` made absolute (for workers in other directories)."""
    import dataclasses

    if not job.dataset.get("path"):
        return job
    return dataclasses.replace(job, dataset=dict(job.dataset,
                                                 path=str(Path(job.dataset["path"]).resolve())))


def run_jobs_on_ray(pending: Sequence[tuple[Any, list[str]]], out_dir: Path,
                    config: Mapping[str, Any], *, distribute: str | None = None,
                    progress: bool = False, address: str | None = None,
                    cpus_per_run: float = 1, gpus_per_run: float | None = None
                    ) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """The Ray backend of :func:`benchmark_rc.benchmark.run_sweep`: every pending job as a
    Ray task; yields (job, rows) in the order the tasks end. A task that fails for good (its
    retries spent, or an error outside :func:`run_job`'s own handling) yields ``failed`` rows.
    ``progress`` is accepted for the interface: workers never draw progress bars."""
    from benchmark_rc.benchmark import failed_rows

    del progress
    if not pending:
        return
    out_dir = Path(out_dir).resolve()  # workers need not share the driver's working directory
    with ray_session(address) as ray:
        options = task_resources(ray, cpus_per_run, gpus_per_run)
        prepare = ray.remote(_prepare_dataset)
        prepare_options = {"num_cpus": 1, "max_retries": MAX_RETRIES,
                           "runtime_env": options["runtime_env"]}
        train = ray.remote(_sweep_job)
        config_ref = ray.put(dict(config))
        datasets: dict[str, Any] = {}
        tasks: dict[Any, tuple[Any, list[str]]] = {}
        for job, todo in pending:
            name = job.dataset["name"]
            if name not in datasets:
                datasets[name] = prepare.options(**prepare_options, name=f"dataset {name}"
                                                 ).remote(_absolute_paths(job).dataset,
                                                          str(out_dir))
            ref = train.options(**options, name=job.run_id(job.train_strategy)).remote(
                _absolute_paths(job), str(out_dir), config_ref, list(todo), distribute,
                datasets[name])
            tasks[ref] = (job, list(todo))
        while tasks:
            ready, _ = ray.wait(list(tasks), num_returns=1)
            for ref in ready:
                job, todo = tasks.pop(ref)
                try:
                    rows = ray.get(ref)
                except ray.exceptions.RayError as err:
                    rows = failed_rows(job, todo, _cause(err))
                yield job, rows


# ---------------------------------------------------------------------------------------------
# attribution


def chunk_bounds(n: int, chunk_size: int) -> list[tuple[int, int]]:
    """[start, stop) of consecutive chunks of at most ``chunk_size`` of ``n`` sequences."""
    if chunk_size < 1:
        raise UserError(f"chunk size must be >= 1, got {chunk_size}")
    return [(start, min(n, start + chunk_size)) for start in range(0, n, chunk_size)]


def _file_identity(path: str | os.PathLike) -> dict[str, Any]:
    stat = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def chunk_key(model_path: str | os.PathLike, inputs: Mapping[str, np.ndarray],
              params: Mapping[str, Any]) -> str:
    """Name of the chunk folder: a hash of the model file (path, size, time), the inputs' bytes
    and every parameter, so chunks are reused only by the very same attribution."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"model": _file_identity(model_path), **params}, sort_keys=True,
                             default=str).encode())
    for name in sorted(inputs):
        array = np.ascontiguousarray(inputs[name])
        digest.update(f"{name}{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def _attribute_chunk(model_path: str, inputs: Mapping[str, np.ndarray], start: int, stop: int,
                     path: str, methods: Sequence[str], output: Any, task_name: str,
                     options: Mapping[str, Any]) -> str:
    """Ray task: attributions of sequences [start, stop), saved to ``path`` atomically."""
    from benchmark_rc.attribution.runner import attribute_chunk
    from benchmark_rc.fileio import atomic_path
    from benchmark_rc.registry import load_model
    from benchmark_rc.tasks import get_task

    model = load_model(model_path, compile=False)
    chunk = {k: np.asarray(v[start:stop]) for k, v in inputs.items()}
    results = attribute_chunk(model, chunk, methods, output, task=get_task(task_name),
                              **options)
    arrays = {}
    for method, (attr, hyp, attr_rc) in results.items():
        arrays[f"{method}/attr"] = attr
        for name, value in (("hyp", hyp), ("attr_rc", attr_rc)):
            if value is not None:
                arrays[f"{method}/{name}"] = value
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def _load_chunk(path: Path, methods: Sequence[str]) -> dict[str, tuple]:
    with np.load(path) as arrays:
        return {m: tuple(arrays[f"{m}/{k}"] if f"{m}/{k}" in arrays.files else None
                         for k in ("attr", "hyp", "attr_rc")) for m in methods}


def attribute_on_ray(model_path: str | os.PathLike, inputs: Mapping[str, np.ndarray],
                     motifs: Any, methods: Sequence[str], output: Any, *, task: Any,
                     work_dir: str | os.PathLike, chunk_size: int | None = None,
                     address: str | None = None, cpus_per_run: float = 1,
                     gpus_per_run: float | None = None, progress: bool = False,
                     **options: Any) -> tuple[dict, list]:
    """:func:`benchmark_rc.attribution.runner.attribute_and_score` with the sequences sharded
    over Ray tasks: the same (results, rows), from the model file ``model_path``.

    Chunks of ``chunk_size`` sequences (default: the sequences split evenly over the cluster's
    CPUs, or GPUs) go to ``work_dir/chunks/<key>/`` and are removed once merged.
    """
    from benchmark_rc.attribution.runner import score_rows

    del progress
    model_path = Path(model_path).resolve()
    if model_path.is_dir():  # a run directory, as load_model reads it
        model_path = model_path / "model.keras"
    if not model_path.is_file():
        from benchmark_rc.registry import load_model

        load_model(model_path)  # raises the UserError that names the file
    methods = list(methods)
    n = len(inputs["sequence"])
    params = {"methods": methods, "output": output, "task": task.name, **options}
    folder = Path(work_dir).resolve() / "chunks" / chunk_key(model_path, inputs, params)
    folder.mkdir(parents=True, exist_ok=True)
    with ray_session(address) as ray:
        resources = task_resources(ray, cpus_per_run, gpus_per_run)
        if chunk_size is None:
            kind, per = ("GPU", resources["num_gpus"]) if resources["num_gpus"] else \
                ("CPU", resources["num_cpus"])
            slots = max(1, int(ray.cluster_resources().get(kind, 1) // per))
            chunk_size = max(1, -(-n // slots))
        bounds = chunk_bounds(n, chunk_size)
        files = [folder / f"{start:09d}-{stop:09d}.npz" for start, stop in bounds]
        remote = ray.remote(_attribute_chunk)
        inputs_ref = ray.put({k: np.asarray(v) for k, v in inputs.items()})
        refs = [remote.options(**resources, name=f"attribute {start}-{stop}").remote(
                    str(model_path), inputs_ref, start, stop, str(path), methods, output,
                    task.name, options)
                for (start, stop), path in zip(bounds, files, strict=True) if not path.is_file()]
        try:
            ray.get(refs)
        except ray.exceptions.RayError as err:
            cause = _cause(err)
            if isinstance(cause, UserError):
                raise cause from None
            raise
    chunks = [_load_chunk(path, methods) for path in files]
    merged = {}
    for m in methods:
        parts = [c[m] for c in chunks]
        merged[m] = tuple(None if parts[0][i] is None else
                          np.concatenate([p[i] for p in parts]) for i in range(3))
    results, rows = score_rows(merged, inputs["sequence"], motifs, methods)
    for path in files:
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()
        folder.parent.rmdir()
    return results, rows

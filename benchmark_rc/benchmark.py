"""The benchmark runner: grid of datasets × strategies × seeds → ``OUT/results.csv``.

Layout of a sweep directory::

    OUT/results.csv          one row per finished (or failed) run, appended as runs end
    OUT/sweep.json           the resolved sweep configuration
    OUT/data/<name>.h5       generated datasets (simulated ones)
    OUT/runs/<run_id>/       model.keras, model.h5, config.json, history.csv, metrics.json

``run_id = <dataset>-<strategy>-s<seed>``, with the suffix ``-<compat>`` for runs of another
compat mode than the default (``-original``: the original Keras 2 / keras-genomics layers;
``-original-bn`` and ``-original-conv``: its ablations; the ``compat`` column says which), so one
OUT may hold every mode. Post-hoc strategies (posthoc, posthoc-prob) are not
trained: their rows are ``conjoin()`` of the rcaug model of the same dataset and seed, which is
trained once (even when rcaug itself is not in the grid) and reused for every post-hoc row.

Resuming: a rerun skips run_ids that already have an ``ok`` row; a run interrupted during
training resumes from its last epoch checkpoint; a run whose metrics.json exists but whose row
was not yet appended gets its row without recomputation. Failed runs get a ``failed`` row with
the error and the sweep goes on (they are retried by a rerun). Rows are appended with one
``write`` on an ``O_APPEND`` descriptor, so shards of a job array may share one results.csv.
A results.csv written before a column existed (e.g. ``compat``) stays readable
(:func:`read_results` fills the column: ``compat`` = "default", what those runs were) and is
rewritten with the current header when a sweep resumes into it (:func:`upgrade_results`). New
columns go at the end, so a row still appended by a process of the older version (shorter by
the new columns) lines up with the upgraded header and reads as its defaults, with csv and with
pandas alike.

Sharding: the grid is a list of *training jobs* (one per dataset × seed × trained strategy;
the rcaug job carries its post-hoc rows); ``--shard I/N`` runs jobs I, I+N, I+2N, ...

Backends: :func:`run_sweep` plans the jobs (:func:`pending_jobs`) and writes every row; a
backend only decides where :func:`run_job` runs. The default runs the jobs one after the other
in this process (:func:`run_jobs_in_process`); ``backend="ray"``
(:mod:`benchmark_rc.distributed`) runs each job as a Ray task and hands its rows back to this
process, the only one that writes results.csv.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark_rc.errors import UserError
from benchmark_rc.fileio import atomic_write_text

# New columns are appended at the end (see the module docstring): compat came last.
RESULT_COLUMNS = ("run_id", "dataset", "arch", "strategy", "paper_label", "seed", "auroc",
                  "auprc", "jsd", "pearson", "spearman", "rc_divergence", "train_seconds",
                  "epochs", "best_epoch", "status", "error", "compat")
# value of a column in rows written before the column existed (all runs were default then)
_COLUMN_DEFAULTS = {"compat": "default"}
METRIC_COLUMNS = ("auroc", "auprc", "jsd", "pearson", "spearman", "rc_divergence")


@dataclass
class Job:
    """One training run and the result rows that derive from it."""

    dataset: dict[str, Any]
    seed: int
    train_strategy: str
    rows: list[str] = field(default_factory=list)  # strategies whose rows this job produces
    compat: str = "default"  # the layers: a mode of architectures.kit.COMPAT (see dataset_compat)

    def run_id(self, strategy: str) -> str:
        suffix = "" if self.compat == "default" else f"-{self.compat}"
        return f"{self.dataset['name']}-{strategy}-s{self.seed}{suffix}"


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML (or JSON) sweep config file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such sweep config file")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(config, dict):
        raise UserError(f"{path}: expected a mapping with datasets, strategies, seeds")
    return config


def resolve_config(config: Mapping[str, Any], data_paths: Mapping[str, str] | None = None
                   ) -> dict[str, Any]:
    """Check a sweep config, expand ``strategies: all`` and attach ``--data NAME=FILE`` paths.

    Datasets that have neither a path nor a simulation are dropped when other datasets remain
    (a message says so); if none remain a UserError explains how to pass files.
    """
    from benchmark_rc.registry import list_architectures, list_strategies

    config = dict(config)
    data_paths = dict(data_paths or {})
    for key in ("datasets", "strategies", "seeds"):
        if key not in config:
            raise UserError(f"sweep config: missing key {key!r} (datasets, strategies, seeds)")
    strategies = config["strategies"]
    if strategies == "all":
        strategies = list_strategies()
    unknown = [s for s in strategies if s not in list_strategies()]
    if unknown:
        raise UserError(f"sweep config: unknown strategies {unknown}; known: {list_strategies()}")
    config["strategies"] = list(strategies)
    config["seeds"] = [int(s) for s in config["seeds"]]
    names = [d.get("name") for d in config["datasets"]]
    extra = set(data_paths) - set(names)
    if extra:
        raise UserError(f"--data names {sorted(extra)} are not datasets of this sweep {names}")
    datasets, dropped = [], []
    for d in config["datasets"]:
        d = dict(d)
        if "name" not in d or "arch" not in d:
            raise UserError(f"sweep config: dataset entry {d} needs 'name' and 'arch'")
        if d["arch"] not in list_architectures():
            raise UserError(f"dataset {d['name']}: unknown arch {d['arch']!r}")
        if d["name"] in data_paths:
            d["path"] = data_paths[d["name"]]
        if not d.get("path") and not d.get("simulate"):
            dropped.append(d["name"])
            continue
        datasets.append(d)
    if not datasets:
        raise UserError(f"no dataset files: pass --data NAME=FILE for {dropped} (files made "
                        "by `benchmark-rc prepare`)")
    if dropped:
        print(f"note: no file given for {dropped}; running {[d['name'] for d in datasets]}")
    config["datasets"] = datasets
    config.setdefault("train", {})
    config.setdefault("evaluate", {})
    _check_keys("train", config["train"], _TRAIN_KEYS)
    _check_keys("evaluate", config["evaluate"], ("split", "batch_size", "max_rows"))
    for d in datasets:
        _check_keys(f"datasets[{d['name']}].train", d.get("train", {}), _TRAIN_KEYS)
        dataset_compat(d, config)  # a bad or conflicting compat fails here, not mid-sweep
    return config


_TRAIN_KEYS = ("protocol", "batch_size", "epochs", "steps_per_epoch", "patience", "select",
               "upsample", "jitter", "eval_batch_size", "max_valid", "compat")


def dataset_compat(dataset: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """The compat mode of a dataset's runs: its ``train.compat``, else its ``hparams.compat``
    (the two must agree when both are given), else the top-level ``train.compat``, else
    "default"."""
    from benchmark_rc.architectures.kit import check_compat

    try:
        top = check_compat(dict(config.get("train") or {}).get("compat"))
    except UserError as err:
        raise UserError(f"sweep config train: {err}") from None
    try:
        local = {k: check_compat(dataset[k]["compat"]) for k in ("train", "hparams")
                 if "compat" in (dataset.get(k) or {})}
    except UserError as err:
        raise UserError(f"dataset {dataset.get('name')}: {err}") from None
    if len(set(local.values())) > 1:
        raise UserError(f"dataset {dataset.get('name')}: train.compat {local['train']!r} and "
                        f"hparams.compat {local['hparams']!r} differ; give compat once")
    return next(iter(local.values())) if local else top


def override_compat(config: Mapping[str, Any], compat: str) -> dict[str, Any]:
    """A copy of a sweep config whose every run uses ``compat`` (``sweep --compat``): the
    top-level ``train.compat`` is set and the datasets' own compat keys are dropped."""
    import copy

    config = copy.deepcopy(dict(config))
    config["train"] = dict(config.get("train") or {}, compat=compat)
    for d in config.get("datasets") or []:
        for key in ("train", "hparams"):
            if isinstance(d.get(key), dict):
                d[key].pop("compat", None)
    return config


def _check_keys(where: str, given: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise UserError(f"sweep config {where}: unknown keys {unknown}; allowed: {list(allowed)}")


def make_jobs(config: Mapping[str, Any]) -> list[Job]:
    """The training jobs of a resolved config, in a stable order.

    One job per dataset × seed × trained strategy; a strategy evaluated from another's trained
    run (:attr:`Strategy.trained_as`, e.g. post-hoc conjoining of the rcaug model) rides on
    that job, which is added (first) when its own strategy is not in the grid.
    """
    from benchmark_rc.strategies import get_strategy

    wanted = config["strategies"]
    source = {s: get_strategy(s).trained_as for s in wanted}
    trained = [s for s in wanted if source[s] == s]
    extra = [t for t in dict.fromkeys(source.values()) if t not in trained]
    trained = extra + trained
    jobs = []
    for dataset in config["datasets"]:
        compat = dataset_compat(dataset, config)
        for seed in config["seeds"]:
            for strategy in trained:
                rows = [s for s in wanted if s == strategy]
                rows += [s for s in wanted if s != strategy and source[s] == strategy]
                jobs.append(Job(dataset, seed, strategy, rows, compat))
    return jobs


def parse_shard(text: str | None) -> tuple[int, int]:
    """'I/N' -> (I, N) with 0 <= I < N."""
    if not text:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UserError(f"--shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise UserError(f"--shard I/N needs 0 <= I < N, got {text!r}")
    return i, n


def read_results(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a results.csv (empty list when absent).

    Rows written before a column of :data:`RESULT_COLUMNS` existed (an older header, or a row
    appended by an older process after the header was upgraded) get that column too:
    ``compat`` = "default" (the only mode there was), others "".
    """
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for column in RESULT_COLUMNS:
            if row.get(column) is None or (column in _COLUMN_DEFAULTS and not row[column]):
                row[column] = _COLUMN_DEFAULTS.get(column, "")
    return rows


def _header(path: Path) -> list[str] | None:
    """The header row of a CSV file (None when the file is empty)."""
    with open(path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f), None)


def _line(values: Sequence[Any]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue().encode("utf-8")


def upgrade_results(path: str | os.PathLike) -> bool:
    """Rewrite a results.csv whose header lacks columns of :data:`RESULT_COLUMNS` (written by
    an older version) with the current header, its rows filled as :func:`read_results` fills
    them. Returns True when the file was rewritten. A header with columns this version does not
    know raises UserError (nothing is dropped). The rewrite is atomic (a new file renamed over
    the old one); a sweep does it once when it starts, before any of its own rows are appended.
    A row that another process appends to the old file between the read and the rename is lost
    (a window of milliseconds; only when processes of two versions share one OUT).
    """
    path = Path(path)
    if not path.is_file():
        return False
    header = _header(path)
    if not header or header == list(RESULT_COLUMNS):
        return False
    unknown = [c for c in header if c not in RESULT_COLUMNS]
    if unknown:
        raise UserError(f"{path}: columns {unknown} are not results.csv columns of this version "
                        f"({list(RESULT_COLUMNS)}); was it written by a newer benchmark_rc?")
    lines = [_line(RESULT_COLUMNS)]
    lines += [_line([row[c] for c in RESULT_COLUMNS]) for row in read_results(path)]
    atomic_write_text(path, b"".join(lines).decode("utf-8"))
    return True


def append_row(path: str | os.PathLike, row: Mapping[str, Any]) -> None:
    """Append one row (header first if the file is new) with single O_APPEND writes.

    The file's header must be :data:`RESULT_COLUMNS`; an older file is upgraded first
    (:func:`upgrade_results`), so every row lines up with the header.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, _line(RESULT_COLUMNS))
        finally:
            os.close(fd)
    except FileExistsError:
        upgrade_results(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, _line([_cell(row.get(c)) for c in RESULT_COLUMNS]))
    finally:
        os.close(fd)


def _cell(value: Any) -> Any:
    import numpy as np

    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        return repr(float(value))  # shortest exact round-trip text (never "np.float64(...)")
    if isinstance(value, np.integer):
        return int(value)
    return value


def dataset_path(dataset: Mapping[str, Any], out_dir: Path) -> str:
    """The dataset's file, generating simulated ones into ``out_dir/data`` on first use."""
    if dataset.get("path"):
        path = Path(dataset["path"])
        if not path.is_file():
            raise UserError(f"dataset {dataset['name']}: {path} does not exist")
        return str(path)
    path = out_dir / "data" / f"{dataset['name']}.h5"
    if path.is_file():
        return str(path)
    spec = dict(dataset["simulate"])
    kind = spec.pop("kind", "paper")
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"simulating dataset {dataset['name']} ({kind}) -> {path}", flush=True)
    from benchmark_rc.data.simulations import simulate

    try:
        simulate(kind, path, **spec)
    except UserError as err:
        raise UserError(f"dataset {dataset['name']}: {err}") from None
    return str(path)


def _train_config(job: Job, path: str, config: Mapping[str, Any], distribute: str | None):
    from benchmark_rc.training import TrainConfig

    overrides = dict(config.get("train", {}))
    overrides.update(job.dataset.get("train", {}))
    overrides.pop("compat", None)  # resolved into job.compat (dataset_compat)
    hparams = dict(job.dataset.get("hparams", {}))
    hparams.pop("compat", None)
    return TrainConfig(data=path, arch=job.dataset["arch"], strategy=job.train_strategy,
                       seed=job.seed, hparams=hparams, distribute=distribute,
                       compat=job.compat, **overrides)


def _base_row(job: Job, strategy: str) -> dict[str, Any]:
    from benchmark_rc.strategies import get_strategy

    return {"run_id": job.run_id(strategy), "dataset": job.dataset["name"],
            "arch": job.dataset["arch"], "strategy": strategy,
            "paper_label": get_strategy(strategy).paper_label, "compat": job.compat,
            "seed": job.seed}


def run_job(job: Job, out_dir: Path, config: Mapping[str, Any], todo: Sequence[str], *,
            distribute: str | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Train (or reuse) the job's model and evaluate the rows in ``todo``; one row each.

    An error in training fails every row of the job; an error in one row's evaluation fails
    that row. KeyboardInterrupt propagates (the checkpoint allows a resume).
    """
    from benchmark_rc.architectures import get_architecture
    from benchmark_rc.registry import load_model
    from benchmark_rc.strategies import get_strategy
    from benchmark_rc.training import evaluate_model, save_model_files, train_run

    rows = []
    try:
        path = dataset_path(job.dataset, out_dir)
        train_cfg = _train_config(job, path, config, distribute)
        train_dir = out_dir / "runs" / job.run_id(job.train_strategy)
        summary = train_run(train_cfg, train_dir, progress=progress,
                            desc=job.run_id(job.train_strategy))
    except Exception as err:  # record and go on
        return failed_rows(job, todo, err)
    eval_cfg = dict(config.get("evaluate", {}))
    for strategy in todo:
        row = _base_row(job, strategy)
        row.update(train_seconds=summary["train_seconds"], epochs=summary["epochs_run"],
                   best_epoch=summary["best_epoch"])
        run_dir = out_dir / "runs" / row["run_id"]
        try:
            metrics_file = run_dir / "metrics.json"
            if metrics_file.is_file():
                scores = json.loads(metrics_file.read_text())
            else:
                model = load_model(train_dir / "model.keras", compile=False)  # only predicted
                derived = get_strategy(strategy)
                if derived.trained_as != strategy:  # evaluated from another strategy's run
                    model = derived.after_training(model, get_architecture(job.dataset["arch"]),
                                                   summary["model_hparams"])
                    run_dir.mkdir(parents=True, exist_ok=True)
                    save_model_files(model, run_dir)
                    atomic_write_text(run_dir / "config.json", json.dumps(
                        {"status": "finished", "posthoc_of": job.run_id(job.train_strategy),
                         "conjoin_mode": derived.posthoc, "base_config": summary}, indent=2))
                scores = evaluate_model(model, path, eval_cfg.get("split", "test"),
                                        batch_size=eval_cfg.get("batch_size"),
                                        max_rows=eval_cfg.get("max_rows"))
                atomic_write_text(metrics_file, json.dumps(scores, indent=2))
            row.update({k: scores.get(k) for k in METRIC_COLUMNS})
            row["status"] = "ok"
        except Exception as err:
            row.update(status="failed", error=_error_text(err))
        rows.append(row)
    return rows


def failed_rows(job: Job, todo: Sequence[str], err: BaseException) -> list[dict[str, Any]]:
    """A ``failed`` row for each strategy of ``todo`` (the job's training failed)."""
    error = _error_text(err)
    return [dict(_base_row(job, s), status="failed", error=error) for s in todo]


# results.csv is committed and shared: code locations in its errors are named relative to the
# directory holding the package (the repository in a checkout), never by this machine's path
_CODE_ROOT = Path(__file__).resolve().parent.parent


def _code_location(filename: str) -> str:
    """``filename`` relative to :data:`_CODE_ROOT`, or its last three path parts outside it."""
    path = Path(filename).resolve()
    try:
        return path.relative_to(_CODE_ROOT).as_posix()
    except ValueError:
        return "/".join(path.parts[-3:])


def _error_text(err: BaseException) -> str:
    last = traceback.extract_tb(err.__traceback__)[-1:] if err.__traceback__ else []
    where = f" (at {_code_location(last[0].filename)}:{last[0].lineno})" if last else ""
    return f"{type(err).__name__}: {err}{where}".replace("\n", " ")[:1000]


def pending_jobs(jobs: Sequence[Job], done: set[str]) -> list[tuple[Job, list[str]]]:
    """The jobs with rows still to make, each with those rows (strategies whose run_id has no
    ``ok`` row in ``done``), in plan order."""
    pending = []
    for job in jobs:
        todo = [s for s in job.rows if job.run_id(s) not in done]
        if todo:
            pending.append((job, todo))
    return pending


def run_jobs_in_process(pending: Sequence[tuple[Job, list[str]]], out_dir: Path,
                        config: Mapping[str, Any], *, distribute: str | None = None,
                        progress: bool = False) -> Iterator[tuple[Job, list[dict[str, Any]]]]:
    """The default backend: each job in this process, one after the other, in plan order;
    yields (job, its rows) as each ends."""
    for job, todo in pending:
        yield job, run_job(job, out_dir, config, todo, distribute=distribute, progress=progress)


def run_sweep(config: Mapping[str, Any], out_dir: str | os.PathLike, *,
              shard: tuple[int, int] = (0, 1), distribute: str | None = None,
              progress: bool = True, data_paths: Mapping[str, str] | None = None,
              backend: str = "local", backend_options: Mapping[str, Any] | None = None
              ) -> dict[str, Any]:
    """Run (this shard of) a sweep into ``out_dir``; returns counts and the results path.

    ``backend``: "local" (default; every job in this process) or "ray" (each job a Ray task,
    :func:`benchmark_rc.distributed.run_jobs_on_ray`, which takes ``backend_options`` such as
    ``address``, ``cpus_per_run``, ``gpus_per_run``). Either way this process alone appends
    the rows to results.csv, as each job's rows arrive.
    """
    if backend == "local":
        if backend_options:
            raise UserError(f"backend options {sorted(backend_options)} need --backend ray")
        execute = run_jobs_in_process
    elif backend == "ray":
        from benchmark_rc.distributed import run_jobs_on_ray

        def execute(pending, out_dir, config, **kwargs):
            return run_jobs_on_ray(pending, out_dir, config, **kwargs, **(backend_options or {}))
    else:
        raise UserError(f"unknown backend {backend!r}; choose local or ray")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = resolve_config(config, data_paths)
    atomic_write_text(out_dir / "sweep.json", json.dumps(config, indent=2, default=str))
    results = out_dir / "results.csv"
    if upgrade_results(results):
        print(f"note: {results} rewritten with the current columns {list(RESULT_COLUMNS)}")
    jobs = make_jobs(config)
    index, count = shard
    mine = jobs[index::count]
    done = {r["run_id"] for r in read_results(results) if r.get("status") == "ok"}
    pending = pending_jobs(mine, done)
    total_rows = sum(len(j.rows) for j in mine)
    counts = {"ok": 0, "failed": 0, "skipped": total_rows - sum(len(t) for _, t in pending)}
    started = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_rows, desc="runs", unit="run", initial=counts["skipped"])
    try:
        for _job, rows in execute(pending, out_dir, config, distribute=distribute,
                                  progress=progress):
            for row in rows:
                append_row(results, row)
                counts[row["status"]] = counts.get(row["status"], 0) + 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"{row['run_id']}: {row['status']}")
                if row["status"] != "ok":
                    print(f"run {row['run_id']} failed: {row['error']}", flush=True)
    finally:
        if bar is not None:
            bar.close()
    return {"results": str(results), "jobs": len(mine), "seconds": time.perf_counter() - started,
            **counts}


def summary_table(results_csv: str | os.PathLike) -> str:
    """A plain-text table of the ok rows: mean of each metric per dataset × strategy × compat."""
    import pandas as pd

    rows = [r for r in read_results(results_csv) if r.get("status") == "ok"]
    if not rows:
        return "(no finished runs)"
    frame = pd.DataFrame(rows).drop_duplicates("run_id", keep="last")
    cols = [c for c in METRIC_COLUMNS if frame[c].replace("", float("nan")).notna().any()]
    for c in (*cols, "train_seconds"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    cols = [c for c in cols if frame[c].notna().any()]
    keys = ["dataset", "strategy", "paper_label", "compat"]
    table = frame.groupby(keys, sort=False)[[*cols, "train_seconds"]].mean()
    table.insert(0, "seeds", frame.groupby(keys, sort=False).size())
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.float_format", "{:.4g}".format):
        return table.to_string()

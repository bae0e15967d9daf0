"""Attribution of a dataset split with a saved model, ground-truth scoring, and the method x
strategy table of a trained sweep (used by ``benchmark-rc attribute``)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.attribution.methods import AttributionMethod, get_method, method_options
from benchmark_rc.errors import UserError
from benchmark_rc.sequence import reverse_complement
from benchmark_rc.tasks import Task, get_task


def load_inputs(path: str | os.PathLike, split: str, max_seqs: int | None = None,
                motifs_only: bool = False, output: Any = None
                ) -> tuple[dict[str, np.ndarray], Any, dict]:
    """Model inputs of a split (profile windows centre-cropped by the jitter margin), its motif
    table (or None; coordinates shifted to the crop, rows renumbered; restricted to the
    explained task's motif by :func:`task_motifs`) and the file attributes.
    ``motifs_only`` keeps only sequences with at least one (task) motif instance."""
    from benchmark_rc.data.hdf5 import read_attrs, read_split

    attrs = read_attrs(path)
    task = get_task(attrs.get("task"), f"{path}: attribute task")
    data = read_split(path, split, keys=tuple(task.model_inputs.values()))
    try:
        from benchmark_rc.data.hdf5 import read_motifs

        motifs = read_motifs(path, split)
    except (KeyError, UserError, ValueError, OSError):
        motifs = None
    margin = int(attrs.get("jitter_margin", 0) or 0)
    inputs: dict[str, np.ndarray] = {}
    for name, array in task.model_inputs.items():
        values = np.asarray(data[array])
        if task.arrays[array].windowed:  # centre crop of windows widened by the jitter margin
            values = values[:, margin:values.shape[1] - margin]
        inputs[name] = values
    n = inputs["sequence"].shape[0]
    rows = np.arange(n)
    if motifs is not None:
        motifs = task_motifs(motifs, attrs, output).copy()
        motifs["start"] -= margin
        motifs["end"] -= margin
        if motifs_only:
            rows = np.unique(np.asarray(motifs["seq"]))
    if max_seqs is not None:
        rows = rows[:max_seqs]
    inputs = {k: v[rows] for k, v in inputs.items()}
    if motifs is not None:
        remap = -np.ones(n, dtype=np.int64)
        remap[rows] = np.arange(len(rows))
        motifs = motifs[remap[np.asarray(motifs["seq"])] >= 0].copy()
        motifs["seq"] = remap[np.asarray(motifs["seq"])]
    return inputs, motifs, attrs


def task_motifs(motifs: Any, attrs: dict, output: Any) -> Any:
    """Restrict the ground truth to the explained task's motif when the dataset labels its tasks
    by motif name (e.g. the paper simulation: task k = motif k); otherwise keep every motif."""
    if motifs is None or not isinstance(output, int):
        return motifs
    params = attrs.get("params") or {}
    labels = params.get("labels") if isinstance(params, dict) else None
    if labels and output < len(labels) and labels[output] in set(motifs["name"]):
        return motifs[motifs["name"] == labels[output]]
    return motifs


def reference_metadata(methods: Sequence[str | AttributionMethod], n_shuffles: int,
                       seed: int) -> dict[str, Any]:
    """How the references of ``methods`` are made, for the metadata of their outputs: the number
    of shuffles, the seed and the shuffle's version (:data:`SHUFFLE_ALGORITHM`; the same seed
    gives other references under another version). Empty when no method takes references."""
    from benchmark_rc.attribution.references import SHUFFLE_ALGORITHM

    if not any(get_method(m).needs_references for m in methods):
        return {}
    return {"n_shuffles": n_shuffles, "seed": seed, "shuffle_algorithm": SHUFFLE_ALGORITHM}


def dinuc_references(seq: np.ndarray, n_shuffles: int, seed: int) -> np.ndarray:
    from benchmark_rc.attribution import dinuc_shuffle_references

    return dinuc_shuffle_references(seq, n_shuffles, seed)


def attribute_and_score(model: Any, inputs: dict[str, np.ndarray], motifs: Any,
                        methods: Sequence[str | AttributionMethod], output: Any, *, task: Task,
                        n_shuffles: int = 20, seed: int = 0, rc: bool = True,
                        batch_size: int | None = None, progress: bool = False,
                        **options: Any) -> tuple[dict, list]:
    """Attributions of every method (names or entries of the registry,
    :data:`benchmark_rc.attribution.METHODS`) and score rows (one per method and convention,
    with the RC-consistency when ``rc``).

    ``options`` (e.g. logits, steps, layer, variant, maxpool_rule) go to the methods that take
    them; one no registered method takes is an error. Methods that need references share
    ``n_shuffles`` dinucleotide shuffles of each sequence (``seed``).

    Returns (results, rows): results[name] = (actual (N, L, 4), hypothetical (N, L, 4) or None).
    A method with hypothetical scores is run once, hypothetically, and its actual scores are
    hypothetical x one-hot (:meth:`AttributionMethod.attribute`).

    The two steps, :func:`attribute_chunk` then :func:`score_rows`, may run apart: every
    sequence's attributions depend on that sequence alone (its references are seeded by its
    content), so chunks attributed elsewhere (``attribute --backend ray``) and concatenated
    score as the whole would.
    """
    attributions = attribute_chunk(model, inputs, methods, output, task=task,
                                   n_shuffles=n_shuffles, seed=seed, rc=rc,
                                   batch_size=batch_size, progress=progress, **options)
    return score_rows(attributions, inputs["sequence"], motifs, methods)


def attribute_chunk(model: Any, inputs: dict[str, np.ndarray],
                    methods: Sequence[str | AttributionMethod], output: Any, *, task: Task,
                    n_shuffles: int = 20, seed: int = 0, rc: bool = True,
                    batch_size: int | None = None, progress: bool = False,
                    **options: Any) -> dict[str, tuple]:
    """The attributions of :func:`attribute_and_score`, unscored: name -> (actual, hypothetical
    or None, attributions of the RC inputs (with RC references) or None when not ``rc``)."""
    chosen = [get_method(m) for m in methods]
    unknown = sorted(set(options) - method_options())
    if unknown:
        raise UserError(f"no attribution method takes the option(s) {unknown}")
    seq = inputs["sequence"]
    feed = inputs if len(inputs) > 1 else seq
    refs = None
    if any(m.needs_references for m in chosen):
        refs = dinuc_references(seq, n_shuffles, seed)
    results = {}
    for method in chosen:
        kwargs = {"output": output, "batch_size": batch_size, "progress": progress,
                  **method.accepted(options)}
        method_refs = refs if method.needs_references else None
        attr, hyp = method.attribute(model, feed, seq, references=method_refs, **kwargs)
        attr_rc = None
        if rc:
            rc_in = task.rc_inputs(inputs)
            attr_rc = method(model, rc_in if len(inputs) > 1 else rc_in["sequence"],
                             references=None if method_refs is None else
                             reverse_complement(method_refs), **kwargs)
        results[method.name] = (attr, hyp, attr_rc)
    return results


def score_rows(attributions: dict[str, tuple], seq: np.ndarray, motifs: Any,
               methods: Sequence[str | AttributionMethod]) -> tuple[dict, list]:
    """(results, rows) of :func:`attribute_and_score` from :func:`attribute_chunk`'s output
    (of all the sequences ``seq``)."""
    from benchmark_rc.attribution import rc_consistency
    from benchmark_rc.attribution.scoring import score_attributions

    results, rows = {}, []
    for method in (get_method(m) for m in methods):
        attr, hyp, attr_rc = attributions[method.name]
        results[method.name] = (attr, hyp)
        row_base = {"method": method.name}
        if attr_rc is not None:
            row_base["rc_consistency"] = rc_consistency(attr, attr_rc)
        if motifs is not None and len(motifs):
            for convention in ("prakash", "koo"):
                rows.append({**row_base, **score_attributions(attr, seq, motifs, convention,
                                                                method=method)})
        else:
            rows.append(row_base)
    return results, rows


def parse_output(text: str | None, attrs: dict) -> Any:
    """CLI --output: an integer task index or a head name (default: the dataset task's
    attribution target: 0, or "profile")."""
    if text is None:
        return get_task(attrs.get("task"), "dataset attribute task").default_output
    try:
        return int(text)
    except ValueError:
        return text


def score_sweep(sweep_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                methods: Sequence[str], data: str | None, split: str, max_seqs: int,
                output: str | None, progress: bool = True, attribute: Any = None,
                **kwargs: Any) -> Path:
    """Method x strategy table of a trained sweep: ``out_dir/attribution_scores.csv`` (one row
    per run, method and convention) and ``out_dir/attribution_table.md`` (mean over seeds).

    ``attribute(model_file, inputs, motifs, methods, output, task=, progress=, **kwargs)``
    replaces :func:`attribute_and_score` of the loaded model (e.g.
    :func:`benchmark_rc.distributed.attribute_on_ray`)."""
    import pandas as pd

    from benchmark_rc.fileio import atomic_write_text

    sweep_dir = Path(sweep_dir)
    frame = finished_runs(sweep_dir)
    rows: list[dict] = []
    for _, run in frame.iterrows():
        run_dir = sweep_dir / "runs" / run["run_id"]
        model_file = run_dir / "model.keras"
        if not model_file.is_file():
            raise UserError(f"{run_dir}: model.keras missing for run {run['run_id']}")
        path = Path(data) if data else _sweep_dataset(sweep_dir, str(run.get("dataset")))
        if not path.is_file():
            raise UserError(f"run {run['run_id']}: dataset {path} not found; pass --data")
        from benchmark_rc.data.hdf5 import read_attrs
        from benchmark_rc.registry import load_model

        out = parse_output(output, read_attrs(path))
        inputs, motifs, attrs = load_inputs(path, split, max_seqs, motifs_only=True, output=out)
        if attribute is None:
            model = load_model(model_file, compile=False)
            _, run_rows = attribute_and_score(model, inputs, motifs, methods, out,
                                              task=get_task(attrs["task"]), progress=progress,
                                              **kwargs)
        else:
            _, run_rows = attribute(model_file, inputs, motifs, methods, out,
                                    task=get_task(attrs["task"]), progress=progress, **kwargs)
        for r in run_rows:
            rows.append({"run_id": run["run_id"], "dataset": run.get("dataset"),
                         "strategy": run.get("strategy"), "seed": run.get("seed"), **r})
    table = pd.DataFrame(rows)
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "attribution_scores.csv", table.to_csv(index=False))
    made = reference_metadata(methods, kwargs.get("n_shuffles", 20), kwargs.get("seed", 0))
    note = (f" References: {made['n_shuffles']} dinucleotide shuffles per sequence, seed "
            f"{made['seed']}, {made['shuffle_algorithm']}." if made else "")
    lines = [f"# Attribution scores of {sweep_dir}", "",
             f"split {split}, up to {max_seqs} sequences with motifs per run; mean over seeds."
             f"{note}", ""]
    if "auroc" in table:
        for convention in ("prakash", "koo"):
            sub = table[table["convention"] == convention]
            for metric in ("auroc", "auprc"):
                pivot = sub.pivot_table(index="strategy", columns="method", values=metric,
                                        aggfunc="mean")
                lines += [f"## {metric.upper()} ({convention})", "",
                          _markdown(pivot, "{:.3f}"), ""]
    if "rc_consistency" in table:
        pivot = table.drop_duplicates(["run_id", "method"]).pivot_table(
            index="strategy", columns="method", values="rc_consistency", aggfunc="mean")
        lines += ["## RC-consistency of attributions (corr of attr(x) with RC attr(RC x))", "",
                  _markdown(pivot, "{:.4f}"), ""]
    atomic_write_text(out_dir / "attribution_table.md", "\n".join(lines))
    return out_dir / "attribution_scores.csv"


def finished_runs(sweep_dir: str | os.PathLike) -> Any:
    """The finished runs of a sweep: its results.csv rows with status ok, the last row per run
    id (a DataFrame of strings); UserError when there is no results.csv or no finished run."""
    import pandas as pd

    results = Path(sweep_dir) / "results.csv"
    if not results.is_file():
        raise UserError(f"{sweep_dir}: no results.csv (not a sweep directory)")
    frame = pd.read_csv(results, dtype=str).drop_duplicates("run_id", keep="last")
    if "status" in frame:
        frame = frame[frame["status"] == "ok"]
    if frame.empty:
        raise UserError(f"{results}: no finished runs")
    return frame


def _sweep_dataset(sweep_dir: Path, name: str) -> Path:
    """A sweep's dataset file: the path recorded in sweep.json, else DIR/data/<name>.h5."""
    config = sweep_dir / "sweep.json"
    if config.is_file():
        try:
            datasets = json.loads(config.read_text()).get("datasets", [])
        except (ValueError, AttributeError):
            datasets = []
        for entry in datasets if isinstance(datasets, list) else []:
            if isinstance(entry, dict) and entry.get("name") == name and entry.get("path"):
                return Path(entry["path"])
    return sweep_dir / "data" / f"{name}.h5"


def _markdown(pivot: Any, fmt: str) -> str:
    """A pandas pivot table as a markdown table (no tabulate dependency)."""
    cols = [str(c) for c in pivot.columns]
    lines = ["| " + " | ".join([str(pivot.index.name or "")] + cols) + " |",
             "|" + "---|" * (len(cols) + 1)]
    for idx, row in pivot.iterrows():
        cells = ["" if pd_isna(v) else fmt.format(v) for v in row.tolist()]
        lines.append("| " + " | ".join([str(idx)] + cells) + " |")
    return "\n".join(lines)


def pd_isna(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def write_params(out_dir: Path, params: dict) -> None:
    from benchmark_rc.fileio import atomic_write_text

    atomic_write_text(out_dir / "attribute.json", json.dumps(params, indent=2, default=str) + "\n")

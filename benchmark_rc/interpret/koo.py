"""Koo & Ploenzke's interpretability scores (spec/interpretation.md §3.1–3.3) for one model and
over a trained sweep (``benchmark-rc interpret --sweep DIR``).

* Evaluation set: the first ``n_seqs`` sequences of a split that are positive for the explained
  output (task 3: the first 500 positive test sequences, as Koo).
* Ground truth: positions whose generative-model column (0.25 background, the embedded PWMs,
  reverse-complemented on the - strand; every embedded motif) has IC > 0.01 bits.
* Attributions: the registry's methods (:data:`benchmark_rc.attribution.METHODS`, same
  signature and batching as ``benchmark-rc attribute``); methods with references get Koo's
  references, ``n_refs`` random **position permutations** of each sequence (mononucleotide
  shuffles), not dinucleotide shuffles. Integrated gradients is the registry's (midpoint rule,
  (x - reference) x mean gradient), not Koo's variant (x times the gradient, never reaching
  alpha = 1; spec §7.3). The logit is explained by default (Koo: the sigmoid; spec §7.4).
* Per-position score: the attribution at the observed base (signed); ISM: the L2 norm over the
  4 bases of f(mutant) - f(x) (:func:`benchmark_rc.attribution.scoring.position_scores`,
  convention "koo"). Per sequence: ROC AUC, and PR AUC as the trapezoidal area under the
  precision-recall curve; the model's value is the mean over sequences; across seeds the sweep
  table gives mean ± population SD.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.errors import UserError

KOO_METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "deepshap", "ism")


def evaluation_set(path: str | os.PathLike, split: str = "test", n_seqs: int = 500,
                   output: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(x (n, L, 4) float32, IC ground truth (n, L) bool) of the first ``n_seqs`` sequences
    positive for ``output``."""
    from benchmark_rc.data.hdf5 import read_motifs, read_split
    from benchmark_rc.data.simulation import read_motif_pwms
    from benchmark_rc.interpret.filters import ic_positions, model_matrix

    arrays = read_split(path, split, keys=("x", "y"))
    x, y = np.asarray(arrays["x"]), np.asarray(arrays["y"])
    if not 0 <= output < y.shape[1]:
        raise UserError(f"{path}: output {output} outside its {y.shape[1]} label(s)")
    rows = np.nonzero(y[:, output] > 0.5)[0][:n_seqs]
    if not len(rows):
        raise UserError(f"{path}: no {split} sequence is positive for output {output}")
    motifs = read_motifs(path, split)
    remap = -np.ones(len(x), np.int64)
    remap[rows] = np.arange(len(rows))
    seqs = remap[np.asarray(motifs["seq"])]
    keep = seqs >= 0
    table = {k: np.asarray(motifs[k])[keep] for k in ("start", "end", "name", "strand")}
    table["seq"] = seqs[keep]
    truth = ic_positions(model_matrix(table, read_motif_pwms(path), len(rows), x.shape[1]))
    return x[rows].astype(np.float32), truth


def position_shuffles(x: np.ndarray, n_refs: int = 10, seed: int = 0) -> np.ndarray:
    """(N, R, L, 4): ``n_refs`` random permutations of the positions of each sequence."""
    rng = np.random.default_rng(seed)
    n, length = x.shape[:2]
    order = np.argsort(rng.random((n, n_refs, length)), axis=-1)
    return np.take_along_axis(x[:, None], order[..., None], axis=2).astype(np.float32)


def koo_auc(scores: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Mean per-sequence ROC AUC and trapezoidal PR AUC of (N, L) scores vs (N, L) labels
    (sequences with one class only are skipped)."""
    from sklearn.metrics import auc, precision_recall_curve, roc_auc_score

    rocs, prs = [], []
    for s, t in zip(scores, truth, strict=True):
        if t.all() or not t.any():
            continue
        rocs.append(roc_auc_score(t, s))
        precision, recall, _ = precision_recall_curve(t, s)
        prs.append(auc(recall, precision))
    if not rocs:
        raise UserError("no sequence has both motif and background positions to score")
    return {"auroc": float(np.mean(rocs)), "auprc": float(np.mean(prs)), "n": len(rocs)}


def score_methods(model: Any, x: np.ndarray, truth: np.ndarray, methods: Sequence[str], *,
                  output: int = 0, logits: bool = True, n_refs: int = 10, seed: int = 0,
                  steps: int = 20, batch_size: int | None = None) -> list[dict[str, Any]]:
    """One row (method, auroc, auprc, n) per method (module docstring)."""
    from benchmark_rc.attribution.methods import get_method
    from benchmark_rc.attribution.scoring import position_scores

    refs = None
    rows = []
    for name in methods:
        method = get_method(name)
        if method.needs_references and refs is None:
            refs = position_shuffles(x, n_refs, seed)
        options = method.accepted({"logits": logits, "steps": steps})
        attr, _ = method.attribute(model, x, x, output=output,
                                   references=refs if method.needs_references else None,
                                   batch_size=batch_size, **options)
        scores = position_scores(np.asarray(attr, np.float64), x, "koo",
                                 ism=method.mutagenesis)
        rows.append({"method": method.name, **koo_auc(scores, truth)})
    return rows


# ------------------------------------------------------------------------------- over a sweep
def _sweep_hparams(sweep_dir: Path) -> dict[str, dict]:
    path = sweep_dir / "sweep.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return {d["name"]: dict(d.get("hparams") or {}) for d in data.get("datasets", [])
            if isinstance(d, dict) and "name" in d}


def interpret_sweep(sweep_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                    methods: Sequence[str] = KOO_METHODS, n_seqs: int = 500,
                    filters: bool = True, filter_seqs: int | None = None, output: int = 0,
                    logits: bool = True, n_refs: int = 10, seed: int = 0, steps: int = 20,
                    batch_size: int | None = None, split: str = "test",
                    progress: bool = True) -> Path:
    """Koo attribution scores (and first-layer filter statistics) of every finished run of a
    sweep: ``out_dir/attribution.csv``, ``out_dir/filters.csv`` and ``out_dir/table.md``.

    Resumable: each run's scores are kept in ``out_dir/runs/<run_id>.json`` (recomputed only
    when the parameters differ); rerun after the sweep has finished more runs."""
    import pandas as pd

    from benchmark_rc.attribution.runner import _sweep_dataset
    from benchmark_rc.fileio import atomic_write_text, json_default
    from benchmark_rc.interpret import filters as flt
    from benchmark_rc.registry import load_model

    sweep_dir, out_dir = Path(sweep_dir), Path(out_dir)
    results = sweep_dir / "results.csv"
    if not results.is_file():
        raise UserError(f"{sweep_dir}: no results.csv (not a sweep directory)")
    frame = pd.read_csv(results, dtype=str).drop_duplicates("run_id", keep="last")
    frame = frame[frame.get("status", "ok") == "ok"]
    if frame.empty:
        raise UserError(f"{results}: no finished runs")
    hparams = _sweep_hparams(sweep_dir)
    params = {"methods": list(methods), "n_seqs": n_seqs, "filters": filters,
              "filter_seqs": filter_seqs, "output": output, "logits": logits,
              "n_refs": n_refs, "seed": seed, "steps": steps, "split": split}
    attr_rows, filter_rows = [], []
    for _, run in frame.iterrows():
        run_id = str(run["run_id"])
        cache = out_dir / "runs" / f"{run_id}.json"
        done = json.loads(cache.read_text()) if cache.is_file() else None
        if done is None or done.get("params") != params:
            if progress:
                print(f"interpreting {run_id}", flush=True)
            data = _sweep_dataset(sweep_dir, str(run["dataset"]))
            model = load_model(sweep_dir / "runs" / run_id / "model.keras", compile=False)
            x, truth = evaluation_set(data, split, n_seqs, output)
            rows = score_methods(model, x, truth, methods, output=output, logits=logits,
                                 n_refs=n_refs, seed=seed, steps=steps, batch_size=batch_size)
            fstats: dict[str, Any] = {}
            if filters:
                report = flt.analyse_filters(model, data, split=split, max_seqs=filter_seqs)
                fstats = {k: report.summary[k] for k in (
                    "match_fraction", "match_any", "coverage", "motifs_counted",
                    "localisation_cnn_auroc", "localisation_pwm_auroc",
                    "localisation_chance_auroc")}
                flt.write_report(report, out_dir / "filters" / run_id, logos=False,
                                 title=f"First-layer filters of {run_id}")
            done = {"params": params, "attribution": rows, "filters": fstats}
            atomic_write_text(cache, json.dumps(done, indent=2, default=json_default))
        base = {"run_id": run_id, "dataset": run["dataset"], "arch": run["arch"],
                "activation": hparams.get(str(run["dataset"]), {}).get("activation", "relu"),
                "strategy": run["strategy"], "seed": run["seed"], "test_auroc": run["auroc"],
                "test_auprc": run["auprc"]}
        attr_rows += [{**base, **r} for r in done["attribution"]]
        if done["filters"]:
            filter_rows.append({**base, **done["filters"]})
    attr = pd.DataFrame(attr_rows)
    filt = pd.DataFrame(filter_rows)
    atomic_write_text(out_dir / "attribution.csv", attr.to_csv(index=False))
    atomic_write_text(out_dir / "filters.csv", filt.to_csv(index=False))
    atomic_write_text(out_dir / "table.md", summary_markdown(attr, filt, params, sweep_dir))
    return out_dir / "table.md"


def _mean_sd(values: Any) -> str:
    v = np.asarray(values, dtype=np.float64)
    return f"{v.mean():.3f} ± {v.std():.3f} (n={len(v)})"


def summary_markdown(attr: Any, filt: Any, params: dict, sweep_dir: Path) -> str:
    """Tables by architecture x activation x strategy: mean ± population SD over seeds and the
    number of seeds n (n below the sweep's seeds means a partial result)."""
    keys = ["arch", "activation", "strategy"]
    lines = [f"# Koo interpretability scores of {sweep_dir}", "",
             f"Attribution: first {params['n_seqs']} positive {params['split']} sequences, "
             f"{'logit' if params['logits'] else 'sigmoid'} of output {params['output']}, "
             f"{params['n_refs']} position-shuffled references, IC > 0.01 ground truth, "
             "per-sequence AUROC and trapezoidal AUPR averaged over sequences. Each cell: "
             "mean ± population SD over seeds (n seeds).", ""]
    if len(filt):
        lines += ["## Classification and first-layer filters", "",
                  "| arch | activation | strategy | test auROC | match fraction | coverage | "
                  "localisation AUROC (filters) | (PWM scan) | (chance) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for key, g in filt.groupby(keys):
            lines.append("| " + " | ".join(key) + " | " + " | ".join(
                _mean_sd(g[c]) for c in ("test_auroc", "match_fraction", "coverage",
                                         "localisation_cnn_auroc", "localisation_pwm_auroc",
                                         "localisation_chance_auroc")) + " |")
        lines.append("")
    for metric in ("auroc", "auprc"):
        if not len(attr):
            break
        methods = list(dict.fromkeys(attr["method"]))
        lines += [f"## Attribution {metric.upper()} (Koo)", "",
                  "| arch | activation | strategy | " + " | ".join(methods) + " |",
                  "|---|---|---|" + "---|" * len(methods)]
        for key, g in attr.groupby(keys):
            cells = [_mean_sd(g[g["method"] == m][metric]) if (g["method"] == m).any() else ""
                     for m in methods]
            lines.append("| " + " | ".join(key) + " | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)

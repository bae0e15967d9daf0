"""Interpretability scores over a trained sweep (``benchmark-rc interpret --sweep DIR``):
attribution AUROC / AUPRC against simulated ground truth under Koo & Ploenzke's and Prakash et
al.'s definitions, the RC-consistency of every attribution map, and first-layer filter statistics
(spec/interpretation.md §3.1–3.9; docs/interpret.md). The scoring pieces are in
:mod:`benchmark_rc.interpret.scoring`.

* Evaluation set: the first ``n_seqs`` sequences of a split that are positive for the explained
  output (task 3: the first 500 positive test sequences, as Koo).
* Ground truth (the dataset's :class:`~benchmark_rc.interpret.scoring.GroundTruth`): Koo,
  positions whose generative-model column (0.25 background, the embedded PWMs,
  reverse-complemented on the - strand; every embedded motif) has IC > 0.01 bits; Prakash, the
  bases of the motif instances (or re-scanned hits).
* Attributions: the registry's methods (:data:`benchmark_rc.attribution.METHODS`, same
  signature and batching as ``benchmark-rc attribute``), GradCAM at every convolution layer in
  both variants; methods with references get ``n_refs`` references per sequence: Koo's random
  **position permutations** (mononucleotide shuffles, ``references="position"``, default) or
  Prakash's dinucleotide shuffles (``"dinucleotide"``). Integrated gradients is the registry's
  (midpoint rule, (x - reference) x mean gradient), not Koo's variant (x times the gradient,
  never reaching alpha = 1; spec §7.3). The logit is explained by default (Koo: the sigmoid;
  spec §7.4). One attribution map per method and run is scored under every definition.
* Per-position score and metrics: Koo, the attribution at the observed base (signed; ISM: the
  L2 norm over the 4 bases of f(mutant) - f(x)), per-sequence ROC AUC and trapezoidal PR AUC;
  Prakash, |sum over the 4 channels| (ISM: |centred value at the observed base|), per-sequence
  ROC AUC and average precision. The run's value is the mean over sequences; across seeds the
  tables give mean ± SE with n, paired tests against ``standard`` and the method ranking
  (:func:`benchmark_rc.interpret.scoring.aggregate`).
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
    positive for ``output`` (Koo's definition of
    :func:`benchmark_rc.interpret.scoring.evaluation_set`)."""
    from benchmark_rc.interpret.scoring import evaluation_set as scored_set

    data = scored_set(path, split, n_seqs, output, ("koo",))
    if "koo" not in data.truth:
        raise UserError(f"{path}: the dataset gives no information-content ground truth")
    return data.x, data.truth["koo"]


def position_shuffles(x: np.ndarray, n_refs: int = 10, seed: int = 0) -> np.ndarray:
    """(N, R, L, 4): ``n_refs`` random permutations of the positions of each sequence."""
    rng = np.random.default_rng(seed)
    n, length = x.shape[:2]
    order = np.argsort(rng.random((n, n_refs, length)), axis=-1)
    return np.take_along_axis(x[:, None], order[..., None], axis=2).astype(np.float32)


def koo_auc(scores: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Mean per-sequence ROC AUC and trapezoidal PR AUC of (N, L) scores vs (N, L) labels
    (sequences with one class only are skipped), with the other statistics of
    :func:`benchmark_rc.attribution.scoring.sequence_metrics`."""
    from benchmark_rc.attribution.scoring import sequence_metrics, trapezoid_pr

    return sequence_metrics(scores, truth, trapezoid_pr)


# ------------------------------------------------------------------------------- over a sweep
def _sweep_hparams(sweep_dir: Path) -> dict[str, dict]:
    path = sweep_dir / "sweep.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return {d["name"]: dict(d.get("hparams") or {}) for d in data.get("datasets", [])
            if isinstance(d, dict) and "name" in d}


def interpret_sweep(sweep_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                    methods: Sequence[str] = KOO_METHODS,
                    definitions: Sequence[str] = ("koo", "prakash"), n_seqs: int = 500,
                    filters: bool = True, filter_seqs: int | None = None, output: int = 0,
                    logits: bool = True, references: str = "position", n_refs: int = 10,
                    seed: int = 0, steps: int = 20, rc: bool = True,
                    batch_size: int | None = None, split: str = "test",
                    progress: bool = True) -> Path:
    """Attribution scores under each of ``definitions`` (with the RC-consistency of each map
    when ``rc``) and first-layer filter statistics of every finished run of a sweep.

    Raw per-run results: ``out_dir/runs/<run_id>.json`` (kept: a rerun recomputes a run only
    when its parameters differ, so it can follow a sweep that is still training),
    ``out_dir/attribution.csv`` (one row per run x method x definition) and
    ``out_dir/filters.csv``; aggregated by :func:`benchmark_rc.interpret.scoring.aggregate`:
    ``summary.csv``, ``paired_tests.csv``, ``ranking.csv`` and the markdown ``table.md``."""
    import pandas as pd

    from benchmark_rc.attribution.runner import _sweep_dataset, finished_runs
    from benchmark_rc.fileio import atomic_write_text, json_default
    from benchmark_rc.interpret import filters as flt
    from benchmark_rc.interpret import scoring
    from benchmark_rc.registry import load_model

    sweep_dir, out_dir = Path(sweep_dir), Path(out_dir)
    definitions = [scoring.get_definition(d).name for d in definitions]
    if references not in scoring.REFERENCES:
        raise UserError(f"references must be one of {list(scoring.REFERENCES)}, got "
                        f"{references!r}")
    frame = finished_runs(sweep_dir)
    hparams = _sweep_hparams(sweep_dir)
    params = {"methods": list(methods), "definitions": definitions, "n_seqs": n_seqs,
              "filters": filters, "filter_seqs": filter_seqs, "output": output,
              "logits": logits, "references": references, "n_refs": n_refs, "seed": seed,
              "steps": steps, "rc": rc, "split": split}
    attr_rows, filter_rows, notes = [], [], []
    for _, run in frame.iterrows():
        run_id = str(run["run_id"])
        cache = out_dir / "runs" / f"{run_id}.json"
        done = _upgrade(json.loads(cache.read_text())) if cache.is_file() else None
        if done is None or done.get("params") != params:
            if progress:
                print(f"interpreting {run_id}", flush=True)
            data = _sweep_dataset(sweep_dir, str(run["dataset"]))
            model = load_model(sweep_dir / "runs" / run_id / "model.keras", compile=False)
            evaluated = scoring.evaluation_set(data, split, n_seqs, output, definitions)
            rows = scoring.score_model(model, evaluated, methods, definitions=definitions,
                                       output=output, logits=logits, references=references,
                                       n_refs=n_refs, seed=seed, steps=steps, rc=rc,
                                       batch_size=batch_size)
            fstats: dict[str, Any] = {}
            if filters:
                report = flt.analyse_filters(model, data, split=split, max_seqs=filter_seqs)
                fstats = {k: report.summary[k] for k in (
                    "match_fraction", "match_any", "coverage", "motifs_counted",
                    "localisation_cnn_auroc", "localisation_pwm_auroc",
                    "localisation_chance_auroc")}
                flt.write_report(report, out_dir / "filters" / run_id, logos=False,
                                 title=f"First-layer filters of {run_id}")
            done = {"params": params, "attribution": rows, "filters": fstats,
                    "missing_definitions": evaluated.missing}
            atomic_write_text(cache, json.dumps(done, indent=2, default=json_default))
        for name in done.get("missing_definitions", []):
            notes.append(f"- {run['dataset']}: no ground truth for the {name} definition (the "
                         "dataset gives none, or no evaluated sequence has both motif and "
                         "background positions); not scored.")
        base = {"run_id": run_id, "dataset": run["dataset"], "arch": run["arch"],
                "activation": hparams.get(str(run["dataset"]), {}).get("activation", "relu"),
                "strategy": run["strategy"], "seed": run["seed"],
                "test_auroc": run.get("auroc"), "test_auprc": run.get("auprc")}
        attr_rows += [{**base, **r} for r in done["attribution"]]
        if done["filters"]:
            filter_rows.append({**base, **done["filters"]})
    attr = pd.DataFrame(attr_rows)
    filt = pd.DataFrame(filter_rows)
    atomic_write_text(out_dir / "attribution.csv", attr.to_csv(index=False))
    atomic_write_text(out_dir / "filters.csv", filt.to_csv(index=False))
    preamble = [*_description(params), "", *dict.fromkeys(notes), *filter_markdown(filt)]
    files = scoring.aggregate(attr, title=f"Interpretability scores of {sweep_dir}",
                              preamble=preamble)
    atomic_write_text(out_dir / "table.md", files.pop("attribution.md"))
    for name, text in files.items():
        atomic_write_text(out_dir / name, text)
    return out_dir / "table.md"


def _upgrade(done: dict) -> dict:
    """A per-run file of the Koo-only version (its parameters name no definitions) as this
    version writes it: Koo's definition, position-shuffled references, no RC-consistency; so
    ``--methods saliency,input_x_gradient,integrated_gradients,deepshap,ism --definitions koo
    --no-rc`` resumes from such files."""
    params = done.get("params") or {}
    if "definitions" in params:
        return done
    return {**done, "params": {**params, "definitions": ["koo"], "references": "position",
                               "rc": False},
            "attribution": [{"base_method": r["method"], "layer": "", **r, "definition": "koo"}
                            for r in done.get("attribution", [])],
            "missing_definitions": []}


def _description(params: dict) -> list[str]:
    refs = {"position": "position-shuffled (Koo)", "dinucleotide": "dinucleotide-shuffled "
            "(Prakash)"}.get(params["references"], params["references"])
    return [f"Attribution: first {params['n_seqs']} positive {params['split']} sequences, "
            f"{'logit' if params['logits'] else 'sigmoid'} of output {params['output']}, "
            f"{params['n_refs']} {refs} references, integrated gradients with "
            f"{params['steps']} steps; definitions: {', '.join(params['definitions'])}; "
            f"RC-consistency {'computed' if params['rc'] else 'not computed'}. GradCAM: "
            "`gradcam@LAYER` (textbook) and `gradcam-position@LAYER` (Prakash's variant) at every "
            "convolution layer."]


def filter_markdown(filt: Any) -> list[str]:
    """The first-layer filter statistics by dataset x architecture x activation x strategy:
    mean ± SE over seeds (n seeds)."""
    from benchmark_rc.interpret.scoring import KEYS, format_cell
    from benchmark_rc.metrics import mean_se

    if not len(filt):
        return []
    columns = ("test_auroc", "match_fraction", "coverage", "localisation_cnn_auroc",
               "localisation_pwm_auroc", "localisation_chance_auroc")
    lines = ["## Classification and first-layer filters", "",
             "| " + " | ".join(KEYS) + " | test auROC | match fraction | coverage | "
             "localisation AUROC (filters) | (PWM scan) | (chance) |",
             "|" + "---|" * (len(KEYS) + len(columns))]
    for key, g in filt.groupby(list(KEYS), sort=False):
        stats = [mean_se(pd_numeric(g[c])) for c in columns]
        cells = [format_cell(st["mean"], st["se"], st["n"]) for st in stats]
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(cells) + " |")
    return [*lines, ""]


def pd_numeric(values: Any) -> np.ndarray:
    """Values as float64 (blank / non-numeric -> NaN)."""
    import pandas as pd

    return pd.to_numeric(values, errors="coerce").to_numpy(np.float64)

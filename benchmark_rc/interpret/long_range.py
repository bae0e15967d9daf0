"""Does a model's attribution reach the distal enhancers? Ground-truth scoring of the long-range
simulation (``simulate long-range``, issue 13) for enformer and its conv-only ablation.

The promoter track of the central bins depends on every enhancer of the window, with weight
exp(-distance / decay) (:mod:`benchmark_rc.data.simulation_long_range`). A model that uses the
distal enhancers must attribute its promoter prediction to them; one whose receptive field is cut
off (the conv-only ablation, ``n_transformer=0``) cannot: the explained bins do not depend on
bases beyond its reach, so their attributions there are exactly zero for the gradient methods.

* Evaluation set: the first ``n_seqs`` sequences of a split with a promoter and at least one
  enhancer.
* Explained output: :class:`~benchmark_rc.attribution.targets.TrackTarget` of the promoter track
  (channel 0) summed over the ``bins`` central bins (the predicted rates, not logs).
* Per-position score: |attribution at the observed base| (ISM: the L2 norm over the 4 bases of
  f(mutant) - f(x)), :func:`~benchmark_rc.attribution.scoring.position_scores`.
* Per enhancer instance: its **enrichment**, the mean score over its bases divided by the mean
  score over the background bases of its sequence (neither promoter nor enhancer); 1 = no more
  attribution than background, 0 = none. Instances are grouped by reach: ``near`` when the whole
  motif lies within ``reach`` bp of the explained bins (:func:`conv_reach`: how far beyond its
  own bases one bin of the conv tower sees, i.e. what the conv-only model can see), ``far`` when
  the whole motif lies beyond it, ``straddling`` otherwise.
* Per group: the mean enrichment ± SE over instances, the fraction of instances with enrichment
  above 1, and the AUROC of the group's enhancer bases against the background bases, pooled over
  sequences.

Beside the attributions, :func:`promoter_fit` measures the prediction itself where the enhancers
decide it: the correlation of predicted and observed promoter counts of the explained bins over
the sequences that hold a promoter (whole-track correlations are dominated by whether a promoter
is there at all).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.errors import UserError
from benchmark_rc.metrics import mean_se

DISTAL_METHODS = ("input_x_gradient", "integrated_gradients", "deepshap")
REACH_GROUPS = ("near", "straddling", "far")


def conv_reach(hparams: dict[str, Any]) -> int:
    """How far (bp) beyond its own bases one output bin of enformer's conv stem + tower sees:
    (receptive field - bin size) / 2, rounded up; 259 bp at the defaults."""
    from benchmark_rc.architectures.enformer import bin_size, conv_receptive_field

    return (conv_receptive_field(hparams) - bin_size(hparams) + 1) // 2


def _motif_table(path: str | os.PathLike, split: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The motif table of a split as arrays, and its motif names as str."""
    from benchmark_rc.data.hdf5 import read_motifs

    motifs = {k: np.asarray(v) for k, v in read_motifs(path, split).items()}
    names = np.asarray([n.decode() if isinstance(n, bytes) else str(n) for n in motifs["name"]])
    return motifs, names


def distal_evaluation_set(path: str | os.PathLike, split: str = "test", n_seqs: int = 50
                          ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(x (n, L, 4) float32, motif table of those n sequences) for the first ``n_seqs``
    sequences of ``split`` with a promoter and at least one enhancer. The table has columns
    seq (0..n-1), start, end, name, strand and role ("promoter" | "enhancer")."""
    from benchmark_rc.data.hdf5 import read_attrs, read_split

    params = read_attrs(path).get("params") or {}
    promoter, enhancer = params.get("promoter"), params.get("enhancer")
    if not promoter or not enhancer:
        raise UserError(f"{path}: not a long-range simulation (no promoter / enhancer in its "
                        "parameters); make one with `benchmark-rc simulate long-range`")
    x = np.asarray(read_split(path, split, keys=("x",))["x"])
    motifs, names = _motif_table(path, split)
    seqs = motifs["seq"].astype(np.int64)
    has_promoter = np.zeros(len(x), bool)
    has_promoter[seqs[names == promoter]] = True
    has_enhancer = np.zeros(len(x), bool)
    has_enhancer[seqs[names == enhancer]] = True
    rows = np.nonzero(has_promoter & has_enhancer)[0][:n_seqs]
    if not len(rows):
        raise UserError(f"{path}: no {split} sequence has both a promoter and an enhancer")
    remap = -np.ones(len(x), np.int64)
    remap[rows] = np.arange(len(rows))
    keep = remap[seqs] >= 0
    table = {"seq": remap[seqs][keep], "start": motifs["start"][keep].astype(np.int64),
             "end": motifs["end"][keep].astype(np.int64), "name": names[keep],
             "strand": motifs["strand"][keep].astype(np.int64),
             "role": np.where(names[keep] == promoter, "promoter", "enhancer")}
    return x[rows].astype(np.float32), table


def reach_groups(table: dict[str, np.ndarray], length: int, explained_bp: int, reach: int
                 ) -> np.ndarray:
    """The reach group (:data:`REACH_GROUPS`) of every row of ``table``: near when the motif
    lies within ``reach`` bp of the central ``explained_bp`` bases, far when wholly beyond."""
    lo = (length - explained_bp) // 2 - reach
    hi = (length + explained_bp) // 2 + reach
    start, end = table["start"], table["end"]
    inside = (start >= lo) & (end <= hi)
    outside = (end <= lo) | (start >= hi)
    return np.where(inside, "near", np.where(outside, "far", "straddling"))


def enhancer_enrichment(scores: np.ndarray, table: dict[str, np.ndarray], groups: np.ndarray
                        ) -> list[dict[str, Any]]:
    """Rows (group, n, enrichment, enrichment_se, above_background, auroc) from (n, L)
    non-negative per-position ``scores`` (module docstring); groups without instances are
    left out."""
    from sklearn.metrics import roc_auc_score

    n, length = scores.shape
    motif_bases = np.zeros((n, length), bool)
    for s, a, b in zip(table["seq"], table["start"], table["end"], strict=True):
        motif_bases[s, a:b] = True
    background = ~motif_bases
    background_mean = np.array([scores[i][background[i]].mean() for i in range(n)])
    enhancers = np.nonzero(table["role"] == "enhancer")[0]
    out = []
    for group in REACH_GROUPS:
        rows = enhancers[groups[enhancers] == group]
        if not len(rows):
            continue
        ratios, positives = [], np.zeros((n, length), bool)
        for r in rows:
            s, a, b = table["seq"][r], table["start"][r], table["end"][r]
            positives[s, a:b] = True
            base = background_mean[s]
            ratios.append(scores[s, a:b].mean() / base if base > 0 else np.nan)
        ratios = np.asarray(ratios, np.float64)
        finite = ratios[np.isfinite(ratios)]
        used = positives.any(1)  # pooled over the sequences that hold the group's instances
        y = np.concatenate([positives[used][positives[used]],
                            np.zeros(int(background[used].sum()), bool)])
        s_all = np.concatenate([scores[used][positives[used]], scores[used][background[used]]])
        enrichment = mean_se(finite)
        out.append({"group": group, "n": len(rows),
                    "enrichment": enrichment["mean"], "enrichment_se": enrichment["se"],
                    "above_background": float(np.mean(finite > 1)) if len(finite) else
                    float("nan"),
                    "auroc": float(roc_auc_score(y, s_all))})
    return out


def promoter_counts(path: str | os.PathLike, split: str, bins: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, observed, x) of the ``split`` sequences that hold a promoter: their indices, the
    observed promoter-track counts of the ``bins`` central bins and their one-hot sequences."""
    from benchmark_rc.data.hdf5 import read_attrs, read_split

    promoter = (read_attrs(path).get("params") or {}).get("promoter")
    data = read_split(path, split, keys=("x", "tracks"))
    x, tracks = np.asarray(data["x"]), np.asarray(data["tracks"])
    motifs, names = _motif_table(path, split)
    rows = np.unique(np.asarray(motifs["seq"])[names == promoter]).astype(np.int64)
    if len(rows) < 3:
        raise UserError(f"{path}: {len(rows)} {split} sequences hold a promoter; need >= 3")
    total = tracks.shape[1]
    if bins > total or (total - bins) % 2:
        raise UserError(f"{path}: cannot take {bins} central bins of {total}")
    first = (total - bins) // 2
    return rows, tracks[rows, first:first + bins, 0].sum(1).astype(np.float64), x[rows]


def _correlations(predicted: np.ndarray, observed: np.ndarray, prefix: str) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    return {f"{prefix}_pearson": float(pearsonr(predicted, observed)[0]),
            f"{prefix}_spearman": float(spearmanr(predicted, observed)[0])}


def promoter_fit(model: Any, path: str | os.PathLike, split: str = "test", bins: int = 2,
                 batch_size: int | None = None) -> dict[str, Any]:
    """Pearson and Spearman correlation (and n) of the predicted promoter rate (track 0 summed
    over the ``bins`` central bins, :class:`~benchmark_rc.attribution.targets.TrackTarget`) and
    the observed counts there, over the ``split`` sequences that hold a promoter. Within those the
    expected activity varies only with the enhancers (basal + sum_e s_e exp(-d_e / decay)), so
    this scores the long-range part of the task; a model that sees no enhancer beyond its reach
    can only learn the near ones (:func:`oracle_promoter_fit` gives both ceilings)."""
    from benchmark_rc.attribution.targets import TrackTarget, predict_target

    rows, observed, x = promoter_counts(path, split, bins)
    predicted = predict_target(model, x.astype(np.float32),
                               output=TrackTarget("tracks", 0, bins=bins), logits=False,
                               batch_size=batch_size).astype(np.float64)
    return {**_correlations(predicted, observed, "promoter"), "promoter_n": len(rows)}


def oracle_promoter_fit(path: str | os.PathLike, reach: int, split: str = "test",
                        bins: int = 2) -> dict[str, Any]:
    """The ceilings of :func:`promoter_fit` set by the sequence: the correlation of the observed
    counts with the simulation's promoter activity computed from the motif table, with every
    enhancer (``oracle_all_*``) and with only those a model of the given ``reach`` can see, near
    or straddling (``oracle_reach_*``, the conv-only ablation's ceiling). Enhancer strengths are
    drawn independently of the sequence, so both use their mean, 1; what remains is the
    strengths' and the counts' noise. The gap between the two is the task's distal dependence."""
    from benchmark_rc.data.hdf5 import read_attrs
    from benchmark_rc.data.simulation_long_range import promoter_activity

    params = read_attrs(path).get("params") or {}
    rows, observed, x = promoter_counts(path, split, bins)
    motifs, names = _motif_table(path, split)
    enhancers, promoters = names == params["enhancer"], names == params["promoter"]
    visible = reach_groups(motifs, x.shape[1], bins * int(params["bin_size"]), reach) != "far"
    centres = (motifs["start"] + motifs["end"] - 1) / 2
    predicted = {"all": [], "reach": []}
    for row in rows:
        mine = motifs["seq"] == row
        promoter_centre = centres[mine & promoters][0]
        for key, keep in (("all", mine & enhancers), ("reach", mine & enhancers & visible)):
            predicted[key].append(promoter_activity(
                centres[keep] - promoter_centre, np.ones(int(keep.sum())),
                float(params["decay"]), float(params["basal"])))
    return {**_correlations(np.asarray(predicted["all"]), observed, "oracle_all"),
            **_correlations(np.asarray(predicted["reach"]), observed, "oracle_reach"),
            "oracle_n": len(rows)}


def score_distal(model: Any, x: np.ndarray, table: dict[str, np.ndarray], *, reach: int,
                 bins: int = 2, bin_size: int = 128,
                 methods: Sequence[str] = DISTAL_METHODS, n_refs: int = 10, seed: int = 0,
                 steps: int = 20, batch_size: int | None = None) -> list[dict[str, Any]]:
    """Rows (method, group, n, enrichment, enrichment_se, above_background, auroc) of the
    promoter-track attributions of ``model`` on ``x`` (module docstring)."""
    from benchmark_rc.attribution.methods import get_method
    from benchmark_rc.attribution.references import dinuc_shuffle_references
    from benchmark_rc.attribution.scoring import position_scores
    from benchmark_rc.attribution.targets import TrackTarget

    target = TrackTarget("tracks", 0, bins=bins)
    groups = reach_groups(table, x.shape[1], bins * bin_size, reach)
    refs = None
    rows = []
    for name in methods:
        method = get_method(name)
        if method.needs_references and refs is None:
            refs = dinuc_shuffle_references(x, n_refs, seed)
        options = method.accepted({"logits": False, "steps": steps})
        attr, _ = method.attribute(model, x, x, output=target,
                                   references=refs if method.needs_references else None,
                                   batch_size=batch_size, **options)
        scores = np.abs(position_scores(np.asarray(attr, np.float64), x, "koo",
                                        ism=method.mutagenesis))
        rows += [{"method": method.name, **r} for r in enhancer_enrichment(scores, table, groups)]
    return rows


def distal_sweep(sweep_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                 methods: Sequence[str] = DISTAL_METHODS, n_seqs: int = 50, bins: int = 2,
                 n_refs: int = 10, seed: int = 0, steps: int = 20,
                 batch_size: int | None = None, split: str = "test",
                 progress: bool = True) -> Path:
    """:func:`score_distal` of every finished enformer run of a sweep:
    ``out_dir/distal.csv`` (one row per run x method x reach group) and ``out_dir/distal.md``.

    Every run is scored against the same reach, that of the conv-only ablation of its own
    hyper-parameters (:func:`conv_reach`), so the full model and its ablation are compared on
    the same enhancer groups. Resumable: each run's rows are kept in
    ``out_dir/runs/<run_id>.json`` and recomputed only when the parameters differ."""
    import json

    import pandas as pd

    from benchmark_rc.architectures import get_architecture
    from benchmark_rc.architectures.enformer import bin_size
    from benchmark_rc.attribution.runner import _sweep_dataset, finished_runs
    from benchmark_rc.fileio import atomic_write_text, json_default
    from benchmark_rc.registry import load_model

    sweep_dir, out_dir = Path(sweep_dir), Path(out_dir)
    frame = finished_runs(sweep_dir)
    frame = frame[frame["arch"] == "enformer"]
    if frame.empty:
        raise UserError(f"{sweep_dir}: no finished enformer run")
    params = {"methods": list(methods), "n_seqs": n_seqs, "bins": bins, "n_refs": n_refs,
              "seed": seed, "steps": steps, "split": split}
    rows, oracles = [], {}
    for _, run in frame.iterrows():
        run_id = str(run["run_id"])
        run_dir = sweep_dir / "runs" / run_id
        data_path = _sweep_dataset(sweep_dir, str(run["dataset"]))
        cache = out_dir / "runs" / f"{run_id}.json"
        done = json.loads(cache.read_text()) if cache.is_file() else None
        if done is None or done.get("params") != params:
            if progress:
                print(f"scoring distal attribution of {run_id}", flush=True)
            config = json.loads((run_dir / "config.json").read_text())
            # a post-hoc conjoined run keeps its base (rcaug) run's config under base_config
            trained = config.get("base_config", config)
            hp = {**get_architecture("enformer").defaults, **trained["model_hparams"]}
            model = load_model(run_dir / "model.keras", compile=False)
            x, table = distal_evaluation_set(data_path, split, n_seqs)
            reach = conv_reach(hp)
            scored = score_distal(model, x, table, reach=reach, bins=bins,
                                  bin_size=bin_size(hp), methods=methods, n_refs=n_refs,
                                  seed=seed, steps=steps, batch_size=batch_size)
            done = {"params": params, "reach": reach,
                    "n_transformer": int(hp["n_transformer"]), "rows": scored,
                    "promoter": promoter_fit(model, data_path, split, bins, batch_size)}
            atomic_write_text(cache, json.dumps(done, indent=2, default=json_default))
        key = (str(data_path), done["reach"])
        if key not in oracles:  # the same file and reach for every strategy and seed
            oracles[key] = oracle_promoter_fit(data_path, done["reach"], split, bins)
        base = {"run_id": run_id, "dataset": run["dataset"], "strategy": run["strategy"],
                "seed": run["seed"], "n_transformer": done["n_transformer"],
                "reach_bp": done["reach"], **done["promoter"], **oracles[key]}
        rows += [{**base, **r} for r in done["rows"]]
    table = pd.DataFrame(rows)
    atomic_write_text(out_dir / "distal.csv", table.to_csv(index=False))
    atomic_write_text(out_dir / "distal.md", distal_markdown(table, params, sweep_dir))
    return out_dir / "distal.md"


def _seed_cell(values: Any) -> str:
    """One run's value, or the mean ± SE across several seeds' values."""
    if len(values) == 1:
        return f"{float(values.iloc[0]):.3f}"
    seeds = mean_se(values)
    return f"{seeds['mean']:.3f} ± {seeds['se']:.3f}"


def _enrichment_cell(rows: Any) -> str:
    """One reach group of one dataset x strategy x method: a single run's enrichment with its
    SE over enhancer instances, or, over several seeds, the mean with its SE across seeds."""
    if len(rows) == 1:
        r = rows.iloc[0]
        return f"{r['enrichment']:.2f} ± {r['enrichment_se']:.2f} (n={r['n']})"
    seeds = mean_se(rows["enrichment"])
    return f"{seeds['mean']:.2f} ± {seeds['se']:.2f} ({len(rows)} seeds)"


def distal_markdown(table: Any, params: dict, sweep_dir: Path) -> str:
    """Enrichment and AUROC by dataset x strategy x method, one column per reach group (runs of
    several seeds: mean ± SE across seeds)."""
    lines = [f"# Distal-enhancer attribution of {sweep_dir}", "",
             f"Promoter track (channel 0) summed over the central {params['bins']} bins, first "
             f"{params['n_seqs']} {params['split']} sequences with a promoter and an enhancer; "
             "per enhancer instance, the mean |attribution| over its bases / the mean over "
             "background bases (1 = background, 0 = none); one seed: mean ± SE over instances "
             "(n), several seeds: mean ± SE across seeds of the per-run means; "
             "groups by the conv-only model's reach (near: wholly within it, far: wholly "
             "beyond). AUROC: enhancer vs background bases, pooled per run (mean over seeds).",
             "",
             "| dataset | strategy | method | " + " | ".join(
                 f"{g} enrichment | {g} AUROC" for g in REACH_GROUPS) + " |",
             "|---|---|---|" + "---|---|" * len(REACH_GROUPS)]
    for (dataset, strategy, method), g in table.groupby(["dataset", "strategy", "method"],
                                                        sort=False):
        cells = []
        for group in REACH_GROUPS:
            rows = g[g["group"] == group]
            cells += ([_enrichment_cell(rows), f"{rows['auroc'].mean():.3f}"] if len(rows)
                      else ["", ""])
        lines.append(f"| {dataset} | {strategy} | {method} | " + " | ".join(cells) + " |")
    runs = table.drop_duplicates("run_id").groupby(["dataset", "strategy"], sort=False)
    lines += ["", "## Promoter prediction where the enhancers decide it", "",
              f"Correlation of the predicted and observed promoter counts of the central "
              f"{params['bins']} bins over the {params['split']} sequences with a promoter "
              "(`promoter_fit`); several seeds: mean ± SE across seeds.", "",
              "| dataset | strategy | Pearson | Spearman | sequences | seeds |",
              "|---|---|---|---|---|---|"]
    for (dataset, strategy), g in runs:
        lines.append(f"| {dataset} | {strategy} | {_seed_cell(g['promoter_pearson'])} | "
                     f"{_seed_cell(g['promoter_spearman'])} | {int(g['promoter_n'].iloc[0])} | "
                     f"{len(g)} |")
    if "oracle_all_pearson" in table.columns:
        lines += ["", "Ceilings from the sequence (`oracle_promoter_fit`): the simulation's "
                  "promoter activity computed from the motif table (enhancer strengths at their "
                  "mean) against the same observed counts, with every enhancer and with only "
                  "those within the conv-only reach; the gap is the task's distal dependence.",
                  "", "| dataset | reach (bp) | all enhancers: Pearson / Spearman | "
                  "within reach: Pearson / Spearman |", "|---|---|---|---|"]
        for (dataset, reach), g in table.groupby(["dataset", "reach_bp"], sort=False):
            o = g.iloc[0]
            lines.append(f"| {dataset} | {reach} | {o['oracle_all_pearson']:.3f} / "
                         f"{o['oracle_all_spearman']:.3f} | {o['oracle_reach_pearson']:.3f} / "
                         f"{o['oracle_reach_spearman']:.3f} |")
    return "\n".join(lines) + "\n"


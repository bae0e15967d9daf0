"""Markdown report and figures of a sweep directory (``benchmark-rc report DIR``).

Reads ``DIR/results.csv`` (one row per finished run, see :mod:`benchmark_rc.benchmark`), keeps
the last ``status == "ok"`` row of every run_id, and writes to ``DIR/report/``:

* ``report.md`` — per dataset a table of means ± SD across seeds with the paper labels, the
  paired comparison against the post-hoc conjoined baseline (Wilcoxon signed-rank test across
  seeds) and links to the figures;
* ``figures/<dataset>_metrics.{png,svg}`` — one panel per metric, metric by strategy across
  seeds (box + jittered strip, the paper's figure style);
* ``figures/<dataset>_rc_divergence.{png,svg}`` — RC divergence by strategy on a log scale;
* ``figures/<dataset>_vs_posthoc.{png,svg}`` — per-seed differences to CJ-posthoc, one panel
  per metric;
* ``figures.json`` — the figure files and the titles of their panels.

``compare_with`` (``--compare-with OTHER``, repeatable) adds the finished runs of other sweep
directories for the same datasets and seeds, e.g. a new strategy's sweep reported beside the
rcps and posthoc runs of an earlier one without retraining them. Only rows whose dataset and seed
this sweep has are taken, the datasets must be defined identically in both ``sweep.json`` files,
and a strategy this sweep ran itself is not taken again; the report counts what it took and
what it left out, and why.

Rows run with ``--compat original`` are reported as their own strategy, ``"rcps [original]"``,
never averaged with the default rows (a results.csv without a ``compat`` column is all default).

SVG text is kept as text (``svg.fonttype = none``) so figures can be searched and checked.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.errors import UserError
from benchmark_rc.fileio import atomic_path, atomic_write_text

CLASSIFICATION_METRICS = ("auroc", "auprc")
PROFILE_METRICS = ("jsd", "pearson", "spearman")
METRIC_LABELS = {"auroc": "auROC", "auprc": "auPRC", "jsd": "JSD (lower is better)",
                 "pearson": "Pearson r", "spearman": "Spearman r"}
# Display order of strategies (DESIGN.md); strategies not listed follow in alphabetical order.
STRATEGY_ORDER = ("standard", "rcaug", "posthoc", "posthoc-prob", "conjoined", "conjoined-max",
                  "rcps", "rcps-avg", "rcps-weighted", "rcps-half", "hybrid-early",
                  "hybrid-later", "hybrid-all")
BASELINE = "posthoc"
# Fewest non-zero paired differences for which the Wilcoxon p-value is reported; with one pair
# scipy returns p = 1 whatever the difference, which reads like a result but is not one.
MIN_WILCOXON_PAIRS = 2
_LOG_FLOOR = 1e-12  # rc_divergence values of exactly 0 are drawn at this height on the log axis


def load_results(results_csv: str | os.PathLike):
    """The finished runs of a results.csv as a DataFrame (last ok row per run_id)."""
    import pandas as pd

    path = Path(results_csv)
    if not path.is_file():
        raise UserError(f"{path}: no results file (run `benchmark-rc sweep --out DIR` first)")
    try:
        frame = pd.read_csv(path)
    except Exception as err:  # pandas raises several parser errors
        raise UserError(f"{path}: cannot be read as CSV ({err})") from err
    needed = {"run_id", "dataset", "strategy", "seed", "status", "rc_divergence"}
    missing = needed - set(frame.columns)
    if missing:
        raise UserError(f"{path}: missing columns {sorted(missing)}; expected a results.csv "
                        "written by `benchmark-rc sweep`")
    ok = frame[frame["status"] == "ok"].drop_duplicates("run_id", keep="last")
    return ok.reset_index(drop=True)


def _dataset_definitions(sweep_dir: Path) -> dict[str, Any]:
    """``{dataset name: its definition}`` from ``sweep_dir/sweep.json`` ({} when absent)."""
    path = sweep_dir / "sweep.json"
    if not path.is_file():
        return {}
    try:
        datasets = json.loads(path.read_text()).get("datasets", [])
    except (json.JSONDecodeError, AttributeError) as err:
        raise UserError(f"{path}: not a sweep.json written by `benchmark-rc sweep` ({err})") \
            from err
    return {d["name"]: d for d in datasets if isinstance(d, dict) and "name" in d}


def add_compared_runs(frame, sweep_dir: Path, others) -> tuple[Any, list[str]]:
    """``frame`` plus the runs of each sweep directory in ``others`` that share a dataset and a
    seed with it, and lines for the report saying what was taken and what was left out."""
    import pandas as pd

    own = _dataset_definitions(sweep_dir)
    keys = set(zip(frame["dataset"], frame["seed"], strict=True))
    own_strategies = {(d, s) for d, s in zip(frame["dataset"], frame["strategy"], strict=True)}
    parts, notes = [frame], []
    for other_dir in map(Path, others):
        other = split_compat(load_results(other_dir / "results.csv"))
        theirs = _dataset_definitions(other_dir)
        for name in sorted(set(other["dataset"]) & set(frame["dataset"])):
            if name in own and name in theirs and own[name] != theirs[name]:
                raise UserError(
                    f"dataset {name!r} is defined differently in {sweep_dir / 'sweep.json'} "
                    f"({own[name]}) and {other_dir / 'sweep.json'} ({theirs[name]}); runs on "
                    "different data cannot be compared")
        shared = other[[k in keys for k in zip(other["dataset"], other["seed"], strict=True)]]
        again = [k in own_strategies
                 for k in zip(shared["dataset"], shared["strategy"], strict=True)]
        taken = shared[[not a for a in again]]
        parts.append(taken)
        notes.append(f"- From `{other_dir / 'results.csv'}`: {len(taken)} runs taken "
                     f"({', '.join(sorted(taken['strategy'].unique())) or 'none'}); "
                     f"{len(other) - len(shared)} left out (dataset or seed not in this sweep), "
                     f"{sum(again)} left out (strategy this sweep ran itself).")
    return pd.concat(parts, ignore_index=True), notes


def _strategy_order(strategies) -> list[str]:
    """Display order; a compat variant ("rcps [original]") follows its default strategy."""
    present = set(strategies)
    ordered = []
    for base in STRATEGY_ORDER:
        ordered += [base] if base in present else []
        ordered += sorted(s for s in present if s.startswith(f"{base} ["))
    return ordered + sorted(present - set(ordered))


def split_compat(frame):
    """Rows of a non-default ``compat`` get their own strategy key, ``"rcps [original]"``, so
    default and original rows are never averaged together. A frame without such rows (or an
    older results.csv without the column) is returned unchanged."""
    if "compat" not in frame.columns:
        return frame
    compat = frame["compat"].fillna("default").astype(str).replace("", "default")
    other = compat != "default"
    if not other.any():
        return frame
    frame = frame.copy()
    frame.loc[other, "strategy"] = frame.loc[other, "strategy"].astype(str) + " [" \
        + compat[other] + "]"
    return frame


def _metrics_of(frame) -> tuple[str, ...]:
    """The metrics of the task family of ``frame`` that some run has (binned tracks have
    Pearson and Spearman but no JSD)."""
    for group in (CLASSIFICATION_METRICS, PROFILE_METRICS):
        present = tuple(m for m in group if m in frame.columns and frame[m].notna().any())
        if present:
            return present
    return ()


def _jitter(panel: str, label: str, n: int) -> np.ndarray:
    """Horizontal offsets of a strip's points, seeded by its panel and label alone: a figure
    does not move when another panel, strategy or dataset gains runs (crc32, unlike hash(),
    is the same in every process)."""
    rng = np.random.default_rng(zlib.crc32(f"{panel}\0{label}".encode()))
    return rng.uniform(-0.15, 0.15, n)


def _strip_box(ax, groups: list[np.ndarray], labels: list[str], panel: str,
               log: bool = False) -> None:
    data = [g[np.isfinite(g)] for g in groups]
    if log:
        data = [np.maximum(g, _LOG_FLOOR) for g in data]
    positions = np.arange(1, len(data) + 1)
    non_empty = [i for i, g in enumerate(data) if g.size]
    if non_empty:
        ax.boxplot([data[i] for i in non_empty], positions=positions[non_empty], widths=0.6,
                   showfliers=False, medianprops={"color": "black"})
    for pos, values, label in zip(positions, data, labels, strict=True):
        ax.scatter(pos + _jitter(panel, label, values.size), values, s=14, alpha=0.8,
                   color="tab:blue", zorder=3)
    ax.set_xticks(positions)
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)


# No creation date in the files: a report rebuilt from the same results.csv is byte-identical,
# so a committed report changes in git only where a result changed.
_UNDATED = {"png": {}, "svg": {"Date": None}}


def _save(fig, stem: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"yscales": [ax.get_yscale() for ax in fig.axes]}
    for ext, metadata in _UNDATED.items():
        target = stem.with_suffix(f".{ext}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext, dpi=120, bbox_inches="tight", metadata=metadata)
        out[ext] = str(target)
    return out


def _paired_vs_baseline(frame, metric: str, strategies: list[str]) -> dict[str, dict[str, Any]]:
    """Per strategy: seed-paired differences metric(strategy) - metric(posthoc) and Wilcoxon.

    ``p`` is NaN (shown as "–") when fewer than :data:`MIN_WILCOXON_PAIRS` differences are
    non-zero (scipy's default ``zero_method="wilcox"`` drops zero differences).
    """
    from scipy.stats import wilcoxon

    base = frame[frame["strategy"] == BASELINE].set_index("seed")[metric]
    out = {}
    for strategy in strategies:
        if strategy == BASELINE:
            continue
        other = frame[frame["strategy"] == strategy].set_index("seed")[metric]
        seeds = sorted(set(base.dropna().index) & set(other.dropna().index))
        diffs = np.array([other[s] - base[s] for s in seeds], dtype=float)
        p_value = float("nan")
        if np.count_nonzero(diffs) >= MIN_WILCOXON_PAIRS:
            try:
                p_value = float(wilcoxon(diffs).pvalue)
            except ValueError:
                p_value = float("nan")
        out[strategy] = {"n": int(diffs.size), "diffs": diffs,
                         "median": float(np.median(diffs)) if diffs.size else float("nan"),
                         "p": p_value}
    return out


def _fmt(value: float, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _fmt_sci(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.2e}"


def build_report(sweep_dir: str | os.PathLike,
                 compare_with: Sequence[str | os.PathLike] = ()) -> dict[str, Any]:
    """Write ``sweep_dir/report/`` (markdown + figures) and return a manifest
    ``{"markdown": path, "figures": {name: {"png", "svg", "panels": [titles], "yscales"}}}``.

    ``compare_with``: other sweep directories whose runs on the same datasets and seeds are
    reported beside this sweep's (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep_dir = Path(sweep_dir)
    frame = split_compat(load_results(sweep_dir / "results.csv"))
    if frame.empty:
        raise UserError(f"{sweep_dir / 'results.csv'}: no finished (status ok) runs to report")
    n_own = len(frame)
    frame, compared = add_compared_runs(frame, sweep_dir, compare_with)
    report_dir = sweep_dir / "report"
    fig_dir = report_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"markdown": str(report_dir / "report.md"), "figures": {}}
    lines = [f"# benchmark_rc report: {sweep_dir.name}", "",
             f"{n_own} finished runs from `{sweep_dir / 'results.csv'}`. Values are means ± "
             "SD across seeds; `rc_divergence` is the mean |f(x) − f(RC x)| of the logits "
             "(profiles: mean JSD between the forward and RC-mapped predicted distributions).", ""]
    if compared:
        lines += ["Runs of other sweeps on the same datasets and seeds, reported beside this "
                  "sweep's:", "", *compared, ""]

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "benchmark_rc"}):
        for dataset in sorted(frame["dataset"].unique()):
            sub = frame[frame["dataset"] == dataset]
            metric_names = _metrics_of(sub)
            strategies = _strategy_order(sub["strategy"].unique())
            labels = []
            for s in strategies:
                label = sub.loc[sub["strategy"] == s, "paper_label"].iloc[0] \
                    if "paper_label" in sub.columns else s
                label = str(label) if isinstance(label, str) and label else s
                variant = s[s.index(" ["):] if " [" in s else ""  # compat, e.g. " [original]"
                labels.append(label if label.endswith(variant) else label + variant)
            lines += [f"## {dataset}", ""]

            # table of means ± SD
            header = ["strategy", "paper label", "seeds"]
            header += [METRIC_LABELS[m] for m in metric_names]
            header += ["rc_divergence", "train s"]
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            for s, label in zip(strategies, labels, strict=True):
                rows = sub[sub["strategy"] == s]
                cells = [s, label, str(len(rows))]
                for m in metric_names:
                    v = rows[m].astype(float)
                    sd = float(v.std(ddof=1)) if v.notna().sum() > 1 else float("nan")
                    cells.append(f"{_fmt(float(v.mean()))} ± {_fmt(sd)}")
                cells.append(_fmt_sci(float(rows["rc_divergence"].astype(float).mean())))
                if "train_seconds" in rows.columns:
                    cells.append(_fmt(float(rows["train_seconds"].astype(float).mean()), 1))
                else:
                    cells.append("–")
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")

            figures = manifest["figures"]
            if metric_names:
                fig, axes = plt.subplots(1, len(metric_names),
                                         figsize=(4.2 * len(metric_names), 4.2), squeeze=False)
                panels = []
                for ax, m in zip(axes[0], metric_names, strict=True):
                    groups = [sub.loc[sub["strategy"] == s, m].to_numpy(float) for s in strategies]
                    title = f"{dataset}: {METRIC_LABELS[m]}"
                    _strip_box(ax, groups, labels, title)
                    ax.set_title(title)
                    panels.append(title)
                figures[f"{dataset}_metrics"] = {**_save(fig, fig_dir / f"{dataset}_metrics"),
                                                 "panels": panels}
                plt.close(fig)
                lines += [f"![{dataset} metrics](figures/{dataset}_metrics.png)", ""]

            fig, ax = plt.subplots(figsize=(max(4.5, 0.6 * len(strategies) + 2), 4.2))
            groups = [sub.loc[sub["strategy"] == s, "rc_divergence"].to_numpy(float)
                      for s in strategies]
            title = f"{dataset}: RC divergence (log scale)"
            _strip_box(ax, groups, labels, title, log=True)
            ax.set_title(title)
            ax.set_ylabel(f"rc_divergence (0 drawn at {_LOG_FLOOR:g})")
            figures[f"{dataset}_rc_divergence"] = {
                **_save(fig, fig_dir / f"{dataset}_rc_divergence"), "panels": [title]}
            plt.close(fig)
            lines += [f"![{dataset} rc divergence](figures/{dataset}_rc_divergence.png)", ""]

            if BASELINE in strategies and metric_names and len(strategies) > 1:
                others = [s for s in strategies if s != BASELINE]
                other_labels = [labels[strategies.index(s)] for s in others]
                fig, axes = plt.subplots(1, len(metric_names),
                                         figsize=(4.2 * len(metric_names), 4.2), squeeze=False)
                panels = []
                lines += [f"Paired differences to {BASELINE} (same seed), Wilcoxon signed-rank "
                          f"test across seeds (p shown as – when fewer than {MIN_WILCOXON_PAIRS} "
                          "seed pairs differ, too few for the test):", "",
                          "| strategy | metric | pairs | median difference | p |",
                          "|---|---|---|---|---|"]
                for ax, m in zip(axes[0], metric_names, strict=True):
                    paired = _paired_vs_baseline(sub, m, strategies)
                    title = f"{dataset}: {METRIC_LABELS[m]} minus {BASELINE}"
                    _strip_box(ax, [paired[s]["diffs"] for s in others], other_labels, title)
                    ax.axhline(0, color="grey", lw=1)
                    ax.set_title(title)
                    panels.append(title)
                    for s in others:
                        r = paired[s]
                        lines.append(f"| {s} | {m} | {r['n']} | {_fmt(r['median'])} | "
                                     f"{_fmt(r['p'], 3)} |")
                figures[f"{dataset}_vs_posthoc"] = {
                    **_save(fig, fig_dir / f"{dataset}_vs_posthoc"), "panels": panels}
                plt.close(fig)
                lines += ["", f"![{dataset} vs posthoc](figures/{dataset}_vs_posthoc.png)", ""]

    failed_note = _failed_runs(sweep_dir / "results.csv")
    if failed_note:
        lines += ["## Failed runs", "", *failed_note, ""]
    atomic_write_text(report_dir / "report.md", "\n".join(lines) + "\n")
    # the files relative to the report, so a committed report does not name this machine's paths
    on_disk = {name: {k: os.path.relpath(v, report_dir) if k in ("png", "svg") else v
                      for k, v in figure.items()} for name, figure in manifest["figures"].items()}
    atomic_write_text(report_dir / "figures.json", json.dumps(on_disk, indent=2))
    return manifest


def _failed_runs(results_csv: Path) -> list[str]:
    import pandas as pd

    frame = pd.read_csv(results_csv)
    last = frame.drop_duplicates("run_id", keep="last")
    failed = last[last["status"] != "ok"]
    out = []
    for _, row in failed.iterrows():
        error = row.get("error")
        error = str(error).splitlines()[0][:200] if isinstance(error, str) and error else \
            "(no error recorded)"
        out.append(f"- `{row['run_id']}`: {error}")
    return out

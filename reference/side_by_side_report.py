"""Assemble results/original-vs-ours/ from the run directories of reference/side_by_side.sh.

Run with the main venv (pandas, matplotlib)::

    .venv/bin/python reference/side_by_side_report.py OUT results/original-vs-ours

Reads ``OUT/original/<model>-s<seed>/`` (reference/train_original.py: history.csv, result.json)
and ``OUT/ours-<compat>/<strategy>-s<seed>/`` (`benchmark-rc train`: history.csv, config.json;
`benchmark-rc evaluate --split test`: test.json); a run not finished in OUT keeps the row and
curve an earlier run of this script wrote into the results directory (OUT is scratch and lost
between sessions), so the driver only has to run what is pending. Writes into the results
directory:

* ``results.csv``: one row per planned run (side x strategy x seed): epochs run, best epoch
  (0-based, the kept weights = best validation auROC), best validation auROC, test auROC /
  auPRC, training seconds; ``status`` ok, or pending for a run not finished yet;
* ``curves.csv``: per-epoch loss, val_loss and val_auroc of every finished run;
* ``curves.png``: the validation auROC curves, one panel per strategy;
* ``report.md``: the tables, how far the curves of each side are from the original's compared
  with the original's own seed-to-seed spread, and the ours-default rows against the committed
  rows of results/paper-sim/results.csv. Text below the line ``<!-- analysis -->`` of an
  existing report.md is kept.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

SEEDS = (1535, 1780)
# (our strategy, the original SimArchs.py class's model name in reference/train_original.py)
STRATEGIES = (("standard", "standard"), ("rcps", "rcps"), ("conjoined", "siamese"))
SIDES = ("original", "ours-compat-original", "ours-default")
SIDE_LABEL = {
    "original": "original stack (TF 1.15, Keras 2.2.4, keras-genomics 0.1.2.1)",
    "ours-compat-original": "benchmark_rc --compat original",
    "ours-default": "benchmark_rc (default layers)",
}
PAPER_LABEL = {"standard": "Standard-NoRCAug", "rcps": "RCPS", "conjoined": "CJ-trained"}
RESULT_COLUMNS = ("side", "strategy", "paper_label", "seed", "status", "epochs", "best_epoch",
                  "best_val_auroc", "test_auroc", "test_auprc", "train_seconds")
CURVE_COLUMNS = ("side", "strategy", "seed", "epoch", "loss", "val_loss", "val_auroc")
MARKER = "<!-- analysis -->"


def run_dir(out: Path, side: str, strategy: str, model: str, seed: int) -> Path:
    if side == "original":
        return out / "original" / f"{model}-s{seed}"
    compat = side.removeprefix("ours-compat-") if side.startswith("ours-compat") else "default"
    return out / f"ours-{compat}" / f"{strategy}-s{seed}"


def read_run(path: Path, side: str) -> tuple[dict, pd.DataFrame | None]:
    """(row fields, per-epoch history) of one run directory; status pending if unfinished."""
    if side == "original":
        done = path / "result.json"
        if not done.is_file():
            return {"status": "pending"}, None
        result = json.loads(done.read_text())
        row = {"epochs": result["epochs"], "best_epoch": result["best_epoch"],
               "best_val_auroc": result["best_val_auroc"], "test_auroc": result["test_auroc"],
               "test_auprc": result["test_auprc"], "train_seconds": result["train_seconds"]}
    else:
        if not (path / "config.json").is_file() or not (path / "test.json").is_file():
            return {"status": "pending"}, None
        config = json.loads((path / "config.json").read_text())
        test = json.loads((path / "test.json").read_text())
        row = {"epochs": config["epochs_run"], "best_epoch": config["best_epoch"],
               "best_val_auroc": config["best_value"], "test_auroc": test["auroc"],
               "test_auprc": test["auprc"], "train_seconds": config["train_seconds"]}
    history = pd.read_csv(path / "history.csv")
    if len(history) != row["epochs"]:
        raise SystemExit(f"{path}: history.csv has {len(history)} epochs, the run {row['epochs']}")
    return {"status": "ok", **row}, history


def committed_run(dest: Path, side: str, strategy: str, seed: int
                  ) -> tuple[dict, pd.DataFrame | None]:
    """A finished run's row and curve as an earlier report wrote them into ``dest`` (the
    scratch OUT of an earlier session is gone; its rows were written by this script)."""
    results, curves = dest / "results.csv", dest / "curves.csv"
    if not results.is_file() or not curves.is_file():
        return {"status": "pending"}, None
    table = pd.read_csv(results)
    hit = table[(table.side == side) & (table.strategy == strategy) & (table.seed == seed)
                & (table.status == "ok")]
    if hit.empty:
        return {"status": "pending"}, None
    row = hit.iloc[0]
    fields = {c: row[c] for c in RESULT_COLUMNS[4:]}
    curve = pd.read_csv(curves)
    curve = curve[(curve.side == side) & (curve.strategy == strategy) & (curve.seed == seed)]
    if len(curve) != int(row.epochs):
        raise SystemExit(f"{curves}: {len(curve)} epochs of {side} {strategy} s{seed}, its "
                         f"row {int(row.epochs)}")
    return fields, curve.drop(columns=["side", "strategy", "seed"]).reset_index(drop=True)


def collect(out: Path, dest: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every planned run from OUT; a run not finished there is taken from ``dest``'s earlier
    report when it was finished there."""
    rows, curves = [], []
    for side in SIDES:
        for strategy, model in STRATEGIES:
            for seed in SEEDS:
                fields, history = read_run(run_dir(out, side, strategy, model, seed), side)
                if fields["status"] == "pending" and dest is not None:
                    fields, history = committed_run(dest, side, strategy, seed)
                rows.append({"side": side, "strategy": strategy,
                             "paper_label": PAPER_LABEL[strategy], "seed": seed, **fields})
                if history is not None:
                    part = history.reindex(columns=["epoch", "loss", "val_loss", "val_auroc"])
                    part.insert(0, "seed", seed)
                    part.insert(0, "strategy", strategy)
                    part.insert(0, "side", side)
                    curves.append(part)
    results = pd.DataFrame(rows).reindex(columns=RESULT_COLUMNS)
    for col in ("epochs", "best_epoch"):
        results[col] = results[col].astype("Int64")
    curves = (pd.concat(curves, ignore_index=True) if curves
              else pd.DataFrame(columns=CURVE_COLUMNS))
    return results, curves


def plot(curves: pd.DataFrame, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    colors = {"original": "black", "ours-compat-original": "tab:blue", "ours-default": "tab:orange"}
    styles = {SEEDS[0]: "-", SEEDS[1]: "--"}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    for ax, (strategy, _) in zip(axes, STRATEGIES, strict=True):
        for (side, seed), part in curves[curves.strategy == strategy].groupby(["side", "seed"]):
            ax.plot(part.epoch, part.val_auroc, styles.get(seed, ":"), color=colors[side],
                    lw=1, label=f"{side} s{seed}")
        ax.set_title(f"{strategy} ({PAPER_LABEL[strategy]})", fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation auROC (macro, 3 tasks)")
    axes[0].set_ylim(0.5, 1.0)
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def curve_distance(curves: pd.DataFrame, a: tuple, b: tuple) -> float:
    """Mean |val_auroc_a - val_auroc_b| over the epochs both runs trained; a, b = (side,
    strategy, seed). NaN when either run is missing."""
    def one(side, strategy, seed):
        part = curves[(curves.side == side) & (curves.strategy == strategy)
                      & (curves.seed == seed)]
        return part.set_index("epoch").val_auroc

    x, y = one(*a), one(*b)
    common = x.index.intersection(y.index)
    if len(common) == 0:
        return math.nan
    return float(np.abs(x[common] - y[common]).mean())


def fmt(value, digits=4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(frame: pd.DataFrame, columns: list[str],
                   digits: dict[str, int] | None = None) -> str:
    digits = digits or {}
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(fmt(row[c], digits.get(c, 4)) for c in columns) + " |")
    return "\n".join(lines)


def paper_sim_check(results: pd.DataFrame, committed: Path) -> list[str]:
    """Our rows against the committed results/paper-sim rows of the same run."""
    if not committed.is_file():
        return [f"({committed} not found)"]
    table = pd.read_csv(committed)
    if "compat" not in table:
        table["compat"] = "default"
    lines = ["| side | strategy | seed | test auROC here | committed | auPRC here | committed | "
             "epochs / best here | committed | identical |", "|" + "---|" * 10]
    for _, row in results[results.side != "original"].iterrows():
        compat = "original" if row.side == "ours-compat-original" else "default"
        hit = table[(table.dataset == "sim200") & (table.strategy == row.strategy)
                    & (table.seed == row.seed) & (table.compat == compat)]
        if hit.empty:
            continue
        ref = hit.iloc[0]
        if row.status != "ok":
            same = "pending"
        else:
            same = "yes" if (float(ref.auroc) == row.test_auroc
                             and float(ref.auprc) == row.test_auprc
                             and int(ref.epochs) == row.epochs
                             and int(ref.best_epoch) == row.best_epoch) else "no"
        lines.append(f"| {row.side} | {row.strategy} | {row.seed} | {fmt(row.test_auroc, 6)} | "
                     f"{float(ref.auroc):.6f} | {fmt(row.test_auprc, 6)} | "
                     f"{float(ref.auprc):.6f} | {fmt(row.epochs)} / {fmt(row.best_epoch)} | "
                     f"{int(ref.epochs)} / {int(ref.best_epoch)} | {same} |")
    return lines


def report(results: pd.DataFrame, curves: pd.DataFrame, committed: Path, old: str) -> str:
    done = int((results.status == "ok").sum())
    lines = ["# Original stack vs benchmark_rc: side-by-side sim200 training", ""]
    if done < len(results):
        lines += [f"**Partial: {done} of {len(results)} runs finished** (the others are "
                  "`pending` in results.csv; rerun the driver to continue, README.md).", ""]
    lines += ["Same data (`benchmark-rc simulate paper --length 200 --seed 1234`: 12,000 / "
              "9,000 / 9,000 sequences, 20% training-label noise), the paper's seeds 1535 and "
              "1780, the paper's protocol (batch 500, Adam lr 1e-3, at most 200 epochs, early "
              "stopping on val_loss with patience 10, the weights of the best validation auROC "
              "kept), one thread. Sides: "
              + "; ".join(f"`{s}` = {SIDE_LABEL[s]}" for s in SIDES) + ".", "",
              "## Runs", "",
              markdown_table(results, ["side", "strategy", "seed", "status", "epochs",
                                       "best_epoch", "best_val_auroc", "test_auroc",
                                       "test_auprc"]),
              "", "Epochs are counted from 0 (`best_epoch`); `epochs` is the number trained.", "",
              "## Means over the seeds", ""]
    ok = results[results.status == "ok"]
    if not ok.empty:
        means = (ok.groupby(["strategy", "side"], sort=False)
                 .agg(n=("seed", "size"), test_auroc=("test_auroc", "mean"),
                      test_auprc=("test_auprc", "mean"), epochs=("epochs", "mean"))
                 .reset_index())
        means["epochs"] = means["epochs"].astype(float)
        lines += [markdown_table(means, ["strategy", "side", "n", "test_auroc", "test_auprc",
                                         "epochs"], {"epochs": 1}), ""]
    lines += ["## Do the curves track the original's?", "",
              "Mean |Δ validation auROC| over the epochs both runs trained. `vs original, same "
              "seed`: each side against the original run of the same seed (the two frameworks "
              "draw different initial weights and batch orders from the same seed, so this is "
              "a seed-noise-sized comparison, not a bitwise one). `original seed vs seed`: the "
              "original's two seeds against each other, the seed noise (and the same for ours). "
              "`compat original vs default`: benchmark_rc's two layer sets from the same seed "
              "(same initial weights and batch order), the effect of the compat layers alone.",
              "",
              "| strategy | seed | compat original vs original | default vs original | "
              "original seed vs seed | ours default seed vs seed | compat original vs default, "
              "same seed |", "|---|---|---|---|---|---|---|"]
    for strategy, _ in STRATEGIES:
        noise = curve_distance(curves, ("original", strategy, SEEDS[0]),
                               ("original", strategy, SEEDS[1]))
        ours_noise = curve_distance(curves, ("ours-default", strategy, SEEDS[0]),
                                    ("ours-default", strategy, SEEDS[1]))
        for seed in SEEDS:
            compat = curve_distance(curves, ("ours-compat-original", strategy, seed),
                                    ("original", strategy, seed))
            default = curve_distance(curves, ("ours-default", strategy, seed),
                                     ("original", strategy, seed))
            layers = curve_distance(curves, ("ours-compat-original", strategy, seed),
                                    ("ours-default", strategy, seed))
            lines.append(f"| {strategy} | {seed} | {fmt(compat)} | {fmt(default)} | "
                         f"{fmt(noise)} | {fmt(ours_noise)} | {fmt(layers)} |")
    lines += ["", "![validation auROC per epoch](curves.png)", "",
              "## ours-default and --compat original against results/paper-sim", "",
              "The committed rows of results/paper-sim/results.csv for the same strategy, seed "
              "and layers (made by `benchmark-rc sweep --preset paper-sim`, one thread, "
              "TF_ENABLE_ONEDNN_OPTS unset). `identical`: test auROC, auPRC, epochs and best "
              "epoch equal to the last digit.", ""]
    lines += paper_sim_check(results, committed)
    lines += ["", MARKER]
    return "\n".join(lines) + old


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the driver's scratch directory (OUT)")
    parser.add_argument("results", help="results directory to write")
    parser.add_argument("--paper-sim", default="results/paper-sim/results.csv",
                        help="committed paper-sim results.csv to compare the ours rows with")
    args = parser.parse_args(argv)
    out, dest = Path(args.out), Path(args.results)
    dest.mkdir(parents=True, exist_ok=True)
    results, curves = collect(out, dest)
    results.to_csv(dest / "results.csv", index=False)
    curves.reindex(columns=CURVE_COLUMNS).to_csv(dest / "curves.csv", index=False)
    if not curves.empty:
        plot(curves, dest / "curves.png")
    old = ""
    if (dest / "report.md").is_file():
        text = (dest / "report.md").read_text()
        if MARKER in text:
            old = text.split(MARKER, 1)[1]
    (dest / "report.md").write_text(report(results, curves, Path(args.paper_sim), old))
    print(f"wrote {dest}: {int((results.status == 'ok').sum())} of {len(results)} runs finished")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

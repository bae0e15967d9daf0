"""docs/results.md's per-seed tables of results/paper-sim, computed from the committed results.csv.

Writes seed_table.md: per dataset, one row per seed with each strategy's test auROC and, in
brackets, the epochs it trained; then the mean ± SD over the seeds finished (n), and how many
runs stopped by epoch 20 (2 × the patience of 10: such a run never left sim1000's val_loss
plateau). Then, for each such run whose per-epoch history is committed (history/<run_id>.csv,
copied from the run directories), the epoch of its lowest val_loss, which early stopping kept
and waited 10 epochs to beat, and the validation auROC at the first and the last epoch.
Only the default-layer rows and the original-stack RCPS (`compat = original`) are
tabulated; the ablation rows (`original-bn`, `original-conv`) are in report/report.md. Run from
the repository root:

    .venv/bin/python results/paper-sim/seed_table.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark_rc.fileio import atomic_write_text
from benchmark_rc.report import load_results, split_compat

HERE = Path(__file__).parent
COLUMNS = {"standard": "standard", "rcaug": "rcaug", "posthoc": "posthoc",
           "conjoined": "conjoined", "rcps": "rcps", "rcps-half": "rcps-half",
           "rcps [original]": "rcps `original`"}
UNTRAINED_EPOCHS = 20


def dataset_table(frame, dataset: str) -> list[str]:
    sub = frame[(frame["dataset"] == dataset) & frame["strategy"].isin(COLUMNS)]
    lines = [f"## {dataset}", "", "| seed | " + " | ".join(COLUMNS.values()) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]
    for seed in sorted(sub["seed"].unique()):
        cells = []
        for strategy in COLUMNS:
            run = sub[(sub["seed"] == seed) & (sub["strategy"] == strategy)]
            cells.append(f"{run['auroc'].iloc[0]:.4f} ({int(run['epochs'].iloc[0])})"
                         if len(run) else "–")
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    means, untrained = [], []
    for strategy in COLUMNS:
        runs = sub[sub["strategy"] == strategy]
        values = runs["auroc"].to_numpy(float)
        sd = f" ± {np.std(values, ddof=1):.4f}" if values.size > 1 else ""
        means.append(f"{values.mean():.4f}{sd} (n = {values.size})" if values.size else "–")
        untrained.append(f"{int((runs['epochs'] <= UNTRAINED_EPOCHS).sum())} of {len(runs)}")
    lines += ["| mean ± SD | " + " | ".join(means) + " |",
              f"| stopped by epoch {UNTRAINED_EPOCHS} | " + " | ".join(untrained) + " |", ""]
    return lines


def untrained_histories(frame) -> list[str]:
    lines = [f"## Runs stopped by epoch {UNTRAINED_EPOCHS}: where their val_loss was lowest", "",
             "| run | epochs | lowest val_loss (epoch) | val auROC, epoch 1 → last |",
             "|---|---|---|---|"]
    for run_id in frame.loc[frame["epochs"] <= UNTRAINED_EPOCHS, "run_id"].sort_values():
        path = HERE / "history" / f"{run_id}.csv"
        if not path.is_file():
            continue
        history = pd.read_csv(path)
        best = int(history["val_loss"].idxmin())
        lines.append(f"| {run_id} | {len(history)} | {history['val_loss'][best]:.4f} "
                     f"({best + 1}) | {history['val_auroc'].iloc[0]:.3f} → "
                     f"{history['val_auroc'].iloc[-1]:.3f} |")
    return lines + [""]


def main() -> None:
    frame = split_compat(load_results(HERE / "results.csv"))
    lines = ["# paper-sim: test auROC per seed (epochs trained)", "",
             "Written by `results/paper-sim/seed_table.py` from `results.csv`.", ""]
    for dataset in sorted(frame["dataset"].unique(), key=lambda d: int(d.removeprefix("sim"))):
        lines += dataset_table(frame, dataset)
    lines += untrained_histories(frame)
    atomic_write_text(HERE / "seed_table.md", "\n".join(lines))


if __name__ == "__main__":
    main()

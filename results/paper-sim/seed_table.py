"""docs/results.md's per-seed tables of results/paper-sim, computed from the committed results.csv.

Writes seed_table.md: per dataset, one row per seed with each strategy's test auROC and, in
brackets, the epochs it trained; then the mean ± SD over the seeds finished (n), and how many
runs stopped by epoch 20 (2 × the patience of 10: such a run never left sim1000's val_loss
plateau). Then, for each such run whose per-epoch history is committed (history/<run_id>.csv,
copied from the run directories), the epoch of its lowest val_loss, which early stopping kept
and waited 10 epochs to beat, and the validation auROC at the first and the last epoch. Last,
every committed history ordered by its epoch-1 val_loss: a run whose first val_loss is as low as
the plateau's (about 0.66-0.67) sets a mark the plateau rarely beats, so patience 10 runs out
within a few epochs of 11 unless the run leaves the plateau by then.
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


def committed_histories(frame) -> dict[str, pd.DataFrame]:
    """The per-epoch history of each run of ``frame`` whose history/<run_id>.csv is committed."""
    paths = {run_id: HERE / "history" / f"{run_id}.csv" for run_id in frame["run_id"]}
    return {run_id: pd.read_csv(path) for run_id, path in paths.items() if path.is_file()}


def lowest_val_loss(epochs: pd.DataFrame) -> str:
    best = int(epochs["val_loss"].idxmin())
    return f"{epochs['val_loss'][best]:.4f} ({best + 1})"


def untrained_histories(frame, histories: dict[str, pd.DataFrame]) -> list[str]:
    lines = [f"## Runs stopped by epoch {UNTRAINED_EPOCHS}: where their val_loss was lowest", "",
             "| run | epochs | lowest val_loss (epoch) | val auROC, epoch 1 → last |",
             "|---|---|---|---|"]
    for run_id in frame.loc[frame["epochs"] <= UNTRAINED_EPOCHS, "run_id"].sort_values():
        if (epochs := histories.get(run_id)) is not None:
            lines.append(f"| {run_id} | {len(epochs)} | {lowest_val_loss(epochs)} | "
                         f"{epochs['val_auroc'].iloc[0]:.3f} → "
                         f"{epochs['val_auroc'].iloc[-1]:.3f} |")
    return lines + [""]


def first_epoch_table(histories: dict[str, pd.DataFrame]) -> list[str]:
    lines = ["## Every committed history, by its epoch-1 val_loss", "",
             "| run | epochs | val_loss, epoch 1 | lowest val_loss (epoch) |", "|---|---|---|---|"]
    for run_id, epochs in sorted(histories.items(), key=lambda item: item[1]["val_loss"].iloc[0]):
        lines.append(f"| {run_id} | {len(epochs)} | {epochs['val_loss'].iloc[0]:.4f} | "
                     f"{lowest_val_loss(epochs)} |")
    return lines + [""]


def main() -> None:
    frame = split_compat(load_results(HERE / "results.csv"))
    lines = ["# paper-sim: test auROC per seed (epochs trained)", "",
             "Written by `results/paper-sim/seed_table.py` from `results.csv`.", ""]
    for dataset in sorted(frame["dataset"].unique(), key=lambda d: int(d.removeprefix("sim"))):
        lines += dataset_table(frame, dataset)
    histories = committed_histories(frame)
    lines += untrained_histories(frame, histories) + first_epoch_table(histories)
    atomic_write_text(HERE / "seed_table.md", "\n".join(lines))


if __name__ == "__main__":
    main()

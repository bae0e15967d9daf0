"""The README's tables of results/koo, computed from the committed per-run files.

Reads filters.csv and attribution.csv (one row per run, written by `benchmark-rc interpret`) and
writes key_table.md: per network x first-layer activation x strategy the mean ± SE over seeds of
the test auROC, filter match fraction, coverage of the true motifs, localisation AUROC and the
attribution AUROC of four methods; then the seed-paired differences exponential − relu (same
network, strategy and seed) with how many seeds each sign holds. Run from the repository root:

    .venv/bin/python results/koo/key_table.py
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark_rc.metrics import mean_se

HERE = Path(__file__).parent
METHODS = ("saliency", "integrated_gradients", "deepshap", "ism")
COLUMNS = {"test_auroc": "test auROC", "match_fraction": "match fraction",
           "coverage": "coverage", "localisation_cnn_auroc": "localisation AUROC",
           **{m: f"attr. AUROC {m.replace('integrated_gradients', 'IG')}" for m in METHODS}}
KEYS = ["arch", "activation", "strategy"]
STRATEGIES = ("standard", "posthoc", "rcps")


def per_run() -> pd.DataFrame:
    """One row per run: the filter scores and the attribution AUROC of each method."""
    filters = pd.read_csv(HERE / "filters.csv")
    attribution = pd.read_csv(HERE / "attribution.csv")
    attribution = attribution[attribution["method"].isin(METHODS)]
    wide = attribution.pivot_table(index="run_id", columns="method", values="auroc")
    frame = filters.merge(wide, left_on="run_id", right_index=True, how="left")
    frame["strategy"] = pd.Categorical(frame["strategy"], STRATEGIES, ordered=True)
    return frame.sort_values(["arch", "activation", "strategy", "seed"])


def _cell(values: pd.Series) -> str:
    stats = mean_se(values.to_numpy(float))
    if stats["n"] > 1:
        return f"{stats['mean']:.3f} ± {stats['se']:.3f}"
    return f"{stats['mean']:.3f} (n={stats['n']})"


def means_table(frame: pd.DataFrame) -> list[str]:
    header = ["network", "first layer", "strategy", "seeds", *COLUMNS.values()]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (arch, activation, strategy), runs in frame.groupby(KEYS, observed=True, sort=False):
        cells = [arch, activation, strategy, str(len(runs))]
        cells += [_cell(runs[c]) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def paired_table(frame: pd.DataFrame) -> list[str]:
    """exponential − relu per (network, strategy, seed)."""
    header = ["network", "strategy", "pairs", *(f"Δ {v}" for v in COLUMNS.values())]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    index = ["arch", "strategy", "seed"]
    by_act = {a: frame[frame["activation"] == a].set_index(index)[list(COLUMNS)]
              for a in ("exponential", "relu")}
    diff = (by_act["exponential"] - by_act["relu"]).dropna(how="all")
    for (arch, strategy), d in diff.groupby(level=["arch", "strategy"], observed=True,
                                            sort=False):
        cells = [arch, strategy, str(len(d))]
        for c in COLUMNS:
            v = d[c].dropna()
            mean = mean_se(v.to_numpy(float))["mean"]
            cells.append(f"{mean:+.3f} ({int((v > 0).sum())}/{len(v)} > 0)")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    frame = per_run()
    lines = ["# results/koo: key tables (written by key_table.py from filters.csv and "
             "attribution.csv)", "",
             "Mean ± SE over seeds (SE = sample SD / √n). Attribution AUROC: Koo's definition, "
             "100 positive test sequences per run.", "", *means_table(frame), "",
             "## Exponential − ReLU, paired by network, strategy and seed", "",
             "Mean of the paired differences, and on how many seeds the difference is "
             "positive.", "", *paired_table(frame), ""]
    (HERE / "key_table.md").write_text("\n".join(lines))
    print(f"wrote {HERE / 'key_table.md'}")


if __name__ == "__main__":
    main()

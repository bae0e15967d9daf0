"""benchmark-rc report: files, figure panels and the paired Wilcoxon test."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from benchmark_rc.cli import main
from benchmark_rc.errors import UserError
from benchmark_rc.report import build_report

LABELS = {"standard": "Standard-NoRCAug", "rcaug": "Standard-RCAug", "posthoc": "CJ-posthoc",
          "rcps": "RCPS"}
SEEDS = (1535, 1780, 2143, 3578, 4652, 6117)
# The report prints the Wilcoxon p with 3 decimals and the median difference with 4: a printed
# value is within half a unit of its last digit (plus float64 round-off when it is a tie).
P_PRINTED_ABS, MEDIAN_PRINTED_ABS = 0.5e-3 + 1e-12, 0.5e-4 + 1e-12


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    rows = []
    for dataset, task in (("simA", "cls"), ("profB", "prof")):
        for strategy, label in LABELS.items():
            for seed in SEEDS:
                row = {"run_id": f"{dataset}-{strategy}-s{seed}", "dataset": dataset,
                       "arch": "sim" if task == "cls" else "bpnet", "strategy": strategy,
                       "paper_label": label, "seed": seed, "auroc": np.nan, "auprc": np.nan,
                       "jsd": np.nan, "pearson": np.nan, "spearman": np.nan,
                       "rc_divergence": 0.0 if strategy in ("posthoc", "rcps")
                       else rng.uniform(0.01, 0.1),
                       "train_seconds": 1.0, "epochs": 3, "best_epoch": 2, "status": "ok",
                       "error": ""}
                if task == "cls":
                    row["auroc"] = 0.8 + 0.01 * SEEDS.index(seed) + rng.uniform(0, 0.01)
                    row["auprc"] = 0.7 + rng.uniform(0, 0.05)
                else:
                    row["jsd"] = 0.5 + rng.uniform(0, 0.05)
                    row["pearson"] = 0.3 + rng.uniform(0, 0.05)
                    row["spearman"] = 0.2 + rng.uniform(0, 0.05)
                rows.append(row)
    failed = dict(rows[0], run_id="simA-rcps-s9999", strategy="rcps", seed=9999, status="failed",
                  error="ValueError: boom", auroc=np.nan)
    rows.append(failed)
    out = tmp_path_factory.mktemp("sweep")
    pd.DataFrame(rows).to_csv(out / "results.csv", index=False)
    return out


@pytest.fixture(scope="module")
def manifest(sweep_dir):
    return build_report(sweep_dir)


def test_report_files_and_panels(sweep_dir, manifest):
    figs = manifest["figures"]
    assert set(figs) == {f"{d}_{kind}" for d in ("simA", "profB")
                         for kind in ("metrics", "rc_divergence", "vs_posthoc")}
    assert figs["simA_metrics"]["panels"] == ["simA: auROC", "simA: auPRC"]
    assert len(figs["profB_metrics"]["panels"]) == 3
    assert len(figs["profB_vs_posthoc"]["panels"]) == 3
    for name, fig in figs.items():
        for ext in ("png", "svg"):
            path = sweep_dir / "report" / "figures" / f"{name}.{ext}"
            assert fig[ext] == str(path) and path.stat().st_size > 1000
        svg = open(fig["svg"], encoding="utf-8").read()
        for title in fig["panels"]:  # the panel titles are real text in the SVG
            assert title.replace("&", "&amp;") in svg
    on_disk = json.loads((sweep_dir / "report" / "figures.json").read_text())
    assert on_disk["simA_metrics"]["png"] == "figures/simA_metrics.png"  # relative to report/
    assert on_disk["simA_metrics"]["panels"] == figs["simA_metrics"]["panels"]
    md = (sweep_dir / "report" / "report.md").read_text()
    assert "| rcps | RCPS | 6 |" in md
    assert "CJ-posthoc" in md and "Failed runs" in md and "simA-rcps-s9999" in md


def test_rebuilt_report_is_byte_identical(sweep_dir, manifest):
    # the figures carry no creation date, so an unchanged results.csv gives unchanged files
    before = {p: p.read_bytes() for p in (sweep_dir / "report").rglob("*") if p.is_file()}
    build_report(sweep_dir)
    after = {p: p.read_bytes() for p in (sweep_dir / "report").rglob("*") if p.is_file()}
    assert after.keys() == before.keys()
    assert [p.name for p in before if after[p] != before[p]] == []


def test_rc_divergence_axis_is_log(sweep_dir, manifest):
    assert manifest["figures"]["simA_rc_divergence"]["yscales"] == ["log"]
    assert manifest["figures"]["simA_metrics"]["yscales"] == ["linear", "linear"]


def test_wilcoxon_matches_scipy(sweep_dir, manifest):
    frame = pd.read_csv(sweep_dir / "results.csv")
    frame = frame[(frame.status == "ok") & (frame.dataset == "simA")]
    base = frame[frame.strategy == "posthoc"].set_index("seed")["auroc"]
    other = frame[frame.strategy == "rcps"].set_index("seed")["auroc"]
    diffs = (other - base).loc[list(SEEDS)].to_numpy()
    expected = wilcoxon(diffs).pvalue
    md = (sweep_dir / "report" / "report.md").read_text()
    line = next(ln for ln in md.splitlines() if ln.startswith("| rcps | auroc |"))
    assert float(line.split("|")[-2]) == pytest.approx(expected, abs=P_PRINTED_ABS)
    assert float(line.split("|")[-3]) == pytest.approx(np.median(diffs), abs=MEDIAN_PRINTED_ABS)


def test_report_cli_and_missing_results(sweep_dir, tmp_path, capsys):
    assert main(["report", str(sweep_dir)]) == 0
    assert "report.md" in capsys.readouterr().out
    with pytest.raises(UserError, match="no results file"):
        build_report(tmp_path)


def test_wilcoxon_not_reported_for_a_single_seed(tmp_path):
    # with one paired seed scipy's wilcoxon returns p = 1.0; the report must show "not computed"
    rows = [{"run_id": f"d-{s}", "dataset": "d", "arch": "sim", "strategy": s,
             "paper_label": LABELS[s], "seed": 1535, "auroc": a, "auprc": a,
             "rc_divergence": 0.0, "status": "ok"}
            for s, a in (("posthoc", 0.8), ("rcps", 0.9))]
    rows.append(dict(rows[0], run_id="d-x", status="failed", error=""))  # empty -> NaN in pandas
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    build_report(tmp_path)
    md = (tmp_path / "report" / "report.md").read_text()
    line = next(ln for ln in md.splitlines() if ln.startswith("| rcps | auroc |"))
    cells = [c.strip() for c in line.split("|")]
    assert cells[3] == "1" and cells[4] == "0.1000" and cells[5] == "–"
    assert "fewer than 2 seed pairs" in md
    assert "- `d-x`: (no error recorded)" in md


def test_metrics_no_run_has_are_left_out(tmp_path):
    # binned-track runs (enformer) have Pearson and Spearman but no JSD: no all-empty column
    rows = [{"run_id": f"t-{s}-{seed}", "dataset": "tracks", "arch": "enformer", "strategy": s,
             "paper_label": LABELS[s], "seed": seed, "jsd": np.nan, "pearson": 0.5 + 0.01 * i,
             "spearman": 0.4, "rc_divergence": 0.0, "status": "ok"}
            for i, (s, seed) in enumerate((("posthoc", 1), ("rcps", 1), ("posthoc", 2),
                                           ("rcps", 2)))]
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    build_report(tmp_path)
    md = (tmp_path / "report" / "report.md").read_text()
    assert "Pearson r" in md and "Spearman r" in md
    assert "JSD" not in md.split("## tracks", 1)[1].split("![", 1)[0]
    assert "| rcps | pearson |" in md and "| rcps | jsd |" not in md


def _write_sweep(directory, rows, datasets):
    directory.mkdir()
    pd.DataFrame(rows).to_csv(directory / "results.csv", index=False)
    (directory / "sweep.json").write_text(json.dumps({"datasets": datasets}))


def test_compare_with_takes_shared_datasets_and_seeds_only(tmp_path):
    sim = {"name": "sim200", "arch": "sim", "simulate": {"kind": "paper", "length": 200}}
    row = {"arch": "sim", "auprc": 0.5, "rc_divergence": 0.0, "status": "ok"}
    new = [dict(row, run_id=f"sim200-irrep-s{seed}", dataset="sim200", strategy="irrep",
                paper_label="Irrep", seed=seed, auroc=0.9 + 0.01 * i)
           for i, seed in enumerate((1, 2))]
    new.append(dict(new[0], run_id="sim200-rcps-s1", strategy="rcps", paper_label="RCPS",
                    auroc=0.5))
    old = [dict(row, run_id=f"{d}-{s}-s{seed}", dataset=d, strategy=s, paper_label=s,
                seed=seed, auroc=0.8)
           for d in ("sim200", "sim1000") for s in ("posthoc", "rcps") for seed in (1, 2, 3)]
    _write_sweep(tmp_path / "new", new, [sim])
    _write_sweep(tmp_path / "old", old, [sim, dict(sim, name="sim1000")])
    assert main(["report", str(tmp_path / "new"), "--compare-with", str(tmp_path / "old")]) == 0
    md = (tmp_path / "new" / "report" / "report.md").read_text()
    # posthoc of seeds 1 and 2 on sim200 taken; seed 3, sim1000 and old rcps (ran here) are not
    assert "2 runs taken (posthoc); 8 left out (dataset or seed not in this sweep), " \
           "2 left out (strategy this sweep ran itself)" in md
    assert "## sim1000" not in md and "3 finished runs from" in md
    line = next(ln for ln in md.splitlines() if ln.startswith("| posthoc | CJ-posthoc |")
                or ln.startswith("| posthoc | posthoc |"))
    assert line.split("|")[3].strip() == "2"
    rcps = next(ln for ln in md.splitlines() if ln.startswith("| rcps | RCPS |"))
    assert rcps.split("|")[3].strip() == "1" and "0.5000" in rcps  # this sweep's own row only
    assert "| irrep | auroc | 2 | 0.1050 |" in md  # paired against the compared posthoc


def test_compare_with_refuses_different_data(tmp_path):
    row = {"run_id": "d-rcps-s1", "dataset": "d", "arch": "sim", "strategy": "rcps",
           "paper_label": "RCPS", "seed": 1, "auroc": 0.9, "auprc": 0.9, "rc_divergence": 0.0,
           "status": "ok"}
    _write_sweep(tmp_path / "a", [row], [{"name": "d", "simulate": {"length": 200}}])
    _write_sweep(tmp_path / "b", [dict(row, strategy="posthoc")],
                 [{"name": "d", "simulate": {"length": 1000}}])
    with pytest.raises(UserError, match="defined differently"):
        build_report(tmp_path / "a", compare_with=[tmp_path / "b"])


def test_a_datasets_figures_do_not_move_when_another_dataset_gains_runs(sweep_dir, manifest,
                                                                         tmp_path):
    # profB sorts before simA; the strip-plot jitter of simA's points must not depend on how
    # many points were drawn before them, or a committed figure changes with unrelated results
    frame = pd.read_csv(sweep_dir / "results.csv")
    extra = frame[(frame["dataset"] == "profB") & (frame["seed"] == SEEDS[0])].copy()
    extra["seed"] = 7777
    extra["run_id"] = extra["run_id"].str.replace(f"s{SEEDS[0]}", "s7777")
    grown = tmp_path / "grown"
    grown.mkdir()
    pd.concat([frame, extra]).to_csv(grown / "results.csv", index=False)
    build_report(grown)
    for name in ("simA_metrics", "simA_rc_divergence", "simA_vs_posthoc"):
        before = (sweep_dir / "report" / "figures" / f"{name}.svg").read_bytes()
        assert (grown / "report" / "figures" / f"{name}.svg").read_bytes() == before, name
    changed = (grown / "report" / "figures" / "profB_metrics.svg").read_bytes()
    assert changed != (sweep_dir / "report" / "figures" / "profB_metrics.svg").read_bytes()

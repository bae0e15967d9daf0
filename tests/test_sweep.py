"""The smoke sweep end to end over every strategy (sim and tiny bpnet), resume after a kill,
failures, shards, CLI.

Float comparisons: rc_divergence is held to the float32 round-off of each run's model at the
scale of its logits (rc_divergence_bar); metrics recomputed from the same weights, batches and
kernels see the same predictions, so they agree to float64 round-off (F64_REL).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import assert_f32_close, f32_rtol, model_terms

import benchmark_rc.training as training
from benchmark_rc import list_strategies
from benchmark_rc.benchmark import (
    RESULT_COLUMNS,
    make_jobs,
    parse_shard,
    read_results,
    resolve_config,
    run_sweep,
)
from benchmark_rc.cli import main
from benchmark_rc.data.pipeline import make_dataset
from benchmark_rc.errors import UserError
from benchmark_rc.presets import get_preset
from benchmark_rc.registry import conjoin, logits_model
from benchmark_rc.strategies import get_strategy

# the smoke preset's datasets: name -> (arch, metric columns its rows must fill)
SMOKE_DATASETS = {"smoke-sim": ("sim", ("auroc", "auprc")),
                  "smoke-profile": ("bpnet", ("jsd", "pearson", "spearman"))}
# the same float64 metric recomputed from identical predictions: another summation order at most
F64_REL = 1e-12
# a non-equivariant model must miss the rc_divergence bar even when it is this much looser
CONTROL_MARGIN = 100


def rc_divergence_bar(model: keras.Model, arch: str, data) -> float:
    """Float32 bound on the rc_divergence of an equivariant ``model`` (0 in exact arithmetic).

    Forward and RC logits differ by at most d = f32_rtol(model_terms) x max|logit| (test split).
    Classification: rc_divergence = mean |logit difference| <= d. Profiles: the JSD of the two
    softmaxes is quadratic in d (<= d**2 / 2 to second order); allow d**2.
    """
    batches = [x for x, _ in make_dataset(data, "test", batch_size=64)]
    if arch == "bpnet":
        logits = [model.predict_on_batch(x)["profile"] for x in batches]
    else:
        logits = [logits_model(model).predict_on_batch(x) for x in batches]
    d = f32_rtol(model_terms(model)) * max(float(np.max(np.abs(b))) for b in logits)
    return d**2 if arch == "bpnet" else d


def _evaluated_model(runs, run_id: str, arch: str, strategy: str) -> keras.Model:
    """The model a run was evaluated as (post-hoc runs: the conjoined base run's model)."""
    config = json.loads((runs / run_id / "config.json").read_text())
    if config.get("posthoc_of"):
        base = keras.models.load_model(runs / config["posthoc_of"] / "model.keras")
        return conjoin(base, arch, get_strategy(strategy).posthoc)
    return keras.models.load_model(runs / run_id / "model.keras")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    summary = run_sweep(get_preset("smoke"), out, progress=False)
    return out, summary


def test_smoke_sweep_runs_every_strategy(smoke):
    out, summary = smoke
    rows = read_results(out / "results.csv")
    assert summary["failed"] == 0, [r["error"] for r in rows if r["status"] != "ok"]
    assert list(rows[0]) == list(RESULT_COLUMNS)
    assert sorted({r["dataset"] for r in rows}) == sorted(SMOKE_DATASETS)
    metric_columns = {c for _, cols in SMOKE_DATASETS.values() for c in cols}
    for name, (arch, filled) in SMOKE_DATASETS.items():
        mine = [r for r in rows if r["dataset"] == name]
        assert sorted(r["strategy"] for r in mine) == sorted(list_strategies()), name
        for r in mine:
            assert r["status"] == "ok" and r["arch"] == arch, r
            assert int(r["epochs"]) == 2
            assert r["paper_label"] == get_strategy(r["strategy"]).paper_label
            values = {c: float(r[c]) for c in filled}
            assert all(np.isfinite(v) for v in values.values()), r
            assert all(r[c] == "" for c in metric_columns - set(filled)), r
            if arch == "bpnet":  # JSD in nats: [0, ln 2]; correlations in [-1, 1]
                assert 0.0 <= values["jsd"] <= np.log(2)
                assert -1.0 <= values["pearson"] <= 1.0 and -1.0 <= values["spearman"] <= 1.0
            else:
                assert 0.0 <= values["auroc"] <= 1.0 and 0.0 <= values["auprc"] <= 1.0


@pytest.mark.parametrize("dataset", sorted(SMOKE_DATASETS))
def test_rc_divergence_zero_to_round_off_for_equivariant_strategies(smoke, dataset):
    """Equivariant models agree with their RC-mapped selves up to float32 round-off (seen:
    <= 3e-7 on logits for sim, <= 1e-13 JSD for bpnet), within rc_divergence_bar; standard
    and rcaug models are not constrained and miss that bar by orders of magnitude (seen: ~0.18
    mean |logit difference| for sim, ~0.02 JSD for bpnet even after 4 steps from random
    weights)."""
    out, _ = smoke
    arch = SMOKE_DATASETS[dataset][0]
    rows = {r["strategy"]: r for r in read_results(out / "results.csv")
            if r["dataset"] == dataset}
    assert sorted(rows) == sorted(list_strategies())
    for strategy, row in rows.items():
        value = float(row["rc_divergence"])
        model = _evaluated_model(out / "runs", row["run_id"], arch, strategy)
        bar = rc_divergence_bar(model, arch, out / "data" / f"{dataset}.h5")
        if get_strategy(strategy).equivariant:
            assert 0.0 <= value <= bar, (dataset, strategy, value, bar)
        else:
            assert value > CONTROL_MARGIN * bar, (dataset, strategy, value, bar)
    assert {s for s in rows if not get_strategy(s).equivariant} == {"standard", "rcaug"}


def test_tiny_profile_dataset_matches_tiny_bpnet(smoke):
    out, _ = smoke
    run = out / "runs" / "smoke-profile-rcps-s1"
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"]["task"] == "profile" and config["protocol"]["name"] == "profile"
    assert config["protocol"]["jitter"] == config["dataset"]["jitter_margin"] > 0
    assert config["model_hparams"]["input_length"] == config["dataset"]["x_length"] - 2 * \
        config["dataset"]["jitter_margin"]
    assert config["model_hparams"]["filters"] == 4 and config["model_hparams"]["n_dilated"] == 2
    model = keras.models.load_model(run / "model.keras")
    params = config["dataset"]["params"]
    inputs = {t.name: t for t in model.inputs}  # a list in the documented order
    assert tuple(inputs["sequence"].shape) == (None, params["seq_len"], 4)
    assert tuple(model.output["profile"].shape) == (None, params["out_len"], 2)


def test_run_directories_and_posthoc_reuse(smoke):
    out, _ = smoke
    runs = out / "runs"
    for strategy in ("standard", "rcps", "conjoined"):
        run = runs / f"smoke-sim-{strategy}-s1"
        for name in ("model.keras", "model.h5", "config.json", "history.csv", "metrics.json"):
            assert (run / name).is_file(), (strategy, name)
        assert not (run / "checkpoint").exists()
    config = json.loads((runs / "smoke-sim-rcps-s1" / "config.json").read_text())
    assert config["config"]["seed"] == 1 and config["protocol"]["epochs"] == 2
    assert config["versions"]["tensorflow"] and config["versions"]["keras"]
    # the switch that picks TensorFlow's CPU kernels is recorded with the versions
    assert config["versions"]["TF_ENABLE_ONEDNN_OPTS"] == os.environ.get("TF_ENABLE_ONEDNN_OPTS",
                                                                         "unset")
    assert config["dataset"]["task"] == "classification"
    assert len(pd.read_csv(runs / "smoke-sim-rcps-s1" / "history.csv")) == 2
    # posthoc rows are the rcaug model conjoined, not retrained
    rows = {r["strategy"]: r for r in read_results(out / "results.csv")}
    for strategy in ("posthoc", "posthoc-prob"):
        cfg = json.loads((runs / f"smoke-sim-{strategy}-s1" / "config.json").read_text())
        assert cfg["posthoc_of"] == "smoke-sim-rcaug-s1"
        assert rows[strategy]["train_seconds"] == rows["rcaug"]["train_seconds"]
        assert not (runs / f"smoke-sim-{strategy}-s1" / "history.csv").exists()


def test_saved_keras_model_keeps_adam_optimizer(smoke):
    out, _ = smoke
    model = keras.models.load_model(out / "runs" / "smoke-sim-rcps-s1" / "model.keras")
    assert type(model.optimizer).__name__ == "Adam"
    h5 = keras.models.load_model(out / "runs" / "smoke-sim-rcps-s1" / "model.h5")
    x = np.random.default_rng(0).random((4, 200, 4)).astype(np.float32)
    # the same weights (stored bit for bit) in a graph each loader builds itself: allow the
    # model's round-off should the two pick other kernels or fusions
    assert_f32_close(h5.predict(x, verbose=0), model.predict(x, verbose=0),
                     rtol=f32_rtol(model_terms(model)))


def test_rerun_skips_finished_runs(smoke):
    out, _ = smoke
    before = (out / "results.csv").read_text()
    summary = run_sweep(get_preset("smoke"), out, progress=False)
    assert summary["skipped"] == len(SMOKE_DATASETS) * len(list_strategies())
    assert summary["ok"] == 0
    assert (out / "results.csv").read_text() == before


def test_kill_then_resume_no_lost_or_duplicated_rows(smoke, tmp_path, monkeypatch):
    data = smoke[0] / "data" / "smoke-sim.h5"
    config = get_preset("smoke")
    config["datasets"] = [dict(config["datasets"][0], path=str(data))]  # only smoke-sim
    assert config["datasets"][0]["name"] == "smoke-sim"
    config["strategies"] = ["standard", "posthoc", "rcps"]
    config["train"]["epochs"] = 1
    real = training.evaluate_model
    calls = {"n": 0}

    def killed_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated kill")
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "evaluate_model", killed_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(config, tmp_path, progress=False)
    assert len(read_results(tmp_path / "results.csv")) == 1

    def failing_rcps(model, *args, **kwargs):
        if "rcps" in model.name:
            raise ValueError("boom")
        return real(model, *args, **kwargs)

    monkeypatch.setattr(training, "evaluate_model", failing_rcps)
    summary = run_sweep(config, tmp_path, progress=False)
    assert summary["failed"] == 1 and summary["ok"] == 1 and summary["skipped"] == 1
    rows = read_results(tmp_path / "results.csv")
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and "ValueError: boom" in failed[0]["error"]
    # the error names where it was raised, but not by this machine's absolute path
    assert "test_sweep.py:" in failed[0]["error"]
    assert str(Path(__file__).resolve().parent) not in failed[0]["error"]

    monkeypatch.setattr(training, "evaluate_model", real)
    summary = run_sweep(config, tmp_path, progress=False)
    assert summary["ok"] == 1 and summary["skipped"] == 2 and summary["failed"] == 0
    ok = [r["run_id"] for r in read_results(tmp_path / "results.csv") if r["status"] == "ok"]
    assert sorted(ok) == [f"smoke-sim-{s}-s1" for s in ("posthoc", "rcps", "standard")]


def test_jobs_and_shards():
    config = resolve_config({"datasets": [{"name": "d", "arch": "sim", "path": "x.h5"}],
                             "strategies": ["standard", "posthoc", "posthoc-prob", "rcps"],
                             "seeds": [1, 2]})
    jobs = make_jobs(config)
    assert [(j.train_strategy, j.seed, j.rows) for j in jobs] == [
        ("rcaug", 1, ["posthoc", "posthoc-prob"]), ("standard", 1, ["standard"]),
        ("rcps", 1, ["rcps"]), ("rcaug", 2, ["posthoc", "posthoc-prob"]),
        ("standard", 2, ["standard"]), ("rcps", 2, ["rcps"])]
    shards = [jobs[i::3] for i in range(3)]
    assert sorted(id(j) for s in shards for j in s) == sorted(id(j) for j in jobs)
    assert parse_shard("1/3") == (1, 3) and parse_shard(None) == (0, 1)
    with pytest.raises(UserError):
        parse_shard("3/3")
    with pytest.raises(UserError, match="--data"):
        resolve_config(get_preset("paper-binary"))
    binary = resolve_config(get_preset("paper-binary"), {"CTCF": "ctcf.h5"})
    assert [d["name"] for d in binary["datasets"]] == ["CTCF"]


def test_evaluate_and_conjoin_cli(smoke, tmp_path, capsys):
    out, _ = smoke
    data = str(out / "data" / "smoke-sim.h5")
    rcaug = out / "runs" / "smoke-sim-rcaug-s1"
    assert main(["evaluate", "--model", str(rcaug), "--data", data,
                 "--out", str(tmp_path / "m.json")]) == 0
    scores = json.loads((tmp_path / "m.json").read_text())
    stored = json.loads((rcaug / "metrics.json").read_text())
    # same weights (saved bit for bit), batches and kernels as the run's own evaluation: the
    # same logits, so the same float64 auROC (a near tie cannot flip)
    assert scores["auroc"] == pytest.approx(stored["auroc"], rel=F64_REL)
    assert main(["conjoin", "--model", str(rcaug / "model.keras"), "--out",
                 str(tmp_path / "cj")]) == 0
    assert main(["evaluate", "--model", str(tmp_path / "cj" / "model.h5"), "--data", data]) == 0
    printed = capsys.readouterr().out
    conj = json.loads(printed[printed.rindex("{"):printed.rindex("}") + 1])
    posthoc = json.loads((out / "runs" / "smoke-sim-posthoc-s1" / "metrics.json").read_text())
    assert conj["auroc"] == pytest.approx(posthoc["auroc"], rel=F64_REL)
    conjoined = keras.models.load_model(tmp_path / "cj" / "model.h5")
    assert conj["rc_divergence"] <= rc_divergence_bar(conjoined, "sim", data)
    # a post-hoc run directory records its arch under base_config
    posthoc_dir = out / "runs" / "smoke-sim-posthoc-s1"
    assert main(["conjoin", "--model", str(posthoc_dir), "--mode", "max", "--out",
                 str(tmp_path / "cj2.keras")]) == 0
    assert (tmp_path / "cj2.keras").is_file()


def test_report_of_smoke_sweep(smoke):
    from benchmark_rc.report import build_report

    out, _ = smoke
    manifest = build_report(out)
    assert set(manifest["figures"]) == {f"{d}_{kind}" for d in SMOKE_DATASETS
                                        for kind in ("metrics", "rc_divergence", "vs_posthoc")}
    for d, (_, metric_columns) in SMOKE_DATASETS.items():
        assert len(manifest["figures"][f"{d}_vs_posthoc"]["panels"]) == len(metric_columns)


def test_failed_row_names_package_code_relative_to_the_package():
    from benchmark_rc.architectures.kit import check_compat
    from benchmark_rc.benchmark import _error_text
    from benchmark_rc.errors import UserError

    with pytest.raises(UserError) as caught:
        check_compat("keras2")
    text = _error_text(caught.value)
    assert text.startswith("UserError: compat must be one of")
    assert "(at benchmark_rc/architectures/kit.py:" in text

"""Interpretability scoring (benchmark_rc.interpret.scoring, `benchmark-rc interpret`): Koo's and
Prakash's definitions on hand-made maps, the ground truth each dataset provides, RC-consistency
of attribution maps, SE and paired tests across seeds, GradCAM at every convolution layer of
standard / RCPS / conjoined models, and a tiny sweep end to end."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from conftest import F32_EPS

from benchmark_rc import metrics
from benchmark_rc.attribution.scoring import rc_consistency, rc_relative_error
from benchmark_rc.errors import UserError
from benchmark_rc.interpret import scoring
from benchmark_rc.interpret.scoring import DEFINITIONS

KOO, PRAKASH = DEFINITIONS["koo"], DEFINITIONS["prakash"]


def one_hot(n: int, length: int, seed: int) -> np.ndarray:
    return np.eye(4, dtype=np.float32)[np.random.default_rng(seed).integers(0, 4, (n, length))]


def rc(a: np.ndarray) -> np.ndarray:
    """Reverse complement written out: reverse positions, complement A<->T, C<->G (ACGT order)."""
    return np.ascontiguousarray(a[:, ::-1][..., [3, 2, 1, 0]])


def motifs_at(n: int, length: int, spans: list[tuple[int, int]]) -> np.ndarray:
    truth = np.zeros((n, length), bool)
    for a, b in spans:
        truth[:, a:b] = True
    return truth


# ------------------------------------------------------------------------------- definitions
def test_prakash_metrics_known_answers():
    x = one_hot(3, 40, 0)
    truth = motifs_at(3, 40, [(5, 12), (25, 30)])
    prevalence = truth[0].mean()
    # perfect: attribution only on motif bases (any sign: Prakash takes |sum over channels|)
    perfect = x * np.where(truth, -2.0, 0.0)[..., None]
    got = PRAKASH.score(perfect, x, truth)
    assert (got["auroc"], got["auprc"], got["n"]) == (1.0, 1.0, 3)
    assert got["auroc_pooled"] == 1.0 and got["auprc_pooled"] == 1.0
    assert got["motif_fraction"] == 1.0
    # reversed: attribution only off the motifs
    reverse = x * np.where(truth, 0.0, 1.0)[..., None]
    got = PRAKASH.score(reverse, x, truth)
    assert got["auroc"] == 0.0 and got["motif_fraction"] == 0.0
    assert got["auprc"] == pytest.approx(prevalence, rel=1e-12)  # every position tied last
    # constant: AUROC 0.5, average precision = prevalence
    got = PRAKASH.score(np.ones_like(x), x, truth)
    assert got["auroc"] == 0.5
    assert got["auprc"] == pytest.approx(prevalence, rel=1e-12)
    assert got["auroc_se"] == 0.0  # identical sequences: SD 0
    assert got["motif_fraction"] == pytest.approx(prevalence, rel=1e-12)


def test_koo_and_prakash_differ_on_constructed_maps():
    x = one_hot(2, 30, 1)
    truth = motifs_at(2, 30, [(10, 18)])
    # strongly negative at the observed base on the motifs: Koo (signed) ranks them last,
    # Prakash (absolute) first
    negative = x * np.where(truth, -1.0, 0.1)[..., None]
    assert KOO.score(negative, x, truth)["auroc"] == 0.0
    assert PRAKASH.score(negative, x, truth)["auroc"] == 1.0
    # contribution only on non-observed channels (as with shuffled references): Koo reads the
    # observed base (all 0 here), Prakash sums the channels
    hidden = (1.0 - x) * np.where(truth, 1.0, 0.0)[..., None]
    assert KOO.score(hidden, x, truth)["auroc"] == 0.5
    assert PRAKASH.score(hidden, x, truth)["auroc"] == 1.0
    # constant map: trapezoidal PR area (Koo) = (1 + prevalence) / 2, AP (Prakash) = prevalence
    prevalence = truth[0].mean()
    assert KOO.score(np.ones_like(x), x, truth)["auprc"] == pytest.approx((1 + prevalence) / 2)
    assert PRAKASH.score(np.ones_like(x), x, truth)["auprc"] == pytest.approx(prevalence)
    # ISM maps: Koo = L2 norm of the changes, Prakash = |centred value at the observed base|.
    # On the motif, one mutation raises the output by 1 and one lowers it by 1 (norm sqrt 2,
    # centred value 0); before it every mutation raises it by 0.5 (norm 0.87, centred 0.375)
    ism = np.zeros_like(x)
    for n in range(2):
        for p in range(30):
            others = np.nonzero(x[n, p] == 0)[0]
            if truth[n, p]:
                ism[n, p, others[0]], ism[n, p, others[1]] = 1.0, -1.0
            elif p < 10:
                ism[n, p, others] = 0.5
    assert KOO.score(ism, x, truth, mutagenesis=True)["auroc"] == 1.0
    # Prakash: motif bases tie with the 12 zero background bases, below the 10 others
    assert PRAKASH.score(ism, x, truth, mutagenesis=True)["auroc"] == pytest.approx(6 / 22)


def test_per_sequence_and_pooled_differ():
    x = one_hot(2, 20, 2)
    truth = np.zeros((2, 20), bool)
    truth[0, 2:5] = truth[1, 10:14] = True
    scores = np.where(truth, 1.0, 0.5)
    scores[1] *= 0.1  # the second sequence's motif scores fall below the first's background
    got = PRAKASH.score(x * scores[..., None], x, truth)
    assert got["auroc"] == 1.0 and got["n"] == 2
    assert got["auroc_pooled"] < 1.0
    assert np.isfinite(got["auroc_se"]) and got["auroc_se"] == 0.0
    with pytest.raises(UserError, match="both motif and background"):
        PRAKASH.score(x, x, np.zeros((2, 20), bool))
    with pytest.raises(UserError, match="must both be"):
        scoring.sequence_metrics(np.zeros((2, 20)), np.zeros((2, 21), bool),
                                 scoring.average_precision)


# ----------------------------------------------------------------------------- RC-consistency
def test_rc_consistency_of_equivariant_and_other_maps():
    rng = np.random.default_rng(3)
    attr = rng.normal(size=(4, 25, 4))
    # an RC-equivariant method: the map of RC(x) is the RC of the map of x
    assert rc_consistency(attr, rc(attr)) == pytest.approx(1.0, abs=1e-12)
    assert rc_relative_error(attr, rc(attr)) == pytest.approx(0.0, abs=1e-12)
    # a scaled copy: correlation 1, the relative error sees the scale
    assert rc_consistency(attr, 2 * rc(attr)) == pytest.approx(1.0, abs=1e-12)
    assert rc_relative_error(attr, 2 * rc(attr)) == pytest.approx(2 / 3, rel=1e-12)
    # a map that does not follow the strand
    other = rng.normal(size=attr.shape)
    assert abs(rc_consistency(attr, other)) < 0.5
    assert rc_relative_error(attr, other) > 1.0
    assert rc_relative_error(attr, -rc(attr)) == pytest.approx(2.0, rel=1e-12)
    assert np.isnan(rc_relative_error(np.zeros((2, 5, 4)), np.zeros((2, 5, 4))))


# ------------------------------------------------------------------------ SE and paired tests
def test_mean_se_and_paired_test_on_constructed_seeds():
    from scipy import stats

    got = metrics.mean_se([1.0, 2.0, 3.0, 4.0, np.nan])
    sd = np.sqrt(((np.array([1, 2, 3, 4]) - 2.5) ** 2).sum() / 3)
    assert got["n"] == 4 and got["mean"] == 2.5
    assert got["sd"] == pytest.approx(sd, rel=1e-12)
    assert got["se"] == pytest.approx(sd / 2, rel=1e-12)
    assert np.isnan(metrics.mean_se([0.7])["se"])

    base = np.array([0.50, 0.60, 0.55, 0.70, 0.65])
    diff = np.array([0.01, 0.03, 0.02, 0.05, 0.04])
    test = scoring.paired_test(base + diff, base)
    t = diff.mean() / (diff.std(ddof=1) / np.sqrt(5))
    assert test["n"] == 5 and test["mean_diff"] == pytest.approx(0.03, rel=1e-9)
    assert test["t_p"] == pytest.approx(2 * stats.t.sf(t, df=4), rel=1e-6)
    assert test["wilcoxon_p"] == pytest.approx(2 / 2 ** 5, rel=1e-9)  # exact: all positive
    assert "cannot reach" in test["note"] and "underpowered" not in test["note"]
    few = scoring.paired_test([1.0, 2.0, 3.0], [0.5, 1.0, 2.9])
    assert few["n"] == 3 and "underpowered" in few["note"]
    same = scoring.paired_test([1.0, 2.0], [1.0, 2.0])
    assert same["mean_diff"] == 0.0 and np.isnan(same["t_p"]) and np.isnan(same["wilcoxon_p"])
    with pytest.raises(UserError, match="differ in length"):
        scoring.paired_test([1.0], [1.0, 2.0])


def test_aggregate_tables_from_per_run_rows():
    rows = []
    for strategy, shift in (("standard", 0.0), ("rcps", 0.1)):
        for seed, noise in zip(("1", "2", "3"), (0.00, 0.02, 0.01), strict=True):
            for method, level in (("ism", 0.8), ("saliency", 0.6)):
                for definition in ("koo", "prakash"):
                    rows.append({"dataset": "d", "arch": "a", "activation": "relu",
                                 "strategy": strategy, "seed": seed, "method": method,
                                 "definition": definition, "auroc": level + shift + noise,
                                 "auprc": level / 2 + noise, "rc_consistency": 0.5 + shift})
    files = scoring.aggregate(pd.DataFrame(rows), title="t")
    summary = pd.read_csv(io.StringIO(files["summary.csv"]))
    one = summary[(summary["strategy"] == "rcps") & (summary["method"] == "ism")
                  & (summary["definition"] == "koo")].iloc[0]
    values = np.array([0.9, 0.92, 0.91])
    assert one["auroc_mean"] == pytest.approx(values.mean(), rel=1e-9)
    assert one["auroc_se"] == pytest.approx(values.std(ddof=1) / np.sqrt(3), rel=1e-9)
    assert one["auroc_n"] == 3
    tests = pd.read_csv(io.StringIO(files["paired_tests.csv"]))
    auroc = tests[(tests["metric"] == "auroc") & (tests["method"] == "ism")]
    assert set(auroc["strategy"]) == {"rcps"} and (auroc["n"] == 3).all()
    assert auroc["mean_diff"].to_numpy() == pytest.approx([0.1, 0.1], rel=1e-9)
    assert auroc["note"].str.contains("underpowered").all()
    ranking = pd.read_csv(io.StringIO(files["ranking.csv"]))
    first = ranking[(ranking["rank"] == 1) & (ranking["metric"] == "auroc")]
    assert set(first["method"]) == {"ism"} and len(first) == 4  # 2 strategies x 2 definitions
    md = files["attribution.md"]
    for heading in ("Attribution AUROC (Koo)", "Attribution AUPRC (Prakash)",
                    "RC-consistency", "Method ranking", "Paired tests against standard"):
        assert heading in md
    assert "ism (0.910) > saliency (0.710)" in md


# ------------------------------------------------------------------------------ ground truth
def _handmade(path, generator: str):
    """Two labelled tasks named by motif (m1, m2); sequence 0 holds both motifs, sequence 1 only
    m2; m1 is a one-column-uniform PWM so one of its columns has no information."""
    from benchmark_rc.data.hdf5 import write_dataset

    x = one_hot(3, 30, 4).astype(np.uint8)
    y = np.array([[1, 1], [0, 1], [1, 0]], np.float32)
    pwms = {"m1": [[1, 0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0, 0, 1, 0]],
            "m2": [[0, 1, 0, 0], [0, 0, 0, 1]]}
    table = {"seq": [0, 0, 1], "start": [3, 20, 5], "end": [6, 22, 7],
             "name": ["m1", "m2", "m2"], "strand": [1, -1, 1]}
    split = {"x": x, "y": y, "motifs": table}
    return write_dataset(path, "classification", {"train": split, "valid": split, "test": split},
                         {"generator": generator, "labels": ["m1", "m2"]},
                         attrs={"motif_pwms": json.dumps(pwms)})


def test_ground_truth_of_each_definition(tmp_path):
    path = _handmade(tmp_path / "d.h5", "simulate_paper")
    assert scoring.ground_truth_of(path) is scoring.EMBEDDED_MOTIFS
    data = scoring.evaluation_set(path, "test", 5, output=0, definitions=("koo", "prakash"))
    assert list(data.rows) == [0, 2] and data.missing == []
    koo, prakash = data.truth["koo"], data.truth["prakash"]
    # Koo: informative columns of every embedded motif (m1's uniform middle column is not)
    assert list(np.nonzero(koo[0])[0]) == [3, 5, 20, 21]
    # Prakash: every base of the explained task's motif (m1) only
    assert list(np.nonzero(prakash[0])[0]) == [3, 4, 5]
    assert not koo[1].any() and not prakash[1].any()
    on_m2 = scoring.evaluation_set(path, "test", 5, output=1, definitions=("prakash",))
    assert list(on_m2.rows) == [0, 1]
    assert list(np.nonzero(on_m2.truth["prakash"][1])[0]) == [5, 6]
    # the realistic simulation stores its re-scanned hits in the same table
    real = _handmade(tmp_path / "r.h5", "simulate_realistic")
    assert scoring.ground_truth_of(real) is scoring.EMBEDDED_MOTIFS


def test_a_dataset_kind_plugs_in_its_ground_truth(tmp_path, monkeypatch):
    class HitsOnly:
        def information_content(self, path, split, rows, n_split, length):
            return None

        def motif_positions(self, path, split, rows, n_split, length, output):
            mask = np.zeros((len(rows), length), bool)
            mask[:, :4] = True
            return mask

    monkeypatch.setitem(scoring.GROUND_TRUTH, "simulate_custom", HitsOnly())
    path = _handmade(tmp_path / "c.h5", "simulate_custom")
    data = scoring.evaluation_set(path, "test", 5, output=0, definitions=("koo", "prakash"))
    assert data.missing == ["koo"] and set(data.truth) == {"prakash"}
    assert data.truth["prakash"][:, :4].all() and not data.truth["prakash"][:, 4:].any()
    with pytest.raises(UserError, match="no test sequence is positive"):
        scoring.evaluation_set(_zero_labels(tmp_path / "z.h5"), "test", 5)


def _zero_labels(path):
    from benchmark_rc.data.hdf5 import write_dataset

    split = {"x": one_hot(2, 10, 5).astype(np.uint8), "y": np.zeros((2, 1), np.float32)}
    return write_dataset(path, "classification", {"train": split, "valid": split, "test": split},
                         {"generator": "none"})


# -------------------------------------------------------------------------- GradCAM per layer
@pytest.fixture(scope="module")
def tiny_models():
    from benchmark_rc import build_model

    return {s: build_model("koo-cnn-dist", s, filters=4, seed=0)
            for s in ("standard", "rcps", "conjoined")}


def test_gradcam_sites_of_standard_rcps_and_conjoined(tiny_models):
    import keras

    from benchmark_rc.architectures import get_architecture
    from benchmark_rc.attribution.methods import get_method
    from benchmark_rc.layers import RevCompConv1D
    from benchmark_rc.strategies import get_strategy

    sites = {s: scoring.conv_sites(m) for s, m in tiny_models.items()}
    assert [len(v) for v in sites.values()] == [4, 4, 4]  # CNN-dist has four conv layers
    assert not any(site.shared for site in sites["standard"] + sites["rcps"])
    assert all(isinstance(site.network.get_layer(site.name), RevCompConv1D)
               for site in sites["rcps"])
    assert all(site.shared and site.network is not tiny_models["conjoined"]
               and isinstance(site.network, keras.Model) for site in sites["conjoined"])
    posthoc = get_strategy("posthoc").after_training(tiny_models["standard"],
                                                     get_architecture("koo-cnn-dist"))
    assert [s.name for s in scoring.conv_sites(posthoc)] == [s.name for s in sites["standard"]]
    assert all(s.shared for s in scoring.conv_sites(posthoc))

    jobs = scoring.attribution_jobs(tiny_models["rcps"], ["saliency", "gradcam"])
    labels = [j.label for j in jobs]
    assert labels[0] == "saliency" and len(labels) == 1 + 2 * 4
    assert f"gradcam@{sites['rcps'][0].name}" in labels
    assert f"gradcam-position@{sites['rcps'][3].name}" in labels

    x = one_hot(3, 200, 6)
    full = {s: [site for site in v if site.network.get_layer(site.name).output.shape[1] == 200]
            for s, v in sites.items()}
    assert all(len(v) == 2 for v in full.values())  # conv1, conv2 ("same" padding)
    gradcam = get_method("gradcam")
    consistency = {}
    for strategy, model in tiny_models.items():
        job = scoring.AttributionJob(gradcam, {"variant": "textbook"}, full[strategy][0])
        attr = job(model, x, None, output=0, batch_size=None)
        assert attr.shape == x.shape and (attr >= 0).all() and np.all(attr[x == 0] == 0)
        consistency[strategy] = rc_consistency(attr, job(model, rc(x), None, output=0,
                                                         batch_size=None))
    assert consistency["conjoined"] == pytest.approx(1.0, abs=1e3 * F32_EPS)
    assert consistency["rcps"] == pytest.approx(1.0, abs=1e3 * F32_EPS)
    assert consistency["standard"] < 0.99


# ------------------------------------------------------------------------------- end to end
def test_interpret_command_on_a_tiny_sweep(tmp_path):
    from benchmark_rc.attribution.methods import method_names
    from benchmark_rc.benchmark import read_results, run_sweep
    from benchmark_rc.cli import main

    config = {
        "datasets": [{"name": "task3", "arch": "koo-cnn-dist",
                      "simulate": {"kind": "koo-task3", "num_seqs": 60},
                      "hparams": {"activation": "exponential", "filters": 4}}],
        "strategies": ["standard", "rcps", "conjoined"],
        "seeds": [1, 2],
        "train": {"epochs": 1, "batch_size": 16, "steps_per_epoch": 1, "patience": 0},
        "evaluate": {"split": "test"},
    }
    run_sweep(config, tmp_path, progress=False)
    assert all(r["status"] == "ok" for r in read_results(tmp_path / "results.csv"))
    out = tmp_path / "interpret"
    args = ["interpret", "--sweep", str(tmp_path), "--out", str(out), "--n-seqs", "3",
            "--n-refs", "2", "--steps", "2", "--no-filters"]
    assert main(args) == 0
    attr = pd.read_csv(out / "attribution.csv")
    assert set(attr["definition"]) == {"koo", "prakash"}
    assert set(attr["base_method"]) == set(method_names(distinct=True))  # ism_fast: ISM's values, not twice
    gradcams = {m for m in attr["method"] if m.startswith("gradcam")}
    assert len(gradcams) == 2 * 4  # 2 variants x CNN-dist's 4 conv layers
    per_run = attr.groupby(["run_id", "definition"]).size()
    assert len(per_run) == 6 * 2 and (per_run == len(method_names(distinct=True)) - 1 + 8).all()
    assert attr["auroc"].between(0, 1).all() and attr["auprc"].between(0, 1).all()
    # the correlation is undefined only for an all-zero map (a GradCAM whose ReLU is 0 on
    # every base), which the relative error skips too
    assert attr["rc_consistency"].isna().equals(attr["rc_error"].isna())
    assert attr[attr["base_method"] != "gradcam"]["rc_consistency"].notna().all()
    # RC-equivariant models give RC-consistent maps (GradCAM at every layer, pooled ones
    # included), the standard one does not
    exact = attr[attr["base_method"].isin(["saliency", "ism", "gradcam"])].dropna(
        subset=["rc_consistency"])
    equiv = exact[exact["strategy"] != "standard"]
    assert (equiv["rc_consistency"] > 1 - 1e-4).all() and (equiv["rc_error"] < 1e-2).all()
    assert (exact[exact["strategy"] == "standard"]["rc_consistency"] < 0.99).all()

    summary = pd.read_csv(out / "summary.csv")
    assert (summary["auroc_n"] == 2).all()
    tests = pd.read_csv(out / "paired_tests.csv")
    assert set(tests["strategy"]) == {"rcps", "conjoined"}
    scored = tests["metric"].isin(["auroc", "auprc"])
    assert (tests[scored]["n"] == 2).all()  # rc_consistency: all-zero GradCAM maps drop out
    assert tests["note"].str.contains("underpowered").all()
    ranking = pd.read_csv(out / "ranking.csv")
    assert sorted(set(ranking["rank"])) == list(range(1, len(method_names(distinct=True)) + 8))
    table = (out / "table.md").read_text()
    for heading in ("Attribution AUROC (Koo)", "Attribution AUPRC (Prakash)", "RC-consistency",
                    "Method ranking", "Paired tests against standard"):
        assert heading in table
    cached = json.loads(next((out / "runs").glob("*.json")).read_text())
    assert cached["params"]["definitions"] == ["koo", "prakash"] and cached["params"]["rc"]
    stamp = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    assert main(args) == 0  # resumes from the per-run files: nothing recomputed
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())

    # a per-run file of the Koo-only version resumes under the settings it was made with
    legacy = tmp_path / "legacy"
    old = legacy / "runs" / "task3-standard-s1.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({
        "params": {"methods": ["saliency"], "n_seqs": 3, "filters": False,
                   "filter_seqs": None, "output": 0, "logits": True, "n_refs": 2, "seed": 0,
                   "steps": 2, "split": "test"},
        "attribution": [{"method": "saliency", "auroc": 0.123, "auprc": 0.456, "n": 3}],
        "filters": {}}))
    stamp = old.stat().st_mtime_ns
    assert main([*args[:4], str(legacy), *args[5:], "--methods", "saliency",
                 "--definitions", "koo", "--no-rc"]) == 0
    assert old.stat().st_mtime_ns == stamp
    again = pd.read_csv(legacy / "attribution.csv").set_index("run_id")
    assert again.at["task3-standard-s1", "auroc"] == 0.123
    assert set(again["definition"]) == {"koo"} and len(again) == 6


def test_interpret_presets():
    from benchmark_rc.benchmark import make_jobs, resolve_config
    from benchmark_rc.presets import PAPER_SEEDS, get_preset

    full, cpu = get_preset("interpret"), get_preset("interpret-cpu")
    assert full["strategies"] == ["standard", "rcaug", "posthoc", "conjoined", "rcps"]
    assert full["seeds"] == PAPER_SEEDS[:5] and len(cpu["seeds"]) < 5
    assert cpu["strategies"] == full["strategies"]
    def archs(config: dict) -> set[tuple[str, str]]:
        return {(d["simulate"]["kind"], d["arch"]) for d in config["datasets"]}

    common = {("paper", "sim"), ("koo-task3", "koo-cnn-dist"), ("realistic", "basset")}
    assert archs(cpu) == common
    assert archs(full) == common | {("realistic", "beluga")}  # Prakash's two models
    # epochs capped but for sim200 (its protocol early-stops within ~1-2 min on a CPU)
    assert all(d["train"]["epochs"] <= 12 for d in cpu["datasets"] if d["arch"] != "sim")
    # every realistic model trains on the same, learnable realistic data (results comparable)
    for config in (full, cpu):
        real = [d for d in config["datasets"] if d["simulate"]["kind"] == "realistic"]
        assert real and all(d["simulate"] == {"kind": "realistic", "num_seqs": 8000,
                                              "mean_motifs": 4.0} for d in real)
    assert len(cpu["datasets"]) < len(full["datasets"])
    for config in (full, cpu):
        assert make_jobs(resolve_config(config))

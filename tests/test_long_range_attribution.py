"""Distal-enhancer attribution of the long-range simulation (benchmark_rc.interpret.long_range):
the grouping by reach and the enrichment on hand-made maps, and on tiny enformer models: the
conv-only ablation gives the enhancers beyond its reach exactly zero attribution, the model with
attention does not."""

from pathlib import Path

import numpy as np
import pytest

from benchmark_rc.data.simulation_long_range import simulate_long_range
from benchmark_rc.interpret.long_range import (
    conv_reach,
    distal_evaluation_set,
    enhancer_enrichment,
    reach_groups,
    score_distal,
)
from benchmark_rc.registry import build_model

# 512 bp in 16-bp bins (n_tower 3), 28 of 32 bins kept, as tests/test_enformer.py's TINY
TINY = {"input_length": 512, "n_tower": 3, "output_bins": 28, "filters": 8, "heads": 2,
        "key_size": 4, "position_features": 12, "num_tracks": 2, "num_stranded": 1}


def table(seq, start, end, role):
    return {"seq": np.asarray(seq), "start": np.asarray(start), "end": np.asarray(end),
            "role": np.asarray(role)}


def test_reach_groups_by_hand():
    # 100 bp, explained centre 40..60, reach 10: near within 30..70, far outside
    t = table([0] * 4, [32, 25, 5, 75], [40, 35, 20, 90], ["enhancer"] * 4)
    assert list(reach_groups(t, 100, 20, 10)) == ["near", "straddling", "far", "far"]


def test_enhancer_enrichment_by_hand():
    scores = np.ones((2, 50))
    t = table([0, 0, 1, 1], [20, 0, 10, 40], [26, 5, 15, 45],
              ["promoter", "enhancer", "enhancer", "enhancer"])
    scores[0, 20:26] = 7.0  # the promoter: neither enhancer nor background
    scores[0, 0:5] = 3.0    # a far enhancer at 3x background
    scores[1, 10:15] = 0.0  # a near enhancer the model ignores
    scores[1, 40:45] = 2.0  # a far enhancer at 2x
    groups = np.array(["near", "far", "near", "far"])
    rows = {r["group"]: r for r in enhancer_enrichment(scores, t, groups)}
    assert set(rows) == {"near", "far"}
    assert rows["far"]["n"] == 2 and rows["far"]["enrichment"] == pytest.approx(2.5)
    assert rows["far"]["enrichment_se"] == pytest.approx(0.5)  # SD 0.707 / sqrt 2
    assert rows["far"]["above_background"] == 1.0 and rows["far"]["auroc"] == 1.0
    assert rows["near"]["enrichment"] == 0.0 and rows["near"]["auroc"] == 0.0
    assert rows["near"]["above_background"] == 0.0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("long-range") / "lr.h5"
    return simulate_long_range(path, seed=3, num_seqs=60, seq_len=512, bin_size=16,
                               out_bins=28, mean_enhancers=4.0, promoter_prob=1.0)


def test_evaluation_set_keeps_sequences_with_promoter_and_enhancers(dataset):
    x, t = distal_evaluation_set(dataset, "train", n_seqs=5)
    assert x.shape == (5, 512, 4)
    for s in range(5):
        roles = set(t["role"][t["seq"] == s])
        assert roles == {"promoter", "enhancer"}, (s, roles)
    promoters = t["role"] == "promoter"
    # the promoter sits at the centre, and the table's spans hold motif bases (one-hot rows)
    assert np.all(np.abs((t["start"][promoters] + t["end"][promoters]) / 2 - 256) <= 1)
    assert np.all(x.sum(-1) == 1)


@pytest.mark.parametrize("n_transformer", [0, 1])
def test_conv_only_model_cannot_attribute_to_far_enhancers(dataset, n_transformer):
    """Gradient x input of the central promoter bins: exactly zero on every far enhancer base
    without attention (the bins do not depend on them), non-zero with one transformer block."""
    hp = {**TINY, "n_transformer": n_transformer}
    from benchmark_rc.architectures import get_architecture

    reach = conv_reach({**get_architecture("enformer").defaults, **hp})
    assert reach == 35  # (86 - 16 + 1) // 2
    x, t = distal_evaluation_set(dataset, "train", n_seqs=20)
    groups = reach_groups(t, 512, 2 * 16, reach)
    assert (groups[t["role"] == "enhancer"] == "far").sum() >= 5  # the test has far instances
    model = build_model("enformer", "standard", seed=2, **hp)
    # Enformer initialises the attention output projections to zero (each block starts as the
    # identity); draw them like the other kernels so attention mixes positions
    rng = np.random.default_rng(5)
    for v in model.weights:
        if len(v.shape) >= 2 and not np.asarray(v).any():
            fan_in = np.prod(v.shape[:-1])
            v.assign(rng.normal(0, 1 / np.sqrt(fan_in), v.shape).astype(np.float32))
    rows = score_distal(model, x, t, reach=reach, bins=2, bin_size=16,
                        methods=["input_x_gradient"])
    far = next(r for r in rows if r["group"] == "far")
    if n_transformer == 0:
        assert far["enrichment"] == 0.0 and far["above_background"] == 0.0, far
    else:
        assert far["enrichment"] > 0.05, far


def test_promoter_fit_against_an_oracle(dataset, monkeypatch):
    """promoter_fit with predictions known in advance: the observed counts of the central bins
    (Pearson and Spearman 1), their negation (-1); the sequences used are those with a promoter
    (promoter_prob=1 here: all). The predictions stand in for predict_target, so the test pins
    what is compared with what; test_distal_sweep_command... runs it on real models."""
    from benchmark_rc.attribution import targets
    from benchmark_rc.data.hdf5 import read_split
    from benchmark_rc.interpret.long_range import promoter_fit

    data = read_split(dataset, "test", keys=("x", "tracks"))
    x, tracks = np.asarray(data["x"]), np.asarray(data["tracks"])
    central = tracks[:, 13:15, 0].sum(1)  # 28 bins: the central two are 13 and 14
    row_of = {r.tobytes(): i for i, r in enumerate(x.astype(np.float32))}
    for sign in (1.0, -1.0):
        def oracle(model, seqs, output=None, sign=sign, **kwargs):
            assert output.track == 0 and output.bins == 2
            return sign * central[[row_of[r.tobytes()] for r in seqs]]

        monkeypatch.setattr(targets, "predict_target", oracle)
        fit = promoter_fit(None, dataset, "test", bins=2)
        assert fit["promoter_pearson"] == pytest.approx(sign)
        assert fit["promoter_spearman"] == pytest.approx(sign)
        assert fit["promoter_n"] == len(x)


def test_oracle_promoter_fit_recomputed_by_hand(tmp_path):
    """The ceilings: the activity with every enhancer (strength 1) and with those within reach,
    recomputed here from the motif table, against the counts of the two central bins. With a
    short decay the far enhancers matter, so the within-reach ceiling is lower; with a reach
    covering the window the two are equal."""
    from scipy.stats import pearsonr

    from benchmark_rc.data.hdf5 import read_motifs, read_split
    from benchmark_rc.interpret.long_range import oracle_promoter_fit

    path = simulate_long_range(tmp_path / "decay.h5", seed=5, num_seqs=300, seq_len=512,
                               bin_size=16, out_bins=28, decay=64.0, depth=200.0,
                               promoter_prob=1.0, mean_enhancers=4.0)
    reach = 40  # visible: motifs reaching into 40 bp around the central bases 240..272
    got = oracle_promoter_fit(path, reach, "test", bins=2)
    counts = np.asarray(read_split(path, "test", keys=("tracks",))["tracks"])[:, 13:15, 0].sum(1)
    motifs = read_motifs(path, "test")
    drive = {"all": [], "reach": []}
    for n in range(len(counts)):
        rows = motifs[motifs["seq"] == n]
        promoter = rows[rows["name"] == "ELF1_known2"].iloc[0]
        centre = (promoter["start"] + promoter["end"] - 1) / 2
        enh = rows[rows["name"] == "GATA_known6"]
        weight = np.exp(-np.abs((enh["start"] + enh["end"] - 1) / 2 - centre) / 64.0)
        visible = (enh["end"] > 240 - reach) & (enh["start"] < 272 + reach)
        drive["all"].append(0.2 + weight.sum())
        drive["reach"].append(0.2 + weight[visible].sum())
    assert got["oracle_n"] == len(counts)
    for key in ("all", "reach"):
        expected = pearsonr(drive[key], counts)[0]
        assert got[f"oracle_{key}_pearson"] == pytest.approx(expected, rel=1e-9)
    assert got["oracle_all_pearson"] > 0.8
    assert got["oracle_reach_pearson"] < got["oracle_all_pearson"] - 0.1
    whole = oracle_promoter_fit(path, 512, "test", bins=2)
    assert whole["oracle_reach_pearson"] == whole["oracle_all_pearson"]


def test_distal_sweep_command_scores_every_enformer_run(dataset, tmp_path):
    """`interpret --sweep DIR --distal` over a hand-made sweep directory (two saved tiny models,
    full and conv-only): one row per run x method x reach group, the conv-only run's far group
    exactly 0, the tables written; rerunning reuses the per-run caches."""
    import json

    import pandas as pd

    from benchmark_rc.cli import main

    sweep = tmp_path / "sweep"
    rows = []
    for name, n_transformer in (("long-range", 1), ("long-range-convonly", 0)):
        run_id = f"{name}-standard-s1"
        run = sweep / "runs" / run_id
        run.mkdir(parents=True)
        hp = {**TINY, "n_transformer": n_transformer}
        build_model("enformer", "standard", seed=2, **hp).save(run / "model.keras")
        # the conv-only run written as a post-hoc run is: its hparams under base_config
        config = {"model_hparams": hp} if n_transformer else {
            "posthoc_of": "x", "base_config": {"model_hparams": hp}}
        (run / "config.json").write_text(json.dumps(config))
        rows.append({"run_id": run_id, "dataset": name, "arch": "enformer",
                     "strategy": "standard", "seed": 1, "status": "ok"})
    pd.DataFrame(rows).to_csv(sweep / "results.csv", index=False)
    (sweep / "sweep.json").write_text(json.dumps({"datasets": [
        {"name": name, "path": str(dataset)} for name in ("long-range", "long-range-convonly")]}))
    argv = ["interpret", "--sweep", str(sweep), "--distal", "--n-seqs", "6",
            "--methods", "input_x_gradient,saliency"]
    assert main(argv) == 0
    table = pd.read_csv(sweep / "interpret" / "distal.csv")
    assert set(table.method) == {"input_x_gradient", "saliency"}
    assert set(table.run_id) == {r["run_id"] for r in rows}
    conv_far = table[(table.n_transformer == 0) & (table.group == "far")]
    assert len(conv_far) == 2 and (conv_far.enrichment == 0).all()
    assert (table.reach_bp == 35).all()
    report = (sweep / "interpret" / "distal.md").read_text()
    assert "| long-range-convonly | standard | saliency |" in report
    # the promoter fit of each run, in the rows and the report
    assert table.groupby("run_id").promoter_pearson.nunique().eq(1).all()
    assert table.promoter_pearson.between(-1, 1).all() and (table.promoter_n >= 3).all()
    assert "| long-range-convonly | standard | " in report.split("## Promoter prediction")[1]
    cache = sweep / "interpret" / "runs" / f"{rows[0]['run_id']}.json"
    stamp = cache.stat().st_mtime_ns
    assert main(argv) == 0
    assert cache.stat().st_mtime_ns == stamp


def test_distal_markdown_aggregates_seeds():
    """One run: its enrichment ± SE over instances; several seeds of a strategy: the mean and
    the SE across seeds (not the first seed's row)."""
    import pandas as pd

    from benchmark_rc.interpret.long_range import distal_markdown

    base = {"dataset": "long-range", "method": "saliency", "group": "far", "n": 4,
            "enrichment_se": 0.5, "promoter_pearson": 0.2, "promoter_spearman": 0.1,
            "promoter_n": 9, "reach_bp": 259, "oracle_all_pearson": 0.9,
            "oracle_all_spearman": 0.8, "oracle_reach_pearson": 0.7,
            "oracle_reach_spearman": 0.6}
    table = pd.DataFrame([
        {**base, "run_id": "a-s1", "strategy": "rcps", "enrichment": 1.0, "auroc": 0.6,
         "promoter_pearson": 0.1},
        {**base, "run_id": "a-s2", "strategy": "rcps", "enrichment": 3.0, "auroc": 0.8,
         "promoter_pearson": 0.3},
        {**base, "run_id": "b-s1", "strategy": "standard", "enrichment": 0.25, "auroc": 0.4},
    ])
    params = {"bins": 2, "n_seqs": 5, "split": "test"}
    report = distal_markdown(table, params, Path("sweep"))
    # rcps: mean 2, SD sqrt(2), SE 1; AUROC mean 0.7
    assert "| long-range | rcps | saliency |" in report
    rcps_line = next(line for line in report.splitlines() if "| rcps | saliency |" in line)
    assert "2.00 ± 1.00 (2 seeds) | 0.700" in rcps_line
    standard_line = next(line for line in report.splitlines() if "| standard | saliency |" in line)
    assert "0.25 ± 0.50 (n=4) | 0.400" in standard_line
    # promoter Pearson 0.1 and 0.3: mean 0.2, SD 0.1414, SE 0.1
    assert "| long-range | rcps | 0.200 ± 0.100 | 0.100 ± 0.000 | 9 | 2 |" in report
    assert "| long-range | standard | 0.200 | 0.100 | 9 | 1 |" in report
    assert "| long-range | 259 | 0.900 / 0.800 | 0.700 / 0.600 |" in report

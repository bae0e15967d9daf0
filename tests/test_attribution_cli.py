"""`benchmark-rc attribute` (single model and sweep table) and the `motifs` helpers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import benchmark_rc as brc
from benchmark_rc.attribution import motifs as M
from benchmark_rc.cli import main
from benchmark_rc.data.hdf5 import write_dataset
from benchmark_rc.errors import UserError

LENGTH = 200
MOTIF = "TGACTCA"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny labelled dataset with a motif table, and a fake two-run sweep directory."""
    root = tmp_path_factory.mktemp("attr_cli")
    rng = np.random.default_rng(0)
    n = 8
    x = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (n, LENGTH))]
    table = {"seq": [], "start": [], "end": [], "name": [], "strand": []}
    for i in range(n):
        start = int(rng.integers(10, LENGTH - 20))
        x[i, start:start + len(MOTIF)] = np.eye(4, dtype=np.uint8)[["ACGT".index(c)
                                                                      for c in MOTIF]]
        for key, value in zip(table, (i, start, start + len(MOTIF), "AP1", 1), strict=True):
            table[key].append(value)
    y = np.ones((n, 3), dtype=np.float32)
    split = {"x": x, "y": y, "motifs": {k: np.asarray(v) for k, v in table.items()}}
    sweep = root / "sweep"
    data = write_dataset(sweep / "data" / "toy.h5", "classification",
                         {s: split for s in ("train", "valid", "test")}, params={})
    rows = []
    for strategy in ("standard", "rcps"):
        run_id = f"toy-{strategy}-s0"
        model = brc.build_model("sim", strategy, input_length=LENGTH, seed=1)
        (sweep / "runs" / run_id).mkdir(parents=True)
        model.save(sweep / "runs" / run_id / "model.keras")
        rows.append({"run_id": run_id, "dataset": "toy", "arch": "sim", "strategy": strategy,
                     "seed": "0", "status": "ok"})
    with open(sweep / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return {"root": root, "data": data, "sweep": sweep,
            "model": sweep / "runs" / "toy-rcps-s0" / "model.keras"}


def test_attribute_single_model_writes_modisco_inputs_and_scores(workspace, capsys):
    out = workspace["root"] / "out"
    code = main(["attribute", "--model", str(workspace["model"]), "--data",
                 str(workspace["data"]), "--methods", "deepshap,ism,saliency", "--n-shuffles",
                 "3", "--max-seqs", "5", "--score", "--out", str(out), "--no-progress"])
    assert code == 0
    ohe = np.load(out / "deepshap.ohe.npz")["arr_0"]
    hyp = np.load(out / "deepshap.attr.npz")["arr_0"]
    assert ohe.shape == hyp.shape == (5, 4, LENGTH)
    with open(out / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"deepshap", "ism", "saliency"}
    assert {r["convention"] for r in rows} == {"prakash", "koo"}
    # rcps model: attributions RC-consistent (a correlation; float32 rounding of equivariant
    # attributions moves it by ~1e-8, a non-equivariant model by > 1e-3)
    assert all(float(r["rc_consistency"]) > 0.999 for r in rows)
    params = json.loads((out / "attribute.json").read_text())
    assert params["n_seqs"] == 5 and params["n_shuffles"] == 3
    assert params["maxpool_rule"] == "continuous"
    assert "wrote attributions of 5 sequences" in capsys.readouterr().out


def test_attribute_sweep_table(workspace):
    code = main(["attribute", "--sweep", str(workspace["sweep"]), "--score", "--methods",
                 "deepshap,input_x_gradient", "--n-shuffles", "2", "--max-seqs", "4",
                 "--no-progress"])
    assert code == 0
    table = (workspace["sweep"] / "attribution" / "attribution_table.md").read_text()
    assert "| rcps |" in table and "| standard |" in table and "deepshap" in table
    with open(workspace["sweep"] / "attribution" / "attribution_scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2  # runs x methods x conventions
    consistency = {(r["strategy"], r["method"]): float(r["rc_consistency"]) for r in rows}
    # correlations: rounding costs the equivariant model ~1e-8, the standard one loses > 1e-3
    assert consistency[("rcps", "deepshap")] > 0.9999
    assert consistency[("standard", "deepshap")] < 0.999


def test_attribute_passes_the_maxpool_rule_to_deepshap(workspace, monkeypatch):
    import dataclasses

    from benchmark_rc.attribution.methods import METHODS

    rules = []
    real = METHODS["deepshap"].fn

    def spy(*args, **kwargs):
        rules.append(kwargs.get("maxpool_rule"))
        return real(*args, **kwargs)

    # the runner reaches deepshap through the registry entry
    monkeypatch.setitem(METHODS, "deepshap", dataclasses.replace(METHODS["deepshap"], fn=spy))
    out = workspace["root"] / "out_shap_rule"
    assert main(["attribute", "--model", str(workspace["model"]), "--data",
                 str(workspace["data"]), "--n-shuffles", "2", "--max-seqs", "2",
                 "--maxpool-rule", "shap", "--out", str(out), "--no-progress"]) == 0
    assert rules == ["shap"]
    assert json.loads((out / "attribute.json").read_text())["maxpool_rule"] == "shap"


def test_attribute_gradient_maxpool_rule_reaches_the_output_files(workspace):
    """--maxpool-rule gradient (deeplift's rule): the written scores are deepshap's with
    maxpool_rule="gradient" on the same sequences and shuffles, not the default rule's, and
    attribute.json records the rule."""
    import h5py

    from benchmark_rc.attribution import deepshap
    from benchmark_rc.data.hdf5 import read_split

    out = workspace["root"] / "out_gradient_rule"
    assert main(["attribute", "--model", str(workspace["model"]), "--data",
                 str(workspace["data"]), "--n-shuffles", "3", "--max-seqs", "3",
                 "--maxpool-rule", "gradient", "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "attribute.json").read_text())["maxpool_rule"] == "gradient"
    with h5py.File(out / "deepshap.h5", "r") as f:
        hyp, contrib = f["hyp_scores"][()], f["contrib_scores"][()]
    model = brc.load_model(workspace["model"], compile=False)
    x = read_split(workspace["data"], "test")["x"][:3].astype(np.float32)
    want = {rule: deepshap(model, x, n_shuffles=3, seed=0, hypothetical=True, output=0,
                           maxpool_rule=rule)
            for rule in ("gradient", "continuous")}
    scale = float(np.abs(want["gradient"]).max())
    # the same computation on the same inputs: float32 round-off of the model at most
    np.testing.assert_allclose(hyp, want["gradient"], rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(contrib, want["gradient"] * x, rtol=1e-4, atol=1e-4 * scale)
    # the rules route differently on shuffled references: the option changed the output
    assert np.abs(hyp - want["continuous"]).max() > 1e-2 * scale


def test_attribute_cli_errors(workspace, capsys):
    assert main(["attribute", "--sweep", str(workspace["sweep"])]) == 2
    assert "--sweep needs --score" in capsys.readouterr().err
    assert main(["attribute", "--model", str(workspace["root"] / "nope.keras"), "--data",
                 str(workspace["data"]), "--out", str(workspace["root"] / "o2")]) == 2
    assert "nope.keras: no such model file" in capsys.readouterr().err
    assert main(["attribute", "--model", str(workspace["model"]), "--data",
                 str(workspace["data"]), "--out", str(workspace["root"] / "o3"),
                 "--n-shuffles", "0"]) == 2
    assert "--n-shuffles must be >= 1" in capsys.readouterr().err
    assert main(["motifs", "--out", str(workspace["root"] / "m")]) == 2
    assert "--scores DIR" in capsys.readouterr().err


def test_motif_helpers(tmp_path):
    p = np.array([0.01, 0.04, 0.03, 0.5])
    q = M._bh(p)
    # float64; rtol covers the 5 significant digits of the literal 0.053333 (= 0.16 / 3)
    np.testing.assert_allclose(q, [0.04, 0.053333, 0.053333, 0.5], rtol=1e-4)
    bits = M.ppm_to_bits(np.array([[1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25]]))
    # float64; clipping zeros to 1e-9 lowers a one-hot column's 2 bits by 3e-9 * log2(1e9)
    # ~ 1e-7, the uniform column's 0 is exact up to rounding
    np.testing.assert_allclose(bits.sum(-1), [2.0, 0.0], atol=1e-6)
    png = M.save_logo(bits, tmp_path / "logo.png", "test")
    assert png.read_bytes()[:4] == b"\x89PNG"
    np.savez_compressed(tmp_path / "bad.npz", np.zeros((2, 10, 4)))
    np.savez_compressed(tmp_path / "ok.npz", np.zeros((2, 4, 10)))
    with pytest.raises(UserError, match=r"expected an \(N, 4, L\) array"):
        M.load_npz_scores(tmp_path / "ok.npz", tmp_path / "bad.npz")
    one_hot, hyp = M.load_npz_scores(tmp_path / "ok.npz", tmp_path / "ok.npz")
    assert one_hot.shape == (2, 10, 4)
    # unreadable files and unexpected .npz layouts are user errors naming the file
    (tmp_path / "text.npz").write_text("not an array")
    with pytest.raises(UserError, match="text.npz: not a readable"):
        M.load_npz_scores(tmp_path / "ok.npz", tmp_path / "text.npz")
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 4, 10)), b=np.zeros((2, 4, 10)))
    with pytest.raises(UserError, match=r"two.npz: expected an .npz with one array"):
        M.load_npz_scores(tmp_path / "two.npz", tmp_path / "ok.npz")
    np.savez(tmp_path / "named.npz", scores=np.ones((2, 4, 10)))
    _, named = M.load_npz_scores(tmp_path / "ok.npz", tmp_path / "named.npz")
    assert named.shape == (2, 10, 4) and named.min() == 1.0

"""Koo & Ploenzke's CNNs through the layer kit, their activations, protocols, presets, the
irrep trunk pool, and the Koo interpretability scores over a sweep (smoke size)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from benchmark_rc import build_model, list_architectures, list_strategies
from benchmark_rc.architectures import get_architecture
from benchmark_rc.architectures.koo import KOO_ACTIVATIONS
from benchmark_rc.benchmark import read_results, run_sweep
from benchmark_rc.errors import UserError
from benchmark_rc.presets import get_preset
from benchmark_rc.strategies import get_strategy
from benchmark_rc.training import PROTOCOLS, ProtocolCallback, TrainState

KOO = ["koo-cnn2", "koo-cnn50", "koo-cnn-deep", "koo-cnn-local", "koo-cnn-dist"]


def one_hot(n: int, seed: int, length: int = 200) -> np.ndarray:
    return np.eye(4, dtype=np.float32)[np.random.default_rng(seed).integers(0, 4, (n, length))]


def test_registered_with_their_tasks_and_protocols():
    assert set(KOO) <= set(list_architectures())
    for arch in KOO:
        spec = get_architecture(arch)
        assert spec.defaults["num_tasks"] == (12 if arch in KOO[:3] else 1)
        assert spec.protocol == ("koo-task1" if arch in KOO[:3] else "koo-task3")
    assert PROTOCOLS["koo-task1"].monitor == "val_auprc"
    assert PROTOCOLS["koo-task3"].monitor == "val_auroc"
    assert PROTOCOLS["koo-task1"].lr_plateau == (0.2, 5, 1e-7)
    assert (PROTOCOLS["koo-task1"].batch_size, PROTOCOLS["koo-task1"].epochs,
            PROTOCOLS["koo-task1"].patience) == (100, 100, 20)


# spec §1.2-1.5: the length after each pool and the flattened width
GEOMETRY = {
    "koo-cnn2": ({"pool1": 100, "maxpool": 2}, 248),
    "koo-cnn50": ({"pool1": 4, "maxpool": 2}, 248),
    "koo-cnn-deep": ({"conv1": 200, "pool2": 50, "conv3": 44, "pool3": 11, "conv4": 9,
                      "maxpool": 3}, 384),
    "koo-cnn-local": ({"pool1": 4, "maxpool": 2}, 96),
    "koo-cnn-dist": ({"conv1": 200, "pool2": 50, "conv3": 44, "pool3": 11, "conv4": 9,
                      "maxpool": 3}, 192),
}


@pytest.mark.parametrize("arch", KOO)
def test_geometry(arch):
    model = build_model(arch, "standard")
    lengths, flat = GEOMETRY[arch]
    for name, length in lengths.items():
        assert int(model.get_layer(name).output.shape[1]) == length, name
    assert int(model.get_layer("flatten").output.shape[-1]) == flat


def _conv(k, c_in, c_out):
    return k * c_in * c_out + c_out  # kernel + bias


def _bn(c):
    return 4 * c


# Standard models counted by hand from spec §1.2-1.5 (convs and the hidden Dense with a bias,
# batch norms 4 x channels, logits Dense with bias)
PARAMS = {
    "koo-cnn2": _conv(19, 4, 32) + _bn(32) + _conv(5, 32, 124) + _bn(124)
    + _conv(1, 248, 512) + _bn(512) + _conv(1, 512, 12),
    "koo-cnn-deep": _conv(19, 4, 32) + _bn(32) + _conv(7, 32, 48) + _bn(48)
    + _conv(7, 48, 96) + _bn(96) + _conv(3, 96, 128) + _bn(128) + _conv(1, 384, 512)
    + _bn(512) + _conv(1, 512, 12),
    "koo-cnn-dist": _conv(19, 4, 24) + _bn(24) + _conv(7, 24, 32) + _bn(32)
    + _conv(7, 32, 48) + _bn(48) + _conv(3, 48, 64) + _bn(64) + _conv(1, 192, 96)
    + _bn(96) + _conv(1, 96, 1),
}
PARAMS["koo-cnn50"] = PARAMS["koo-cnn2"]
PARAMS["koo-cnn-local"] = (_conv(19, 4, 24) + _bn(24) + _conv(3, 24, 48) + _bn(48)
                           + _conv(1, 96, 96) + _bn(96) + _conv(1, 96, 1))


@pytest.mark.parametrize("arch", KOO)
def test_parameter_counts(arch):
    assert build_model(arch, "standard").count_params() == PARAMS[arch]
    # RCPS-half halves every conv width (first layer 16 pairs = 32 channels for task 1)
    half = build_model(arch, "rcps-half")
    std = build_model(arch, "standard")
    for name in ("conv1", "conv2"):
        assert half.get_layer(name).output.shape[-1] == std.get_layer(name).output.shape[-1]


@pytest.mark.parametrize("activation", KOO_ACTIVATIONS)
def test_first_layer_activation(activation):
    model = build_model("koo-cnn-local", "standard", activation=activation, filters=4, seed=0)
    bn = keras.Model(model.inputs, model.get_layer("bn1").output)
    act = keras.Model(model.inputs, model.get_layer("act1").output)
    x = one_hot(2, 1)
    expected = keras.activations.get(activation)(bn(x))
    assert np.allclose(np.asarray(act(x)), np.asarray(expected), rtol=1e-5, atol=1e-6)
    # every later layer is ReLU
    assert model.get_layer("act2").get_config()["activation"] == "relu"


def test_unknown_activation_is_refused():
    with pytest.raises(UserError, match="activation must be one of"):
        build_model("koo-cnn2", "standard", activation="swish")


# Non-ReLU first layers keep the RC strategies exactly equivariant (the activation is
# element-wise; the irrep kit puts exponential on a channels, tanh on b channels).
@pytest.mark.parametrize("strategy", ["rcps", "conjoined", "posthoc", "hybrid-early", "irrep",
                                      "irrep-kmer"])
@pytest.mark.parametrize("activation", ["exponential", "sigmoid", "linear"])
def test_equivariant_for_every_activation(strategy, activation):
    from conftest import assert_f32_close, f32_rtol, model_terms

    model = build_model("koo-cnn-dist", strategy, activation=activation, filters=4, seed=3)
    model = get_strategy(strategy).after_training(model, get_architecture("koo-cnn-dist"))
    x = one_hot(3, 4)
    y, y_rc = np.asarray(model(x)), np.asarray(model(x[:, ::-1, ::-1]))
    assert_f32_close(y_rc, y, rtol=f32_rtol(model_terms(model)))
    if strategy == "rcps":  # the control: a standard model is not
        std = build_model("koo-cnn-dist", "standard", activation=activation, filters=4, seed=3)
        assert not np.allclose(np.asarray(std(x)), np.asarray(std(x[:, ::-1, ::-1])),
                               rtol=1e-3)


def test_irrep_trunk_pool_is_odd_on_b_channels():
    from benchmark_rc.layers import IrrepMaxPool1D

    layer = IrrepMaxPool1D(2, 4)
    y = np.random.default_rng(0).normal(size=(2, 8, 5)).astype(np.float32)
    y[0, 4:8, 3] = [1.0, -1.0, 0.5, 0.0]  # a tie |max| = |min| on a b channel
    out, neg = np.asarray(layer(y)), np.asarray(layer(-y))
    assert np.allclose(out[..., :2], y[..., :2].reshape(2, 2, 4, 2).max(axis=2))
    assert np.allclose(neg[..., 2:], -out[..., 2:])  # odd
    assert out[0, 1, 3] == 0.0  # tie -> 0
    b = y[..., 2:].reshape(2, 2, 4, 3)
    big = np.take_along_axis(b, np.abs(b).argmax(axis=2)[:, :, None], axis=2)[:, :, 0]
    ok = np.ones_like(big, bool)
    ok[0, 1, 1] = False  # the tie
    assert np.allclose(out[..., 2:][ok], big[ok])
    with pytest.raises(Exception, match="not a multiple"):
        IrrepMaxPool1D(2, 3)(keras.Input((8, 5)))
    config = layer.get_config()
    assert IrrepMaxPool1D.from_config(config).pool_size == 4


def _callback(protocol, history_monitor):
    model = build_model("koo-cnn-local", "standard", filters=2)
    model.optimizer.build(model.trainable_variables)
    cb = ProtocolCallback(protocol, None, TrainState())
    cb.set_model(model)
    rows = []
    for epoch, value in enumerate(history_monitor):
        row = {"epoch": epoch, protocol.monitor: value, "val_loss": 1.0 / (epoch + 1)}
        lr = cb._plateau([*rows, row])
        rows.append(row)
        cb._early_stopping(epoch, row[protocol.monitor])
    return model, cb, lr


def test_koo_protocol_plateau_and_early_stopping_watch_the_metric():
    import dataclasses

    protocol = dataclasses.replace(PROTOCOLS["koo-task3"], patience=4, lr_plateau=(0.2, 2, 1e-6))
    # val_loss keeps falling but val auROC stalls after epoch 1: the plateau and stopping follow
    # the auROC
    model, cb, lr = _callback(protocol, [0.6, 0.7, 0.7, 0.69, 0.7, 0.7])
    assert np.isclose(lr, 1e-3 * 0.2 * 0.2)  # two plateaus of 2 epochs
    assert np.isclose(float(np.asarray(model.optimizer.learning_rate)), lr)
    assert model.stop_training and cb.state.stopped_early
    # improving auROC: no stop, no plateau
    model, cb, lr = _callback(protocol, [0.6, 0.7, 0.8, 0.9, 0.95, 0.96])
    assert np.isclose(lr, 1e-3) and not cb.state.stopped_early
    # the floor
    protocol = dataclasses.replace(protocol, lr_plateau=(0.2, 1, 5e-4))
    _, _, lr = _callback(protocol, [0.6] * 6)
    assert np.isclose(lr, 5e-4)


def test_presets():
    for name, archs in (("koo-task1", KOO[:3]), ("koo-task3", KOO[3:])):
        preset = get_preset(name)
        assert len(preset["seeds"]) == 5
        pairs = {(d["arch"], d["hparams"]["activation"]) for d in preset["datasets"]}
        assert pairs == {(a, act) for a in archs for act in KOO_ACTIVATIONS}
    cpu = get_preset("koo-cpu")
    assert {d["hparams"]["activation"] for d in cpu["datasets"]} == {"relu", "exponential"}


# The koo-smoke preset covers every Koo architecture x every strategy (`benchmark-rc sweep
# --preset koo-smoke`, 65 trainings); the test runs its datasets with one strategy of each kind
# (posthoc trains rcaug; rcps; irrep) to stay small on a CPU. Building and training every
# architecture x strategy is also covered by tests/test_equivariance.py.
SMOKE_STRATEGIES = ["posthoc", "rcps", "irrep"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("koo-smoke")
    config = dict(get_preset("koo-smoke"), strategies=SMOKE_STRATEGIES)
    summary = run_sweep(config, out, progress=False)
    return out, summary


def test_smoke_preset_covers_every_arch_and_strategy():
    preset = get_preset("koo-smoke")
    assert preset["strategies"] == "all"
    assert sorted({d["arch"] for d in preset["datasets"]}) == sorted(KOO)


def test_smoke_sweep_trains_every_arch(smoke):
    out, summary = smoke
    rows = read_results(out / "results.csv")
    failed = [(r["run_id"], r["error"]) for r in rows if r["status"] != "ok"]
    assert not failed
    got = {(r["arch"], r["strategy"]) for r in rows}
    assert got == {(a, s) for a in KOO for s in SMOKE_STRATEGIES}
    assert all(s in list_strategies() for s in SMOKE_STRATEGIES)
    for r in rows:
        if get_strategy(r["strategy"]).equivariant:
            assert float(r["rc_divergence"]) < 1e-4, r["run_id"]


def test_koo_scores_definitions():
    from benchmark_rc.interpret.koo import koo_auc, position_shuffles

    truth = np.zeros((3, 50), bool)
    truth[:, 10:20] = True
    perfect = koo_auc(truth.astype(float), truth)
    assert perfect["auroc"] == 1.0 and perfect["auprc"] == 1.0 and perfect["n"] == 3
    assert koo_auc(-truth.astype(float), truth)["auroc"] == 0.0
    x = one_hot(2, 5, 30)
    refs = position_shuffles(x, 4, seed=1)
    assert refs.shape == (2, 4, 30, 4)
    assert np.array_equal(refs.sum(axis=2), np.repeat(x.sum(axis=1)[:, None], 4, axis=1))
    assert not np.array_equal(refs[:, 0], x)


def test_evaluation_set_ground_truth(smoke):
    from benchmark_rc.data.hdf5 import read_motifs, read_split
    from benchmark_rc.interpret.koo import evaluation_set

    out, _ = smoke
    data = out / "data" / "koo-task3-cnn-local-exponential.h5"
    x, truth = evaluation_set(data, "test", 5)
    y = np.asarray(read_split(data, "test", keys=("y",))["y"])[:, 0]
    rows = np.nonzero(y > 0.5)[0][:5]
    assert np.array_equal(x, np.asarray(read_split(data, "test", keys=("x",))["x"])[rows])
    motifs = read_motifs(data, "test")
    mask = np.zeros_like(truth)
    for s, a, b in zip(motifs["seq"], motifs["start"], motifs["end"], strict=True):
        if s in rows:
            mask[list(rows).index(s), a:b] = True
    assert truth.any() and not (truth & ~mask).any()  # informative columns lie in motifs
    assert truth.sum() >= 0.8 * mask.sum()


def test_interpret_sweep(smoke):
    from benchmark_rc.cli import main

    out, _ = smoke
    sub = out / "interpret"
    args = ["interpret", "--sweep", str(out), "--out", str(sub), "--methods",
            "saliency,ism,deepshap", "--n-seqs", "3", "--n-refs", "2", "--filter-seqs", "12"]
    assert main(args) == 0
    table = (sub / "table.md").read_text()
    assert "match fraction" in table and "Attribution AUROC" in table
    import pandas as pd

    attr = pd.read_csv(sub / "attribution.csv")
    assert set(attr["method"]) == {"saliency", "ism", "deepshap"}
    assert attr["auroc"].between(0, 1).all()
    assert set(attr["activation"]) == {"exponential"}
    cached = json.loads(next((sub / "runs").glob("*.json")).read_text())
    assert cached["params"]["n_refs"] == 2
    stamp = {p: p.stat().st_mtime for p in (sub / "runs").glob("*.json")}
    assert main(args) == 0  # resumes from the per-run files: nothing recomputed
    assert all(p.stat().st_mtime == t for p, t in stamp.items())

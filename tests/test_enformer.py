"""The enformer architecture (architectures/enformer.py): geometry, every weight random (also the
attention output projections Enformer initialises to 0, which the registry-wide equivariance
tests of tests/test_equivariance.py only reach after training), refusals, training and evaluation
through the training API on a tiny binned-track dataset, and .keras / .h5 reloads.

The RC maps are written here: DNA a[:, ::-1, ::-1]; unstranded tracks reversed along their bins;
stranded pairs (+1, -1, +2, -2, ...) reversed with each pair's strands swapped.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from conftest import assert_f32_close, f32_rtol, model_terms

from benchmark_rc import build_model, list_strategies
from benchmark_rc.architectures import get_architecture
from benchmark_rc.errors import UserError
from benchmark_rc.strategies import get_strategy

# 512 bp, bins of 2^(3+1) = 16 bp: 32 bins cropped to 28; 8 filters (16 channels in RCPS), 2 heads
TINY = {"input_length": 512, "n_tower": 3, "output_bins": 28, "filters": 8, "heads": 2,
        "key_size": 4, "position_features": 12, "num_tracks": 2, "num_stranded": 2}


def rc_tracks(y: dict) -> dict:
    stranded = y["stranded_tracks"]
    swapped = np.empty_like(stranded)
    swapped[..., 0::2], swapped[..., 1::2] = stranded[:, ::-1, 1::2], stranded[:, ::-1, 0::2]
    return {"tracks": y["tracks"][:, ::-1, :], "stranded_tracks": swapped}


def dna(n: int, length: int, seed: int) -> np.ndarray:
    return np.eye(4, dtype=np.float32)[np.random.default_rng(seed).integers(0, 4, (n, length))]


def randomize(model: keras.Model, seed: int) -> None:
    """Every weight random around the initial scale: kernels Enformer initialises to 0 (the
    attention output projections) drawn like the others (normal, std 1/sqrt(fan-in)); the other
    kernels kept (already random); every vector perturbed (biases, attention biases, batch /
    layer-norm scales and offsets, moving means by N(0, 0.2); moving variances in [0.5, 2))."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        shape, value = tuple(v.shape), np.asarray(v)
        if value.size == 0:  # an empty free block (irrep: no sign-odd position features)
            continue
        if len(shape) >= 2:
            if not value.any():
                value = rng.normal(0.0, 1.0 / np.sqrt(np.prod(shape[:-1])), shape)
        elif "moving_variance" in v.path:
            value = rng.uniform(0.5, 2.0, shape)
        else:
            value = value + rng.normal(0.0, 0.2, shape)
        v.assign(value.astype(np.float32))


def outputs(model: keras.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, np.float64) for k, v in model(x).items()}


def equivariance_gap(model: keras.Model, x: np.ndarray, margin: float = 1) -> dict[str, str]:
    y, y_rc = outputs(model, x), outputs(model, x[:, ::-1, ::-1])
    bar = f32_rtol(model_terms(model))
    for key, value in y.items():  # a live network: the rates vary along the bins well beyond
        # the tolerance, so a bin or strand out of place would fail it
        assert np.std(value, axis=1).mean() > 10 * bar * np.abs(value).max(), key
    want, errors = rc_tracks(y), {}
    for key in y:
        try:
            assert_f32_close(y_rc[key], want[key], rtol=margin * bar)
        except AssertionError as err:
            errors[key] = str(err)
    return errors


@pytest.mark.parametrize(("strategy", "extra"), [
    ("rcps", {}), ("rcps", {"symmetric_positions": True, "position_features": 6}),
    ("hybrid-later", {}), ("conjoined", {}),
    ("irrep", {}), ("irrep", {"symmetric_positions": True, "position_features": 6}),
    ("irrep", {"irrep_a_fraction": 0.25}), ("irrep-kmer", {}),
])
def test_equivariant_with_every_weight_random(strategy, extra):
    model = build_model("enformer", strategy, seed=1, **{**TINY, **extra})
    randomize(model, 2)
    model = get_strategy(strategy).after_training(model, get_architecture("enformer"))
    assert equivariance_gap(model, dna(2, 512, 3)) == {}


def test_standard_is_not_equivariant_with_every_weight_random():
    model = build_model("enformer", "standard", seed=1, **TINY)
    randomize(model, 2)
    assert set(equivariance_gap(model, dna(2, 512, 3), margin=100)) == {
        "tracks", "stranded_tracks"}


def test_attention_matters_in_the_random_model():
    """Zeroing the attention output projections changes the outputs: the test above exercises
    the attention, not only the convolutions."""
    for strategy in ("rcps", "irrep"):
        model = build_model("enformer", strategy, seed=1, **TINY)
        randomize(model, 2)
        x = dna(2, 512, 4)
        before = outputs(model, x)["tracks"]
        for layer in model.layers:
            if layer.name.endswith("_mha"):
                for v in layer.weights:
                    if "output_kernel" in v.path:
                        v.assign(np.zeros(v.shape, np.float32))
        change = np.max(np.abs(outputs(model, x)["tracks"] - before))
        assert change > 1e-3 * np.max(np.abs(before)), strategy


def test_geometry_and_shapes():
    model = build_model("enformer", "rcps", **TINY)
    assert model.get_layer("stem_pool").output.shape[1:] == (256, 8)  # 4 filters -> 4 pairs
    assert model.get_layer("tower3_pool").output.shape[1:] == (32, 16)
    assert model.get_layer("crop").output.shape[1] == 28
    assert {k: tuple(v.shape[1:]) for k, v in model.output.items()} == {
        "tracks": (28, 2), "stranded_tracks": (28, 4)}
    std = build_model("enformer", "standard")  # defaults: 4096 bp -> 32 bins of 128 -> 24
    assert tuple(std.output["tracks"].shape[1:]) == (24, 2)
    assert [std.get_layer(f"tower{i}_conv").output.shape[-1] for i in range(1, 7)] == [
        32, 36, 42, 48, 56, 64]


@pytest.mark.parametrize(("hp", "message"), [
    ({"input_length": 500}, "multiple of the bin size"),
    ({"output_bins": 27}, "even crop"),
    ({"output_bins": 40}, "at most"),
    ({"heads": 3}, "multiple of heads"),
])
def test_geometry_errors(hp, message):
    with pytest.raises(UserError, match=message):
        build_model("enformer", "standard", **{**TINY, **hp})


def test_irrep_enformer_is_written_on_irrep_maps():
    """The irrep enformer runs the irrep versions of every enformer layer, and its non-equivariant
    control (the same network with Keras' own layer norm, which centres the -1 channels too)
    fails the equivariance test."""
    model = build_model("enformer", "irrep", seed=1, **TINY)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"IrrepAttentionPooling1D", "IrrepLayerNorm", "IrrepMultiHeadAttention",
            "IrrepTrackDense", "IrrepStrandPairDense"} <= kinds
    assert not kinds & {"AttentionPooling1D", "LayerNormalization", "RelativeMultiHeadAttention"}
    randomize(model, 2)
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "IrrepLayerNorm":
            layer["config"] = {"name": layer["config"]["name"], "epsilon": 1e-5}
            layer["class_name"], layer["module"] = "LayerNormalization", "keras.layers"
            layer.pop("registered_name", None)
    control = keras.Model.from_config(config)
    for layer in control.layers:
        if isinstance(layer, keras.layers.LayerNormalization):
            layer.gamma.assign(model.get_layer(layer.name).gamma)
        else:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    assert set(equivariance_gap(control, dna(2, 512, 3), margin=100)) == {
        "tracks", "stranded_tracks"}


# --------------------------------------------------------------- training and evaluation


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from benchmark_rc.data.hdf5 import write_dataset

    rng = np.random.default_rng(0)
    splits = {}
    for split, n in (("train", 16), ("valid", 8), ("test", 8)):
        x = rng.integers(0, 4, (n, 512))
        gc = (x[:, :, None] == np.array([1, 2])).any(-1).reshape(n, 32, 16).sum(-1)[:, 2:30]
        a = (x == 0).reshape(n, 32, 16).sum(-1)[:, 2:30]
        t = (x == 3).reshape(n, 32, 16).sum(-1)[:, 2:30]
        splits[split] = {
            "x": np.eye(4, dtype=np.uint8)[x],
            "tracks": np.stack([gc, 16 - gc], -1).astype(np.float32),
            "stranded_tracks": np.stack([a, t, 2 * a, 2 * t], -1).astype(np.float32)}
    path = tmp_path_factory.mktemp("enformer") / "tracks.h5"
    write_dataset(path, "tracks", splits, params={"tiny": True})
    return path


@pytest.mark.parametrize("strategy", ["rcps", "irrep", "standard"])
def test_train_and_evaluate_through_the_training_api(tiny_dataset, tmp_path, strategy):
    from benchmark_rc.registry import load_model
    from benchmark_rc.training import TrainConfig, evaluate_model, train_run

    hp = {k: v for k, v in TINY.items()
          if k not in ("input_length", "output_bins", "num_tracks", "num_stranded")}
    config = TrainConfig(data=str(tiny_dataset), arch="enformer", strategy=strategy, seed=1,
                         epochs=1, batch_size=8, hparams=hp)
    summary = train_run(config, tmp_path / strategy)
    assert summary["protocol"]["name"] == "tracks" and summary["selected_by"] == "loss"
    assert summary["model_hparams"]["output_bins"] == 28  # from the dataset's arrays
    model = load_model(tmp_path / strategy / "model.keras")
    scores = evaluate_model(model, str(tiny_dataset), "test")
    assert scores["n"] == 8 and len(scores["pearson_per_track"]) == 6
    assert np.isfinite(scores["pearson"]) and np.isfinite(scores["spearman"])
    if strategy != "standard":  # exact equivariance: float32 round-off of O(1) outputs only
        assert scores["rc_divergence"] < 1e-5
    else:
        assert scores["rc_divergence"] > 1e-4


@pytest.mark.parametrize("strategy", ["rcps", "hybrid-all", "conjoined", "irrep", "irrep-kmer"])
def test_keras_and_h5_reload_in_a_fresh_process(tmp_path, strategy):
    import subprocess
    import sys

    model = build_model("enformer", strategy, seed=1, **TINY)
    randomize(model, 5)
    x = dna(2, 512, 6)
    np.save(tmp_path / "x.npy", x)
    want = outputs(model, x)
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    code = ("import sys, numpy as np, keras, benchmark_rc\n"
            "x = np.load(sys.argv[1])\n"
            "for fmt in ('keras', 'h5'):\n"
            "    m = keras.models.load_model(sys.argv[2] + fmt, safe_mode=True)\n"
            "    y = m(x)\n"
            "    np.savez(sys.argv[3] + fmt + '.npz', **{k: np.asarray(v) for k, v in y.items()})\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.npy"),
                           str(tmp_path / "m."), str(tmp_path / "y_")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for fmt in ("keras", "h5"):
        got = dict(np.load(tmp_path / f"y_{fmt}.npz"))
        for key in want:  # another process may pick other kernels: the model's round-off
            assert_f32_close(got[key], want[key], rtol=f32_rtol(model_terms(model)),
                             err_msg=f"{fmt} {key}")


# ---------------------------------------------------------------- conv-only ablation, long range


def test_conv_only_ablation_cuts_the_receptive_field_off():
    """n_transformer=0: a bin sees only the conv tower, conv_receptive_field = 15 + 1 +
    5 (2^4 - 2) = 86 bp here (TINY: 16-bp bins); a base changed farther than that from the bin
    leaves its output bit-identical (the conv tower never reads it), one inside the bin moves
    it. With attention (every weight random, so the blocks are not the identity they start as)
    the same distant change moves every bin."""
    from benchmark_rc.architectures.enformer import conv_receptive_field

    hp = {**get_architecture("enformer").defaults, **TINY}
    field = conv_receptive_field(hp)
    assert field == 86
    crop = (TINY["input_length"] // 16 - TINY["output_bins"]) // 2
    centre = TINY["output_bins"] // 2  # its bases: 16 (centre + crop) .. + 15
    first = 16 * (centre + crop)
    x = dna(2, TINY["input_length"], 8)
    far = [0, 40, first - field]  # at least the receptive field away from the bin
    changes = {}
    for n_transformer in (0, 2):
        model = build_model("enformer", "standard", seed=1,
                            **{**TINY, "n_transformer": n_transformer})
        randomize(model, 9)
        y = outputs(model, x)["tracks"][:, centre]
        for pos in [*far, first + 3]:
            x2 = x.copy()
            x2[:, pos] = np.roll(x2[:, pos], 1, axis=-1)
            changes[n_transformer, pos] = np.abs(outputs(model, x2)["tracks"][:, centre] - y).max()
        scale = np.abs(y).max()
    for pos in far:
        assert changes[0, pos] == 0.0, (pos, changes)
        assert changes[2, pos] > 1e-4 * scale, (pos, changes)  # far above float32 round-off
    assert changes[0, first + 3] > 1e-4 * scale, changes


def test_enformer_strategy_list_of_the_presets():
    from benchmark_rc.presets import ENFORMER_STRATEGIES, get_preset

    assert ENFORMER_STRATEGIES == list_strategies("enformer")
    preset = get_preset("long-range")
    assert preset["strategies"] == ENFORMER_STRATEGIES and len(preset["seeds"]) == 3
    ablation = [d for d in preset["datasets"] if d["hparams"].get("n_transformer") == 0]
    assert len(ablation) == 1 and ablation[0]["simulate"] == preset["datasets"][0]["simulate"]
    assert ablation[0]["simulate"]["num_seqs"] == 8000  # 2,000 overfit (results/long-range)
    cpu = get_preset("long-range-cpu")
    assert set(cpu["strategies"]) == {"standard", "rcaug", "posthoc", "conjoined", "rcps"}
    assert len(cpu["seeds"]) < len(preset["seeds"]) and cpu["train"]["epochs"] <= 10
    from benchmark_rc.benchmark import make_jobs, resolve_config

    for config in (preset, cpu):  # the sweep accepts them: strategies, archs, keys
        jobs = make_jobs(resolve_config(config))
        assert {job.dataset["name"] for job in jobs} == {"long-range", "long-range-convonly"}


# plain, augmented, post-hoc, trained-conjoined and parameter-shared
ONE_OF_EACH_KIND = ["standard", "rcaug", "posthoc", "conjoined", "rcps"]


@pytest.mark.slow
def test_long_range_preset_end_to_end_one_tiny_run_per_strategy(tmp_path):
    """The long-range preset through the sweep (simulation, training, evaluation, results):
    one tiny run of a strategy of each kind (every strategy builds and is equivariant in
    test_equivariance) on the simulated task, and the conv-only ablation entry for standard (a
    second sweep), shrunk: 512-bp sequences in 16-bp bins (n_tower 3), 40
    sequences, 1 epoch of 1 step, 1 seed. (6-15 minutes in all on the loaded 2-core machine of
    issue 13: 12 runs, each building, training, saving and evaluating an enformer.)"""
    from benchmark_rc.benchmark import read_results, run_sweep
    from benchmark_rc.presets import get_preset

    config = get_preset("long-range")
    for d in config["datasets"]:
        d["simulate"].update(num_seqs=40, seq_len=512, bin_size=16, out_bins=28)
        d["hparams"].update({k: v for k, v in TINY.items()
                             if k not in ("input_length", "output_bins", "num_tracks",
                                          "num_stranded")})
    config["seeds"] = [1]
    config["strategies"] = ONE_OF_EACH_KIND
    config["train"] = {"epochs": 1, "batch_size": 16, "steps_per_epoch": 1, "patience": 0}
    full, ablation = dict(config), dict(config)
    full["datasets"], ablation["datasets"] = config["datasets"][:1], config["datasets"][1:]
    ablation["strategies"] = ["standard"]
    rows = []
    for part, cfg in (("full", full), ("ablation", ablation)):
        summary = run_sweep(cfg, tmp_path / part, progress=False)
        rows += read_results(tmp_path / part / "results.csv")
        assert summary["failed"] == 0, [r["error"] for r in rows if r["status"] != "ok"]
    for name, strategies in (("long-range", ONE_OF_EACH_KIND),
                             ("long-range-convonly", ["standard"])):
        mine = [r for r in rows if r["dataset"] == name]
        assert sorted(r["strategy"] for r in mine) == sorted(strategies)
        for r in mine:
            part = "full" if name == "long-range" else "ablation"
            config = json.loads((tmp_path / part / "runs" / r["run_id"] / "config.json")
                                .read_text())
            if not config.get("posthoc_of"):  # post-hoc runs reuse their base run's model
                want = 0 if part == "ablation" else 2  # the ablation's hparam, else the default
                assert config["model_hparams"].get("n_transformer", 2) == want, config
            assert r["arch"] == "enformer" and np.isfinite(float(r["pearson"])), r
            if get_strategy(r["strategy"]).equivariant:
                assert float(r["rc_divergence"]) < 1e-4, r

"""Import of Keras 2 / keras-genomics .h5 models (benchmark_rc.legacy), checked against the
original stack's own outputs.

tests/fixtures/legacy/ was written by ``make reference-fixtures`` (reference/make_fixtures.py)
under Python 3.7, TensorFlow 1.15, Keras 2.2.4, keras-genomics 0.1.2.1 and deeplift 0.6.13: the
paper's models trained briefly on simulated data, saved as Keras 2 .h5, with their predictions on
fixed inputs and, for the models deeplift's converter accepts, its scores on given references
(manifest.json says what it refused). Nothing here needs Python 3.7.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import assert_f32_close, f32_rtol, model_terms

import benchmark_rc
from benchmark_rc import cli
from benchmark_rc.attribution import deepshap
from benchmark_rc.errors import UserError
from benchmark_rc.layers import (
    KerasGenomicsRevCompConv1D,
    KerasGenomicsRevCompConv1DBatchNorm,
    RCTransform,
    StrandMerge,
    WeightedSum1D,
)
from benchmark_rc.legacy import load_legacy_model
from benchmark_rc.registry import logits_model

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "legacy"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
MODELS = sorted(MANIFEST["models"])
DEEPLIFT = sorted(n for n in MODELS if MANIFEST["models"][n]["deeplift"]["accepted"])
# the bars: predictions within 1e-5 relative, DeepLIFT scores within 1e-4 per base
PREDICTION_RTOL = 1e-5
PREDICTION_FLOOR = 1e-5  # never an absolute tolerance below this
SCORE_RTOL = 1e-4
_LOADED: dict[str, keras.Model] = {}


def entry(name: str) -> dict:
    return MANIFEST["models"][name]


def arrays(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / entry(name)["arrays"]) as data:
        return {key: data[key] for key in data.files}


def imported(name: str) -> keras.Model:
    """The imported model of a fixture, loaded once per test session."""
    if name not in _LOADED:
        _LOADED[name] = load_legacy_model(FIXTURES / entry(name)["file"])
    return _LOADED[name]


def inputs(name: str, data: dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
    x = data["x"].astype(np.float32)
    if entry(name)["task"] != "bpnet":
        return x
    return {"sequence": x, "control": data["control"],
            "control_logcount": data["control_logcount"]}


def prediction_tolerance(model: keras.Model, expected: np.ndarray) -> dict:
    """The issue's 1e-5 relative bar, tighter where float32 round-off of the model allows, with
    an absolute floor of at least 1e-5."""
    rtol = min(PREDICTION_RTOL, f32_rtol(model_terms(model)))
    return {"rtol": rtol, "floor": max(PREDICTION_FLOOR, rtol * float(np.abs(expected).max()))}


def relative(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(all_layers(layer))
    return found


# ------------------------------------------------------------------------------ the fixtures

def test_fixtures_come_from_the_original_stack_and_stay_small():
    versions = MANIFEST["versions"]
    assert versions["tensorflow"] == "1.15.0" and versions["keras"] == "2.2.4"
    assert versions["keras_genomics"] == "0.1.2.1" and versions["deeplift"] == "0.6.13.0"
    assert versions["python"].startswith("3.7.")
    assert MANIFEST["regenerate"] == "make reference-fixtures"
    assert "reference-fixtures:" in (ROOT / "Makefile").read_text()
    total = 0
    for name in MODELS:
        for key in ("file", "arrays"):
            path = FIXTURES / entry(name)[key]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry(name)[f"{key}_sha256"]
            total += path.stat().st_size
    assert total < 4 * 2**20, f"legacy fixtures take {total / 2**20:.1f} MiB"
    with h5py.File(FIXTURES / "sim_rcps.h5", "r") as f:  # what users of the original have
        version = f.attrs["keras_version"]
        assert (version.decode() if isinstance(version, bytes) else version) == "2.2.4"
        assert "optimizer_weights" in f


def test_deeplift_accepted_only_the_standard_sequential_models():
    """deeplift's Keras converter knows only standard layers: the record of what it refused."""
    assert DEEPLIFT == ["binary_standard", "sim_dense_relu", "sim_standard"]
    for name in sorted(set(MODELS) - set(DEEPLIFT)):
        record = entry(name)["deeplift"]
        print(f"deeplift refused {name}: {record['error']} ({record['raised_at']})")
        assert record["error"]
    assert "revcompconv1d" in entry("sim_rcps")["deeplift"]["error"]
    assert "lambda" in entry("bpnet_standard")["deeplift"]["error"]


def test_original_rc_batchnorm_kept_its_initial_statistics():
    """Keras 2.2.4 dropped RevCompConv1DBatchNorm's updates (spec/paper.md §6.2): recorded by the
    reference run, and carried over by the import."""
    for name in ("sim_rcps", "binary_rcps", "binary_rcps_weighted", "sim_rcps_dense_after"):
        stats = entry(name)["rc_batchnorm_statistics"]
        assert stats and all(s["moving_mean_all_zero"] and s["moving_variance_all_one"]
                             for s in stats.values())
        assert entry(name)["uses_learning_phase"] is False
        norms = [layer for layer in imported(name).layers
                 if isinstance(layer, KerasGenomicsRevCompConv1DBatchNorm)]
        assert len(norms) == len(stats)
        for layer in norms:
            np.testing.assert_array_equal(layer.moving_mean.numpy(), 0.0)
            np.testing.assert_array_equal(layer.moving_variance.numpy(), 1.0)


# ------------------------------------------------------------------------------ predictions

@pytest.mark.parametrize("name", MODELS)
def test_imported_predictions_equal_the_original_stacks(name):
    model, data = imported(name), arrays(name)
    if entry(name)["task"] == "bpnet":
        out = model.predict(inputs(name, data), verbose=0)
        pairs = [("profile", out["profile"], data["profile"]),
                 ("counts", out["counts"], data["counts"])]
    else:
        x = inputs(name, data)
        pairs = [("logits", logits_model(model).predict(x, verbose=0), data["logits"]),
                 ("probabilities", model.predict(x, verbose=0), data["pred"])]
    for what, actual, expected in pairs:
        print(f"{name} {what}: max relative difference {relative(actual, expected):.2e}")
        assert_f32_close(actual, expected, **prediction_tolerance(model, expected),
                         err_msg=f"{name} {what}")


def test_imported_layers_are_benchmark_rcs_and_no_lambda_remains():
    kinds = {name: {type(layer).__name__ for layer in all_layers(imported(name))}
             for name in MODELS}
    assert not any("Lambda" in k for k in kinds.values())
    for name in ("sim_rcps", "binary_rcps", "bpnet_rcps"):
        assert "KerasGenomicsRevCompConv1D" in kinds[name]
    assert {"RCTransform", "StrandMerge"} <= kinds["sim_siamese"]
    assert "WeightedSum1D" in kinds["binary_rcps_weighted"]
    assert {"WeightedSum1D", "Dense"} <= kinds["sim_rcps_dense_after"]  # Dense: the bias
    assert "Cropping1D" in kinds["bpnet_standard"] and "RCTransform" in kinds["bpnet_rcps"]
    profile = imported("bpnet_rcps")
    assert [t.name for t in profile.inputs] == ["sequence", "control", "control_logcount"]
    assert sorted(profile.output_names) == ["counts", "profile"]
    for name in ("sim_standard", "sim_siamese", "binary_rcps_weighted"):
        names = [layer.name for layer in imported(name).layers]
        assert names[0] == "sequence" and names[-2:] == ["logits", "probabilities"]


@pytest.mark.parametrize("name", ["sim_siamese", "sim_rcps_dense_after", "binary_rcps_weighted",
                                  "bpnet_rcps"])
def test_imported_models_reload_in_safe_mode(name, tmp_path):
    model, data = imported(name), arrays(name)
    expected = model.predict(inputs(name, data), verbose=0)
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"m{suffix}"
        model.save(path)
        again = keras.models.load_model(path)  # default safe_mode=True: no code runs
        got = again.predict(inputs(name, data), verbose=0)
        for key in (expected if isinstance(expected, dict) else [None]):
            a = got if key is None else got[key]
            e = expected if key is None else expected[key]
            np.testing.assert_array_equal(a, e)


# ------------------------------------------------------------------------------ RC behaviour

def rc_sequence(x: np.ndarray) -> np.ndarray:
    """Reverse-complement of one-hot (N, L, 4) ACGT: reverse positions and channels."""
    return np.ascontiguousarray(x[:, ::-1, ::-1])


def random_one_hot(n: int, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, length))]


@pytest.mark.parametrize("name", ["sim_rcps", "sim_rcps_dense_after", "sim_siamese",
                                  "binary_rcps", "binary_rcps_weighted"])
def test_imported_rc_models_are_invariant(name):
    model = logits_model(imported(name))
    x = np.concatenate([arrays(name)["x"].astype(np.float32),
                        random_one_hot(4, model.inputs[0].shape[1], seed=3)])
    forward = model.predict(x, verbose=0)
    assert_f32_close(model.predict(rc_sequence(x), verbose=0), forward,
                     rtol=f32_rtol(model_terms(model)), err_msg=name)


def test_imported_rcps_bpnet_is_equivariant():
    """profile(RC x, control reversed along length, same log count) = the profile reversed with
    strands swapped; counts swapped."""
    model = imported("bpnet_rcps")
    data = arrays("bpnet_rcps")
    x = inputs("bpnet_rcps", data)
    rc = {"sequence": rc_sequence(x["sequence"]),
          "control": np.ascontiguousarray(x["control"][:, ::-1, :]),
          "control_logcount": x["control_logcount"]}
    forward, backward = model.predict(x, verbose=0), model.predict(rc, verbose=0)
    rtol = f32_rtol(model_terms(model))
    assert_f32_close(backward["profile"], forward["profile"][:, ::-1, ::-1], rtol=rtol)
    assert_f32_close(backward["counts"], forward["counts"][:, ::-1], rtol=rtol)


@pytest.mark.parametrize("name", ["sim_standard", "binary_standard", "sim_siamese"])
def test_conjoin_works_on_imported_models(name):
    model = imported(name)
    conjoined = benchmark_rc.conjoin(model, entry(name)["task"])  # task = arch name
    x = arrays(name)["x"].astype(np.float32)
    logits = logits_model(model)
    merged = 0.5 * (logits.predict(x, verbose=0) + logits.predict(rc_sequence(x), verbose=0))
    rtol = f32_rtol(model_terms(conjoined))
    got = logits_model(conjoined).predict(x, verbose=0)
    assert_f32_close(got, merged, rtol=rtol)
    assert_f32_close(logits_model(conjoined).predict(rc_sequence(x), verbose=0), got, rtol=rtol)


def test_conjoin_works_on_an_imported_bpnet():
    model = imported("bpnet_standard")
    conjoined = benchmark_rc.conjoin(model, "bpnet")
    x = inputs("bpnet_standard", arrays("bpnet_standard"))
    rc = benchmark_rc.rc_inputs("bpnet", x)
    forward = conjoined.predict(x, verbose=0)
    backward = benchmark_rc.rc_outputs("bpnet", conjoined.predict(rc, verbose=0))
    manual = 0.5 * (model.predict(x, verbose=0)["profile"]
                    + model.predict(rc, verbose=0)["profile"][:, ::-1, ::-1])
    rtol = f32_rtol(model_terms(conjoined))
    assert_f32_close(forward["profile"], manual, rtol=rtol)
    assert_f32_close(backward["profile"], forward["profile"], rtol=rtol)
    assert_f32_close(backward["counts"], forward["counts"], rtol=rtol)


# ------------------------------------------------------------------------------ DeepSHAP vs
# the original DeepLIFT. deeplift 0.6.13 has one max-pool rule, MaxPoolDeepLiftMode.gradient:
# the multipliers go to x's argmax of each window, whatever the reference; deepshap's
# maxpool_rule="gradient" is that rule. DeepSHAP's default rule (shap's) sends x's excess over the
# reference to x's argmax and the reference's excess to the reference's argmax, each divided by
# its own change. Everything else (convolutions, batch norm in inference, rescale on ReLU, dense,
# flatten) is the same rule in both.

def position_sums(scores: np.ndarray) -> np.ndarray:
    """Per-base contributions: deeplift spreads m_c (x_c - ref_c) over the 4 channels, DeepSHAP
    puts their sum on the observed base."""
    return scores.sum(-1)


@pytest.mark.parametrize("name", DEEPLIFT)
def test_deepshap_with_deeplifts_maxpool_rule_equals_the_original_deeplift(name):
    data = arrays(name)
    x, refs = data["x"].astype(np.float32), data["refs"].astype(np.float32)
    model = imported(name)
    for task in range(data["dl_rescale"].shape[0]):
        ours = deepshap(model, x, references=refs, output=task, maxpool_rule="gradient")
        hyp = deepshap(model, x, references=refs, output=task, hypothetical=True,
                       maxpool_rule="gradient")
        expected = position_sums(data["dl_rescale"][task])
        print(f"{name} task {task}: per base {relative(position_sums(ours), expected):.2e}, "
              f"hypothetical {relative(hyp, data['dl_rescale_hyp'][task]):.2e} (relative to "
              "the largest score)")
        assert_f32_close(position_sums(ours), expected, rtol=SCORE_RTOL, err_msg=name)
        assert_f32_close(hyp, data["dl_rescale_hyp"][task], rtol=SCORE_RTOL, err_msg=name)


def maxpool_routing_agrees(model: keras.Model, x: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """(N,) True where both max-pool rules give the same multipliers for every reference: in each
    window and channel x's maximum is at least the reference's and the reference reaches its
    maximum at x's argmax (to 1e-6 relative: the zero reference's constant pool inputs differ in
    the last bits between positions)."""
    (pool,) = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling1D)]
    body = keras.Model(model.inputs, pool.input)
    n, r, length = refs.shape[:3]
    px = body.predict(x, verbose=0)
    pr = body.predict(refs.reshape(n * r, length, 4), verbose=0).reshape(n, r, *px.shape[1:])
    tol = 1e-6 * max(1.0, float(np.abs(pr).max()))
    size, stride = pool.pool_size[0], pool.strides[0]
    agrees = np.ones(n, bool)
    for start in range(0, px.shape[1] - size + 1, stride):
        wx, wr = px[:, start:start + size], pr[:, :, start:start + size]
        top = wx.argmax(1)[:, None, None, :]  # (N, 1, 1, C): x's argmax
        r_max = wr.max(2)
        r_at_top = np.take_along_axis(wr, np.broadcast_to(top, (n, r, 1, wr.shape[-1])),
                                      axis=2)[:, :, 0]
        agrees &= ((r_at_top >= r_max - tol) & (wx.max(1)[:, None] >= r_max - tol)).all((1, 2))
    return agrees


def test_deepshap_equals_the_original_deeplift_where_the_maxpool_rules_agree():
    """Plain deepshap (its own max-pool rule) against deeplift's rescale scores: equal on every
    sequence whose max-pool routing is the same under both rules (zero reference); on the
    dinucleotide-shuffled references, where the rules route differently, the difference is
    measured and reported."""
    checked = 0
    for name in DEEPLIFT:
        model, data = imported(name), arrays(name)
        x = data["x"].astype(np.float32)
        zero = np.zeros((len(x), 1, *x.shape[1:]), np.float32)
        agree = maxpool_routing_agrees(model, x, zero)
        for task in range(data["dl_rescale_zero"].shape[0]):
            ours = position_sums(deepshap(model, x, references=zero, output=task))
            expected = position_sums(data["dl_rescale_zero"][task])
            if agree.any():
                assert_f32_close(ours[agree], expected[agree], rtol=SCORE_RTOL,
                                 floor=SCORE_RTOL * float(np.abs(expected).max()), err_msg=name)
            shuffled = position_sums(deepshap(model, x, references=data["refs"].astype(
                np.float32), output=task))
            reference = position_sums(data["dl_rescale"][task])
            print(f"{name} task {task}: zero reference, {int(agree.sum())} of {len(x)} sequences "
                  f"route alike, max relative difference there "
                  f"{relative(ours[agree], expected[agree]) if agree.any() else float('nan'):.2e}"
                  f"; shuffled references (rules route differently): "
                  f"{relative(shuffled, reference):.2e}, correlation "
                  f"{np.corrcoef(shuffled.ravel(), reference.ravel())[0, 1]:.3f}")
        checked += int(agree.sum())
    assert checked > 0


def relu_after_dense(model: keras.Model) -> bool:
    """Whether some ReLU follows a Dense layer: the only place deeplift's genomics default
    (reveal-cancel there, rescale after convolutions) differs from the rescale rule."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense) and layer.get_config()["activation"] == "relu":
            return True
        if isinstance(layer, keras.layers.Activation) and layer.get_config()["activation"] \
                == "relu" and isinstance(layer.input._keras_history.operation,
                                         keras.layers.Dense):
            return True
    return False


@pytest.mark.parametrize("name", DEEPLIFT)
def test_genomics_default_differs_from_rescale_only_after_dense_relus(name):
    data = arrays(name)
    for task in range(data["dl_rescale"].shape[0]):
        rescale = position_sums(data["dl_rescale"][task])
        genomics = position_sums(data["dl_genomics"][task])
        difference = relative(genomics, rescale)
        print(f"{name} task {task}: deeplift genomics default vs rescale, max relative "
              f"per-base difference {difference:.2e}")
        if relu_after_dense(imported(name)):
            assert difference > 1e-2  # reveal-cancel changes the scores
        else:  # every ReLU follows a convolution: the same rule, the same float computation
            assert difference == 0.0


# ------------------------------------------------------------------------------ the command

def test_import_legacy_command_round_trip(tmp_path, capsys):
    out = tmp_path / "sub" / "bpnet.keras"
    assert cli.main(["import-legacy", str(FIXTURES / "bpnet_rcps.h5"), "--out", str(out)]) == 0
    assert "imported" in capsys.readouterr().out
    assert sorted(p.name for p in out.parent.iterdir()) == ["bpnet.keras"]  # no partial file
    model = benchmark_rc.load_model(out)
    data = arrays("bpnet_rcps")
    got = model.predict(inputs("bpnet_rcps", data), verbose=0)
    assert_f32_close(got["profile"], data["profile"],
                     **prediction_tolerance(model, data["profile"]))


def test_import_legacy_command_reports_errors(tmp_path, capsys):
    bad = tmp_path / "notes.h5"
    bad.write_text("not a model")
    assert cli.main(["import-legacy", str(bad), "--out", str(tmp_path / "m.keras")]) == 2
    assert f"error: {bad}: not an HDF5 file" in capsys.readouterr().err
    assert cli.main(["import-legacy", str(FIXTURES / "sim_rcps.h5"), "--out",
                     str(tmp_path / "m.json")]) == 2
    assert "expected a file ending in .keras or .h5" in capsys.readouterr().err
    assert not (tmp_path / "m.keras").exists()


# ------------------------------------------------------------------------------ bad inputs

def edited_copy(tmp_path: Path, name: str, edit) -> Path:
    """A copy of a fixture with its model_config JSON changed by ``edit(config)``."""
    path = tmp_path / f"edited_{name}.h5"
    shutil.copy(FIXTURES / entry(name)["file"], path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config)
        f.attrs["model_config"] = json.dumps(config).encode()
    return path


def layer_config(config: dict, name: str) -> dict:
    layers = config["config"]["layers"]
    return next(layer for layer in layers if (layer.get("name") or layer["config"]["name"])
                == name)


def test_non_keras_files_are_refused(tmp_path):
    text = tmp_path / "a.h5"
    text.write_text("hello")
    with pytest.raises(UserError, match="not an HDF5 file"):
        load_legacy_model(text)
    data = tmp_path / "data.h5"
    with h5py.File(data, "w") as f:
        f["x"] = np.zeros((2, 3))
    with pytest.raises(UserError, match=r"data\.h5: no 'model_config' attribute"):
        load_legacy_model(data)
    with pytest.raises(UserError, match="no such file"):
        load_legacy_model(tmp_path / "missing.h5")
    keras3 = tmp_path / "keras3.h5"
    benchmark_rc.build_model("sim", "standard", seed=0).save(keras3)
    with pytest.raises(UserError, match="saved by Keras 3"):
        load_legacy_model(keras3)


def test_an_unsupported_layer_is_refused_by_name(tmp_path):
    def edit(config):
        layer_config(config, "rev_comp_sum_pool_1")["class_name"] = "SeparableFC"

    path = edited_copy(tmp_path, "sim_rcps", edit)
    with pytest.raises(UserError) as err:
        load_legacy_model(path)
    message = str(err.value)
    assert str(path) in message and "'rev_comp_sum_pool_1' (SeparableFC)" in message
    assert "supported layers:" in message and "RevCompConv1D" in message


def test_an_unsupported_activation_is_refused(tmp_path):
    def edit(config):
        layer_config(config, "activation_1")["config"]["activation"] = "hard_sigmoid"

    with pytest.raises(UserError, match="'activation_1' \\(Activation\\): activation "
                                        "'hard_sigmoid' is not supported"):
        load_legacy_model(edited_copy(tmp_path, "sim_standard", edit))


def test_a_lambda_outside_the_recognised_patterns_is_refused(tmp_path):
    """A Lambda RC whose output feeds a layer that does not also take the plain input is not
    the Siamese pattern: refused, its code never looked at."""
    def edit(config):
        average = layer_config(config, "average_1")
        average["inbound_nodes"] = [[["lambda_1", 0, 0, {}], ["shared_layers", 1, 0, {}]]]

    with pytest.raises(UserError, match="'lambda_1' \\(Lambda\\): not one of the Lambda patterns"):
        load_legacy_model(edited_copy(tmp_path, "sim_siamese", edit))


def test_lambda_code_is_never_read(tmp_path):
    """The Siamese import does not depend on the stored Lambda code: garbage there changes
    nothing."""
    def edit(config):
        layer_config(config, "lambda_1")["config"]["function"] = ["not base64 bytecode!", None,
                                                                  None]

    model = load_legacy_model(edited_copy(tmp_path, "sim_siamese", edit))
    x = arrays("sim_siamese")["x"].astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0),
                                  imported("sim_siamese").predict(x, verbose=0))
    assert any(isinstance(layer, RCTransform) for layer in model.layers)
    assert any(isinstance(layer, StrandMerge) for layer in model.layers)


def test_a_missing_weight_is_refused(tmp_path):
    path = tmp_path / "sim_standard.h5"
    shutil.copy(FIXTURES / "sim_standard.h5", path)
    with h5py.File(path, "r+") as f:
        group = f["model_weights/dense_1"]
        group.attrs["weight_names"] = [b"dense_1/kernel:0"]
    with pytest.raises(UserError, match="'dense_1' \\(Dense\\): the file stores no weight 'bias'"):
        load_legacy_model(path)


def test_rcps_layers_map_to_the_original_stack_layers():
    layers = {type(layer) for layer in imported("sim_rcps").layers}
    assert {KerasGenomicsRevCompConv1D, KerasGenomicsRevCompConv1DBatchNorm} <= layers
    readout = next(layer for layer in imported("binary_rcps_weighted").layers
                   if isinstance(layer, WeightedSum1D))
    assert readout.units == 1


# ------------------------------------------------------------------------------ the committed
# side-by-side training (results/original-vs-ours, reference/side_by_side_report.py)

SIDE_BY_SIDE = ROOT / "results" / "original-vs-ours"


def test_side_by_side_results_are_well_formed_and_complete():
    """results.csv lists every planned run once (3 sides x 3 strategies x 2 seeds), finished
    (ok) or not yet (pending: no numbers, no curve), with plausible numbers; curves.csv holds each
    finished run's epochs 0..epochs-1, and the kept epoch is the first one of the best
    validation auROC (the protocol's selection). Seed 1535 is complete."""
    import pandas as pd

    results = pd.read_csv(SIDE_BY_SIDE / "results.csv")
    curves = pd.read_csv(SIDE_BY_SIDE / "curves.csv")
    planned = {(side, strategy, seed)
               for side in ("original", "ours-compat-original", "ours-default")
               for strategy in ("standard", "rcps", "conjoined") for seed in (1535, 1780)}
    keys = list(zip(results.side, results.strategy, results.seed, strict=True))
    assert len(keys) == len(set(keys)) and set(keys) == planned
    assert set(results.status) <= {"ok", "pending"}
    assert (results.status == "ok").all()  # all 18 runs finished
    pending = results[results.status == "pending"]
    assert pending[["epochs", "best_epoch", "test_auroc", "test_auprc"]].isna().all().all()
    for row in pending.itertuples():
        assert not ((curves.side == row.side) & (curves.strategy == row.strategy)
                    & (curves.seed == row.seed)).any(), row
    done = results[results.status == "ok"].astype({"epochs": int, "best_epoch": int})
    for row in done.itertuples():
        assert 1 <= row.epochs <= 200 and 0 <= row.best_epoch < row.epochs
        for value in (row.best_val_auroc, row.test_auroc, row.test_auprc):
            assert 0.5 < value <= 1.0
        curve = curves[(curves.side == row.side) & (curves.strategy == row.strategy)
                       & (curves.seed == row.seed)]
        assert curve.epoch.tolist() == list(range(row.epochs)), row
        auroc = curve.val_auroc.to_numpy()
        assert int(np.argmax(auroc)) == row.best_epoch, row  # argmax: the first maximum
        assert auroc[row.best_epoch] == pytest.approx(row.best_val_auroc, rel=1e-12), row
    assert len(curves) == done.epochs.sum()


def test_side_by_side_report_keeps_committed_runs_missing_from_out(tmp_path):
    """The scratch OUT of an earlier session is gone: the report script, given an empty OUT,
    takes every finished run from the committed results and writes them back unchanged (so a
    continuation only has to run what is pending), and a run finished in OUT wins over the
    committed row."""
    import importlib.util

    import pandas as pd

    spec = importlib.util.spec_from_file_location(
        "side_by_side_report", ROOT / "reference" / "side_by_side_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    dest = tmp_path / "results"
    shutil.copytree(SIDE_BY_SIDE, dest)
    out = tmp_path / "out"
    out.mkdir()
    results, curves = report.collect(out, dest)
    committed = pd.read_csv(SIDE_BY_SIDE / "results.csv")
    pd.testing.assert_frame_equal(results.astype({"epochs": float, "best_epoch": float}),
                                  committed.astype({"epochs": float, "best_epoch": float}))
    pd.testing.assert_frame_equal(curves.reset_index(drop=True),
                                  pd.read_csv(SIDE_BY_SIDE / "curves.csv"), check_dtype=False)
    # a finished run in OUT replaces the committed one
    run = out / "ours-default" / "standard-s1535"
    run.mkdir(parents=True)
    history = pd.DataFrame({"epoch": [0, 1], "loss": [0.7, 0.6], "val_loss": [0.7, 0.65],
                            "val_auroc": [0.8, 0.9]})
    history.to_csv(run / "history.csv", index=False)
    (run / "config.json").write_text(json.dumps({"epochs_run": 2, "best_epoch": 1,
                                                 "best_value": 0.9, "train_seconds": 1.0}))
    (run / "test.json").write_text(json.dumps({"auroc": 0.91, "auprc": 0.8}))
    results, curves = report.collect(out, dest)
    row = results[(results.side == "ours-default") & (results.strategy == "standard")
                  & (results.seed == 1535)].iloc[0]
    assert (row.epochs, row.test_auroc) == (2, 0.91)
    before = committed[(committed.side == "ours-default") & (committed.strategy == "standard")
                       & (committed.seed == 1535)].epochs.iloc[0]
    assert len(curves) == len(pd.read_csv(SIDE_BY_SIDE / "curves.csv")) - before + 2

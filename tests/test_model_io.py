"""How users hand data to models and get models back: profile-model inputs as a list in the
documented order or as a dict by name, named outputs, and benchmark_rc.load_model."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest

import benchmark_rc
from benchmark_rc.errors import UserError

# DESIGN.md: bpnet inputs sequence (N, 1346, 4), control (N, 1000, 2), control log-count (N, 1);
# outputs profile logits (N, 1000, 2), log counts (N, 2).
DOCUMENTED_INPUTS = ("sequence", "control", "control_logcount")
DOCUMENTED_OUTPUTS = ("profile", "counts")
SMALL = {"filters": 4, "n_dilated": 2}  # output length 1346 - 20 - 12 - 74 = 1240


def bpnet_inputs(model: keras.Model, n: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {t.name: (n, *t.shape[1:]) for t in model.inputs}
    x = {name: rng.random(shape, dtype=np.float32) for name, shape in shapes.items()}
    x["sequence"] = np.eye(4, dtype=np.float32)[rng.integers(0, 4, shapes["sequence"][:2])]
    return x


@pytest.mark.parametrize("strategy", ["standard", "rcps", "conjoined", "hybrid-early"])
def test_profile_model_takes_a_list_in_documented_order_or_a_dict(strategy):
    model = benchmark_rc.build_model("bpnet", strategy, **SMALL)
    assert tuple(t.name for t in model.inputs) == DOCUMENTED_INPUTS
    x = bpnet_inputs(model)
    by_name = model.predict(x, verbose=0)
    by_position = model.predict([x[name] for name in DOCUMENTED_INPUTS], verbose=0)
    assert tuple(by_name) == tuple(by_position) == DOCUMENTED_OUTPUTS
    for key in DOCUMENTED_OUTPUTS:
        # exact: the same inputs reach the same layers in the same batch
        np.testing.assert_array_equal(by_position[key], by_name[key])
    assert by_name["profile"].shape == (3, 1240, 2) and by_name["counts"].shape == (3, 2)


def test_posthoc_conjoined_profile_model_keeps_the_input_order():
    model = benchmark_rc.conjoin(benchmark_rc.build_model("bpnet", "standard", **SMALL), "bpnet")
    assert tuple(t.name for t in model.inputs) == DOCUMENTED_INPUTS
    x = bpnet_inputs(model)
    listed = model.predict([x[name] for name in DOCUMENTED_INPUTS], verbose=0)
    np.testing.assert_array_equal(listed["profile"], model.predict(x, verbose=0)["profile"])


def test_fit_accepts_list_inputs_and_named_targets():
    model = benchmark_rc.build_model("bpnet", "rcps", **SMALL)
    x = bpnet_inputs(model, n=4)
    y = {"profile": np.ones((4, 1240, 2), np.float32), "counts": np.zeros((4, 2), np.float32)}
    history = model.fit([x[name] for name in DOCUMENTED_INPUTS], y, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_wrong_order_list_is_rejected_by_shape():
    model = benchmark_rc.build_model("bpnet", "standard", **SMALL)
    x = bpnet_inputs(model)
    with pytest.raises(ValueError, match="control|shape"):
        model.predict([x["control"], x["sequence"], x["control_logcount"]], verbose=0)


# ----------------------------------------------------------------------------- load_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("saved")
    model = benchmark_rc.build_model("sim", "rcps", input_length=200, filters=4)
    x = np.random.default_rng(1).random((5, 200, 4), dtype=np.float32)
    for suffix in (".keras", ".h5"):
        model.save(d / f"model{suffix}")
    return d, x, model.predict(x, verbose=0)


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "."])
def test_load_model_reads_keras_h5_and_run_directories(saved, name):
    d, x, expected = saved
    model = benchmark_rc.load_model(d / name)
    # exact: the same weights through the same kernels on the same machine
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
    assert model.optimizer is not None and model.loss is not None  # compiled by default
    assert benchmark_rc.load_model(d / name, compile=False).compiled is False


def test_load_model_in_a_fresh_interpreter_needs_no_other_import(saved):
    d, x, expected = saved
    np.save(d / "x.npy", x)
    code = ("import sys, numpy as np; from benchmark_rc import load_model; "
            "m = load_model(sys.argv[1]); np.save(sys.argv[2], m.predict(np.load(sys.argv[3]), "
            "verbose=0))")
    result = subprocess.run([sys.executable, "-c", code, str(d / "model.keras"),
                             str(d / "y.npy"), str(d / "x.npy")], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    # another process, same machine and kernels: equal up to float32 round-off of the sigmoid
    np.testing.assert_allclose(np.load(d / "y.npy"), expected, rtol=4 * np.finfo(np.float32).eps)


def test_load_model_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match=r"missing\.keras: no such model file"):
        benchmark_rc.load_model(tmp_path / "missing.keras")
    with pytest.raises(UserError, match=r"run_dir[/\\]model\.keras: no such model file"):
        (tmp_path / "run_dir").mkdir()
        benchmark_rc.load_model(tmp_path / "run_dir")
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip archive")
    with pytest.raises(UserError, match=r"broken\.keras: cannot be loaded as a Keras model"):
        benchmark_rc.load_model(bad)


def test_load_model_refuses_pickled_code(tmp_path):
    # safe_mode: a Lambda layer carries Python bytecode; loading it must fail, not run it.
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0)(inputs))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(UserError, match="lambda.keras: cannot be loaded"):
        benchmark_rc.load_model(tmp_path / "lambda.keras")

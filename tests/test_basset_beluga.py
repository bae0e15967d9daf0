"""basset and beluga (spec/interpretation.md §1.8-1.9) through the layer kit, and the prakash
protocol (§1.10): the spec's length paths, parameter counts by hand, the even padding / cropping
before their pools, every strategy, a training step, a run through the training API, save and
load. Equivariance of every strategy: tests/test_equivariance.py (it covers every registered
architecture)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import f32_rtol, model_terms

from benchmark_rc import build_model, list_architectures, list_strategies
from benchmark_rc.architectures import get_architecture
from benchmark_rc.errors import UserError
from benchmark_rc.tasks import CLASSIFICATION
from benchmark_rc.training import PROTOCOLS, TrainConfig

ARCHS = ["basset", "beluga"]
TINY = {"filters": 4, "dense_units": 8}  # widths basset 4/3/3, beluga 4/6/8; lengths unchanged


def one_hot(n: int, seed: int, length: int = 400) -> np.ndarray:
    return np.eye(4, dtype=np.float32)[np.random.default_rng(seed).integers(0, 4, (n, length))]


def length(model: keras.Model, layer: str) -> int:
    return int(model.get_layer(layer).output.shape[1])


def test_registered_with_the_prakash_protocol():
    assert set(ARCHS) <= set(list_architectures())
    for arch, filters, units in (("basset", 300, 1000), ("beluga", 320, 2003)):
        spec = get_architecture(arch)
        assert spec.task is CLASSIFICATION and spec.protocol == "prakash"
        assert dict(spec.defaults) == {"input_length": 400, "num_tasks": 1, "filters": filters,
                                       "dense_units": units}
        assert TrainConfig(data="x.h5", arch=arch, strategy="rcps").resolved_protocol() \
            == PROTOCOLS["prakash"]
    p = PROTOCOLS["prakash"]
    # §1.10: batch 300, at most 30,000 batches, early stopping (patience: our choice, 10 epochs)
    assert (p.batch_size, p.epochs * p.steps_per_epoch, p.patience) == (300, 30_000, 10)
    assert (p.task, p.monitor, p.select, p.upsample, p.lr_plateau) == (
        CLASSIFICATION, "val_auroc", "auroc", None, None)
    model = build_model("beluga", "standard", **TINY)  # Adam 1e-3, binary cross-entropy
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert np.isclose(float(np.asarray(model.optimizer.learning_rate)), 1e-3)
    assert isinstance(model.loss, keras.losses.BinaryCrossentropy)


# §1.8 with "same" convs and ceil pools: 400 -> 134 -> 34 -> 9 (each pool's input padded 1 + 1)
BASSET_LENGTHS = {"conv1": 400, "pool1_pad": 402, "pool1": 134, "conv2": 134, "pool2_pad": 136,
                  "pool2": 34, "conv3": 34, "maxpool_pad": 36, "maxpool": 9}
# §1.9 with valid convs and floor pools (each pool's input cropped 1 + 1)
BELUGA_LENGTHS = {
    400: {"conv1_1": 393, "conv1_2": 386, "pool1_crop": 384, "pool1": 96, "conv2_1": 89,
          "conv2_2": 82, "pool2_crop": 80, "pool2": 20, "conv3_1": 13, "conv3_2": 6},
    2000: {"conv1_1": 1993, "conv1_2": 1986, "pool1_crop": 1984, "pool1": 496, "conv2_1": 489,
           "conv2_2": 482, "pool2_crop": 480, "pool2": 120, "conv3_1": 113, "conv3_2": 106},
}


@pytest.mark.parametrize("strategy", ["standard", "rcps", "irrep"])
def test_length_paths_for_every_kit(strategy):
    model = build_model("basset", strategy, **TINY)
    assert {k: length(model, k) for k in BASSET_LENGTHS} == BASSET_LENGTHS
    for input_length, lengths in BELUGA_LENGTHS.items():
        model = build_model("beluga", strategy, input_length=input_length, **TINY)
        assert {k: length(model, k) for k in lengths} == lengths


@pytest.mark.parametrize(("arch", "input_length", "flat"), [
    ("basset", 400, 9 * 200), ("beluga", 400, 6 * 640), ("beluga", 2000, 106 * 640)])
def test_flatten_width_at_the_published_conv_widths(arch, input_length, flat):
    # the published conv widths, a tiny hidden layer (the flattened width does not depend on it)
    model = build_model(arch, "standard", input_length=input_length, dense_units=2)
    assert int(model.get_layer("flatten").output.shape[-1]) == flat


def _conv(k: int, c_in: int, c_out: int) -> int:
    return k * c_in * c_out + c_out  # kernel + bias


def _bn(c: int) -> int:
    return 4 * c


def _basset_params(w: tuple[int, int, int], units: int) -> int:
    return (_conv(19, 4, w[0]) + _bn(w[0]) + _conv(11, w[0], w[1]) + _bn(w[1])
            + _conv(7, w[1], w[2]) + _bn(w[2]) + _conv(1, 9 * w[2], units) + _bn(units)
            + _conv(1, units, units) + _bn(units) + _conv(1, units, 1))


def _beluga_params(w: tuple[int, int, int], units: int) -> int:
    return (_conv(8, 4, w[0]) + _conv(8, w[0], w[0]) + _conv(8, w[0], w[1])
            + _conv(8, w[1], w[1]) + _conv(8, w[1], w[2]) + _conv(8, w[2], w[2])
            + _conv(1, 6 * w[2], units) + _conv(1, units, 1))


def test_parameter_counts_by_hand():
    assert build_model("basset", "standard", **TINY).count_params() \
        == _basset_params((4, 3, 3), 8)  # 200 * 4 / 300 = 2.67 -> 3
    assert build_model("beluga", "standard", **TINY).count_params() \
        == _beluga_params((4, 6, 8), 8)
    # the published sizes at 400 bp
    assert build_model("basset", "standard").count_params() \
        == _basset_params((300, 200, 200), 1000)
    assert build_model("beluga", "standard").count_params() \
        == _beluga_params((320, 480, 640), 2003)


@pytest.mark.parametrize("arch", ARCHS)
def test_rcps_half_halves_every_conv(arch):
    # the published widths halve exactly (300/200/200, 320/480/640); a tiny hidden layer
    std = build_model(arch, "standard", dense_units=2)
    half = build_model(arch, "rcps-half", dense_units=2)
    convs = [layer.name for layer in std.layers if layer.name.startswith("conv")]
    assert len(convs) == (3 if arch == "basset" else 6)
    for name in convs:  # 2 x half the filters = the standard's channels
        assert half.get_layer(name).output.shape[-1] == std.get_layer(name).output.shape[-1]


def test_ceil_and_floor_pools_use_centred_windows():
    """Basset's pool 1 takes the max over rows 3i-1..3i+1 of the zero-padded ReLU map, beluga's
    over rows 4i+1..4i+4 of its second conv's map (one row cropped at each end)."""
    x = one_hot(2, 1)
    model = build_model("basset", "standard", seed=0, **TINY)
    act, pooled = keras.Model(model.inputs, [model.get_layer("act1").output,
                                             model.get_layer("pool1").output])(x)
    act = np.pad(np.asarray(act), ((0, 0), (1, 1), (0, 0)))  # ReLU output: zeros never win
    assert np.array_equal(np.asarray(pooled), act.reshape(2, 134, 3, -1).max(axis=2))
    model = build_model("beluga", "standard", seed=0, **TINY)
    act, pooled = keras.Model(model.inputs, [model.get_layer("relu1_2").output,
                                             model.get_layer("pool1").output])(x)
    act = np.asarray(act)[:, 1:-1]
    assert np.array_equal(np.asarray(pooled), act.reshape(2, 96, 4, -1).max(axis=2))


@pytest.mark.parametrize(("arch", "layer"), [("basset", "pool1_pad"), ("beluga", "pool1_crop")])
def test_lengths_without_an_even_split_are_refused(arch, layer):
    # 401: basset's first pool would need 1 padded row, beluga's 3 cropped rows (387 = 4*96 + 3)
    with pytest.raises(UserError, match=f"{layer}: a length-(401|387) map cannot be"):
        build_model(arch, "rcps", input_length=401, **TINY)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_strategy_builds_and_predicts(arch):
    x = one_hot(2, 2)
    for strategy in list_strategies(arch):
        model = build_model(arch, strategy, seed=1, **TINY)
        y = np.asarray(model(x))
        assert y.shape == (2, 1), strategy
        assert np.all((y > 0) & (y < 1)), strategy


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("strategy", ["standard", "rcps", "irrep"])
def test_a_training_step_moves_the_weights(arch, strategy):
    model = build_model(arch, strategy, seed=3, **TINY)
    model.run_eagerly = True  # tracing a train function costs more than one step
    watched = [model.get_layer(name).trainable_weights[0]  # first conv and logits kernels
               for name in ("conv1" if arch == "basset" else "conv1_1", "logits")]
    before = [np.array(w) for w in watched]
    x, y = one_hot(8, 4), np.random.default_rng(5).integers(0, 2, (8, 1)).astype(np.float32)
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
    for b, w in zip(before, watched, strict=True):
        assert not np.array_equal(b, np.asarray(w)), w.path


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("strategy", ["standard", "rcps", "conjoined", "hybrid-early", "irrep"])
def test_save_and_load_under_safe_mode(tmp_path, arch, strategy):
    model = build_model(arch, strategy, seed=6, **TINY)
    path = tmp_path / f"{arch}-{strategy}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = one_hot(3, 7)
    # the same weights and ops in the same process: the same bits
    assert np.array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


def test_a_run_through_the_training_api(tmp_path):
    """The prakash protocol end to end (tiny overrides): the run records it and its model is
    RC-consistent (rcps)."""
    from benchmark_rc.data.hdf5 import write_dataset
    from benchmark_rc.training import evaluate_model, train_run

    rng = np.random.default_rng(8)
    splits = {split: {"x": np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (n, 400))],
                      "y": rng.integers(0, 2, (n, 1)).astype(np.float32)}
              for split, n in (("train", 16), ("valid", 8), ("test", 8))}
    data = write_dataset(tmp_path / "tiny.h5", CLASSIFICATION.name, splits, params={"tiny": 1})
    config = TrainConfig(data=str(data), arch="beluga", strategy="rcps", seed=1, epochs=1,
                         steps_per_epoch=2, batch_size=8, hparams=dict(TINY))
    summary = train_run(config, tmp_path / "run")
    assert summary["protocol"]["name"] == "prakash"
    assert summary["protocol"]["monitor"] == "val_auroc" and summary["epochs_run"] == 1
    model = keras.models.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    scores = evaluate_model(model, str(data), "test")
    # RC-shared: predictions of x and RC(x) differ by float32 round-off of the model's sums only
    assert scores["n"] == 8 and scores["rc_divergence"] < f32_rtol(model_terms(model))

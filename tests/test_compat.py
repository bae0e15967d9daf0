"""The ``compat="original"`` switch: layers that reproduce TF 1.15 / Keras 2.2.4 / keras-genomics
0.1.2.1 where it changed results (issue 11), and its plumbing (kit, build_model, train, sweep).

Each layer is pinned against a formula written here in numpy (float64):

* KerasGenomicsRevCompConv1D: y = 2·(x ⋆ [W, W_rc]) + [b, reversed b] (keras-genomics'
  ``outputs += bias_add(outputs, bias)``); without a bias the plain convolution;
* KerasGenomicsRevCompConv1DBatchNorm: y = x·γ/√(1 + ε) + β per channel pair (γ, β mirrored onto
  channels c and 2F-1-c), in training and in inference, moving statistics never updated;
* Keras2BatchNormalization: the moving statistics of TF 1's
  ``assign_moving_average(zero_debias=True)`` (formula in ``_debiased``).

Tolerances (conftest): f32_rtol of the terms each output accumulates; exact comparisons only for
the very same computation repeated (training vs inference branch of the affine layer, default
builds vs default builds, saved vs loaded weights) and for stored values never touched (moving
statistics that must stay 0 and 1).
"""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import assert_f32_close, f32_rtol, model_terms

import benchmark_rc as brc
from benchmark_rc.benchmark import (
    RESULT_COLUMNS,
    dataset_compat,
    make_jobs,
    override_compat,
    read_results,
    resolve_config,
    run_sweep,
)
from benchmark_rc.errors import UserError
from benchmark_rc.layers import (
    Keras2BatchNormalization,
    KerasGenomicsRevCompConv1D,
    KerasGenomicsRevCompConv1DBatchNorm,
    RevCompConv1D,
    RevCompConv1DBatchNorm,
    RevCompSumPool,
)
from benchmark_rc.registry import build_model, logits_model
from benchmark_rc.strategies import get_strategy
from benchmark_rc.training import TrainConfig, _check_resumable

COMPAT_CLASSES = (Keras2BatchNormalization, KerasGenomicsRevCompConv1D,
                  KerasGenomicsRevCompConv1DBatchNorm)
# a control (the default layer, a formula without the quirk) must fail the check even when the
# bar is this much looser
CONTROL_MARGIN = 100
# the results.csv header before the compat column existed (a file a resumed sweep may meet)
OLD_COLUMNS = ("run_id", "dataset", "arch", "strategy", "paper_label", "seed", "auroc", "auprc",
               "jsd", "pearson", "spearman", "rc_divergence", "train_seconds", "epochs",
               "best_epoch", "status", "error")
# the tiny bpnet of the smoke preset: 206-bp inputs -> 100-bp profiles
TINY_BPNET = {"filters": 4, "n_dilated": 2, "input_length": 206}


def rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def numpy_conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Valid 1-D cross-correlation in float64: out[n, p, f] = sum_{t, c} x[n, p+t, c] w[t, c, f]."""
    k = w.shape[0]
    x, w = x.astype(np.float64), w.astype(np.float64)
    length = x.shape[1] - k + 1
    return np.stack([np.einsum("ntc,tcf->nf", x[:, p:p + k], w) for p in range(length)], axis=1)


def mirror(v: np.ndarray) -> np.ndarray:
    """Per-pair parameters onto 2F channels: [v, reversed v]."""
    return np.concatenate([v, v[::-1]])


def rc(x: np.ndarray) -> np.ndarray:
    """Hand-written RC of a regular (N, L, C) map: reverse length and channels."""
    return x[:, ::-1, ::-1]


# --------------------------------------------------------------------------- 2·conv + bias


@pytest.mark.parametrize("use_bias", [True, False])
def test_keras_genomics_conv_is_twice_conv_plus_bias(use_bias):
    layer = KerasGenomicsRevCompConv1D(3, 5, use_bias=use_bias, bias_initializer="random_normal")
    x = rand((2, 20, 4), seed=1)
    y = np.asarray(layer(x))
    w = np.asarray(layer.kernel)
    w_full = np.concatenate([w, w[::-1, ::-1, ::-1]], axis=-1)
    conv = numpy_conv(x, w_full)
    abs_conv = numpy_conv(np.abs(x), np.abs(w_full))
    if use_bias:
        b_full = mirror(np.asarray(layer.bias, np.float64))
        expected, control = 2 * conv + b_full, conv + b_full  # keras-genomics vs ours
        terms = 2 * abs_conv + np.abs(b_full)
    else:  # keras-genomics only doubles inside its bias branch
        expected, control = conv, 2 * conv
        terms = abs_conv
    rtol = f32_rtol(5 * 4 + 2)  # kernel x channels products, then conv + (conv + b)
    assert_f32_close(y, expected, rtol=rtol, floor=rtol * terms)
    with pytest.raises(AssertionError):
        assert_f32_close(y, control, rtol=CONTROL_MARGIN * rtol,
                         floor=CONTROL_MARGIN * rtol * terms)
    # the weights of the default layer (F kernels of k x C_in, F biases): same parameter count
    assert layer.count_params() == 5 * 4 * 3 + 3 * use_bias


def test_keras_genomics_conv_is_equivariant():
    layer = KerasGenomicsRevCompConv1D(4, 7, bias_initializer="random_normal")
    x = rand((3, 40, 4), seed=2)
    y, y_rc = np.asarray(layer(x)), np.asarray(layer(rc(x)))
    w = np.asarray(layer.full_kernel())
    terms = 2 * numpy_conv(np.abs(x), np.abs(w)) + np.abs(np.asarray(layer.full_bias()))
    rtol = f32_rtol(7 * 4 + 2)  # the RC strand sums the same products in another order
    assert_f32_close(rc(y_rc), y, rtol=rtol, floor=rtol * terms)


# --------------------------------------------------------------------------- affine RC BN


def _affine_bn(half: int = 3, epsilon: float = 1e-3) -> KerasGenomicsRevCompConv1DBatchNorm:
    bn = KerasGenomicsRevCompConv1DBatchNorm(epsilon=epsilon, gamma_initializer="random_normal",
                                             beta_initializer="random_normal")
    bn.build((None, 12, 2 * half))
    return bn


@pytest.mark.parametrize("epsilon", [1e-3, 0.5])
def test_affine_rc_batchnorm_formula_in_training_and_inference(epsilon):
    bn = _affine_bn(epsilon=epsilon)
    x = rand((4, 12, 6), seed=3) * 3 + 2  # far from zero mean / unit variance: stats would show
    gamma, beta = np.asarray(bn.gamma, np.float64), np.asarray(bn.beta, np.float64)
    expected = x * mirror(gamma) / np.sqrt(1 + epsilon) + mirror(beta)
    y_train = np.asarray(bn(x, training=True))
    y_infer = np.asarray(bn(x, training=False))
    rtol = f32_rtol(8)  # rsqrt (a few ulp), products, one addition
    assert_f32_close(y_train, expected, rtol=rtol)
    # exact: training runs the very same inference computation
    np.testing.assert_array_equal(y_train, y_infer)
    # exact: the moving statistics are stored values nothing touches
    np.testing.assert_array_equal(np.asarray(bn.moving_mean), np.zeros(3))
    np.testing.assert_array_equal(np.asarray(bn.moving_variance), np.ones(3))
    # control: the default RC batch norm normalises by the batch statistics in training
    ours = RevCompConv1DBatchNorm(epsilon=epsilon)
    ours.build(x.shape)
    ours.set_weights(bn.get_weights())
    with pytest.raises(AssertionError):
        assert_f32_close(np.asarray(ours(x, training=True)), expected,
                         rtol=CONTROL_MARGIN * rtol)
    assert np.all(np.asarray(ours.moving_mean) != 0)  # and it updates its statistics


def test_affine_rc_batchnorm_learns_scale_and_shift_but_never_statistics():
    """Through fit (training=True, optimizer steps): γ and β move, the statistics stay 0 / 1, and
    the output is still the affine formula with the trained γ, β."""
    inputs = keras.Input((12, 6))
    bn = KerasGenomicsRevCompConv1DBatchNorm(name="bn")
    out = keras.layers.Dense(1)(keras.layers.Flatten()(bn(inputs)))
    model = keras.Model(inputs, out)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    x = rand((32, 12, 6), seed=4) * 2 + 1
    model.fit(x, rand((32, 1), seed=5), epochs=3, batch_size=8, verbose=0)
    gamma, beta = np.asarray(bn.gamma, np.float64), np.asarray(bn.beta, np.float64)
    assert np.all(gamma != 1) and np.all(beta != 0)
    np.testing.assert_array_equal(np.asarray(bn.moving_mean), np.zeros(3))
    np.testing.assert_array_equal(np.asarray(bn.moving_variance), np.ones(3))
    expected = x * mirror(gamma) / np.sqrt(1 + bn.epsilon) + mirror(beta)
    assert_f32_close(np.asarray(bn(x, training=True)), expected, rtol=f32_rtol(8))


def test_affine_rc_batchnorm_is_equivariant_in_training_mode():
    bn = _affine_bn(half=4)
    x = rand((3, 12, 8), seed=6)
    for training in (True, False):
        y, y_rc = np.asarray(bn(x, training=training)), np.asarray(bn(rc(x), training=training))
        assert_f32_close(rc(y_rc), y, rtol=f32_rtol(8))


# --------------------------------------------------------------------------- Keras 2 BN


def _debiased(values: list[np.ndarray], momentum: float) -> np.ndarray:
    """TF 1 ``assign_moving_average(var, value, momentum, zero_debias=True)`` after k = len(values)
    updates. Its code keeps biased_0 = 0 and per update, d = 1 - momentum:
        biased_t = biased_{t-1} - (biased_{t-1} - value_t) * d
        var_t    = biased_t / (1 - (1 - d)**t)
    so var_k = d * sum_{i=1..k} momentum**(k-i) * value_i / (1 - momentum**k), whatever the
    variable's initial value."""
    k = len(values)
    d = 1.0 - momentum
    total = sum(momentum ** (k - i) * v for i, v in enumerate(values, start=1))
    return d * total / (1.0 - momentum**k)


def test_keras2_batchnorm_moving_averages_are_zero_debiased():
    momentum, epsilon = 0.9, 1e-3
    bn = Keras2BatchNormalization(momentum=momentum, epsilon=epsilon,
                                  gamma_initializer="random_normal")
    keras3 = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
    batches = [rand((4, 10, 3), seed=10 + i) * (i + 1) + 2 * i for i in range(5)]
    n = 4 * 10  # entries per channel: batch x length
    means, sample_vars, keras3_means = [], [], []
    for k, x in enumerate(batches, start=1):
        y = np.asarray(bn(x, training=True))
        keras3(x, training=True)
        x64 = x.astype(np.float64)
        means.append(x64.mean(axis=(0, 1)))
        # Keras 2.2.4 feeds the moving variance the batch variance times n / (n - (1 + eps))
        sample_vars.append(x64.var(axis=(0, 1)) * n / (n - (1.0 + epsilon)))
        rtol = f32_rtol(4 * n, 8 * k)  # moments over n entries, a few roundings per update
        mean_k, var_k = _debiased(means, momentum), _debiased(sample_vars, momentum)
        assert_f32_close(np.asarray(bn.moving_mean), mean_k, rtol=rtol, err_msg=f"step {k}")
        assert_f32_close(np.asarray(bn.moving_variance), var_k, rtol=rtol, err_msg=f"step {k}")
        assert float(np.asarray(bn.local_step)) == k  # exact: a small integer count
        # the training output is Keras' (batch statistics, biased variance)
        gamma = np.asarray(bn.gamma, np.float64)
        normed = (x64 - means[-1]) / np.sqrt(x64.var(axis=(0, 1)) + epsilon) * gamma
        assert_f32_close(y, normed, rtol=f32_rtol(4 * n, 8))
        keras3_means.append(np.asarray(keras3.moving_mean, np.float64))
    # controls: Keras 3's undebiased average, and debiasing without the n/(n-1-eps) factor
    with pytest.raises(AssertionError):
        assert_f32_close(keras3_means[1], _debiased(means[:2], momentum),
                         rtol=CONTROL_MARGIN * f32_rtol(4 * n, 16))
    plain_vars = [v * (n - 1.0 - epsilon) / n for v in sample_vars]
    with pytest.raises(AssertionError):
        assert_f32_close(np.asarray(bn.moving_variance), _debiased(plain_vars, momentum),
                         rtol=CONTROL_MARGIN * f32_rtol(4 * n, 40))
    # inference uses the moving statistics, as Keras 3's layer
    x = rand((2, 10, 3), seed=30)
    mm, mv = np.asarray(bn.moving_mean, np.float64), np.asarray(bn.moving_variance, np.float64)
    expected = (x - mm) / np.sqrt(mv + epsilon) * np.asarray(bn.gamma, np.float64)
    assert_f32_close(np.asarray(bn(x)), expected, rtol=f32_rtol(8))


def test_keras2_batchnorm_first_update_is_the_batch_value_and_frozen_updates_nothing():
    bn = Keras2BatchNormalization()
    x = rand((3, 8, 2), seed=31) + 5
    bn(x, training=True)
    x64 = x.astype(np.float64)
    # var_1 = value_1: the initial 0 / 1 of the moving statistics does not count
    assert_f32_close(np.asarray(bn.moving_mean), x64.mean(axis=(0, 1)), rtol=f32_rtol(4 * 24, 8))
    assert_f32_close(np.asarray(bn.moving_variance),
                     x64.var(axis=(0, 1)) * 24 / (24 - 1.001), rtol=f32_rtol(4 * 24, 8))
    frozen = [np.asarray(w) for w in bn.weights]
    bn.trainable = False
    y = np.asarray(bn(x, training=True))
    # exact: frozen, training=True is the inference computation; nothing was updated
    np.testing.assert_array_equal(y, np.asarray(bn(x)))
    for got, want in zip(bn.weights, frozen, strict=True):
        np.testing.assert_array_equal(np.asarray(got), want)


def test_keras2_batchnorm_refuses_renorm():
    with pytest.raises(ValueError, match="renorm"):
        Keras2BatchNormalization(renorm=True)


# --------------------------------------------------------------------------- configs, saving


@pytest.mark.parametrize("cls", COMPAT_CLASSES)
def test_compat_layers_registered_bare_and_config_round_trip(cls):
    layer = cls()  # doctor's self-check instantiates registered layers bare
    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"] == f"benchmark_rc>{cls.__name__}"
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is cls and clone.get_config() == layer.get_config()
    assert keras.saving.get_custom_objects()[f"benchmark_rc>{cls.__name__}"] is cls


@pytest.mark.parametrize(("arch", "strategy", "hp"), [
    ("sim", "rcps", {}),
    ("binary", "hybrid-early", {"filters": 4}),
    ("bpnet", "rcps", TINY_BPNET),
])
def test_compat_models_round_trip_keras_and_h5_in_safe_mode(tmp_path, arch, strategy, hp):
    model = build_model(arch, strategy, seed=2, compat="original", **hp)
    x = _inputs(arch, model, seed=7)
    # a few steps so that γ, β and the Keras 2 debiasing state are not their initial values
    rng = np.random.default_rng(13)
    y = keras.tree.map_structure(
        lambda t: rng.integers(0, 2, size=t.shape).astype(np.float32), model(x))
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    want = keras.tree.flatten(model.predict_on_batch(x))
    types = {type(layer) for layer in model._flatten_layers()}
    assert types & set(COMPAT_CLASSES)
    for name in ("model.keras", "model.h5"):
        model.save(tmp_path / name)
        loaded = keras.models.load_model(tmp_path / name, safe_mode=True, compile=False)
        assert {type(layer) for layer in loaded._flatten_layers()} == types
        for got, saved in zip(loaded.weights, model.weights, strict=True):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(saved))  # exact: copies
        # exact: the same computation with the same weights, repeated in one process
        for got, ref in zip(keras.tree.flatten(loaded.predict_on_batch(x)), want, strict=True):
            np.testing.assert_array_equal(got, ref)


# --------------------------------------------------------------------------- models


def _inputs(arch: str, model: keras.Model, seed: int, n: int = 8):
    rng = np.random.default_rng(seed)
    if arch != "bpnet":
        length = int(model.inputs[0].shape[1])
        return np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, length))]
    shapes = {t.name: tuple(t.shape[1:]) for t in model.inputs}
    return {
        "sequence": np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, shapes["sequence"][0]))],
        "control": rng.poisson(2.0, size=(n, *shapes["control"])).astype(np.float32),
        "control_logcount": rng.normal(size=(n, 1)).astype(np.float32),
    }


def _rc_inputs(arch: str, x):
    """Hand-written RC of the inputs: the sequence reversed in length and channels; the bpnet
    control reversed along length only; the control log count unchanged."""
    if arch != "bpnet":
        return x[:, ::-1, ::-1]
    return {"sequence": x["sequence"][:, ::-1, ::-1], "control": x["control"][:, ::-1, :],
            "control_logcount": x["control_logcount"]}


def _rc_outputs_back(arch: str, y):
    """Hand-written RC map of the outputs: classification logits unchanged (invariant); bpnet
    profile reversed with strands swapped, counts swapped."""
    if arch != "bpnet":
        return y
    return {"profile": y["profile"][:, ::-1, ::-1], "counts": y["counts"][:, ::-1]}


EQUIVARIANT = [s for s in brc.list_strategies()
               if get_strategy(s).equivariant and get_strategy(s).trained_as == s]
ARCH_HP = {"sim": {}, "binary": {"filters": 4}, "bpnet": TINY_BPNET}


@pytest.mark.parametrize("arch", list(ARCH_HP))
@pytest.mark.parametrize("strategy", EQUIVARIANT)
def test_compat_models_are_rc_equivariant(arch, strategy):
    model = build_model(arch, strategy, seed=4, compat="original", **ARCH_HP[arch])
    rng = np.random.default_rng(8)
    # any weights: every trainable weight perturbed (γ, β of the affine RC BN no longer 1 / 0)
    for w in model.trainable_weights:
        w.assign(np.asarray(w) + 0.3 * rng.normal(size=w.shape).astype(np.float32))
    net = logits_model(model)
    x = _inputs(arch, model, seed=9)
    trainings = (False, True) if strategy.startswith("rcps") else (False,)
    for training in trainings:  # the original RCPS models have no batch statistics at all
        y = net(x, training=training)
        y_rc = _rc_outputs_back(arch, net(_rc_inputs(arch, x), training=training))
        rtol = f32_rtol(model_terms(model))
        for got, want in zip(keras.tree.flatten(y_rc), keras.tree.flatten(y), strict=True):
            assert_f32_close(np.asarray(got), np.asarray(want), rtol=rtol,
                             err_msg=f"{arch}/{strategy} training={training}")


def _layer_types(model: keras.Model) -> set[type]:
    return {type(layer) for layer in model._flatten_layers()}


@pytest.mark.parametrize("arch", list(ARCH_HP))
@pytest.mark.parametrize("strategy", ["standard", "conjoined", "rcps", "rcps-half",
                                      "hybrid-early"])
def test_default_builds_are_unchanged_and_original_swaps_only_the_compat_layers(arch, strategy):
    hp = ARCH_HP[arch]
    base = build_model(arch, strategy, seed=5, **hp)
    x = _inputs(arch, base, seed=11)
    want = keras.tree.flatten(base.predict_on_batch(x))
    for compat in ("default", None):
        again = build_model(arch, strategy, seed=5, compat=compat, **hp)
        assert _layer_types(again) == _layer_types(base)
        assert again.count_params() == base.count_params()
        # exact: the same seed builds the same weights, the same computation follows
        for got, ref in zip(again.get_weights(), base.get_weights(), strict=True):
            np.testing.assert_array_equal(got, ref)
        for got, ref in zip(keras.tree.flatten(again.predict_on_batch(x)), want, strict=True):
            np.testing.assert_array_equal(got, ref)
    assert not _layer_types(base) & set(COMPAT_CLASSES)
    original = build_model(arch, strategy, seed=5, compat="original", **hp)
    # the original layers replace exactly: RC conv -> 2·conv, RC BN -> affine, BN -> Keras 2 BN
    swap = {RevCompConv1D: KerasGenomicsRevCompConv1D,
            RevCompConv1DBatchNorm: KerasGenomicsRevCompConv1DBatchNorm,
            keras.layers.BatchNormalization: Keras2BatchNormalization}
    assert _layer_types(original) == {swap.get(t, t) for t in _layer_types(base)}
    trainable = sum(int(np.prod(w.shape)) for w in base.trainable_weights)
    assert sum(int(np.prod(w.shape)) for w in original.trainable_weights) == trainable
    # non-trainable extras: the Keras 2 BN's debiasing shadows, 2 per channel + 1 step counter
    extra = sum(2 * int(layer.moving_mean.shape[0]) + 1 for layer in original._flatten_layers()
                if isinstance(layer, Keras2BatchNormalization))
    assert original.count_params() == base.count_params() + extra


# The ablations of "original", written out here: which of the three swaps each one makes.
ABLATIONS = {
    "original-bn": {RevCompConv1DBatchNorm: KerasGenomicsRevCompConv1DBatchNorm,
                    keras.layers.BatchNormalization: Keras2BatchNormalization},
    "original-conv": {RevCompConv1D: KerasGenomicsRevCompConv1D},
}


@pytest.mark.parametrize("compat", list(ABLATIONS))
@pytest.mark.parametrize("arch", list(ARCH_HP))
@pytest.mark.parametrize("strategy", ["conjoined", "rcps"])
def test_ablation_modes_swap_only_their_layers(compat, arch, strategy):
    hp = ARCH_HP[arch]
    base = build_model(arch, strategy, seed=5, **hp)
    ablated = build_model(arch, strategy, seed=5, compat=compat, **hp)
    swap = ABLATIONS[compat]
    assert _layer_types(ablated) == {swap.get(t, t) for t in _layer_types(base)}
    if (arch, strategy) == ("sim", "rcps"):  # the paper's RCPS model has both kinds of layer
        assert _layer_types(ablated) != _layer_types(base)


def test_default_sim_rcps_is_the_hand_built_model_of_before():
    """The default sim RCPS model, built by hand from the stock layers in the order the kit used
    before the switch existed: the same seed gives the same weights and outputs."""
    keras.utils.set_random_seed(6)
    inputs = keras.Input((200, 4), name="sequence")
    h = RevCompConv1D(20, 21, name="conv1")(inputs)
    h = RevCompConv1DBatchNorm(name="bn1")(h)
    h = keras.layers.Activation("relu", name="relu1")(h)
    h = keras.layers.MaxPooling1D(20, 20, name="maxpool")(h)
    h = RevCompSumPool(name="strand_merge")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    ref = keras.Model(inputs, keras.layers.Dense(3, name="logits")(h))
    model = logits_model(build_model("sim", "rcps", seed=6))
    assert model.count_params() == ref.count_params() == 2323
    for got, want in zip(model.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)  # exact: the same draws in the same order
    x = _inputs("sim", model, seed=12)
    np.testing.assert_array_equal(model.predict_on_batch(x), ref.predict_on_batch(x))


def test_compat_values_are_checked():
    with pytest.raises(UserError, match="compat"):
        build_model("sim", "rcps", compat="keras2")
    with pytest.raises(UserError, match="compat"):
        TrainConfig(data="x.h5", arch="sim", strategy="rcps", compat="new")
    moved = TrainConfig(data="x.h5", arch="sim", strategy="rcps",
                        hparams={"compat": "original", "filters": 4})
    assert moved.compat == "original" and moved.hparams == {"filters": 4}
    with pytest.raises(UserError, match="conflicts"):
        TrainConfig(data="x.h5", arch="sim", strategy="rcps", compat="original",
                    hparams={"compat": "default"})


def test_checkpoint_resume_checks_compat_and_reads_old_checkpoints_as_default(tmp_path):
    base = TrainConfig(data=str(tmp_path / "d.h5"), arch="sim", strategy="rcps", seed=1)
    _check_resumable(tmp_path, base)
    run_json = tmp_path / "checkpoint" / "run.json"
    saved = json.loads(run_json.read_text())
    assert saved["compat"] == "default"
    (tmp_path / "checkpoint" / "state.json").write_text("{}")
    with pytest.raises(UserError, match="compat"):
        _check_resumable(tmp_path, TrainConfig(**{**base.to_dict(), "compat": "original"}))
    del saved["compat"]  # a checkpoint written before the switch existed
    run_json.write_text(json.dumps(saved))
    _check_resumable(tmp_path, base)


# --------------------------------------------------------------------------- train, sweep


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from benchmark_rc.data.hdf5 import write_dataset

    rng = np.random.default_rng(0)
    splits = {}
    for split, n in (("train", 64), ("valid", 32), ("test", 32)):
        x = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, size=(n, 200))]
        splits[split] = {"x": x, "y": rng.integers(0, 2, size=(n, 3)).astype(np.float32)}
    path = tmp_path_factory.mktemp("compat_data") / "tiny.h5"
    write_dataset(path, "classification", splits, params={"generator": "test"})
    return path


def test_train_cli_compat_original_trains_and_records_it(tmp_path, tiny_data):
    """One epoch of the compat sim RCPS model: config.json records the mode, the saved model has
    the original layers, γ/β trained, the RC batch norm's statistics still 0 and 1."""
    from benchmark_rc.cli import main

    out = tmp_path / "run"
    assert main(["train", "--data", str(tiny_data), "--arch", "sim", "--strategy", "rcps",
                 "--seed", "1", "--epochs", "1", "--batch-size", "32", "--out", str(out),
                 "--compat", "original", "--no-progress"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["compat"] == "original"
    assert config["model_hparams"]["compat"] == "original"
    assert config["epochs_run"] == 1 and config["steps_per_epoch"] == 2
    model = brc.load_model(out)
    bn = model.get_layer("bn1")
    assert type(bn) is KerasGenomicsRevCompConv1DBatchNorm
    assert type(model.get_layer("conv1")) is KerasGenomicsRevCompConv1D
    np.testing.assert_array_equal(np.asarray(bn.moving_mean), np.zeros(20))
    np.testing.assert_array_equal(np.asarray(bn.moving_variance), np.ones(20))
    assert np.any(np.asarray(bn.gamma) != 1)
    default = tmp_path / "default"
    assert main(["train", "--data", str(tiny_data), "--arch", "sim", "--strategy", "rcps",
                 "--seed", "1", "--epochs", "1", "--batch-size", "32", "--out", str(default),
                 "--no-progress"]) == 0
    config = json.loads((default / "config.json").read_text())
    assert config["config"]["compat"] == "default" and "compat" not in config["model_hparams"]


def _sweep_config(data, strategies=("rcps",)) -> dict:
    return {"datasets": [{"name": "tiny", "arch": "sim", "path": str(data)}],
            "strategies": list(strategies), "seeds": [1],
            "train": {"epochs": 1, "batch_size": 32, "steps_per_epoch": 1, "patience": 0},
            "evaluate": {"max_rows": 32}}


def test_sweep_compat_column_run_ids_and_both_modes_in_one_directory(tmp_path, tiny_data):
    out = tmp_path / "sweep"
    config = _sweep_config(tiny_data, strategies=("rcps", "posthoc"))
    first = run_sweep(config, out, progress=False)
    second = run_sweep(override_compat(config, "original"), out, progress=False)
    assert first["failed"] == second["failed"] == 0
    rows = read_results(out / "results.csv")
    assert list(rows[0]) == list(RESULT_COLUMNS)
    got = {(r["strategy"], r["compat"]): r["run_id"] for r in rows}
    assert got == {("rcps", "default"): "tiny-rcps-s1", ("posthoc", "default"): "tiny-posthoc-s1",
                   ("rcps", "original"): "tiny-rcps-s1-original",
                   ("posthoc", "original"): "tiny-posthoc-s1-original"}
    run = json.loads((out / "runs" / "tiny-rcps-s1-original" / "config.json").read_text())
    assert run["config"]["compat"] == "original"
    posthoc = json.loads((out / "runs" / "tiny-posthoc-s1-original" / "config.json").read_text())
    assert posthoc["base_config"]["config"]["compat"] == "original"
    base = brc.load_model(out / "runs" / "tiny-rcaug-s1-original")
    assert any(isinstance(layer, Keras2BatchNormalization) for layer in base._flatten_layers())
    # a rerun of either mode finds its rows done
    assert run_sweep(override_compat(config, "original"), out, progress=False)["skipped"] == 2


def test_sweep_compat_keys_resolve_and_conflicts_fail(tiny_data):
    config = _sweep_config(tiny_data)
    config["train"]["compat"] = "original"
    resolved = resolve_config(config)
    assert [j.compat for j in make_jobs(resolved)] == ["original"]
    assert make_jobs(resolved)[0].run_id("rcps") == "tiny-rcps-s1-original"
    config["datasets"][0]["hparams"] = {"compat": "default"}  # the dataset's own key wins
    assert dataset_compat(config["datasets"][0], config) == "default"
    config["datasets"][0]["train"] = {"compat": "original"}
    with pytest.raises(UserError, match="differ"):
        resolve_config(config)
    config["datasets"][0].pop("train")
    overridden = override_compat(config, "original")
    assert dataset_compat(overridden["datasets"][0], overridden) == "original"
    assert config["datasets"][0]["hparams"] == {"compat": "default"}  # the input is not changed
    config["train"]["compat"] = "keras2"
    with pytest.raises(UserError, match="compat"):
        resolve_config(config)


def test_an_older_results_csv_stays_readable_and_is_upgraded_on_resume(tmp_path, tiny_data):
    out = tmp_path / "old"
    out.mkdir()
    results = out / "results.csv"
    old_row = {c: "" for c in OLD_COLUMNS}
    old_row.update(run_id="tiny-standard-s1", dataset="tiny", arch="sim", strategy="standard",
                   paper_label="Standard-NoRCAug", seed="1", auroc="0.5", status="ok")
    with open(results, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=OLD_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerow(old_row)
    (row,) = read_results(results)
    assert row["compat"] == "default" and row["auroc"] == "0.5"
    # resume: the old run is done (same run id), the new one is appended under the new header
    summary = run_sweep(_sweep_config(tiny_data, strategies=("standard", "rcps")), out,
                        progress=False)
    assert (summary["skipped"], summary["ok"], summary["failed"]) == (1, 1, 0)
    with open(results, newline="", encoding="utf-8") as f:
        lines = list(csv.reader(f))
    assert lines[0] == list(RESULT_COLUMNS)
    assert all(len(line) == len(RESULT_COLUMNS) for line in lines)
    rows = read_results(results)
    assert [(r["run_id"], r["compat"]) for r in rows] == [("tiny-standard-s1", "default"),
                                                          ("tiny-rcps-s1", "default")]
    assert rows[0]["auroc"] == "0.5"
    # a sweep of the older version still running on this OUT appends a row one field short: it
    # lines up with the upgraded header (compat is the last column) and reads as default
    old_row.update(run_id="tiny-conjoined-s1", strategy="conjoined", paper_label="CJ-trained")
    with open(results, "a", newline="", encoding="utf-8") as f:
        csv.DictWriter(f, fieldnames=OLD_COLUMNS, lineterminator="\n").writerow(old_row)
    late = read_results(results)[-1]
    assert (late["run_id"], late["auroc"], late["compat"]) == ("tiny-conjoined-s1", "0.5",
                                                               "default")
    frame = pd.read_csv(results)
    assert list(frame.columns) == list(RESULT_COLUMNS)
    assert frame["run_id"].tolist() == ["tiny-standard-s1", "tiny-rcps-s1", "tiny-conjoined-s1"]
    assert frame["compat"].fillna("default").tolist() == ["default"] * 3


def test_results_with_unknown_columns_are_refused(tmp_path):
    from benchmark_rc.benchmark import upgrade_results

    path = tmp_path / "results.csv"
    path.write_text("run_id,future_column\nx,1\n")
    with pytest.raises(UserError, match="future_column"):
        upgrade_results(path)

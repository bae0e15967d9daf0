"""Layer-level tests of benchmark_rc.layers: equivariance, exact formulas, errors, configs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, gammaln, logit, softmax
from scipy.stats import multinomial

from benchmark_rc.errors import UserError
from benchmark_rc.layers import (
    Exponential,
    MultinomialNLL,
    RCGeometryError,
    RCTransform,
    RevCompAvgPool,
    RevCompConv1D,
    RevCompConv1DBatchNorm,
    RevCompSumPool,
    ReverseComplement,
    StrandMerge,
    WeightedSum1D,
)
from benchmark_rc.layers.losses import log_factorial
from benchmark_rc.sequence import reverse_complement

HYP = settings(max_examples=20, deadline=None, derandomize=True)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| relative to max(1, max |a|)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(a)))))


def rand(shape: tuple, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def numpy_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, dilation: int, stride: int):
    """Reference valid cross-correlation (B, L, C) x (k, C, F) + b -> (B, L', F)."""
    k = w.shape[0]
    eff = (k - 1) * dilation + 1
    starts = range(0, x.shape[1] - eff + 1, stride)
    out = np.stack(
        [np.einsum("btc,tcf->bf", x[:, s : s + eff : dilation], w) for s in starts], axis=1
    )
    return out + b


# --------------------------------------------------------------------------- RevCompConv1D


@HYP
@given(
    kernel=st.integers(1, 8),
    dilation=st.integers(1, 3),
    filters=st.integers(1, 4),
    in_half=st.integers(1, 3),
    extra=st.integers(0, 6),
    padding=st.sampled_from(["valid", "same"]),
)
def test_revcomp_conv_equivariant_odd_even_dilated(kernel, dilation, filters, in_half, extra,
                                                   padding):
    eff = (kernel - 1) * dilation + 1
    if padding == "same" and eff % 2 == 0:
        padding = "valid"
    length = eff + extra
    layer = RevCompConv1D(filters, kernel, dilation_rate=dilation, padding=padding,
                          bias_initializer="random_normal")
    x = rand((2, length, 2 * in_half), seed=kernel * 100 + extra)
    y = np.asarray(layer(x))
    y_rc = np.asarray(layer(reverse_complement(x)))
    assert y.shape[-1] == 2 * filters
    assert rel_err(reverse_complement(y), y_rc) < 1e-5


@HYP
@given(kernel=st.integers(1, 6), stride=st.integers(2, 4), steps=st.integers(1, 5))
def test_revcomp_conv_strided_equivariant(kernel, stride, steps):
    length = kernel + stride * steps  # (L - k) % stride == 0
    layer = RevCompConv1D(3, kernel, strides=stride, bias_initializer="random_normal")
    x = rand((2, length, 4), seed=kernel + 10 * stride)
    y, y_rc = np.asarray(layer(x)), np.asarray(layer(reverse_complement(x)))
    assert y.shape[1] == steps + 1
    assert rel_err(reverse_complement(y), y_rc) < 1e-5


@HYP
@given(
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    dilation=st.integers(1, 3),
    padding=st.sampled_from(["valid", "same"]),
    length=st.integers(8, 24),
)
def test_revcomp_conv_any_accepted_geometry_is_equivariant(kernel, stride, dilation, padding,
                                                           length):
    """Property: every geometry the layer accepts is exactly equivariant (else it raises)."""
    if stride > 1:
        dilation = 1
    if (kernel - 1) * dilation + 1 > length:
        length = (kernel - 1) * dilation + 1
    try:
        layer = RevCompConv1D(2, kernel, strides=stride, dilation_rate=dilation,
                              padding=padding, bias_initializer="random_normal")
        x = rand((2, length, 4), seed=kernel + 7 * stride + 31 * length)
        y = np.asarray(layer(x))
    except RCGeometryError:
        return
    y_rc = np.asarray(layer(reverse_complement(x)))
    assert rel_err(reverse_complement(y), y_rc) < 1e-5


def test_standard_conv_fails_the_same_check():
    conv = keras.layers.Conv1D(6, 5)
    x = rand((2, 30, 4))
    y, y_rc = np.asarray(conv(x)), np.asarray(conv(reverse_complement(x)))
    assert rel_err(reverse_complement(y), y_rc) > 1e-2


def test_revcomp_conv_is_conv_plus_bias_not_twice_conv():
    """Pins our output = x * [W, W_rc] + [b, rev b] (keras-genomics returns 2 * conv + b)."""
    layer = RevCompConv1D(3, 4, dilation_rate=2, bias_initializer="random_normal")
    x = rand((2, 20, 4), seed=3)
    y = np.asarray(layer(x))
    w = np.asarray(layer.kernel)
    b = np.asarray(layer.bias)
    w_full = np.concatenate([w, w[::-1, ::-1, ::-1]], axis=-1)
    b_full = np.concatenate([b, b[::-1]])
    expected = numpy_conv(x, w_full, b_full, dilation=2, stride=1)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    doubled = 2 * numpy_conv(x, w_full, 0.0, dilation=2, stride=1) + b_full
    assert np.max(np.abs(y - doubled)) > 1e-2
    assert layer.count_params() == 4 * 4 * 3 + 3


def test_revcomp_conv_strided_matches_reference():
    layer = RevCompConv1D(2, 3, strides=2, bias_initializer="random_normal")
    x = rand((1, 11, 4), seed=4)
    y = np.asarray(layer(x))
    w, b = np.asarray(layer.full_kernel()), np.asarray(layer.full_bias())
    np.testing.assert_allclose(y, numpy_conv(x, w, b, 1, 2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "length", "match"),
    [
        ({"kernel_size": 4, "padding": "same"}, 20, "even effective kernel"),
        ({"kernel_size": 2, "dilation_rate": 3, "padding": "same"}, 20, "even effective kernel"),
        ({"kernel_size": 5, "padding": "causal"}, 20, "causal"),
        ({"kernel_size": 15, "strides": 2}, 1000, "mirror-symmetric"),
        ({"kernel_size": 3, "strides": 2, "padding": "same"}, 10, "must be even"),
        ({"kernel_size": 1, "strides": 4, "padding": "same"}, 10, ">= 0"),
    ],
)
def test_revcomp_conv_rejects_non_equivariant_geometry(kwargs, length, match):
    with pytest.raises(RCGeometryError, match=match):
        layer = RevCompConv1D(2, **kwargs)
        layer(np.zeros((1, length, 4), "float32"))


def test_geometry_error_is_a_user_error_and_value_error():
    with pytest.raises(UserError):
        RevCompConv1D(2, 4, padding="same")
    with pytest.raises(ValueError):
        RevCompConv1D(2, 4, padding="same")


def test_same_padding_odd_kernel_keeps_length_and_even_stride_ok():
    layer = RevCompConv1D(2, 5, padding="same")
    x = rand((2, 17, 4))
    assert layer(x).shape == (2, 17, 4)
    ok = RevCompConv1D(2, 14, strides=2)  # k=14, stride 2, L=1000: (1000 - 14) % 2 == 0
    x = rand((1, 1000, 4), seed=5)
    y, y_rc = np.asarray(ok(x)), np.asarray(ok(reverse_complement(x)))
    assert rel_err(reverse_complement(y), y_rc) < 1e-5


# --------------------------------------------------------------------------- batch norm


def _reference_rc_bn_train(x: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """keras-genomics construction: stack the channel-reversed RC half along length."""
    f = x.shape[-1] // 2
    stacked = np.concatenate([x[..., :f], x[..., f:][..., ::-1]], axis=1)
    mean = stacked.mean(axis=(0, 1))
    var = stacked.var(axis=(0, 1))
    normed = (stacked - mean) / np.sqrt(var + eps)
    fwd, rev = normed[:, : x.shape[1]], normed[:, x.shape[1] :]
    return np.concatenate([fwd, rev[..., ::-1]], axis=-1), mean, var


def test_rc_batchnorm_matches_stacked_reference_and_updates_moving_stats():
    bn = RevCompConv1DBatchNorm()
    x = rand((3, 12, 6), seed=7) * 2 + 1
    y = np.asarray(bn(x, training=True))
    expected, mean, var = _reference_rc_bn_train(x)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(bn.moving_mean), 0.01 * mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(bn.moving_variance), 0.99 + 0.01 * var, rtol=1e-4, atol=1e-6
    )
    assert bn.count_params() == 4 * 3


def test_rc_batchnorm_equivariant_in_inference_after_updates():
    bn = RevCompConv1DBatchNorm(gamma_initializer="random_normal",
                                beta_initializer="random_normal", momentum=0.5)
    for seed in range(3):
        bn(rand((4, 10, 8), seed=seed) * 3 + seed, training=True)
    x = rand((2, 10, 8), seed=11)
    y, y_rc = np.asarray(bn(x)), np.asarray(bn(reverse_complement(x)))
    assert rel_err(reverse_complement(y), y_rc) < 1e-5
    plain = keras.layers.BatchNormalization(momentum=0.5, gamma_initializer="random_normal")
    for seed in range(3):
        plain(rand((4, 10, 8), seed=seed) * 3 + seed, training=True)
    p, p_rc = np.asarray(plain(x)), np.asarray(plain(reverse_complement(x)))
    assert rel_err(reverse_complement(p), p_rc) > 1e-2


def test_rc_batchnorm_rejects_odd_channels():
    with pytest.raises(RCGeometryError, match="even number of channels"):
        RevCompConv1DBatchNorm()(np.zeros((1, 4, 3), "float32"))


# --------------------------------------------------------------------------- read-outs


def test_sum_and_avg_pool_formula_and_invariance():
    x = rand((2, 7, 6), seed=8)
    s = np.asarray(RevCompSumPool()(x))
    expected = x[..., :3] + x[:, ::-1, ::-1][..., :3]
    np.testing.assert_allclose(s, expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(RevCompSumPool()(reverse_complement(x))), s, rtol=1e-5)
    a = np.asarray(RevCompAvgPool()(x))
    np.testing.assert_allclose(a, 0.5 * s, rtol=1e-6)


@HYP
@given(units=st.integers(1, 3), half=st.integers(1, 4), length=st.integers(1, 9))
def test_weighted_sum_invariant(units, half, length):
    layer = WeightedSum1D(units)
    x = rand((3, length, 2 * half), seed=units + half + length)
    y, y_rc = np.asarray(layer(x)), np.asarray(layer(reverse_complement(x)))
    assert y.shape == (3, units)
    assert rel_err(y, y_rc) < 1e-5
    w = np.asarray(layer.kernel)
    full = np.concatenate([w, w[::-1, ::-1]], axis=1)
    np.testing.assert_allclose(y, np.einsum("blc,lcu->bu", x, full), rtol=1e-4, atol=1e-5)


def test_weighted_sum_without_tying_would_fail():
    layer = keras.layers.Dense(1)
    x = rand((3, 5, 4), seed=9).reshape(3, 20)
    x_rc = reverse_complement(x.reshape(3, 5, 4)).reshape(3, 20)
    assert rel_err(np.asarray(layer(x)), np.asarray(layer(x_rc))) > 1e-2


# --------------------------------------------------------------------------- flips and merges


def test_reverse_complement_layer_and_rc_rules():
    x = rand((2, 5, 4), seed=10)
    np.testing.assert_array_equal(np.asarray(ReverseComplement()(x)), reverse_complement(x))
    np.testing.assert_array_equal(np.asarray(RCTransform("regular")(x)), x[:, ::-1, ::-1])
    np.testing.assert_array_equal(np.asarray(RCTransform("length")(x)), x[:, ::-1, :])
    np.testing.assert_array_equal(np.asarray(RCTransform("strands")(x)), x[..., ::-1])
    np.testing.assert_array_equal(np.asarray(RCTransform("none")(x)), x)
    with pytest.raises(UserError, match="rule"):
        RCTransform("sideways")


def test_strand_merges():
    a, b = rand((4, 6, 2), seed=1) * 3, rand((4, 6, 2), seed=2) * 3
    np.testing.assert_allclose(np.asarray(StrandMerge("mean")([a, b])), (a + b) / 2, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(StrandMerge("max")([a, b])), np.maximum(a, b))
    sig = np.asarray(StrandMerge("sigmoid_mean")([a, b]))
    np.testing.assert_allclose(sig, logit((expit(a) + expit(b)) / 2), rtol=1e-4, atol=1e-4)
    soft = np.asarray(StrandMerge("softmax_mean", axis=1)([a, b]))
    expected = np.log((softmax(a, axis=1) + softmax(b, axis=1)) / 2)
    np.testing.assert_allclose(soft, expected, rtol=1e-5, atol=1e-5)
    big = np.asarray(StrandMerge("sigmoid_mean")([np.full((1, 1), 60.0), np.full((1, 1), 80.0)]))
    assert np.isfinite(big).all() and big[0, 0] > 55
    with pytest.raises(UserError, match="mode"):
        StrandMerge("median")


def test_exponential():
    x = rand((2, 3), seed=3)
    np.testing.assert_allclose(np.asarray(Exponential()(x)), np.exp(x), rtol=1e-6)


# --------------------------------------------------------------------------- loss


def test_log_factorial_matches_gammaln():
    n = np.array([0, 1, 2, 5, 17.0, 100, 1000, 12345], "float32")
    np.testing.assert_allclose(np.asarray(log_factorial(n)), gammaln(n + 1.0), rtol=2e-6,
                               atol=1e-5)


def test_multinomial_nll_matches_scipy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 50, 2)).astype("float32")
    counts = rng.poisson(2.0, size=(3, 50, 2)).astype("float32")
    loss = float(MultinomialNLL()(counts, logits))
    expected = 0.0
    for i in range(3):
        for s in range(2):
            p = softmax(logits[i, :, s].astype(np.float64))
            expected -= multinomial.logpmf(counts[i, :, s], counts[i, :, s].sum(), p)
    np.testing.assert_allclose(loss, expected / 3, rtol=1e-5)


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (RevCompConv1D(3, 4, dilation_rate=2, activation="relu", name="c"), (2, 20, 4)),
        (RevCompConv1D(2, 3, strides=2, padding="valid", use_bias=False), (2, 11, 4)),
        (RevCompConv1DBatchNorm(momentum=0.9, epsilon=1e-4, center=False), (2, 8, 6)),
        (RevCompSumPool(), (2, 8, 6)),
        (RevCompAvgPool(), (2, 8, 6)),
        (WeightedSum1D(2), (2, 8, 6)),
        (ReverseComplement(), (2, 8, 4)),
        (RCTransform("length"), (2, 8, 2)),
        (Exponential(), (2, 8, 4)),
    ],
)
def test_config_roundtrip_gives_same_outputs(layer, shape):
    x = rand(shape, seed=12)
    y = np.asarray(layer(x))
    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"].startswith("benchmark_rc>")
    clone = keras.saving.deserialize_keras_object(config)
    if not clone.built:
        clone.build(shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(np.asarray(clone(x)), y)
    assert clone.get_config() == layer.get_config()


def test_strand_merge_and_loss_configs():
    merge = StrandMerge("softmax_mean", axis=1, name="m")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(merge))
    assert clone.get_config() == merge.get_config()
    loss = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(MultinomialNLL())
    )
    assert isinstance(loss, MultinomialNLL)


def test_rc_batchnorm_gradients_match_stacked_keras_batchnorm():
    import tensorflow as tf

    x = tf.constant(rand((3, 9, 6), seed=13) * 2 + 0.5)
    weights = tf.constant(rand((3, 9, 6), seed=14))
    ours = RevCompConv1DBatchNorm(gamma_initializer="random_normal")
    ours.build(x.shape)
    ref = keras.layers.BatchNormalization()
    ref.build((3, 18, 3))
    ref.set_weights([np.asarray(ours.gamma), *[np.asarray(w) for w in ours.weights[1:]]])

    def stacked(t):
        s = tf.concat([t[..., :3], t[..., 3:][..., ::-1]], axis=1)
        n = ref(s, training=True)
        return tf.concat([n[:, :9], n[:, 9:][..., ::-1]], axis=-1)

    grads = []
    for fn in (lambda t: ours(t, training=True), stacked):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(fn(x) * weights)
        grads.append(tape.gradient(loss, x).numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)
    assert np.max(np.abs(grads[0])) > 1e-3


def test_every_layer_is_registered_under_the_package():
    import benchmark_rc.layers as layers

    registered = keras.saving.get_custom_objects()
    classes = [getattr(layers, n) for n in layers.__all__ if isinstance(getattr(layers, n), type)]
    classes = [c for c in classes if issubclass(c, keras.layers.Layer | keras.losses.Loss)]
    assert len(classes) >= 10
    for cls in classes:
        assert registered.get(f"benchmark_rc>{cls.__name__}") is cls, cls.__name__


def test_frozen_rc_batchnorm_uses_moving_statistics_like_keras():
    x = rand((3, 12, 6), seed=4) * 2 + 1
    bn, ref = RevCompConv1DBatchNorm(), keras.layers.BatchNormalization()
    for layer in (bn, ref):
        layer.build(x.shape)
        layer.trainable = False
    np.testing.assert_allclose(np.asarray(ref(x, training=True)), np.asarray(ref(x)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(bn(x, training=True)), np.asarray(bn(x)), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(bn.moving_mean), np.zeros(3))

"""Layer-level tests of benchmark_rc.layers: equivariance, exact formulas, errors, configs.

Tolerances (conftest.f32_rtol): an RC-equivariant layer is NOT bit-exact in float32, because the
RC strand runs the flipped kernel and so sums the same products in another order; every
f(RC x) vs RC(f(x)) check therefore allows the round-off of the terms each output accumulates,
and its non-equivariant control must miss that bar even when it is CONTROL_MARGIN times looser.
Exact comparisons remain where float32 is exact: permutations of stored values, one correctly
rounded addition of the same two operands, halving, max, and repeating the same computation.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import assert_f32_close, f32_rtol
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
    StrandMerge,
    WeightedSum1D,
)
from benchmark_rc.layers.losses import log_factorial
from benchmark_rc.sequence import reverse_complement

HYP = settings(max_examples=20, deadline=None, derandomize=True)
# A control (a layer that is not equivariant, a wrong formula) must fail the tolerance of the
# check it controls even when loosened this much: the bar is orders of magnitude from a defect.
CONTROL_MARGIN = 1000


def abs_terms(layer: keras.layers.Layer, x: np.ndarray) -> np.ndarray:
    """sum |terms| of every output of a linear layer: the layer with |weights| applied to |x|.

    With it as the floor, the tolerance is the rigorous bound n*eps*sum|terms| of f32_rtol
    itself, which matters for the small sums here (a few terms, where FMA or another order
    already moves the last bit and the sqrt(n) argument gives no margin).
    """
    weights = layer.get_weights()
    layer.set_weights([np.abs(w) for w in weights])
    try:
        return np.asarray(layer(np.abs(x)), np.float64)
    finally:
        layer.set_weights(weights)


def assert_rc_equivariant(y: np.ndarray, y_rc: np.ndarray, n_terms: int, terms=None,
                          margin: float = 1):
    """f(RC x) == RC(f(x)) up to the round-off of ``n_terms`` accumulated terms per output;
    ``terms``: sum |terms| per output of f(x) (default: the scale max|f(x)|)."""
    rtol = margin * f32_rtol(n_terms)
    floor = None if terms is None else rtol * reverse_complement(terms)
    assert_f32_close(y_rc, reverse_complement(np.asarray(y)), rtol=rtol, floor=floor)


def assert_not_rc_equivariant(y: np.ndarray, y_rc: np.ndarray, n_terms: int, terms=None):
    with pytest.raises(AssertionError):
        assert_rc_equivariant(y, y_rc, n_terms, terms, margin=CONTROL_MARGIN)


def rand(shape: tuple, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def numpy_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, dilation: int, stride: int):
    """Reference valid cross-correlation (B, L, C) x (k, C, F) + b -> (B, L', F), in float64."""
    x, w, b = (np.asarray(a, np.float64) for a in (x, w, b))
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
    # kernel x input channels products + the bias per output
    assert_rc_equivariant(y, y_rc, kernel * x.shape[-1] + 1, abs_terms(layer, x))


@HYP
@given(kernel=st.integers(1, 6), stride=st.integers(2, 4), steps=st.integers(1, 5))
def test_revcomp_conv_strided_equivariant(kernel, stride, steps):
    length = kernel + stride * steps  # (L - k) % stride == 0
    layer = RevCompConv1D(3, kernel, strides=stride, bias_initializer="random_normal")
    x = rand((2, length, 4), seed=kernel + 10 * stride)
    y, y_rc = np.asarray(layer(x)), np.asarray(layer(reverse_complement(x)))
    assert y.shape[1] == steps + 1
    assert_rc_equivariant(y, y_rc, kernel * 4 + 1, abs_terms(layer, x))


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
    """Property: every geometry the layer accepts is equivariant (else it raises): exactly in
    real arithmetic, to the round-off of the kernel x channels products in float32."""
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
    assert_rc_equivariant(y, y_rc, kernel * 4 + 1, abs_terms(layer, x))


def test_standard_conv_fails_the_same_check():
    conv = keras.layers.Conv1D(6, 5)
    x = rand((2, 30, 4))
    y, y_rc = np.asarray(conv(x)), np.asarray(conv(reverse_complement(x)))
    assert_not_rc_equivariant(y, y_rc, 5 * 4 + 1, abs_terms(conv, x))


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
    rtol = f32_rtol(4 * 4 + 1)  # kernel x input channels products + bias per output
    floor = rtol * abs_terms(layer, x)
    assert_f32_close(y, expected, rtol=rtol, floor=floor)
    doubled = 2 * numpy_conv(x, w_full, 0.0, dilation=2, stride=1) + b_full
    with pytest.raises(AssertionError):
        assert_f32_close(y, doubled, rtol=CONTROL_MARGIN * rtol, floor=CONTROL_MARGIN * floor)
    assert layer.count_params() == 4 * 4 * 3 + 3


def test_revcomp_conv_strided_matches_reference():
    layer = RevCompConv1D(2, 3, strides=2, bias_initializer="random_normal")
    x = rand((1, 11, 4), seed=4)
    y = np.asarray(layer(x))
    w, b = np.asarray(layer.full_kernel()), np.asarray(layer.full_bias())
    rtol = f32_rtol(3 * 4 + 1)
    assert_f32_close(y, numpy_conv(x, w, b, 1, 2), rtol=rtol, floor=rtol * abs_terms(layer, x))


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
    assert_rc_equivariant(y, y_rc, 14 * 4 + 1, abs_terms(ok, x))


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
    expected, mean, var = _reference_rc_bn_train(x.astype(np.float64))
    # moments: each half of a pair contributes B x L terms (then averaged); normalising, scale
    # and shift: a few element-wise roundings; moving averages: two more
    moments = 2 * x.shape[0] * x.shape[1]
    assert_f32_close(y, expected, rtol=f32_rtol(2 * moments, 8))
    assert_f32_close(np.asarray(bn.moving_mean), 0.01 * mean, rtol=f32_rtol(moments, 4))
    assert_f32_close(np.asarray(bn.moving_variance), 0.99 + 0.01 * var,
                     rtol=f32_rtol(2 * moments, 4))
    assert bn.count_params() == 4 * 3


def test_rc_batchnorm_equivariant_in_inference_after_updates():
    bn = RevCompConv1DBatchNorm(gamma_initializer="random_normal",
                                beta_initializer="random_normal", momentum=0.5)
    for seed in range(3):
        bn(rand((4, 10, 8), seed=seed) * 3 + seed, training=True)
    x = rand((2, 10, 8), seed=11)
    y, y_rc = np.asarray(bn(x)), np.asarray(bn(reverse_complement(x)))
    # inference is element-wise with the partners' shared parameters: subtract, rsqrt (a few
    # ulp), multiply, add; a vectorised kernel may still round partner lanes differently (FMA)
    elementwise = 8
    assert_rc_equivariant(y, y_rc, elementwise)
    plain = keras.layers.BatchNormalization(momentum=0.5, gamma_initializer="random_normal")
    for seed in range(3):
        plain(rand((4, 10, 8), seed=seed) * 3 + seed, training=True)
    p, p_rc = np.asarray(plain(x)), np.asarray(plain(reverse_complement(x)))
    assert_not_rc_equivariant(p, p_rc, elementwise)


def test_rc_batchnorm_rejects_odd_channels():
    with pytest.raises(RCGeometryError, match="even number of channels"):
        RevCompConv1DBatchNorm()(np.zeros((1, 4, 3), "float32"))


# --------------------------------------------------------------------------- read-outs


def test_sum_and_avg_pool_formula_and_invariance():
    # Exact: each output is ONE float32 addition of the same two stored values, correctly rounded
    # (IEEE 754) and commutative, so numpy, TF and the RC input (b + a) give the same bits; the
    # average halves it, exact in binary (no subnormals here).
    x = rand((2, 7, 6), seed=8)
    s = np.asarray(RevCompSumPool()(x))
    expected = x[..., :3] + x[:, ::-1, ::-1][..., :3]
    np.testing.assert_array_equal(s, expected)
    np.testing.assert_array_equal(np.asarray(RevCompSumPool()(reverse_complement(x))), s)
    a = np.asarray(RevCompAvgPool()(x))
    np.testing.assert_array_equal(a, 0.5 * s)


@HYP
@given(units=st.integers(1, 3), half=st.integers(1, 4), length=st.integers(1, 9))
def test_weighted_sum_invariant(units, half, length):
    layer = WeightedSum1D(units)
    x = rand((3, length, 2 * half), seed=units + half + length)
    y, y_rc = np.asarray(layer(x)), np.asarray(layer(reverse_complement(x)))
    assert y.shape == (3, units)
    rtol = f32_rtol(length * x.shape[-1])  # one product per position x channel
    floor = rtol * abs_terms(layer, x)
    assert_f32_close(y_rc, y, rtol=rtol, floor=floor)  # invariant: RC rule of the output = id
    w = np.asarray(layer.kernel, np.float64)
    full = np.concatenate([w, w[::-1, ::-1]], axis=1)
    assert_f32_close(y, np.einsum("blc,lcu->bu", x.astype(np.float64), full), rtol=rtol,
                     floor=floor)


def test_weighted_sum_without_tying_would_fail():
    layer = keras.layers.Dense(1)
    x = rand((3, 5, 4), seed=9).reshape(3, 20)
    x_rc = reverse_complement(x.reshape(3, 5, 4)).reshape(3, 20)
    rtol = CONTROL_MARGIN * f32_rtol(20)
    with pytest.raises(AssertionError):
        assert_f32_close(np.asarray(layer(x_rc)), np.asarray(layer(x)), rtol=rtol,
                         floor=rtol * abs_terms(layer, x))


# --------------------------------------------------------------------------- flips and merges


def test_rc_transform_rules():
    # exact: the RC rules only permute stored values
    x = rand((2, 5, 4), seed=10)
    np.testing.assert_array_equal(np.asarray(RCTransform("regular")(x)), x[:, ::-1, ::-1])
    np.testing.assert_array_equal(np.asarray(RCTransform("length")(x)), x[:, ::-1, :])
    np.testing.assert_array_equal(np.asarray(RCTransform("strands")(x)), x[..., ::-1])
    np.testing.assert_array_equal(np.asarray(RCTransform("none")(x)), x)
    with pytest.raises(UserError, match="rule"):
        RCTransform("sideways")


def test_strand_merges():
    a, b = rand((4, 6, 2), seed=1) * 3, rand((4, 6, 2), seed=2) * 3
    # exact: one correctly rounded addition of the same operands, then an exact halving; max
    # selects a stored value
    np.testing.assert_array_equal(np.asarray(StrandMerge("mean")([a, b])), (a + b) / 2)
    np.testing.assert_array_equal(np.asarray(StrandMerge("max")([a, b])), np.maximum(a, b))
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    sig = np.asarray(StrandMerge("sigmoid_mean")([a, b]))
    # two softplus and a logaddexp per log-probability, then a difference: ~16 roundings at the
    # scale of |a|, |b| (the floor: the result may cancel to ~0)
    assert_f32_close(sig, logit((expit(a64) + expit(b64)) / 2), rtol=f32_rtol(16))
    soft = np.asarray(StrandMerge("softmax_mean", axis=1)([a, b]))
    expected = np.log((softmax(a64, axis=1) + softmax(b64, axis=1)) / 2)
    # two log-softmaxes over the 6 positions, then a logaddexp
    assert_f32_close(soft, expected, rtol=f32_rtol(2 * 6, 16))
    big = np.asarray(StrandMerge("sigmoid_mean")([np.full((1, 1), 60.0), np.full((1, 1), 80.0)]))
    assert np.isfinite(big).all() and big[0, 0] > 55
    with pytest.raises(UserError, match="mode"):
        StrandMerge("median")


def test_exponential():
    x = rand((2, 3), seed=3)
    # exp is accurate to a few ulp relative to its own value everywhere: no floor needed
    assert_f32_close(np.asarray(Exponential()(x)), np.exp(x.astype(np.float64)), rtol=f32_rtol(4),
                     floor=0.0)


# --------------------------------------------------------------------------- loss


def test_log_factorial_matches_gammaln():
    n = np.array([0, 1, 2, 5, 17.0, 100, 1000, 12345], "float32")
    n64 = n.astype(np.float64)
    # Lanczos (g=7): 8 series terms (sum of |terms| <= 6.1 x the sum itself, at n = 0), then
    # (n + 0.5) log(n + 7.5) - (n + 7.5) + log(series): ~16 roundings, each at the scale of the
    # largest of those terms, which for small n is far above the result (log 1! = 0).
    rtol = f32_rtol(16)
    scale = (n64 + 0.5) * np.log(n64 + 7.5) + (n64 + 7.5) + 6.1
    assert_f32_close(np.asarray(log_factorial(n)), gammaln(n64 + 1.0), rtol=rtol,
                     floor=rtol * scale)


def test_multinomial_nll_matches_scipy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 50, 2)).astype("float32")
    counts = rng.poisson(2.0, size=(3, 50, 2)).astype("float32")
    loss = float(MultinomialNLL()(counts, logits))
    expected, terms = 0.0, 0.0
    for i in range(3):
        for s in range(2):
            c = counts[i, :, s].astype(np.float64)
            p = softmax(logits[i, :, s].astype(np.float64))
            expected -= multinomial.logpmf(c, c.sum(), p)
            terms += gammaln(c.sum() + 1) + gammaln(c + 1).sum() + np.abs(c * np.log(p)).sum()
    # per strand: a 50-term log-softmax, 50 log-factorials (16 roundings each, see above) summed,
    # 50 products count x log p summed; then 2 strands and the mean over 3 examples. The floor
    # is the size of the summed terms: the result is their partly cancelling sum.
    rtol = f32_rtol(50, 16, 50, 50, 2, 3)
    assert_f32_close(loss, expected / 3, rtol=rtol, floor=rtol * terms / 3)


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
    # exact: the same computation with the same weights and input, repeated in one process
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
    # the two sum batch statistics over the 3 x 18 stacked entries in other orders: mean and
    # variance forward, the two reductions of the backward pass, and element-wise steps
    stacked_entries = 3 * 18
    assert_f32_close(grads[0], grads[1], rtol=f32_rtol(4 * stacked_entries, 8))
    assert np.max(np.abs(grads[0])) > 1e-3


def test_every_layer_is_registered_under_the_package():
    import benchmark_rc.layers as layers

    registered = keras.saving.get_custom_objects()
    classes = [getattr(layers, n) for n in layers.__all__ if isinstance(getattr(layers, n), type)]
    classes = [c for c in classes if issubclass(c, keras.layers.Layer | keras.losses.Loss)]
    assert len(classes) >= 9  # 8 layers and the MultinomialNLL loss
    for cls in classes:
        assert registered.get(f"benchmark_rc>{cls.__name__}") is cls, cls.__name__


def test_frozen_rc_batchnorm_uses_moving_statistics_like_keras():
    x = rand((3, 12, 6), seed=4) * 2 + 1
    bn, ref = RevCompConv1DBatchNorm(), keras.layers.BatchNormalization()
    for layer in (bn, ref):
        layer.build(x.shape)
        layer.trainable = False
    # exact: frozen, training=True runs the very same inference computation (batch statistics
    # would differ at O(1)); the moving mean was never updated from its zero initial value
    np.testing.assert_array_equal(np.asarray(ref(x, training=True)), np.asarray(ref(x)))
    np.testing.assert_array_equal(np.asarray(bn(x, training=True)), np.asarray(bn(x)))
    np.testing.assert_array_equal(np.asarray(bn.moving_mean), np.zeros(3))


# ---------------------------------------------------------------- per-weight options


def assert_weight_options(make, shape: tuple, weights: dict[str, str]) -> None:
    """Every weight named in ``weights`` (attribute -> option group) of ``make(**options)``, built
    for ``shape`` with an L1(0.5) regularizer and a NonNeg constraint on each group, carries
    both, and so does the layer rebuilt from its config: the regularizers add exactly
    0.5 * sum |w| to ``layer.losses`` and an optimizer step clamps every negative entry to 0."""
    groups = sorted(set(weights.values()))
    options = {f"{g}_regularizer": keras.regularizers.L1(0.5) for g in groups}
    options.update({f"{g}_constraint": "non_neg" for g in groups})
    layer = make(**options)
    config = layer.get_config()
    for g in groups:
        assert config[f"{g}_regularizer"]["config"] == {"l1": 0.5}
        assert config[f"{g}_constraint"]["class_name"] == "NonNeg"
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    for i, candidate in enumerate((layer, clone)):
        candidate.build(shape)
        variables = [getattr(candidate, name) for name in weights]
        for seed, variable in enumerate(variables):  # every other entry negative
            values = np.abs(rand(tuple(variable.shape), seed=20 + seed + i)) + 0.1
            values.flat[::2] *= -1
            variable.assign(values)
        expected = sum(0.5 * np.sum(np.abs(np.asarray(v, np.float64))) for v in variables)
        assert len(candidate.losses) == len(variables)
        np.testing.assert_allclose(float(sum(candidate.losses)), expected, rtol=1e-5)
        assert all(np.min(np.asarray(v)) < 0 for v in variables)
        keras.optimizers.SGD(0.0).apply_gradients(
            [(np.zeros(v.shape, "float32"), v) for v in variables]
        )
        assert all(np.min(np.asarray(v)) == 0.0 for v in variables)


@pytest.mark.parametrize(
    ("make", "shape", "weights"),
    [
        (lambda **o: RevCompConv1D(3, 5, **o), (2, 12, 4), {"kernel": "kernel", "bias": "bias"}),
        (lambda **o: RevCompConv1DBatchNorm(**o), (2, 8, 6), {"gamma": "gamma", "beta": "beta"}),
        (lambda **o: WeightedSum1D(2, **o), (2, 8, 6), {"kernel": "kernel"}),
    ],
    ids=["conv", "batchnorm", "weighted_sum"],
)
def test_weight_regularizers_and_constraints_reach_the_weights(make, shape, weights):
    assert_weight_options(make, shape, weights)


# The options each layer gained after models had been saved: such configs lack these keys.
NEW_OPTIONS = {
    RevCompConv1D: ("kernel_constraint", "bias_constraint"),
    RevCompConv1DBatchNorm: ("beta_regularizer", "gamma_regularizer", "beta_constraint",
                             "gamma_constraint"),
    WeightedSum1D: ("kernel_initializer", "kernel_regularizer", "kernel_constraint"),
}


@pytest.mark.parametrize(
    ("layer", "shape"),
    [(RevCompConv1D(3, 5), (2, 12, 4)), (RevCompConv1DBatchNorm(), (2, 8, 6)),
     (WeightedSum1D(2), (2, 8, 6))],
    ids=["conv", "batchnorm", "weighted_sum"],
)
def test_rc_layer_defaults_add_no_penalty_or_constraint(layer, shape):
    """The defaults add nothing (no loss, no constraint), and a config saved before the new
    options existed (no such keys) loads with the same defaults."""
    config = layer.get_config()
    old = {k: v for k, v in config.items() if k not in NEW_OPTIONS[type(layer)]}
    assert len(old) == len(config) - len(NEW_OPTIONS[type(layer)])
    assert type(layer).from_config(old).get_config() == config
    layer.build(shape)
    assert layer.losses == []
    assert all(w.regularizer is None and w.constraint is None for w in layer.weights)


def test_rc_batchnorm_weight_names_shapes_and_order_unchanged():
    """Saved weights are matched by order: gamma, beta, then the two moving statistics."""
    full, bare = RevCompConv1DBatchNorm(), RevCompConv1DBatchNorm(center=False, scale=False)
    for layer in (full, bare):
        layer.build((2, 8, 6))
    assert [(w.name, tuple(w.shape), w.trainable) for w in full.weights] == [
        ("gamma", (3,), True), ("beta", (3,), True),
        ("moving_mean", (3,), False), ("moving_variance", (3,), False)]
    assert [w.name for w in bare.weights] == ["moving_mean", "moving_variance"]
    assert bare.gamma is None and bare.beta is None
    x = rand((2, 8, 6), seed=3)
    # inference with the initial statistics: (x - 0) / sqrt(1 + epsilon), no gamma or beta
    np.testing.assert_allclose(np.asarray(bare(x)), x / np.sqrt(1.001), rtol=1e-6)

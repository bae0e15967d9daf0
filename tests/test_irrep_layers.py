"""Tests of the irreducible-representation layers (benchmark_rc.layers.irrep, Mallet & Vert 2021).

The RC maps are written here, independently of the package:

* regular (B, L, 2r): reverse length and channels;
* irrep with a channels of type +1: reverse length, negate the channels from a on.

Tolerances (conftest.f32_rtol): an equivariant convolution is not bit-exact in float32 (the RC
input meets the kernel taps in another order), so f(RC x) vs RC(f(x)) allows the round-off of the
terms each output accumulates, relative to the output scale, with an absolute floor of
``FLOOR`` = 1e-5 at least; every such check has a control (a layer without the symmetry) that
must miss it even CONTROL_MARGIN times looser. Exact comparisons are kept where float32 is exact:
permutations, negations, halving, thresholds of integer counts, the same computation repeated.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
from conftest import assert_f32_close, f32_rtol, model_terms
from test_layers import assert_weight_options

from benchmark_rc.errors import UserError
from benchmark_rc.layers import (
    IrrepActivation,
    IrrepBatchNorm,
    IrrepConcatenate,
    IrrepToIrrepConv1D,
    IrrepToRegConv1D,
    KmerEmbedding,
    RCGeometryError,
    RegToIrrepConv1D,
)

CONTROL_MARGIN = 1000
FLOOR = 1e-5


# ------------------------------------------------------------------------- oracles and helpers


def rc_regular(h: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(h)[..., ::-1, ::-1])


def rc_irrep(h: np.ndarray, a: int) -> np.ndarray:
    out = np.array(np.asarray(h)[..., ::-1, :])
    out[..., a:] = -out[..., a:]
    return out


def rc_map(rep: int | None):
    """The RC map of a representation: None = regular, an int = irrep with that many +1 channels."""
    return rc_regular if rep is None else (lambda h: rc_irrep(h, rep))


def channel_matrix(rep: int | None, channels: int) -> np.ndarray:
    """R with RC(h)[p] = h[L-1-p] @ R: the channel reversal J or the irrep sign matrix D."""
    if rep is None:
        return np.eye(channels)[::-1]
    return np.diag([1.0] * rep + [-1.0] * (channels - rep))


def close(actual, expected, *terms: int, margin: float = 1) -> None:
    """|actual - expected| <= rtol |expected| + max(FLOOR, rtol max|expected|), rtol from terms."""
    expected = np.asarray(expected, np.float64)
    rtol = margin * f32_rtol(*terms)
    floor = max(margin * FLOOR, rtol * float(np.max(np.abs(expected), initial=0.0)))
    assert_f32_close(actual, expected, rtol=rtol, floor=floor)


def not_close(actual, expected, *terms: int) -> None:
    """A control: misses the tolerance of :func:`close` even CONTROL_MARGIN times looser."""
    with pytest.raises(AssertionError):
        close(actual, expected, *terms, margin=CONTROL_MARGIN)


def rand(shape: tuple, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def one_hot(seq: str) -> np.ndarray:
    """(L, 4) float32 one-hot in ACGT order; any other letter is an all-zero row."""
    out = np.zeros((len(seq), 4), "float32")
    for i, base in enumerate(seq):
        if base in "ACGT":
            out[i, "ACGT".index(base)] = 1.0
    return out


def random_seqs(n: int, length: int, seed: int, alphabet: str = "ACGT") -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(alphabet), size=length)) for _ in range(n)]


def revcomp(kmer: str) -> str:
    return kmer[::-1].translate(str.maketrans("ACGT", "TGCA"))


def numpy_conv(x: np.ndarray, w: np.ndarray, dilation: int, padding: str) -> np.ndarray:
    """Reference cross-correlation (B, L, C) x (k, C, F) -> (B, L', F) in float64."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    eff = (w.shape[0] - 1) * dilation + 1
    if padding == "same":
        pad = (eff - 1) // 2
        x = np.pad(x, [(0, 0), (pad, pad), (0, 0)])
    starts = range(x.shape[1] - eff + 1)
    return np.stack(
        [np.einsum("btc,tcf->bf", x[:, s : s + eff : dilation], w) for s in starts], axis=1
    )


# ---------------------------------------------------------------------------- the convolutions

# name: (factory(kernel_size, **options), input channels, input rep, output rep); a rep is None
# for a regular map, else the number of +1 channels. Zero a or b on either side included.
CONVS = {
    "reg6->irrep(2,3)": (lambda k, **o: RegToIrrepConv1D(2, 3, k, **o), 6, None, 2),
    "reg6->irrep(0,3)": (lambda k, **o: RegToIrrepConv1D(0, 3, k, **o), 6, None, 0),
    "reg4->irrep(3,0)": (lambda k, **o: RegToIrrepConv1D(3, 0, k, **o), 4, None, 3),
    "irrep(2,3)->irrep(3,2)": (lambda k, **o: IrrepToIrrepConv1D(2, 3, 2, k, **o), 5, 2, 3),
    "irrep(0,3)->irrep(2,2)": (lambda k, **o: IrrepToIrrepConv1D(0, 2, 2, k, **o), 3, 0, 2),
    "irrep(3,0)->irrep(2,2)": (lambda k, **o: IrrepToIrrepConv1D(3, 2, 2, k, **o), 3, 3, 2),
    "irrep(2,2)->irrep(0,3)": (lambda k, **o: IrrepToIrrepConv1D(2, 0, 3, k, **o), 4, 2, 0),
    "irrep(2,2)->irrep(3,0)": (lambda k, **o: IrrepToIrrepConv1D(2, 3, 0, k, **o), 4, 2, 3),
    "irrep(2,3)->reg4": (lambda k, **o: IrrepToRegConv1D(2, 2, k, **o), 5, 2, None),
    "irrep(0,3)->reg4": (lambda k, **o: IrrepToRegConv1D(2, 0, k, **o), 3, 0, None),
    "irrep(3,0)->reg6": (lambda k, **o: IrrepToRegConv1D(3, 3, k, **o), 3, 3, None),
}
# (kernel_size, dilation_rate, padding): odd and even k, dilation 1 and 2, 'same' where the
# effective kernel (k-1)*d+1 is odd (k=4, d=2 included: effective kernel 7).
GEOMETRIES = [
    (1, 1, "valid"),
    (2, 1, "valid"),
    (3, 1, "same"),
    (3, 2, "valid"),
    (4, 1, "valid"),
    (4, 2, "same"),
    (5, 1, "valid"),
    (5, 2, "same"),
]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"k{g[0]}-d{g[1]}-{g[2]}")
@pytest.mark.parametrize("case", list(CONVS))
def test_conv_is_equivariant(case, geometry):
    make, c_in, rep_in, rep_out = CONVS[case]
    k, d, padding = geometry
    layer = make(k, dilation_rate=d, padding=padding)
    x = rand((2, 17, c_in), seed=k * 10 + d)
    y = np.asarray(layer(x))
    y_rc = np.asarray(layer(rc_map(rep_in)(x)))
    expected = rc_map(rep_out)(y)
    c_out = y.shape[-1]
    assert c_out == (2 * layer.filters if rep_out is None else layer.a_out + layer.b_out)
    assert y.shape == (2, 17 if padding == "same" else 17 - (k - 1) * d, c_out)
    # Not vacuous: the output is O(1) and RC changes it.
    assert np.max(np.abs(y)) > 0.1 and np.max(np.abs(expected - y)) > 0.1
    close(y_rc, expected, k * c_in)


@pytest.mark.parametrize("case", ["reg6->irrep(2,3)", "irrep(2,3)->irrep(3,2)", "irrep(2,3)->reg4"])
def test_plain_conv_control_is_not_equivariant(case):
    make, c_in, rep_in, rep_out = CONVS[case]
    channels = make(3).compute_output_shape((None, 17, c_in))[-1]
    conv = keras.layers.Conv1D(channels, 3, use_bias=False)
    x = rand((2, 17, c_in), seed=1)
    y = np.asarray(conv(x))
    not_close(conv(rc_map(rep_in)(x)), rc_map(rep_out)(y), 3 * c_in)


@pytest.mark.parametrize("geometry", [(3, 2, "same"), (4, 2, "valid"), (4, 2, "same")])
@pytest.mark.parametrize("case", ["reg6->irrep(2,3)", "irrep(2,3)->irrep(3,2)", "irrep(2,3)->reg4"])
def test_conv_runs_its_full_kernel(case, geometry):
    """The layer output is the cross-correlation with ``full_kernel()`` (reference in numpy), so
    the kernel tests below are about the kernel the convolution really uses."""
    make, c_in, _, _ = CONVS[case]
    k, d, padding = geometry
    layer = make(k, dilation_rate=d, padding=padding)
    x = rand((2, 15, c_in), seed=3)
    y = layer(x)
    kernel = np.asarray(layer.full_kernel())
    assert kernel.shape == (k, c_in, y.shape[-1])
    np.testing.assert_array_equal(np.asarray(layer.kernel), kernel)
    close(y, numpy_conv(x, kernel, d, padding), k * c_in)


def equivariant_kernel_dimension(k: int, c_in: int, c_out: int, rep_in, rep_out) -> tuple:
    """(dim, M): M = I - S on vec(K), S(K)[t] = R_in K[k-1-t] R_out; dim = dim null(M)."""
    r_in, r_out = channel_matrix(rep_in, c_in), channel_matrix(rep_out, c_out)
    n = k * c_in * c_out
    basis = np.eye(n).reshape(n, k, c_in, c_out)
    s = np.einsum("ij,ntjo,op->ntip", r_in, basis[:, ::-1], r_out).reshape(n, n).T
    m = np.eye(n) - s
    return n - np.linalg.matrix_rank(m), m


SPAN_CASES = {
    "reg4->irrep(2,1)": (lambda k: RegToIrrepConv1D(2, 1, k), 4, None, 2),
    "reg4->irrep(0,2)": (lambda k: RegToIrrepConv1D(0, 2, k), 4, None, 0),
    "irrep(2,1)->irrep(1,2)": (lambda k: IrrepToIrrepConv1D(2, 1, 2, k), 3, 2, 1),
    "irrep(0,2)->irrep(2,1)": (lambda k: IrrepToIrrepConv1D(0, 2, 1, k), 2, 0, 2),
    "irrep(2,1)->irrep(0,2)": (lambda k: IrrepToIrrepConv1D(2, 0, 2, k), 3, 2, 0),
    "irrep(1,2)->reg4": (lambda k: IrrepToRegConv1D(2, 1, k), 3, 1, None),
}


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("case", list(SPAN_CASES))
def test_conv_kernels_span_the_equivariant_space(case, k):
    """Free parameters = dim of {K : S(K) = K}, every kernel the layer makes is equivariant, and
    the map free parameters -> kernel is injective: the layer spans exactly that space."""
    make, c_in, rep_in, rep_out = SPAN_CASES[case]
    layer = make(k)
    layer.build((None, None, c_in))
    c_out = layer.compute_output_shape((None, 9, c_in))[-1]
    dim, m = equivariant_kernel_dimension(k, c_in, c_out, rep_in, rep_out)
    shapes = [w.shape for w in layer.get_weights()]
    sizes = [int(np.prod(s)) for s in shapes]
    n_params = sum(sizes)
    assert n_params == sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    assert n_params == dim
    kernels = []
    for i in range(n_params):
        flat = np.zeros(n_params, "float32")
        flat[i] = 1.0
        layer.set_weights(
            [
                a.reshape(s)
                for a, s in zip(np.split(flat, np.cumsum(sizes)[:-1]), shapes, strict=True)
            ]
        )
        kernels.append(np.asarray(layer.full_kernel(), np.float64).ravel())
    kernels = np.array(kernels)
    # Entries are copies and negations of one 1.0: S(K) = K holds exactly.
    np.testing.assert_array_equal(m @ kernels.T, 0.0)
    assert np.linalg.matrix_rank(kernels) == dim


def test_span_check_rejects_a_kernel_without_the_symmetry():
    """Control of the nullspace oracle: a plain kernel is not a fixed point of S."""
    _, m = equivariant_kernel_dimension(3, 4, 3, None, 2)
    assert np.max(np.abs(m @ rand((3 * 4 * 3,), seed=5))) > 0.1


def test_initial_kernel_has_the_scale_of_a_glorot_kernel():
    """Each free block is a slice of one Glorot draw for the full kernel: the full kernel's
    entries lie within the full kernel's Glorot limit, and reach beyond half of it."""
    layer = IrrepToIrrepConv1D(16, 16, 16, 9)
    layer.build((None, None, 32))
    limit = np.sqrt(6.0 / (9 * 32 + 9 * 32))
    kernel = np.abs(np.asarray(layer.full_kernel()))
    assert kernel.max() <= limit and kernel.max() > 0.5 * limit


# ------------------------------------------------------------------------------ config errors


@pytest.mark.parametrize("k, d", [(2, 1), (4, 1), (2, 3)])
@pytest.mark.parametrize(
    "make",
    [
        lambda k, d: RegToIrrepConv1D(2, 2, k, dilation_rate=d, padding="same"),
        lambda k, d: IrrepToIrrepConv1D(1, 2, 2, k, dilation_rate=d, padding="same"),
        lambda k, d: IrrepToRegConv1D(2, 1, k, dilation_rate=d, padding="same"),
    ],
    ids=["reg->irrep", "irrep->irrep", "irrep->reg"],
)
def test_same_padding_with_even_effective_kernel_is_refused(make, k, d):
    with pytest.raises(RCGeometryError, match="even effective kernel"):
        make(k, d)


def test_configuration_errors():
    with pytest.raises(RCGeometryError, match="even number of channels"):
        RegToIrrepConv1D(2, 2, 3)(rand((1, 9, 5)))
    with pytest.raises(RCGeometryError, match="do not fit"):
        IrrepToIrrepConv1D(4, 2, 2, 3)(rand((1, 9, 3)))
    with pytest.raises(RCGeometryError, match="do not fit"):
        IrrepToRegConv1D(2, 4, 3)(rand((1, 9, 3)))
    with pytest.raises(RCGeometryError, match="at least one output channel"):
        RegToIrrepConv1D(0, 0, 3)
    with pytest.raises(RCGeometryError, match="at least one output channel"):
        IrrepToIrrepConv1D(1, 0, 0, 3)
    with pytest.raises(RCGeometryError, match="filters"):
        IrrepToRegConv1D(0, 1, 3)
    with pytest.raises(RCGeometryError, match="padding"):
        RegToIrrepConv1D(1, 1, 3, padding="causal")
    with pytest.raises(RCGeometryError, match=">= 1"):
        RegToIrrepConv1D(1, 1, 0)
    assert issubclass(RCGeometryError, UserError)


def test_irrep_conv_with_only_forced_zero_blocks():
    """a -> b only: no free centre (odd k = 1 gives the zero kernel), antisymmetric taps (k = 2)."""
    zero = IrrepToIrrepConv1D(3, 0, 2, 1)
    x = rand((1, 9, 3), seed=4)
    np.testing.assert_array_equal(zero(x), np.zeros((1, 9, 2), "float32"))
    assert zero.weights == []
    pair = IrrepToIrrepConv1D(3, 0, 2, 2)
    pair(x)
    kernel = np.asarray(pair.full_kernel())
    np.testing.assert_array_equal(kernel[1], -kernel[0])
    assert np.max(np.abs(kernel)) > 0


def test_convs_work_with_unknown_batch_and_length():
    for name in ("reg6->irrep(2,3)", "irrep(2,3)->irrep(3,2)", "irrep(2,3)->reg4"):
        make, c_in, _, _ = CONVS[name]
        layer = make(3, dilation_rate=2)
        inp = keras.Input((None, c_in))
        model = keras.Model(inp, layer(inp))
        for length in (9, 14):
            x = rand((3, length, c_in), seed=length)
            y = model.predict(x, verbose=0)
            assert y.shape == layer.compute_output_shape((3, length, c_in)), name
            assert y.shape[1] == length - 4
            # The same computation as calling the layer directly.
            close(y, layer(x), 3 * c_in)


# ------------------------------------------------------------------------------- activation


@pytest.mark.parametrize("odd", ["tanh", "softsign", "linear"])
@pytest.mark.parametrize("a", [0, 2, 5])
def test_irrep_activation_is_equivariant_and_applies_each_function(a, odd):
    layer = IrrepActivation(a, even_activation="sigmoid", odd_activation=odd)
    x = 2 * rand((2, 11, 5), seed=a)
    y = np.asarray(layer(x))
    close(layer(rc_irrep(x, a)), rc_irrep(y, a), 4)
    odd_fn = {"tanh": np.tanh, "softsign": lambda v: v / (1 + np.abs(v)), "linear": lambda v: v}
    expected = np.concatenate([1 / (1 + np.exp(-x[..., :a])), odd_fn[odd](x[..., a:])], axis=-1)
    close(y, expected, 4)


def test_irrep_activation_even_part_default_is_relu_and_control_fails():
    layer = IrrepActivation(2)
    x = rand((2, 11, 5), seed=7)
    y = np.asarray(layer(x))
    np.testing.assert_array_equal(y[..., :2], np.maximum(x[..., :2], 0))
    # Control: ReLU on every channel breaks the sign flip of the b channels.
    relu_all = IrrepActivation(5)
    not_close(relu_all(rc_irrep(x, 2)), rc_irrep(np.asarray(relu_all(x)), 2), 4)


@pytest.mark.parametrize("bad", ["relu", "sigmoid", "swish", "exponential"])
def test_irrep_activation_rejects_non_odd_functions(bad):
    with pytest.raises(UserError, match="tanh, softsign, linear"):
        IrrepActivation(2, odd_activation=bad)


# ------------------------------------------------------------------------------- batch norm


def skewed_irrep_batch(a: int, channels: int, batch: int = 6, length: int = 13, seed: int = 0):
    """Irrep data whose b channels have a non-zero mean (an RC-asymmetric batch)."""
    x = 1.5 * rand((batch, length, channels), seed=seed)
    x[..., :a] += 3.0
    x[..., a:] += 1.0
    return x


def reference_irrep_bn(x, a, mean_a, var, gamma, beta_a, eps):
    mean = np.concatenate([mean_a, np.zeros(x.shape[-1] - a)])
    beta = np.concatenate([beta_a, np.zeros(x.shape[-1] - a)])
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


@pytest.mark.parametrize("a", [0, 2, 5])
def test_irrep_batchnorm_moving_stats_and_inference(a):
    channels, momentum, eps = 5, 0.5, 1e-3
    layer = IrrepBatchNorm(a, momentum=momentum, epsilon=eps)
    x = skewed_irrep_batch(a, channels)
    layer.build(x.shape)
    gamma = 1 + 0.5 * rand((channels,), seed=1)
    beta = rand((a,), seed=2)
    layer.gamma.assign(gamma)
    if a:
        layer.beta.assign(beta)
    start_var = np.asarray(layer.moving_variance).copy()
    for _ in range(3):
        layer(x, training=True)
    # m_3 = momentum^3 m_0 + (1 - momentum^3) * batch statistic (the same batch three times)
    f = momentum**3
    x64 = x.astype(np.float64)
    batch_mean = x64[..., :a].mean(axis=(0, 1))
    batch_var = np.concatenate(
        [x64[..., :a].var(axis=(0, 1)), (x64[..., a:] ** 2).mean(axis=(0, 1))]
    )
    moving_var = np.asarray(layer.moving_variance)
    assert np.min(np.abs(moving_var - start_var)) > 0.1  # the moving stats changed
    close(moving_var, f * start_var + (1 - f) * batch_var, x.shape[0] * x.shape[1] + 8)
    moving_mean = np.zeros(0)
    if a:
        moving_mean = np.asarray(layer.moving_mean)
        close(moving_mean, (1 - f) * batch_mean, x.shape[0] * x.shape[1] + 8)
    # Inference: the moving statistics, and equivariant.
    y = np.asarray(layer(x, training=False))
    close(y, reference_irrep_bn(x64, a, moving_mean, moving_var, gamma, beta, eps), 8)
    close(layer(rc_irrep(x, a), training=False), rc_irrep(y, a), 8)


def test_keras_batchnorm_control_is_not_equivariant():
    """Control: Keras' BatchNormalization centres the b channels with their (moving) mean."""
    layer = keras.layers.BatchNormalization(momentum=0.5)
    x = skewed_irrep_batch(2, 5)
    for _ in range(3):
        layer(x, training=True)
    y = np.asarray(layer(x, training=False))
    not_close(layer(rc_irrep(x, 2), training=False), rc_irrep(y, 2), 8)


@pytest.mark.parametrize("closed", [True, False], ids=["rc-closed-batch", "any-batch"])
def test_irrep_batchnorm_training_mode(closed):
    a, channels, eps = 2, 5, 1e-3
    x = skewed_irrep_batch(a, channels, batch=4)
    if closed:
        x = np.concatenate([x, rc_irrep(x, a)])
    n = x.shape[0] * x.shape[1]
    layer = IrrepBatchNorm(a, epsilon=eps)
    y = np.asarray(layer(x, training=True))
    # Equivariant in training mode: the batch statistics are RC-invariant per sample, so this
    # holds for an RC-closed batch and also for any batch.
    close(layer(rc_irrep(x, a), training=True), rc_irrep(y, a), n + 8)
    x64 = x.astype(np.float64)
    # a channels standardised over batch x length (gamma 1, beta 0): mean 0, var v / (v + eps)
    var_a = x64[..., :a].var(axis=(0, 1))
    close(y[..., :a].mean(axis=(0, 1)), np.zeros(a), n + 8)
    close(y[..., :a].var(axis=(0, 1)), var_a / (var_a + eps), 2 * n + 8)
    # b channels: divided by the root mean square, never centred.
    ms_b = (x64[..., a:] ** 2).mean(axis=(0, 1))
    close(y[..., a:], x64[..., a:] / np.sqrt(ms_b + eps), n + 8)
    if not closed:
        assert np.min(np.abs(y[..., a:].mean(axis=(0, 1)))) > 0.3  # not centred


def test_irrep_batchnorm_weights_and_frozen_layer():
    layer = IrrepBatchNorm(2, center=True, scale=True)
    layer.build((None, None, 5))
    assert {w.path.split("/")[-1]: tuple(w.shape) for w in layer.trainable_weights} == {
        "gamma": (5,),
        "beta": (2,),
    }
    assert {w.path.split("/")[-1]: tuple(w.shape) for w in layer.non_trainable_weights} == {
        "moving_mean": (2,),
        "moving_variance": (5,),
    }
    # A frozen layer uses (and keeps) its moving statistics, as Keras' BatchNormalization.
    layer.trainable = False
    x = skewed_irrep_batch(2, 5)
    np.testing.assert_array_equal(layer(x, training=True), layer(x, training=False))
    np.testing.assert_array_equal(layer.moving_variance, np.ones(5, "float32"))
    with pytest.raises(RCGeometryError, match="do not fit"):
        IrrepBatchNorm(6)(x)


# ------------------------------------------------------------------------------ concatenate


@pytest.mark.parametrize("length", [10, 11])
@pytest.mark.parametrize("a", [0, 2, 5])
def test_irrep_concatenate_is_invariant(a, length):
    layer = IrrepConcatenate(a)
    x = rand((3, length, 5), seed=length)
    y = np.asarray(layer(x))
    # Exact: the RC input gives the same operands (negations, a swapped sum, halving).
    np.testing.assert_array_equal(layer(rc_irrep(x, a)), y)
    reversed_x = x[:, ::-1]
    expected = np.concatenate(
        [0.5 * (x[..., :a] + reversed_x[..., :a]), 0.5 * (x[..., a:] - reversed_x[..., a:])],
        axis=-1,
    )
    np.testing.assert_array_equal(y, expected)
    # Control: the map before merging is not invariant.
    assert np.max(np.abs(rc_irrep(x, a) - x)) > 0.1
    with pytest.raises(RCGeometryError, match="do not fit"):
        IrrepConcatenate(6)(x)


# -------------------------------------------------------------------------------- k-mers


@pytest.mark.parametrize("k, n", [(1, 4), (2, 20), (3, 64), (4, 272)])
def test_kmer_embedding_channels(k, n):
    layer = KmerEmbedding(k)
    kmers = layer.kmers
    assert len(kmers) == n == (4**k if k % 2 else 4**k + 4 ** (k // 2))
    all_kmers = {"".join(p) for p in itertools.product("ACGT", repeat=k)}
    assert set(kmers) == all_kmers
    for j, kmer in enumerate(kmers):
        assert kmers[n - 1 - j] == revcomp(kmer)
        assert kmers.count(kmer) == (2 if kmer == revcomp(kmer) else 1)
    assert layer.weights == []
    assert layer.compute_output_shape((None, 30, 4)) == (None, 31 - k, n)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_kmer_embedding_detects_exact_matches(k):
    layer = KmerEmbedding(k)
    seqs = random_seqs(3, 25, seed=k, alphabet="ACGTACGTACGTN")
    x = np.stack([one_hot(s) for s in seqs])
    y = np.asarray(layer(x))
    n = len(layer.kmers)
    expected = np.zeros((3, 26 - k, n), "float32")
    for b, seq in enumerate(seqs):
        for p in range(26 - k):
            for j, kmer in enumerate(layer.kmers):
                expected[b, p, j] = float(seq[p : p + k] == kmer)
    np.testing.assert_array_equal(y, expected)
    # Per position: no 1 where the window holds an N, else one 1 (two for a palindrome).
    for b, seq in enumerate(seqs):
        for p in range(26 - k):
            window = seq[p : p + k]
            lit = 0 if "N" in window else (2 if window == revcomp(window) else 1)
            assert y[b, p].sum() == lit
    assert any("N" in s for s in seqs)
    # The output is a regular map, exactly.
    np.testing.assert_array_equal(layer(rc_regular(x)), rc_regular(y))
    # uint8 input (the HDF5 dtype) gives the same output.
    np.testing.assert_array_equal(layer(x.astype("uint8")), y)
    if k == 1:
        np.testing.assert_array_equal(y, x)


# ---------------------------------------------------------------------- end to end, saving


def irrep_model(length: int = 31) -> keras.Model:
    """KmerEmbedding(2) -> RegToIrrep -> IrrepBN -> IrrepAct -> IrrepToIrrep(dilation 2), then
    (1) IrrepToReg: a regular map, (2) IrrepConcatenate -> GlobalMaxPool -> Dense: invariant,
    (3) the control: GlobalMaxPool -> Dense without the merge."""
    inp = keras.Input((length, 4), name="sequence")
    h = KmerEmbedding(2, name="kmers")(inp)  # 20 channels, regular
    h = RegToIrrepConv1D(
        3, 3, 5, kernel_regularizer="l2", kernel_constraint="max_norm", name="reg_to_irrep"
    )(h)
    h = IrrepBatchNorm(
        3, momentum=0.5, gamma_regularizer="l2", beta_constraint="non_neg", name="bn"
    )(h)
    h = IrrepActivation(3, odd_activation="softsign", name="act")(h)
    h = IrrepToIrrepConv1D(3, 2, 4, 3, dilation_rate=2, padding="same", name="irrep_to_irrep")(h)
    regular = IrrepToRegConv1D(2, 2, 4, name="irrep_to_reg")(h)
    merged = IrrepConcatenate(2, name="merge")(h)
    pooled = keras.layers.GlobalMaxPooling1D(name="pool")(merged)
    logits = keras.layers.Dense(1, name="logits")(pooled)
    control = keras.layers.Dense(1, name="control")(keras.layers.GlobalMaxPooling1D()(h))
    return keras.Model(inp, [regular, logits, control])


def trained_irrep_model_and_inputs():
    model = irrep_model()
    x = np.stack([one_hot(s) for s in random_seqs(4, 31, seed=11, alphabet="ACGTACGTN")])
    for _ in range(3):  # non-trivial moving statistics
        model(x, training=True)
    return model, x


def test_irrep_stack_end_to_end_equivariance_and_invariance():
    model, x = trained_irrep_model_and_inputs()
    assert np.max(np.abs(np.asarray(model.get_layer("bn").moving_variance) - 1)) > 0.1
    regular, logits, control = (np.asarray(t) for t in model(x))
    regular_rc, logits_rc, control_rc = (np.asarray(t) for t in model(rc_regular(x)))
    terms = model_terms(model)
    assert regular.shape == (4, 23, 4) and np.max(np.abs(regular)) > 0.1
    close(regular_rc, rc_regular(regular), terms)
    close(logits_rc, logits, terms)
    not_close(control_rc, control, terms)


def test_irrep_model_trains_and_stays_invariant():
    """fit() runs through the derived kernels and the batch norm; the result is still exact."""
    model, x = trained_irrep_model_and_inputs()
    classifier = keras.Model(model.input, model.get_layer("logits").output)  # shares layers
    classifier.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    before = [np.asarray(w).copy() for w in model.get_layer("reg_to_irrep").weights]
    moving = np.asarray(model.get_layer("bn").moving_variance).copy()
    history = classifier.fit(x, np.ones((4, 1), "float32"), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    after = model.get_layer("reg_to_irrep").weights
    assert all(np.max(np.abs(np.asarray(a) - b)) > 1e-4 for a, b in zip(after, before, strict=True))
    assert np.max(np.abs(np.asarray(model.get_layer("bn").moving_variance) - moving)) > 1e-4
    logits, logits_rc = (np.asarray(model(v)[1]) for v in (x, rc_regular(x)))
    close(logits_rc, logits, model_terms(model))


def test_irrep_layers_save_and_load(tmp_path):
    model, x = trained_irrep_model_and_inputs()
    expected = [np.asarray(t) for t in model(x)]
    for suffix in (".keras", ".h5"):
        path = str(tmp_path / f"model{suffix}")
        model.save(path)
        loaded = keras.models.load_model(path)  # default safe mode, no custom_objects
        for got, want in zip(loaded(x), expected, strict=True):
            np.testing.assert_array_equal(got, want)  # the same computation: exact
        for layer in model.layers:
            assert loaded.get_layer(layer.name).get_config() == layer.get_config()


CONFIG_LAYERS = [
    RegToIrrepConv1D(
        2,
        0,
        4,
        dilation_rate=2,
        kernel_initializer="he_normal",
        kernel_regularizer=keras.regularizers.L2(0.1),
        kernel_constraint="non_neg",
    ),
    IrrepToIrrepConv1D(0, 3, 1, 5, padding="same", kernel_regularizer="l1"),
    IrrepToRegConv1D(4, 2, 1, kernel_constraint=keras.constraints.MaxNorm(2.0)),
    IrrepActivation(1, even_activation="elu", odd_activation="linear"),
    IrrepBatchNorm(
        3,
        momentum=0.9,
        epsilon=1e-4,
        center=False,
        scale=True,
        gamma_initializer="random_normal",
        moving_variance_initializer="zeros",
        gamma_regularizer="l2",
        gamma_constraint="non_neg",
    ),
    IrrepConcatenate(4),
    KmerEmbedding(3),
]


@pytest.mark.parametrize("layer", CONFIG_LAYERS, ids=lambda layer: type(layer).__name__)
def test_get_config_round_trip(layer):
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == f"benchmark_rc>{type(layer).__name__}"
    assert keras.saving.deserialize_keras_object(serialized).get_config() == config


# ---------------------------------------------------------------- per-weight options


@pytest.mark.parametrize(
    ("make", "shape", "weights"),
    [
        (lambda **o: IrrepBatchNorm(2, **o), (2, 8, 5), {"gamma": "gamma", "beta": "beta"}),
        (lambda **o: RegToIrrepConv1D(2, 1, 5, **o), (2, 12, 4),
         {"kernel_half": "kernel", "kernel_centre": "kernel"}),
        (lambda **o: IrrepToIrrepConv1D(2, 2, 1, 3, **o), (2, 12, 3),
         {"kernel_half": "kernel", "kernel_centre_aa": "kernel", "kernel_centre_bb": "kernel"}),
        (lambda **o: IrrepToRegConv1D(2, 1, 3, **o), (2, 12, 3),
         {"kernel_half": "kernel", "kernel_centre": "kernel"}),
    ],
    ids=["batchnorm", "reg_to_irrep", "irrep_to_irrep", "irrep_to_reg"],
)
def test_irrep_regularizers_and_constraints_reach_every_free_weight(make, shape, weights):
    assert_weight_options(make, shape, weights)


def test_irrep_batchnorm_weight_names_shapes_and_order_unchanged():
    """Saved weights are matched by order: gamma, beta (a,), moving_mean (a,), moving_variance;
    without +1 channels there is no beta and no moving mean."""
    mixed, odd_only = IrrepBatchNorm(2), IrrepBatchNorm(0)
    mixed.build((2, 8, 5))
    odd_only.build((2, 8, 3))
    assert [(w.name, tuple(w.shape), w.trainable) for w in mixed.weights] == [
        ("gamma", (5,), True), ("beta", (2,), True),
        ("moving_mean", (2,), False), ("moving_variance", (5,), False)]
    assert [(w.name, tuple(w.shape)) for w in odd_only.weights] == [
        ("gamma", (3,)), ("moving_variance", (3,))]
    assert odd_only.beta is None and odd_only.moving_mean is None

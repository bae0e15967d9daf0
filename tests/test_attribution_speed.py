"""The DeepLIFT engine's fast paths (issue 18) compute what the ordinary ones did: convolution
input gradients as forward convolutions (``rules.LINEAR_GRADIENTS``) and max pooling of whole
blocks without TensorFlow's argmax kernels (``rules._block_pool_multipliers``); the binary
model's DeepSHAP graph uses none of the slow kernels; the CPU batch size."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_f32_close, f32_rtol, model_terms

import benchmark_rc as brc
from benchmark_rc.attribution import deepshap, dinuc_shuffle_references
from benchmark_rc.attribution import rules as R
from benchmark_rc.attribution.batching import CPU_BATCH_SIZE, default_batch_size
from benchmark_rc.attribution.deeplift import rescale_function
from benchmark_rc.attribution.targets import model_spec

L = 48


class ExplicitConv(keras.layers.Layer):
    """A width convolution with explicit (asymmetric) padding, the EXPLICIT Conv2D case (not
    dilated: TensorFlow's CPU Conv2DBackpropInput, the reference here, refuses explicit padding
    with dilations, which the forward-convolution gradient handles)."""

    def __init__(self, filters: int, width: int, pads: tuple[int, int], dilation: int = 1):
        super().__init__()
        self.filters, self.width, self.pads, self.dilation = filters, width, pads, dilation

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(1, self.width, input_shape[-1], self.filters))

    def call(self, x):
        y = tf.nn.conv2d(x[:, None], self.kernel, strides=1, dilations=[1, self.dilation],
                         padding=[[0, 0], [0, 0], list(self.pads), [0, 0]])
        return y[:, 0]

    def compute_output_shape(self, input_shape):
        extent = (self.width - 1) * self.dilation
        return (input_shape[0], input_shape[1] + sum(self.pads) - extent, self.filters)


def make_model(first, pool=None, seed: int = 0) -> keras.Model:
    """first layer -> ReLU -> (max pool) -> Conv1D -> ReLU -> flatten -> dense (1 task), with
    random weights and biases (ReLU ties at 0 occur: pooled windows with equal maxima)."""
    inp = keras.Input((L, 4), name="sequence")
    h = keras.layers.ReLU()(first(inp))
    if pool is not None:
        h = keras.layers.MaxPooling1D(*pool)(h)
    h = keras.layers.ReLU()(keras.layers.Conv1D(3, 3, padding="same")(h))
    model = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(h)))
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(0, 0.5, w.shape).astype("float32"))
    return model


def both_engines(build, monkeypatch, *, slow_conv: bool, slow_pool: bool, **options):
    """DeepSHAP hypothetical scores of the model ``build()`` makes, with today's engine and with
    the ordinary kernels switched back on (a second model: traces are memoised per model)."""
    x = np.eye(4, dtype=np.float32)[np.random.default_rng(1).integers(0, 4, (5, L))]
    refs = dinuc_shuffle_references(x, 4, seed=0)
    fast = deepshap(build(), x, references=refs, hypothetical=True, check_delta=None, **options)
    with monkeypatch.context() as m:
        if slow_conv:
            m.setattr(R, "LINEAR_GRADIENTS", {})
        if slow_pool:
            m.setattr(R, "_pool_blocks", lambda op: None)
        model = build()
        slow = deepshap(model, x, references=refs, hypothetical=True, check_delta=None,
                        **options)
    return fast, slow, model


@pytest.mark.parametrize("first", [
    pytest.param(lambda: keras.layers.Conv1D(4, 5), id="valid"),
    pytest.param(lambda: keras.layers.Conv1D(4, 6, padding="same"), id="same-even"),
    pytest.param(lambda: keras.layers.Conv1D(4, 5, padding="same", dilation_rate=3),
                 id="same-dilated"),
    pytest.param(lambda: keras.layers.Conv1D(4, 4, padding="causal", dilation_rate=2),
                 id="causal-dilated"),
    pytest.param(lambda: ExplicitConv(4, 5, (3, 1)), id="explicit"),
    pytest.param(lambda: keras.layers.Conv1D(4, 5, strides=2), id="strided-fallback"),
])
def test_convolution_gradients_as_forward_convolutions_change_nothing(first, monkeypatch):
    fast, slow, model = both_engines(lambda: make_model(first()), monkeypatch, slow_conv=True,
                                     slow_pool=False)
    # a backward pass accumulates as many roundings as the forward one, in another order
    assert_f32_close(fast, slow, rtol=f32_rtol(2 * model_terms(model)))
    assert np.abs(slow).max() > 0


@pytest.mark.parametrize("pool", [(4, 2), (3, 3), (6, 2), (2, 1), (5, 2)],
                         ids=["overlap-2", "disjoint", "overlap-3", "stride-1", "fallback"])
@pytest.mark.parametrize("rule", ["continuous", "shap", "gradient"])
def test_block_max_pool_routes_like_the_argmax_kernels(pool, rule, monkeypatch):
    fast, slow, model = both_engines(lambda: make_model(keras.layers.Conv1D(4, 5), pool),
                                     monkeypatch, slow_conv=False, slow_pool=True,
                                     maxpool_rule=rule)
    # the same routing (first maximum of a window, ties included); sums of the <= 3 window
    # shares an input receives in another order
    assert_f32_close(fast, slow, rtol=f32_rtol(model_terms(model)))
    assert np.abs(slow).max() > 0


def test_block_kernel_breaks_ties_like_tensorflow():
    """Windows full of equal values (ReLU zeros, repeated maxima): the routed value goes to the
    first maximum in scan order, as MaxPoolGrad's does."""
    rng = np.random.default_rng(0)
    n, r, width, c = 2, 3, 40, 5
    ax = np.maximum(rng.integers(-2, 3, (n, 1, 1, width, c)), 0).astype("float32")
    ar = np.maximum(rng.integers(-2, 3, (n, r, 1, width, c)), 0).astype("float32")
    ar[:, 0] = ax[:, 0]  # a reference equal to x: every change 0
    kw = dict(ksize=[1, 1, 8, 1], strides=[1, 1, 4, 1], padding="VALID")
    pooled = (width - 8) // 4 + 1

    def pool(a):
        return tf.reshape(tf.nn.max_pool2d(tf.reshape(a, [-1, 1, width, c]), [1, 8], [1, 4],
                                           "VALID"), [n, -1, 1, pooled, c])

    yx, yr = pool(ax), pool(ar)
    up = rng.normal(size=(n, r, 1, pooled, c)).astype("float32")
    for division in (R.CONTINUOUS, R.SHAP):
        fast = R._block_pool_multipliers(ax, ar, yx, yr, up, blocks=(4, 2, pooled, width),
                                         division=division).numpy()
        # reference: TensorFlow's kernels, as MaxPool.gradient used them
        a4 = tf.reshape(ar, [-1, 1, width, c])
        y4, g4 = tf.reshape(yr, [-1, 1, pooled, c]), tf.reshape(up, [-1, 1, pooled, c])
        yx4 = tf.reshape(tf.broadcast_to(yx, yr.shape), [-1, 1, pooled, c])
        _, arg = tf.raw_ops.MaxPoolWithArgmax(input=tf.reshape(ax, [-1, 1, width, c]),
                                              include_batch_in_index=False, **kw)
        arg = tf.repeat(arg, r, axis=0)

        def to_x(values, arg=arg, a4=a4):
            return tf.raw_ops.MaxPoolGradWithArgmax(input=a4, grad=values, argmax=arg,
                                                    include_batch_in_index=False, **kw)

        cross = tf.maximum(yx4, y4)
        gx = to_x(g4 * (cross - y4))
        gr = tf.raw_ops.MaxPoolGrad(orig_input=a4, orig_output=y4, grad=g4 * (yx4 - cross),
                                    data_format="NHWC", **kw)
        limit = to_x(g4 * tf.cast(tf.equal(yx4, y4), g4.dtype))
        shape = [n, r, 1, width, c]
        slow = division.multipliers(ax, tf.reshape(ar, shape),
                                    (tf.reshape(gx, shape), tf.reshape(gr, shape)),
                                    tf.reshape(limit, shape), fuse=False).numpy()
        # copies and at most two-term sums (commutative): the same floats
        np.testing.assert_array_equal(fast, slow, err_msg=division.name)
        assert np.count_nonzero(slow) > 0


@pytest.mark.parametrize("rule", [R.CONTINUOUS, R.GRADIENT], ids=lambda rule: rule.name)
def test_binary_model_deepshap_graph_avoids_the_slow_kernels(rule):
    model = brc.build_model("binary", "standard", seed=0)
    fn = rescale_function(model, model_spec(model), 0, True, 2, rule)
    types = {op.type for op in fn.get_concrete_function().graph.get_operations()}
    assert "Conv2D" in types
    assert not types & {"Conv2DBackpropInput", "MaxPoolGrad", "MaxPoolWithArgmax",
                        "MaxPoolGradWithArgmax"}


def test_cpu_batch_size():
    assert default_batch_size() == CPU_BATCH_SIZE == 256

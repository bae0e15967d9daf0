"""DeepLIFT rules: which op types are linear, and for each non-linear op type the rule that turns
an output difference into multipliers (the rules table :data:`RULES`), plus the per-trace state
the rules read (:class:`DeepLiftTrace`).

The trace (:func:`benchmark_rc.attribution.deeplift.rescale_function`) evaluates the model on
``[x (n); refs (n*R)]`` and builds the reference branch under
``Graph.gradient_override_map``: every op type of the table gets the one registered gradient
:data:`GRADIENT_NAME`, which hands the op to its rule. TensorFlow calls a registered gradient
with the op and its upstream gradients only, so the rule finds its trace from the op:
:meth:`DeepLiftTrace.of` looks the op's graph up in the traces attached with :func:`attach` (one
entry per graph being traced, removed when the trace ends). There is no thread-local or other
global state besides that graph-keyed table, and nothing of TensorFlow's is patched.

Supporting another non-linearity is one entry of :data:`RULES` (op type -> factory taking the
max-pool rule of the trace); a linear op type is one entry of :data:`LINEAR_OPS`. Entries apply
to models traced afterwards (traces are memoised per model).

Speed (issue 18): linear ops keep their ordinary gradient, but :data:`LINEAR_GRADIENTS` computes
it faster where TensorFlow's kernel is slow (Conv2D's input gradient as a forward convolution),
and max pooling of whole blocks (MaxPooling1D(k, s) with k a multiple of s) routes its output
differences in one element-wise kernel instead of TensorFlow's scalar argmax kernels
(:func:`_block_pool_multipliers`); both give the values of the ordinary kernels up to float32
round-off (tests/test_attribution_speed.py).
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from benchmark_rc.attribution.batching import memoised
from benchmark_rc.errors import UserError

EPS = 1e-6  # shap's threshold for falling back to the gradient (element-wise non-linearities)
# BPNet profile product: below this |delta logit| the float32 secant is ill-conditioned
# (RC-equivariance of rcps profile attributions breaks below ~1e-3); see rescale_product_target.
EPS_PROFILE = 1e-3

# Op types that are linear in their input-dependent operand(s) (ordinary gradient is exact).
LINEAR_OPS = {
    "Identity", "IdentityN", "Conv2D", "Conv1D", "Conv3D", "DepthwiseConv2dNative",
    "Conv2DBackpropInput", "BiasAdd", "AddV2", "Add", "AddN", "Sub", "Neg", "Mul", "RealDiv",
    "DivNoNan", "MatMul", "BatchMatMulV2", "BatchMatMulV3", "Reshape", "ExpandDims", "Squeeze",
    "ConcatV2", "Pack", "Unpack", "Split", "SplitV", "Slice", "StridedSlice", "ReverseV2",
    "Transpose", "Pad", "PadV2", "MirrorPad", "Mean", "Sum", "Cast", "SpaceToBatchND",
    "BatchToSpaceND", "Tile", "GatherV2", "AvgPool", "AvgPool3D", "FusedBatchNormV3", "Cumsum",
    "BroadcastTo", "Einsum", "SelectV2",
}
# Binary linear ops where only ONE operand may depend on the input (else they are non-linear).
BILINEAR_OPS = {"Mul", "MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum"}
DENOMINATOR_OPS = {"RealDiv", "DivNoNan"}  # linear only if the denominator is input-free
# Ops whose output does not depend on the input's values.
VALUE_FREE_OPS = {"Shape", "ShapeN", "Size", "Rank", "ZerosLike", "OnesLike"}
# Element-wise non-linearities explained with the rescale rule (input 0 varies).
RESCALE_OPS = (
    "Relu", "Relu6", "Elu", "Selu", "LeakyRelu", "Sigmoid", "Tanh", "Softplus", "Softsign", "Exp",
    "Log", "Log1p", "Square", "Sqrt", "Rsqrt", "Erf", "Erfc", "ClipByValue", "Abs",
)
GRADIENT_NAME = "BrcDeepLift"  # the one registered gradient; it defers to the trace's table


def _tf():
    import tensorflow as tf

    return tf


# ----------------------------------------------------------------------------------------------
# the per-trace state
# ----------------------------------------------------------------------------------------------
@dataclass(eq=False)
class DeepLiftTrace:
    """What the rules of one DeepLIFT trace read: ``references`` per sequence (R), the ``rules``
    table, whether the element-wise rule math runs as fused XLA kernels (``fuse``), the x-branch
    twin of each overridden reference-branch op (``partner``, by op name) and the refs of the
    tensors that depend on the sequence (``dependent``)."""

    references: int
    rules: dict[str, Rule]
    fuse: bool = True
    partner: dict[str, Any] = field(default_factory=dict)
    dependent: set = field(default_factory=set)

    @staticmethod
    def of(op: Any) -> DeepLiftTrace:
        """The trace attached to ``op``'s graph (or to a graph enclosing it)."""
        graph = op.graph
        while graph is not None:
            trace = _TRACES.get(graph)
            if trace is not None:
                return trace
            graph = getattr(graph, "outer_graph", None)
        raise RuntimeError(f"op {op.name}: no DeepLIFT trace attached to its graph")

    def override(self, graph: Any):
        """Context: ops of the table's types created in ``graph`` get the DeepLIFT gradient, and
        the linear ops of :data:`LINEAR_GRADIENTS` their faster ordinary gradient."""
        types = {*self.rules, *(t for t in LINEAR_GRADIENTS if t not in self.rules)}
        return graph.gradient_override_map({t: GRADIENT_NAME for t in types})

    def twin(self, op: Any) -> Any:
        """The x-branch op computing what the reference-branch ``op`` computes."""
        partner = self.partner.get(op.name)
        if partner is None:  # pragma: no cover - guarded by the pairing check
            raise RuntimeError(f"no x-branch partner for op {op.name}")
        return partner

    def pair(self, t_ref: Any, t_x: Any) -> tuple[Any, Any, Any]:
        """Reference-branch tensor (n*R, ...) and the matching x-branch tensor (n, ...) as
        (n, R, ...) and (n, 1, ...) views (reshapes only: nothing is copied or repeated), and
        the reference tensor's shape."""
        tf = _tf()
        r = self.references
        shape = tf.shape(t_ref)
        n = shape[0] // r
        ref = tf.reshape(t_ref, tf.concat([[n, r], shape[1:]], axis=0))
        x = tf.expand_dims(t_x, 1)
        return ref, x, shape

    def kernel(self, key: Any, fn: Callable) -> Callable:
        """``fn`` as one XLA kernel (memoised per ``key``) when the trace fuses: the element-wise
        chains of the rules are memory-bound on a CPU."""
        if not self.fuse:
            return fn
        return fused(key, fn)


_TRACES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def attach(graph: Any, trace: DeepLiftTrace) -> Iterator[DeepLiftTrace]:
    """Attach ``trace`` to ``graph`` while the body builds the branches and their gradients."""
    register_gradient()
    _TRACES[graph] = trace
    try:
        yield trace
    finally:
        _TRACES.pop(graph, None)


def fused(key: Any, fn: Callable) -> Callable:
    """``fn`` compiled as one XLA kernel, memoised process-wide per ``key``."""
    tf = _tf()
    return memoised(None, ("deeplift-kernel", key),
                    lambda: tf.function(fn, jit_compile=True, autograph=False,
                                        reduce_retracing=True))


def _deeplift_gradient(op, *grads):
    rule = DeepLiftTrace.of(op).rules.get(op.type)
    if rule is None:
        return LINEAR_GRADIENTS[op.type](op, grads[0])
    return rule.gradient(op, grads[0])


_REGISTERED = False


def register_gradient() -> None:
    """Register :data:`GRADIENT_NAME` with TensorFlow (once per process)."""
    global _REGISTERED
    if _REGISTERED:
        return
    _tf().RegisterGradient(GRADIENT_NAME)(_deeplift_gradient)
    _REGISTERED = True


# ----------------------------------------------------------------------------------------------
# linear ops: the same gradient, computed faster
# ----------------------------------------------------------------------------------------------
def _ordinary_gradient(op: Any, grad: Any) -> list:
    from tensorflow.python.framework import ops as tf_ops

    out = tf_ops._gradient_registry.lookup(op.type)(op, grad)
    return list(out) if isinstance(out, list | tuple) else [out]


def conv2d_input_gradient(op: Any, grad: Any) -> list:
    """Conv2D's ordinary gradient for its input (none for its filter: the trace differentiates
    with respect to the sequence only), computed as a forward convolution of the zero-padded
    upstream gradient with the flipped, transposed kernel instead of ``Conv2DBackpropInput``:
    the same sums in another order (float32 round-off), at the speed of the forward pass. On a
    CPU without oneDNN (TensorFlow's default on CPUs without AVX-512 VNNI/BF16 or AMX, e.g. AMD
    EPYC), Eigen's ``Conv2DBackpropInput`` takes ~3x the forward convolution and was ~55% of a
    DeepSHAP call on the binary model; with oneDNN both take about the same time.

    Stride 1, NHWC, VALID/SAME/explicit padding of at most the kernel's dilated extent minus one,
    a filter of known shape that does not depend on the sequence; anything else gets the
    ordinary gradient."""
    tf = _tf()
    trace = DeepLiftTrace.of(op)
    filt = op.inputs[1]
    kh, kw = filt.shape[0], filt.shape[1]
    strides = list(op.get_attr("strides"))
    dilations = list(op.get_attr("dilations"))
    padding = op.get_attr("padding")
    if (op.get_attr("data_format") != b"NHWC" or strides != [1, 1, 1, 1] or kh is None
            or kw is None or filt.ref() in trace.dependent):
        return _ordinary_gradient(op, grad)
    extent = [(kh - 1) * dilations[1], (kw - 1) * dilations[2]]  # dilated size - 1
    if padding == b"VALID":
        before, after = [0, 0], [0, 0]
    elif padding == b"SAME":  # stride 1: the dilated extent, the smaller half before
        before = [e // 2 for e in extent]
        after = [e - b for e, b in zip(extent, before, strict=True)]
    elif padding == b"EXPLICIT":
        pads = list(op.get_attr("explicit_paddings"))
        before = [pads[2], pads[4]]
        after = [pads[3], pads[5]]
        if any(p > e for p, e in zip(before + after, extent + extent, strict=True)):
            return _ordinary_gradient(op, grad)
    else:  # pragma: no cover - TensorFlow's three paddings
        return _ordinary_gradient(op, grad)
    kernel = tf.transpose(tf.reverse(filt, [0, 1]), [0, 1, 3, 2])
    pad = [[0, 0], [extent[0] - before[0], extent[0] - after[0]],
           [extent[1] - before[1], extent[1] - after[1]], [0, 0]]
    return [tf.nn.conv2d(grad, kernel, strides=1, padding=pad, dilations=dilations[1:3]), None]


# Linear op types whose ordinary gradient the reference branch computes another way: the same
# values up to float32 round-off, faster (op type -> fn(op, upstream gradient) -> input grads).
LINEAR_GRADIENTS: dict[str, Callable[[Any, Any], list]] = {"Conv2D": conv2d_input_gradient}


# ----------------------------------------------------------------------------------------------
# rules: one object per kind of non-linear op
# ----------------------------------------------------------------------------------------------
class Rule:
    """The DeepLIFT rule of one kind of non-linear op, applied on the reference branch.

    ``gradient(op, grad)`` returns, for each input of the reference-branch ``op``, the multipliers
    times the upstream ``grad`` (None where nothing propagates); the op's trace is
    ``DeepLiftTrace.of(op)``, its x-branch twin ``trace.twin(op)``. ``check(op,
    dependent_inputs)`` raises UserError when the sequence-dependent inputs of ``op`` are outside
    what the rule covers. Add a rule: subclass this and give it an entry in :data:`RULES`.
    """

    def gradient(self, op: Any, grad: Any) -> list:
        raise NotImplementedError

    def check(self, op: Any, dependent_inputs: list[int]) -> None:
        if dependent_inputs != [0]:
            raise UserError(f"op {op.name} ({op.type}): only its first input may depend on the "
                            "sequence for DeepLIFT")


# f'(a) from (a, f(a)) for the common element-wise non-linearities (fused into the secant kernel);
# other op types fall back to TensorFlow's registered gradient.
DERIVATIVES: dict[str, Callable] = {
    "Relu": lambda a, y: _tf().cast(a > 0, a.dtype),
    "Sigmoid": lambda a, y: y * (1.0 - y),
    "Tanh": lambda a, y: 1.0 - y * y,
    "Exp": lambda a, y: y,
    "Softplus": lambda a, y: _tf().sigmoid(a),
    "Elu": lambda a, y: _tf().where(a > 0, _tf().ones_like(a), y + 1.0),
    # GELU's pieces (keras' exact gelu: a * erfc(-a / sqrt 2) / 2)
    "Erf": lambda a, y: 1.1283791670955126 * _tf().exp(-a * a),
    "Erfc": lambda a, y: -1.1283791670955126 * _tf().exp(-a * a),
}


@dataclass(frozen=True)
class Rescale(Rule):
    """Element-wise f: up * (f(a_x) - f(a_r)) / (a_x - a_r); where |a_x - a_r| < 1e-6 the
    gradient f'(a_r) (shap's threshold: the float32 secant is meaningless there), from
    ``derivative`` (a, f(a)) -> f'(a) or, without one, TensorFlow's registered gradient."""

    derivative: Callable | None = None

    def gradient(self, op: Any, grad: Any) -> list:
        tf = _tf()
        from tensorflow.python.framework import ops as tf_ops

        trace = DeepLiftTrace.of(op)
        px = trace.twin(op)
        ar, ax, shape = trace.pair(op.inputs[0], px.inputs[0])
        yr, yx, _ = trace.pair(op.outputs[0], px.outputs[0])
        up, _, _ = trace.pair(grad, px.outputs[0])
        derivative = self.derivative
        if derivative is None:
            orig = tf_ops._gradient_registry.lookup(op.type)(op, grad)
            fallback, _, _ = trace.pair(orig[0] if isinstance(orig, list | tuple) else orig,
                                        px.outputs[0])
        else:
            fallback = tf.zeros([], ar.dtype)  # unused: the derivative is fused in

        def secant(ax, ar, yx, yr, fallback, up):
            d = ax - ar
            small = tf.abs(d) < EPS
            if derivative is not None:
                fallback = up * derivative(ar, yr)
            return tf.where(small, fallback, up * ((yx - yr) / tf.where(small, tf.ones_like(d),
                                                                          d)))

        kernel = trace.kernel(("rescale", derivative), secant)
        out = tf.reshape(kernel(ax, ar, yx, yr, fallback, up), shape)
        return [out] + [None] * (len(op.inputs) - 1)


class MaxPoolRule:
    """A max-pool rule: how the max-like ops (MaxPool, Max, Maximum, Minimum) pass multipliers
    to their inputs. The public ``maxpool_rule`` option of :func:`~benchmark_rc.attribution.deepshap`
    and ``benchmark-rc attribute --maxpool-rule`` names one of :data:`MAX_RULES`.

    A rule object makes the rules-table entries of the max-like ops (:data:`RULES` calls these
    methods), so another max-pool rule is one subclass and one entry of :data:`MAX_RULES`.
    ``additive``: whether scores sum to f(x) - f(ref) (summation-to-delta); deepshap checks the
    sum only for additive rules.
    """

    name: str
    additive: bool = True

    def max_pool(self) -> Rule:
        """The rule of a MaxPool op (MaxPooling1D/2D)."""
        raise NotImplementedError

    def reduce_max(self) -> Rule:
        """The rule of a Max reduction (GlobalMaxPooling)."""
        raise NotImplementedError

    def pairwise(self, fn: Callable) -> Rule:
        """The rule of an element-wise Maximum / Minimum (``fn``: tf.maximum / tf.minimum)."""
        raise NotImplementedError


@dataclass(frozen=True)
class MaxRule(MaxPoolRule):
    """The max-pool rules that follow the difference from the reference (shap's DeepLIFT rule for
    max-like ops, :class:`MaxPool`, :class:`ReduceMax`, :class:`PairwiseMax`): the output
    difference is routed to the maxima of x and of the reference, and each input turns what it
    received into a multiplier, routed / (x_in - ref_in). Additive.

    The division is bounded by construction, so it needs no threshold: max is 1-Lipschitz,
    |max_i a_i - max_i b_i| <= max_i |a_i - b_i|, and the difference routed to an input is at most
    that input's own change (routed to x's argmax i only when max(x) > max(ref) >= ref_i, so
    0 <= routed <= x_i - ref_i; symmetrically for ref's argmax). A multiplier therefore lies in
    [0, number of pooling windows containing the input] times the upstream multiplier, however
    small the change.

    ``continuous``: divide wherever the change is non-zero; at exactly zero use the rule's limit
    (the ordinary gradient where the maxima of x and ref agree, 0 where they do not). Scores are
    continuous in the inputs, and hypothetical scores stay non-zero where x and a reference
    coincide over a receptive field. ``shap``: shap.DeepExplainer's rule, multiplier 0 wherever
    |change| < 1e-7 (scores jump at that threshold); for agreement with shap.
    """

    name: str
    threshold: float  # divide only where |change| >= threshold; 0: wherever it is non-zero
    limit_at_zero: bool  # below the threshold: the rule's limit (True) or 0 (shap)

    def multipliers(self, a_x: Any, a_r: Any, routed: tuple, limit: Any, *,
                    fuse: bool = True) -> Any:
        """sum(routed) / (a_x - a_r), or ``limit`` (None: 0) where the change is below the
        threshold; a_x broadcasts against a_r. The parts of ``routed`` are summed inside the
        kernel (fused into one XLA kernel with ``fuse``): these tensors are the size of the
        pooled layer's input."""
        tf = _tf()

        def math(a_x, a_r, routed, limit):
            return self.divide(a_x, a_r, tf.add_n(routed), limit)

        if limit is None:
            limit = tf.zeros([], a_r.dtype)
        kernel = fused(("max", self), math) if fuse else math
        return kernel(a_x, a_r, tuple(routed), limit)

    def divide(self, a_x: Any, a_r: Any, routed: Any, limit: Any) -> Any:
        """The element-wise math of :meth:`multipliers` on the summed ``routed`` (to be traced
        inside a kernel)."""
        tf = _tf()
        d = a_x - a_r
        small = tf.abs(d) < self.threshold if self.threshold > 0 else tf.equal(d, 0.0)
        below = limit if self.limit_at_zero else tf.zeros_like(d)
        return tf.where(small, below, routed / tf.where(small, tf.ones_like(d), d))

    def max_pool(self) -> Rule:
        return MaxPool(self)

    def reduce_max(self) -> Rule:
        return ReduceMax(self)

    def pairwise(self, fn: Callable) -> Rule:
        return PairwiseMax(fn, self)


@dataclass(frozen=True)
class GradientMaxRule(MaxPoolRule):
    """deeplift's max-pool rule (``MaxPoolDeepLiftMode.gradient``, its default and, in deeplift
    0.6.13, its only one): the upstream multipliers pass through the max op's gradient at x, to x's
    argmax of each window, whatever the reference (:class:`GradientMaxPool`,
    :class:`GradientReduceMax`, :class:`GradientPairwise`). Not additive: where the reference's
    maximum lies elsewhere, scores do not sum to f(x) - f(ref). For agreement with the original
    deeplift (tests/test_legacy.py)."""

    name: str = "gradient"
    additive: bool = False

    def max_pool(self) -> Rule:
        return GradientMaxPool()

    def reduce_max(self) -> Rule:
        return GradientReduceMax()

    def pairwise(self, fn: Callable) -> Rule:
        return GradientPairwise(fn)


CONTINUOUS = MaxRule("continuous", 0.0, True)
SHAP = MaxRule("shap", 1e-7, False)
GRADIENT = GradientMaxRule()
MAX_RULES: dict[str, MaxPoolRule] = {rule.name: rule for rule in (CONTINUOUS, SHAP, GRADIENT)}


def max_rule(rule: str | MaxPoolRule) -> MaxPoolRule:
    """The max-pool rule named ``rule`` (a key of :data:`MAX_RULES`: "continuous", "shap",
    "gradient"), or ``rule`` itself."""
    if isinstance(rule, MaxPoolRule):
        return rule
    if rule not in MAX_RULES:
        raise UserError(f"maxpool_rule={rule!r}: choose one of {', '.join(MAX_RULES)}")
    return MAX_RULES[rule]


@dataclass(frozen=True)
class MaxPool(Rule):
    """Max pooling (shap's DeepLIFT max-pool rule, with ``division``): x's output difference
    beyond the reference, max(y_x, y_r) - y_r, goes to x's argmax and y_x - max(y_x, y_r) to the
    reference's argmax; each input divides what it received by its change. The x branch's
    argmax is computed once per sequence and reused for its R references."""

    division: MaxRule

    def gradient(self, op: Any, grad: Any) -> list:
        tf = _tf()
        trace = DeepLiftTrace.of(op)
        r = trace.references
        px = trace.twin(op)
        ar, yr = op.inputs[0], op.outputs[0]
        if op.get_attr("data_format") != b"NHWC":
            raise UserError(f"max pooling {op.name}: only channels-last (NHWC) is supported")
        blocks = _pool_blocks(op)
        if blocks is not None:
            ar5, ax5, shape = trace.pair(ar, px.inputs[0])
            yr5, yx5, _ = trace.pair(yr, px.outputs[0])
            up5, _, _ = trace.pair(grad, px.outputs[0])
            kernel = trace.kernel(("maxpool-blocks", blocks, self.division),
                                  functools.partial(_block_pool_multipliers, blocks=blocks,
                                                    division=self.division))
            return [tf.reshape(kernel(ax5, ar5, yx5, yr5, up5), shape)]
        yx = tf.repeat(px.outputs[0], r, axis=0)  # pooled: small
        cross = tf.maximum(yx, yr)
        kw = {k: op.get_attr(k) for k in ("ksize", "strides", "padding")}
        _, arg_x = tf.raw_ops.MaxPoolWithArgmax(input=px.inputs[0],
                                                include_batch_in_index=False, **kw)
        arg_x = tf.repeat(arg_x, r, axis=0)

        def to_x_argmax(values):
            return tf.raw_ops.MaxPoolGradWithArgmax(input=ar, grad=values, argmax=arg_x,
                                                    include_batch_in_index=False, **kw)

        gx = to_x_argmax(grad * (cross - yr))
        gr = tf.raw_ops.MaxPoolGrad(orig_input=ar, orig_output=yr, grad=grad * (yx - cross),
                                    data_format="NHWC", **kw)
        # limit at zero change: the gradient through windows whose maxima agree (an input whose
        # change is 0 and that is x's argmax is also the reference's argmax iff y_x == y_r)
        limit = (to_x_argmax(grad * tf.cast(tf.equal(yx, yr), grad.dtype))
                 if self.division.limit_at_zero else None)
        ar5, ax5, shape = trace.pair(ar, px.inputs[0])
        routed = tuple(trace.pair(g, px.inputs[0])[0] for g in (gx, gr))
        if limit is not None:
            limit, _, _ = trace.pair(limit, px.inputs[0])
        return [tf.reshape(self.division.multipliers(ax5, ar5, routed, limit, fuse=trace.fuse),
                           shape)]


def _pool_blocks(op: Any) -> tuple[int, int, int, int] | None:
    """(stride s, windows per block overlap m, windows P, input width W) when the MaxPool ``op``
    pools along the width only (NHWC, VALID, static shapes) with a window of m whole strides
    (MaxPooling1D(k, s) with k = m s, e.g. 40/20): then every window is m consecutive blocks of
    s positions and its argmax the first block maximum among them. None: use TensorFlow's
    argmax kernels."""
    ksize, strides = list(op.get_attr("ksize")), list(op.get_attr("strides"))
    width, pooled = op.inputs[0].shape[2], op.outputs[0].shape[2]
    if (op.get_attr("padding") != b"VALID" or ksize[0] != 1 or ksize[1] != 1
            or ksize[3] != 1 or strides[0] != 1 or strides[1] != 1 or strides[3] != 1
            or width is None or pooled is None or ksize[2] % strides[2]):
        return None
    return strides[2], ksize[2] // strides[2], pooled, width


def _block_first_max(a, blocks):
    """a (n, r, H, W, C) -> (one-hot of each block's first maximum (n, r, H, nb, s, C), block
    maxima (n, r, H, nb, C)) for the pool of whole blocks ``blocks`` (:func:`_pool_blocks`)."""
    import tensorflow as tf

    s, m, pooled, _ = blocks
    nb = pooled + m - 1  # blocks covered by the windows
    iota = tf.reshape(tf.range(s, dtype=a.dtype), [1, 1, 1, 1, s, 1])
    shape = tf.concat([tf.shape(a)[:3], [nb, s, tf.shape(a)[-1]]], 0)
    b = tf.reshape(a[:, :, :, :nb * s], shape)
    top = tf.reduce_max(b, axis=4, keepdims=True)
    first = tf.reduce_min(tf.where(tf.equal(b, top), iota, float(s)), axis=4, keepdims=True)
    return tf.cast(tf.equal(iota, first), a.dtype), top[:, :, :, :, 0]


def _block_window_choice(top, blocks):
    """Block maxima -> for each offset o < m, the mask of the windows (n, r, H, P, C) that take
    block w + o: the first of a window's m blocks holding the window maximum."""
    import tensorflow as tf

    _, m, pooled, _ = blocks
    parts = [top[:, :, :, o:o + pooled] for o in range(m)]
    best = parts[0]
    for part in parts[1:]:
        best = tf.maximum(best, part)
    taken, chosen = None, []
    for part in parts:
        hit = tf.equal(part, best)
        if taken is not None:
            hit = tf.logical_and(hit, tf.logical_not(taken))
        taken = hit if taken is None else tf.logical_or(taken, hit)
        chosen.append(tf.cast(hit, top.dtype))
    return chosen


def _block_route(values, onehot, chosen, blocks):
    """Window values (n, R, H, P, C) -> their inputs' positions (n, R, H, W, C), through the
    window choice ``chosen`` and the blocks' first-maximum one-hot ``onehot``."""
    import tensorflow as tf

    s, m, pooled, width = blocks
    used = (pooled + m - 1) * s
    total = None
    for o, mask in enumerate(chosen):
        part = tf.pad(values * mask, [[0, 0], [0, 0], [0, 0], [o, m - 1 - o], [0, 0]])
        total = part if total is None else total + part
    out = onehot * total[:, :, :, :, None]
    shape = tf.concat([tf.shape(out)[:3], [used, tf.shape(out)[-1]]], 0)
    return tf.pad(tf.reshape(out, shape), [[0, 0], [0, 0], [0, 0], [0, width - used], [0, 0]])


def _block_pool_multipliers(ax, ar, yx, yr, up, *, blocks, division):
    """The max-pool rule of :class:`MaxPool` for pools of whole blocks (:func:`_pool_blocks`),
    as element-wise math (one XLA kernel when the trace fuses): ax (n, 1, H, W, C) and its pooled
    yx (n, 1, H, P, C); ar, yr, up (the upstream gradient) (n, R, H, ., C). Returns the
    multipliers (n, R, H, W, C).

    The same routing as TensorFlow's argmax kernels (MaxPoolWithArgmax/MaxPoolGrad: the first
    maximum of a window in scan order, ties included), without them: each block's maximum and
    the one-hot of its first maximum (the least position holding it), then per window the first of
    its m blocks that holds the window maximum. Those argmax kernels are scalar loops, ~10x the
    forward max pool; this reads each input once."""
    import tensorflow as tf

    onehot_x, top_x = _block_first_max(ax, blocks)
    onehot_r, top_r = _block_first_max(ar, blocks)
    chosen_x = _block_window_choice(top_x, blocks)
    chosen_r = _block_window_choice(top_r, blocks)
    cross = tf.maximum(yx, yr)
    routed = (_block_route(up * (cross - yr), onehot_x, chosen_x, blocks)
              + _block_route(up * (yx - cross), onehot_r, chosen_r, blocks))
    limit = (_block_route(up * tf.cast(tf.equal(yx, yr), up.dtype), onehot_x, chosen_x, blocks)
             if division.limit_at_zero else tf.zeros([], ar.dtype))
    return division.divide(ax, ar, routed, limit)


def _block_pool_gradient(ax, up, *, blocks):
    """:class:`GradientMaxPool` for pools of whole blocks: the upstream gradient ``up`` (n, R, H,
    P, C) routed to x's first maximum of each window (ax (n, 1, H, W, C)), as MaxPoolGrad at x
    routes it; (n, R, H, W, C)."""
    onehot_x, top_x = _block_first_max(ax, blocks)
    return _block_route(up, onehot_x, _block_window_choice(top_x, blocks), blocks)


@dataclass(frozen=True)
class GradientMaxPool(Rule):
    """deeplift's MaxPoolDeepLiftMode.gradient: the upstream multipliers go through the max-pool
    gradient at x (to x's first maximum of each window, as TensorFlow's MaxPoolGrad at x, which
    deeplift calls), whatever the reference's maxima."""

    def gradient(self, op: Any, grad: Any) -> list:
        tf = _tf()
        trace = DeepLiftTrace.of(op)
        px = trace.twin(op)
        if op.get_attr("data_format") != b"NHWC":
            raise UserError(f"max pooling {op.name}: only channels-last (NHWC) is supported")
        blocks = _pool_blocks(op)
        if blocks is not None:
            _, ax5, shape = trace.pair(op.inputs[0], px.inputs[0])
            up5, _, _ = trace.pair(grad, px.outputs[0])
            kernel = trace.kernel(("maxpool-blocks-gradient", blocks),
                                  functools.partial(_block_pool_gradient, blocks=blocks))
            return [tf.reshape(kernel(ax5, up5), shape)]
        kw = {k: op.get_attr(k) for k in ("ksize", "strides", "padding")}
        _, arg_x = tf.raw_ops.MaxPoolWithArgmax(input=px.inputs[0],
                                                include_batch_in_index=False, **kw)
        return [tf.raw_ops.MaxPoolGradWithArgmax(
            input=op.inputs[0], grad=grad, argmax=tf.repeat(arg_x, trace.references, axis=0),
            include_batch_in_index=False, **kw)]


@dataclass(frozen=True)
class ReduceMax(Rule):
    """The max-pool rule for a max reduction (GlobalMaxPooling): route the output differences
    to the argmax of x and of the reference (ties share equally), then divide by the change."""

    division: MaxRule

    def gradient(self, op: Any, grad: Any) -> list:
        tf = _tf()
        trace = DeepLiftTrace.of(op)
        r = trace.references
        px = trace.twin(op)
        ar, axes, yr = op.inputs[0], op.inputs[1], op.outputs[0]
        ax = tf.repeat(px.inputs[0], r, axis=0)
        yx = tf.repeat(px.outputs[0], r, axis=0)
        rank = tf.rank(ar)
        axes = tf.math.floormod(tf.reshape(tf.cast(axes, tf.int32), [-1]), rank)
        kept_shape = tf.tensor_scatter_nd_update(tf.shape(ar), axes[:, None],
                                                 tf.ones_like(axes))

        def expand(t):
            return tf.reshape(t, kept_shape)

        def route(inp, out, diff):
            mask = tf.cast(tf.equal(inp, expand(out)), inp.dtype)
            count = tf.reduce_sum(mask, axis=axes, keepdims=True)
            return mask / count * expand(grad * diff)

        cross = tf.maximum(yx, yr)
        routed = (route(ax, yx, cross - yr), route(ar, yr, yx - cross))
        limit = (route(ax, yx, tf.cast(tf.equal(yx, yr), yx.dtype))
                 if self.division.limit_at_zero else None)
        return [self.division.multipliers(ax, ar, routed, limit, fuse=trace.fuse), None]


class _PairwiseOperands(Rule):
    """Rules of two-operand Maximum/Minimum: both operands must have one rank (their rules
    pair elements after broadcasting)."""

    def check(self, op: Any, dependent_inputs: list[int]) -> None:
        if op.inputs[0].shape.rank != op.inputs[1].shape.rank:
            raise UserError(f"op {op.name} ({op.type}): operands of different rank")


@dataclass(frozen=True)
class PairwiseMax(_PairwiseOperands):
    """shap's two-input rule for Maximum/Minimum (``fn``): each input gets half of its effect in
    the two orders of arrival (a two-player Shapley value), divided by its change with
    ``division`` (bounded: fn is 1-Lipschitz in each argument); an input-free operand gets no
    gradient. The limit at zero change averages fn's partial derivative over the two orders."""

    fn: Callable
    division: MaxRule

    def gradient(self, op: Any, grad: Any) -> list:
        tf = _tf()
        trace = DeepLiftTrace.of(op)
        f, r = self.fn, trace.references
        px = trace.twin(op)
        yr = op.outputs[0]
        yx = tf.repeat(px.outputs[0], r, axis=0)
        dep = [t.ref() in trace.dependent for t in op.inputs]
        shape = tf.shape(yr)
        refs = [tf.broadcast_to(t, shape) for t in op.inputs]
        xs = [tf.repeat(tf.broadcast_to(t, tf.shape(px.outputs[0])), r, axis=0)
              for t in px.inputs]
        if dep[0] and dep[1]:
            out10, out01 = f(xs[0], refs[1]), f(refs[0], xs[1])
            effects = [0.5 * (yx - out01 + out10 - yr), 0.5 * (yx - out10 + out01 - yr)]
        else:
            effects = [yx - yr, yx - yr]

        def first_wins(a0, a1):  # d fn(a0, a1) / d a0, TensorFlow's convention at ties
            return tf.cast(tf.equal(f(a0, a1), a0), a0.dtype)

        # limit: d/d a_i at a_i = ref_i, the other operand at its reference and at its x value
        partials = ([0.5 * (first_wins(refs[0], refs[1]) + first_wins(refs[0], xs[1])),
                     0.5 * (2.0 - first_wins(refs[0], refs[1]) - first_wins(xs[0], refs[1]))]
                    if self.division.limit_at_zero else [None, None])
        return [grad * self.division.multipliers(xs[i], refs[i], (effects[i],), partials[i],
                                                 fuse=trace.fuse)
                if dep[i] else None for i in range(2)]


@dataclass(frozen=True)
class GradientReduceMax(Rule):
    """The gradient rule for a max reduction (GlobalMaxPooling): the upstream multiplier goes to
    x's maxima, ties sharing it equally (TensorFlow's gradient of the reduction at x; deeplift's
    GlobalMaxPool1D gives every tied maximum the whole multiplier)."""

    def gradient(self, op: Any, grad: Any) -> list:
        tf = _tf()
        trace = DeepLiftTrace.of(op)
        px = trace.twin(op)
        axes = op.inputs[1]
        ax, yx = px.inputs[0], px.outputs[0]
        rank = tf.rank(ax)
        axes = tf.math.floormod(tf.reshape(tf.cast(axes, tf.int32), [-1]), rank)
        kept_shape = tf.tensor_scatter_nd_update(tf.shape(ax), axes[:, None],
                                                 tf.ones_like(axes))
        mask = tf.cast(tf.equal(ax, tf.reshape(yx, kept_shape)), ax.dtype)
        share = tf.repeat(mask / tf.reduce_sum(mask, axis=axes, keepdims=True),
                          trace.references, axis=0)
        ref_kept = tf.tensor_scatter_nd_update(tf.shape(op.inputs[0]), axes[:, None],
                                               tf.ones_like(axes))
        return [share * tf.reshape(grad, ref_kept), None]


@dataclass(frozen=True)
class GradientPairwise(_PairwiseOperands):
    """The gradient rule for Maximum/Minimum (``fn``): the upstream multiplier goes to the
    operand ``fn`` picks at x (the first one at ties, as TensorFlow's gradient); an input-free
    operand gets no gradient."""

    fn: Callable

    def gradient(self, op: Any, grad: Any) -> list:
        tf = _tf()
        trace = DeepLiftTrace.of(op)
        px = trace.twin(op)
        shape = tf.shape(px.outputs[0])
        xs = [tf.broadcast_to(t, shape) for t in px.inputs]
        first = tf.repeat(tf.cast(tf.equal(self.fn(xs[0], xs[1]), xs[0]), grad.dtype),
                          trace.references, axis=0)
        dep = [t.ref() in trace.dependent for t in op.inputs]
        parts = [grad * first, grad * (1.0 - first)]
        return [parts[i] if dep[i] else None for i in range(2)]


# ----------------------------------------------------------------------------------------------
# attention: products of two sequence-dependent tensors, softmax
# ----------------------------------------------------------------------------------------------
class _OpWithInputs:
    """``op`` as TensorFlow's registered gradient functions read it, with other input tensors
    (same shapes): the gradient of a bilinear op at other operand values."""

    def __init__(self, op: Any, inputs: list) -> None:
        self._op = op
        self.inputs = inputs
        self.skip_input_indices = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._op, name)


@dataclass(frozen=True)
class Product(Rule):
    """A bilinear op B(a, b) (Mul, MatMul, BatchMatMul, Einsum) whose two operands both depend on
    the sequence, e.g. attention weights times values, queries times keys, GELU's a * Phi(a),
    layer norm's (a - mean) * rsqrt(var): each operand gets the gradient taken at the midpoint
    of the other, B(a_x, b_x) - B(a_r, b_r) = B(da, (b_x + b_r) / 2) + B((a_x + a_r) / 2, db)
    exactly (bilinearity), so summation-to-delta holds. This is the two-player Shapley value of
    the product and equals integrated gradients of B along the straight line from (a_r, b_r) to
    (a_x, b_x); as x -> ref it is the gradient. For attention it treats the (mean) attention
    weights as fixed multipliers of the values and sends the change of the weights, times the
    mean values, through the softmax (:class:`Softmax`) to the logits. With one
    sequence-dependent operand the op is linear: the ordinary gradient."""

    def check(self, op: Any, dependent_inputs: list[int]) -> None:
        """Any operand(s) may depend on the sequence."""

    def gradient(self, op: Any, grad: Any) -> list:
        tf = _tf()
        trace = DeepLiftTrace.of(op)
        dep = [t.ref() in trace.dependent for t in op.inputs]
        if sum(dep) < 2:
            return _ordinary_gradient(op, grad)
        px = trace.twin(op)
        r = trace.references
        mids = [0.5 * (t + tf.repeat(tx, r, axis=0)) for t, tx in zip(op.inputs, px.inputs,
                                                                    strict=True)]
        return _ordinary_gradient(_OpWithInputs(op, mids), grad)


@dataclass(frozen=True)
class SquaredDifference(Rule):
    """(a - b)^2 (layer norm's variance, tf.nn.moments): the rescale rule on d = a - b,
    d(d^2) = (d_x + d_r) dd exactly; a gets + that multiplier, b (when it depends on the
    sequence) -."""

    def check(self, op: Any, dependent_inputs: list[int]) -> None:
        """Either operand may depend on the sequence."""

    def gradient(self, op: Any, grad: Any) -> list:
        tf = _tf()
        trace = DeepLiftTrace.of(op)
        px = trace.twin(op)
        d_r = op.inputs[0] - op.inputs[1]
        d_x = tf.repeat(px.inputs[0] - px.inputs[1], trace.references, axis=0)
        m = grad * (d_x + d_r)
        dep = [t.ref() in trace.dependent for t in op.inputs]
        return _reduce_to_inputs(op, [m if dep[0] else None, -m if dep[1] else None])


def _reduce_to_inputs(op: Any, grads: list) -> list:
    """Element-wise gradients of the output's shape summed back to each (broadcast) input."""
    tf = _tf()
    out = []
    for t, g in zip(op.inputs, grads, strict=True):
        if g is None:
            out.append(None)
            continue
        axes, _ = tf.raw_ops.BroadcastGradientArgs(s0=tf.shape(t), s1=tf.shape(g))
        out.append(tf.reshape(tf.reduce_sum(g, axes), tf.shape(t)))
    return out


@dataclass(frozen=True)
class MomentsStopGradient(Rule):
    """The StopGradient of tf.nn.moments (keras' LayerNormalization): variance =
    mean((a - stop_gradient(mean(a))))^2 over the same axes. Dropping the mean's path is exact
    for DeepLIFT too: its multiplier would be -(upstream) * sum_i (d_x,i + d_r,i) over the
    reduced axes, and the deviations from the mean sum to zero for x and for the reference. Any
    other StopGradient on the path is refused."""

    def check(self, op: Any, dependent_inputs: list[int]) -> None:
        source = op.inputs[0].op
        consumers = op.outputs[0].consumers()
        if source.type != "Mean" or not consumers or any(
                c.type != "SquaredDifference" or c.inputs[1].ref() != op.outputs[0].ref()
                or c.inputs[0].ref() != source.inputs[0].ref() for c in consumers):
            raise UserError(f"op {op.name} (StopGradient) lies between the sequence input and "
                            "the explained output outside tf.nn.moments' variance; DeepLIFT "
                            "would drop that path")

    def gradient(self, op: Any, grad: Any) -> list:
        return [None]


def _secant_exp(a_x: Any, a_r: Any) -> Any:
    """(exp(a_x) - exp(a_r)) / (a_x - a_r), stable for any difference: exp of the midpoint times
    sinh(t) / t, t = (a_x - a_r) / 2 (expm1 for small t), the plain quotient where |t| > 20
    (well conditioned there, and sinh would overflow)."""
    tf = _tf()
    t = 0.5 * (a_x - a_r)
    mid = tf.exp(0.5 * (a_x + a_r))
    large = tf.abs(t) > 20.0
    tiny = tf.abs(t) < 1e-20
    safe = tf.where(large | tiny, tf.ones_like(t), t)
    sinhc = tf.where(tiny, tf.ones_like(t), 0.5 * (tf.math.expm1(safe) - tf.math.expm1(-safe))
                     / safe)
    quotient = (tf.exp(a_x) - tf.exp(a_r)) / tf.where(large, a_x - a_r, tf.ones_like(t))
    return tf.where(large, quotient, mid * sinhc)


@dataclass(frozen=True)
class Softmax(Rule):
    """Exact DeepLIFT multipliers of softmax over the last axis, O(length) per row, from rescale
    rules of its pieces: A = exp(z), z = l - lse(l). The change of each weight is
    dA_j = e_j dz_j with e_j the secant of exp between z_r and z_x; dz_j = dl_j - d(lse), and
    d(lse) = sum_k w_k dl_k with w_k = (d log S / dS) (exp(l_x,k - c) - exp(l_r,k - c)) / dl_k,
    S = sum_k exp(l_k - c) and c one shift common to x and reference (their larger maximum), so
    d(lse) is exact whatever the shift. Upstream multipliers g on A give the logits
    m_k = g_k e_k - w_k sum_j g_j e_j (sum_k m_k dl_k = sum_j g_j dA_j exactly). The secants
    are computed as exp(midpoint) sinh(t)/t (no cancellation as the change vanishes; the limit is
    the softmax Jacobian)."""

    def gradient(self, op: Any, grad: Any) -> list:
        tf = _tf()
        trace = DeepLiftTrace.of(op)
        r = trace.references
        px = trace.twin(op)
        l_r = op.inputs[0]
        l_x = tf.repeat(px.inputs[0], r, axis=0)
        z_r, z_x = tf.nn.log_softmax(l_r, axis=-1), tf.nn.log_softmax(l_x, axis=-1)
        e = _secant_exp(z_x, z_r)  # dA = e * dz
        c = tf.stop_gradient(tf.maximum(tf.reduce_max(l_x, -1, keepdims=True),
                                        tf.reduce_max(l_r, -1, keepdims=True)))
        s_x = tf.reduce_sum(tf.exp(l_x - c), -1, keepdims=True)
        s_r = tf.reduce_sum(tf.exp(l_r - c), -1, keepdims=True)
        # the secant of log at S: atanh(q) / (q S_mid), q = (S_x - S_r) / (S_x + S_r), as a
        # series where q is small; elsewhere (log S_x - log S_r) / (S_x - S_r) from stable
        # log-sum-exps, since one of the sums may underflow to 0 (q = +-1, atanh infinite)
        s_mid = 0.5 * (s_x + s_r)
        q = (s_x - s_r) / (s_x + s_r)
        small = tf.abs(q) < 1e-3
        lse_x = tf.reduce_logsumexp(l_x - c, -1, keepdims=True)
        lse_r = tf.reduce_logsumexp(l_r - c, -1, keepdims=True)
        log_secant = tf.where(small, (1.0 + q * q / 3.0) / s_mid,
                              (lse_x - lse_r) / tf.where(small, tf.ones_like(q), s_x - s_r))
        w = log_secant * _secant_exp(l_x - c, l_r - c)
        g = grad * e
        return [g - w * tf.reduce_sum(g, -1, keepdims=True)]


def _rescale(op_type: str) -> Callable[[MaxPoolRule], Rule]:
    return lambda division: Rescale(DERIVATIVES.get(op_type))


# The rules table: op type -> factory of its rule from the trace's max-pool rule
# (:class:`MaxPoolRule`). Supporting another non-linearity is one entry here.
RULES: dict[str, Callable[[MaxPoolRule], Rule]] = {
    **{op_type: _rescale(op_type) for op_type in RESCALE_OPS},
    "MaxPool": lambda rule: rule.max_pool(),
    "Max": lambda rule: rule.reduce_max(),
    "Maximum": lambda rule: rule.pairwise(_tf().maximum),
    "Minimum": lambda rule: rule.pairwise(_tf().minimum),
    **{op_type: (lambda rule: Product()) for op_type in BILINEAR_OPS},
    "Softmax": lambda rule: Softmax(),
    "SquaredDifference": lambda rule: SquaredDifference(),
    "StopGradient": lambda rule: MomentsStopGradient(),
}


def deeplift_rules(division: MaxPoolRule = CONTINUOUS) -> dict[str, Rule]:
    """The op type -> DeepLIFT rule table of one trace (``division``: the max-pool rule), made
    from :data:`RULES`."""
    return {op_type: make(division) for op_type, make in RULES.items()}


def rescale_product_target(l_ref: Any, l_x: Any, references: int) -> Any:
    """BPNet's profile non-linearity y = l * softmax(l) treated element-wise with the rescale rule
    (bpnet-lite / tangermeme) on the reference branch. ``l_ref`` (n*R, M) and ``l_x`` (n, M)
    mean-centred logits, ``references`` = R per sequence; returns y for the references.

    float32 secants of logits that barely move are ill-conditioned (keras3_notes §2), so where
    |delta l| < 1e-3 the derivative d(l_i s_i)/dl_i is used and the part of the output difference
    it misses is spread over the other logits in proportion to |delta l|: the rule stays exactly
    additive and permutation-equivariant (hence RC-equivariant for RC-equivariant models).
    """
    tf = _tf()
    r = references
    y_x = l_x * tf.nn.softmax(l_x, axis=-1)

    @tf.custom_gradient
    def weighted(lv):
        s = tf.nn.softmax(lv, axis=-1)
        y = lv * s

        def grad(up):
            d = tf.repeat(l_x, r, axis=0) - lv
            dy = tf.repeat(y_x, r, axis=0) - y
            small = tf.abs(d) < EPS_PROFILE
            zero = tf.zeros_like(d)
            deriv = s + lv * s * (1.0 - s)
            m = tf.where(small, deriv, dy / tf.where(small, tf.ones_like(d), d))
            missed = tf.reduce_sum(tf.where(small, dy - deriv * d, zero), -1, keepdims=True)
            spread = tf.reduce_sum(tf.where(small, zero, tf.abs(d)), -1, keepdims=True)
            extra = tf.math.divide_no_nan(missed, spread) * tf.sign(d)
            return up * (m + tf.where(small, zero, extra))

        return y, grad

    return weighted(l_ref)


# ----------------------------------------------------------------------------------------------
# checks before the trace: op pairing and op coverage
# ----------------------------------------------------------------------------------------------
def pair_ops(ops_x: list, ops_r: list, rules: dict[str, Rule]) -> dict:
    """Match the overridden ops of the reference branch with those of the x branch (same model,
    same code path: same op types in the same order); reference op name -> x-branch op."""
    def explained(op: Any) -> bool:  # shape arithmetic (int Mul, ...) is never explained
        return op.type in rules and any(t.dtype.is_floating for t in op.outputs)

    xs = [op for op in ops_x if explained(op)]
    rs = [op for op in ops_r if explained(op)]
    if [op.type for op in xs] != [op.type for op in rs]:
        raise UserError("the model builds a different graph for different batches; DeepLIFT "
                        "cannot pair the activations of x and its references")
    return {r.name: x for r, x in zip(rs, xs, strict=True)}


def check_supported_ops(seq_tensor: Any, head_tensor: Any, rules: dict[str, Rule]) -> set:
    """Raise UserError if an op between the sequence input and the head is not supported by the
    DeepLIFT engine (not linear and not in the ``rules`` table); returns the refs of every
    tensor that depends on the sequence."""
    graph = head_tensor.graph
    # forward reachability from the sequence input
    dependent = {seq_tensor.ref()}
    ops = graph.get_operations()
    on_path: list = []
    for op in ops:  # graph ops are in creation (topological) order
        if op.type in VALUE_FREE_OPS:
            continue
        dep_inputs = [i for i, t in enumerate(op.inputs) if t.ref() in dependent]
        if not dep_inputs:
            continue
        on_path.append((op, dep_inputs))
        for out in op.outputs:
            if out.dtype.is_floating:
                dependent.add(out.ref())
    # backward reachability from the head: keep ops whose outputs lead to it
    needed = {head_tensor.ref()}
    for op, dep_inputs in reversed(on_path):
        if not any(o.ref() in needed for o in op.outputs):
            continue
        for i in dep_inputs:
            needed.add(op.inputs[i].ref())
        typ = op.type
        if typ in rules:
            rules[typ].check(op, dep_inputs)
            continue
        if typ not in LINEAR_OPS:
            raise UserError(
                f"op {op.name} of type {typ} lies between the sequence input and the explained "
                "output and is neither linear nor a supported non-linearity "
                f"({', '.join(rules)}); DeepLIFT cannot explain this model")
        if typ in BILINEAR_OPS and len(dep_inputs) > 1:
            raise UserError(f"op {op.name} ({typ}) multiplies two sequence-dependent tensors; "
                            "DeepLIFT's rescale rule does not cover it")
        if typ in DENOMINATOR_OPS and 1 in dep_inputs:
            raise UserError(f"op {op.name} ({typ}) divides by a sequence-dependent tensor; "
                            "DeepLIFT's rescale rule does not cover it")
    return dependent

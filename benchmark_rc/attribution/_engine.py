"""Shared machinery of every attribution method: input validation, the scalar target per example,
graph tracing with DeepLIFT gradient overrides, and batching.

How the native DeepLIFT / DeepSHAP works (no global TensorFlow state is touched):

* One traced ``tf.function`` evaluates the model on the stacked batch ``[x (n); refs (n*R)]``
  (references grouped by sequence, R per sequence). The forward activations of ``x`` are therefore
  computed once per sequence, not once per reference.
* Inside that trace the model's ops are created under ``Graph.gradient_override_map``: every
  non-linear op type with an entry in the rules table (:func:`deeplift_rules`: Relu, Sigmoid,
  Exp, MaxPool, Max, Maximum, ...) gets a gradient that returns its DeepLIFT multiplier for each
  (sequence, reference) pair, with the activation of ``x`` broadcast over its R references.
  Element-wise ops use the *rescale* rule ``(f(a_x) - f(a_r)) / (a_x - a_r)`` with the ordinary
  gradient where ``|a_x - a_r| < 1e-6`` (as shap does); max-like ops route the output difference
  to the maxima and divide by the input change (:class:`MaxRule`: continuous, or shap's
  thresholded rule). Linear ops (convolutions, BN in inference, flips, concatenations, the RC
  layers written with ``keras.ops``) keep their ordinary gradients.
* ``tf.gradients`` of the summed reference-half targets then gives, for each pair, the
  multipliers ``m`` on the input; contributions are ``m * (x - ref)``.
* Before tracing the override, the ops between the sequence input and the explained head are
  checked: an op type that is neither linear nor in the rules table raises :class:`UserError`,
  instead of silently returning gradients. The override map is a context manager of one
  FuncGraph, so a failing call leaves TensorFlow exactly as it was (training keeps working).
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark_rc.errors import UserError

_EPS = 1e-6  # shap's threshold for falling back to the gradient (element-wise non-linearities)
# BPNet profile product: below this |delta logit| the float32 secant is ill-conditioned
# (RC-equivariance of rcps profile attributions breaks below ~1e-3); see rescale_product_target.
_EPS_PROFILE = 1e-3

# Per-trace state: references per sequence, the rules table, op pairing (read by the rules).
_LAYOUT = threading.local()

# Op types that are linear in their input-dependent operand(s) (ordinary gradient is exact).
_LINEAR_OPS = {
    "Identity", "IdentityN", "Conv2D", "Conv1D", "Conv3D", "DepthwiseConv2dNative",
    "Conv2DBackpropInput", "BiasAdd", "AddV2", "Add", "AddN", "Sub", "Neg", "Mul", "RealDiv",
    "DivNoNan", "MatMul", "BatchMatMulV2", "BatchMatMulV3", "Reshape", "ExpandDims", "Squeeze",
    "ConcatV2", "Pack", "Unpack", "Split", "SplitV", "Slice", "StridedSlice", "ReverseV2",
    "Transpose", "Pad", "PadV2", "MirrorPad", "Mean", "Sum", "Cast", "SpaceToBatchND",
    "BatchToSpaceND", "Tile", "GatherV2", "AvgPool", "AvgPool3D", "FusedBatchNormV3", "Cumsum",
    "BroadcastTo", "Einsum", "SelectV2",
}
# Binary linear ops where only ONE operand may depend on the input (else they are non-linear).
_BILINEAR_OPS = {"Mul", "MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum"}
_DENOMINATOR_OPS = {"RealDiv", "DivNoNan"}  # linear only if the denominator is input-free
# Ops whose output does not depend on the input's values.
_VALUE_FREE_OPS = {"Shape", "ShapeN", "Size", "Rank", "ZerosLike", "OnesLike"}
# Element-wise non-linearities explained with the rescale rule (input 0 varies).
_RESCALE_OPS = (
    "Relu", "Relu6", "Elu", "Selu", "LeakyRelu", "Sigmoid", "Tanh", "Softplus", "Softsign", "Exp",
    "Log", "Log1p", "Square", "Sqrt", "Rsqrt", "Erf", "ClipByValue", "Abs",
)
_GRADIENT_NAME = "BrcDeepLift"  # the one registered gradient; it defers to the trace's table


def _tf():
    import tensorflow as tf

    return tf


# ----------------------------------------------------------------------------------------------
# DeepLIFT rules: one object per kind of non-linear op, looked up by op type in a table
# ----------------------------------------------------------------------------------------------
def _pair(op, t_ref, t_x):
    """Reference-branch tensor (n*R, ...) and the matching x-branch tensor (n, ...) as
    (n, R, ...) and (n, 1, ...) views (reshapes only: nothing is copied or repeated)."""
    tf = _tf()
    r = _LAYOUT.r
    shape = tf.shape(t_ref)
    n = shape[0] // r
    ref = tf.reshape(t_ref, tf.concat([[n, r], shape[1:]], axis=0))
    x = tf.expand_dims(t_x, 1)
    return ref, x, shape


def _partner(op):
    partner = _LAYOUT.partner.get(op.name)
    if partner is None:  # pragma: no cover - guarded by the pairing check
        raise RuntimeError(f"no x-branch partner for op {op.name}")
    return partner


_FUSED: dict = {}


def _maybe_fused(key: Any, fn: Callable) -> Callable:
    """``fn`` as one XLA kernel when the trace asks for it (``_LAYOUT.fuse``): the element-wise
    chains of the rules are memory-bound on a CPU."""
    tf = _tf()
    if not getattr(_LAYOUT, "fuse", False):
        return fn
    if key not in _FUSED:
        _FUSED[key] = tf.function(fn, jit_compile=True, autograph=False, reduce_retracing=True)
    return _FUSED[key]


class Rule:
    """The DeepLIFT rule of one kind of non-linear op, applied on the reference branch.

    ``gradient(op, grad)`` returns, for each input of the reference-branch ``op``, the multipliers
    times the upstream ``grad`` (None where nothing propagates); the op's x-branch twin is
    ``_partner(op)``. ``check(op, dependent_inputs)`` raises UserError when the sequence-dependent
    inputs of ``op`` are outside what the rule covers. Add a rule: subclass this and give it an
    entry in :func:`deeplift_rules`.
    """

    def gradient(self, op: Any, grad: Any) -> list:
        raise NotImplementedError

    def check(self, op: Any, dependent_inputs: list[int]) -> None:
        if dependent_inputs != [0]:
            raise UserError(f"op {op.name} ({op.type}): only its first input may depend on the "
                            "sequence for DeepLIFT")


# f'(a) from (a, f(a)) for the common element-wise non-linearities (fused into the secant kernel);
# other op types fall back to TensorFlow's registered gradient.
_DERIVATIVES: dict[str, Callable] = {
    "Relu": lambda a, y: _tf().cast(a > 0, a.dtype),
    "Sigmoid": lambda a, y: y * (1.0 - y),
    "Tanh": lambda a, y: 1.0 - y * y,
    "Exp": lambda a, y: y,
    "Softplus": lambda a, y: _tf().sigmoid(a),
    "Elu": lambda a, y: _tf().where(a > 0, _tf().ones_like(a), y + 1.0),
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

        px = _partner(op)
        ar, ax, shape = _pair(op, op.inputs[0], px.inputs[0])
        yr, yx, _ = _pair(op, op.outputs[0], px.outputs[0])
        up, _, _ = _pair(op, grad, px.outputs[0])
        derivative = self.derivative
        if derivative is None:
            orig = tf_ops._gradient_registry.lookup(op.type)(op, grad)
            fallback, _, _ = _pair(op, orig[0] if isinstance(orig, list | tuple) else orig,
                                   px.outputs[0])
        else:
            fallback = tf.zeros([], ar.dtype)  # unused: the derivative is fused in

        def secant(ax, ar, yx, yr, fallback, up):
            d = ax - ar
            small = tf.abs(d) < _EPS
            if derivative is not None:
                fallback = up * derivative(ar, yr)
            return tf.where(small, fallback, up * ((yx - yr) / tf.where(small, tf.ones_like(d),
                                                                          d)))

        kernel = _maybe_fused(("rescale", derivative), secant)
        out = tf.reshape(kernel(ax, ar, yx, yr, fallback, up), shape)
        return [out] + [None] * (len(op.inputs) - 1)


@dataclass(frozen=True)
class MaxRule:
    """How max-like ops (MaxPool, Max, Maximum, Minimum) turn the output difference routed to an
    input into a multiplier: routed / (x_in - ref_in).

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

    def multipliers(self, a_x: Any, a_r: Any, routed: tuple, limit: Any) -> Any:
        """sum(routed) / (a_x - a_r), or ``limit`` (None: 0) where the change is below the
        threshold; a_x broadcasts against a_r. The parts of ``routed`` are summed inside the
        (fused) kernel: these tensors are the size of the pooled layer's input."""
        tf = _tf()

        def math(a_x, a_r, routed, limit):
            d = a_x - a_r
            small = tf.abs(d) < self.threshold if self.threshold > 0 else tf.equal(d, 0.0)
            below = limit if self.limit_at_zero else tf.zeros_like(d)
            return tf.where(small, below, tf.add_n(routed) / tf.where(small, tf.ones_like(d), d))

        if limit is None:
            limit = tf.zeros([], a_r.dtype)
        return _maybe_fused(("max", self), math)(a_x, a_r, tuple(routed), limit)


CONTINUOUS = MaxRule("continuous", 0.0, True)
SHAP = MaxRule("shap", 1e-7, False)
MAX_RULES = {rule.name: rule for rule in (CONTINUOUS, SHAP)}


def max_rule(rule: str | MaxRule) -> MaxRule:
    """The max-pool rule named ``rule`` ("continuous" or "shap"), or ``rule`` itself."""
    if isinstance(rule, MaxRule):
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
        r = _LAYOUT.r
        px = _partner(op)
        ar, yr = op.inputs[0], op.outputs[0]
        yx = tf.repeat(px.outputs[0], r, axis=0)  # pooled: small
        cross = tf.maximum(yx, yr)
        kw = {k: op.get_attr(k) for k in ("ksize", "strides", "padding")}
        if op.get_attr("data_format") != b"NHWC":
            raise UserError(f"max pooling {op.name}: only channels-last (NHWC) is supported")
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
        ar5, ax5, shape = _pair(op, ar, px.inputs[0])
        routed = tuple(_pair(op, g, px.inputs[0])[0] for g in (gx, gr))
        if limit is not None:
            limit, _, _ = _pair(op, limit, px.inputs[0])
        return [tf.reshape(self.division.multipliers(ax5, ar5, routed, limit), shape)]


@dataclass(frozen=True)
class ReduceMax(Rule):
    """The max-pool rule for a max reduction (GlobalMaxPooling): route the output differences
    to the argmax of x and of the reference (ties share equally), then divide by the change."""

    division: MaxRule

    def gradient(self, op: Any, grad: Any) -> list:
        tf = _tf()
        r = _LAYOUT.r
        px = _partner(op)
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
        return [self.division.multipliers(ax, ar, routed, limit), None]


@dataclass(frozen=True)
class PairwiseMax(Rule):
    """shap's two-input rule for Maximum/Minimum (``fn``): each input gets half of its effect in
    the two orders of arrival (a two-player Shapley value), divided by its change with
    ``division`` (bounded: fn is 1-Lipschitz in each argument); an input-free operand gets no
    gradient. The limit at zero change averages fn's partial derivative over the two orders."""

    fn: Callable
    division: MaxRule

    def check(self, op: Any, dependent_inputs: list[int]) -> None:
        if op.inputs[0].shape.rank != op.inputs[1].shape.rank:
            raise UserError(f"op {op.name} ({op.type}): operands of different rank")

    def gradient(self, op: Any, grad: Any) -> list:
        tf = _tf()
        f, r = self.fn, _LAYOUT.r
        px = _partner(op)
        yr = op.outputs[0]
        yx = tf.repeat(px.outputs[0], r, axis=0)
        dep = [t.ref() in _LAYOUT.dependent for t in op.inputs]
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
        return [grad * self.division.multipliers(xs[i], refs[i], (effects[i],), partials[i])
                if dep[i] else None for i in range(2)]


def deeplift_rules(division: MaxRule = CONTINUOUS) -> dict[str, Rule]:
    """The op type -> DeepLIFT rule table of one trace (``division``: the max-pool rule).
    Supporting another non-linearity is one entry here."""
    tf = _tf()
    table: dict[str, Rule] = {t: Rescale(_DERIVATIVES.get(t)) for t in _RESCALE_OPS}
    table["MaxPool"] = MaxPool(division)
    table["Max"] = ReduceMax(division)
    table["Maximum"] = PairwiseMax(tf.maximum, division)
    table["Minimum"] = PairwiseMax(tf.minimum, division)
    return table


def _deeplift_gradient(op, *grads):
    return _LAYOUT.rules[op.type].gradient(op, grads[0])


_REGISTERED = False


def _register_gradients() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    _tf().RegisterGradient(_GRADIENT_NAME)(_deeplift_gradient)
    _REGISTERED = True


def rescale_product_target(l_ref, l_x):
    """BPNet's profile non-linearity y = l * softmax(l) treated element-wise with the rescale rule
    (bpnet-lite / tangermeme) on the reference branch. ``l_ref`` (n*R, M) and ``l_x`` (n, M)
    mean-centred logits; returns y for the references.

    float32 secants of logits that barely move are ill-conditioned (keras3_notes §2), so where
    |delta l| < 1e-3 the derivative d(l_i s_i)/dl_i is used and the part of the output difference
    it misses is spread over the other logits in proportion to |delta l|: the rule stays exactly
    additive and permutation-equivariant (hence RC-equivariant for RC-equivariant models).
    """
    tf = _tf()
    r = _LAYOUT.r
    y_x = l_x * tf.nn.softmax(l_x, axis=-1)

    @tf.custom_gradient
    def weighted(lv):
        s = tf.nn.softmax(lv, axis=-1)
        y = lv * s

        def grad(up):
            d = tf.repeat(l_x, r, axis=0) - lv
            dy = tf.repeat(y_x, r, axis=0) - y
            small = tf.abs(d) < _EPS_PROFILE
            zero = tf.zeros_like(d)
            deriv = s + lv * s * (1.0 - s)
            m = tf.where(small, deriv, dy / tf.where(small, tf.ones_like(d), d))
            missed = tf.reduce_sum(tf.where(small, dy - deriv * d, zero), -1, keepdims=True)
            spread = tf.reduce_sum(tf.where(small, zero, tf.abs(d)), -1, keepdims=True)
            extra = tf.math.divide_no_nan(missed, spread) * tf.sign(d)
            return up * (m + tf.where(small, zero, extra))

        return y, grad

    return weighted(l_ref)


def _pair_ops(ops_x: list, ops_r: list, rules: dict[str, Rule]) -> dict:
    """Match the overridden ops of the reference branch with those of the x branch (same model,
    same code path: same op types in the same order)."""
    xs = [op for op in ops_x if op.type in rules]
    rs = [op for op in ops_r if op.type in rules]
    if [op.type for op in xs] != [op.type for op in rs]:
        raise UserError("the model builds a different graph for different batches; DeepLIFT "
                        "cannot pair the activations of x and its references")
    return {r.name: x for r, x in zip(rs, xs, strict=True)}


# ----------------------------------------------------------------------------------------------
# inputs, outputs, targets
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """Where the sequence enters the model and how its other inputs are named/shaped."""

    seq_name: str
    seq_index: int
    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int | None, ...], ...]
    dict_inputs: bool

    @property
    def seq_shape(self) -> tuple[int | None, ...]:
        return self.input_shapes[self.seq_index]


def model_spec(model: Any) -> ModelSpec:
    """Find the (N, L, 4) sequence input of ``model`` (named "sequence" if there are several)."""
    inputs = list(model.inputs)
    names = tuple(getattr(t, "name", f"input_{i}").split(":")[0] for i, t in enumerate(inputs))
    shapes = tuple(tuple(t.shape) for t in inputs)
    if len(inputs) == 1:
        idx = 0
    elif "sequence" in names:
        idx = names.index("sequence")
    else:
        raise UserError(f"model has {len(inputs)} inputs {list(names)}; cannot tell which one is "
                        "the DNA sequence (expected one named 'sequence')")
    if len(shapes[idx]) != 3 or shapes[idx][-1] != 4:
        raise UserError(f"model input {names[idx]!r} has shape {shapes[idx]}; expected "
                        "(N, L, 4) one-hot DNA")
    dict_inputs = isinstance(getattr(model, "_inputs_struct", None), dict) or len(inputs) > 1
    return ModelSpec(names[idx], idx, names, shapes, dict_inputs)


def check_one_hot(x: np.ndarray, name: str, length: int | None) -> np.ndarray:
    """Validate (N, L, 4) one-hot (all-zero rows allowed for N); returns float32."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[-1] != 4:
        raise UserError(f"{name}: expected one-hot DNA of shape (N, L, 4), got {x.shape}")
    if length is not None and x.shape[1] != length:
        raise UserError(f"{name}: the model expects sequences of length {length}, "
                        f"got length {x.shape[1]}")
    if x.dtype.kind not in "biuf":
        raise UserError(f"{name}: expected a numeric one-hot array, got dtype {x.dtype}")
    xf = x.astype(np.float32, copy=False)
    bad = ~((xf == 0) | (xf == 1))
    rows = xf.sum(-1)
    if bad.any() or (rows > 1).any():
        where = np.argwhere(bad.any(-1) | (rows > 1))[0]
        raise UserError(f"{name}: not one-hot at sequence {where[0]}, position {where[1]} "
                        f"(values {xf[where[0], where[1]].tolist()}); expected 0/1 entries with "
                        "at most one 1 per position")
    return xf


def split_inputs(model: Any, x: Any, spec: ModelSpec) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Accept an (N, L, 4) array or a dict with the sequence and (optionally) the other inputs;
    other inputs that are missing are filled with zeros."""
    if isinstance(x, dict):
        if spec.seq_name not in x:
            raise UserError(f"input dict lacks the sequence input {spec.seq_name!r}; "
                            f"keys: {sorted(x)}")
        seq = x[spec.seq_name]
        others_in = {k: v for k, v in x.items() if k != spec.seq_name}
    else:
        seq, others_in = x, {}
    seq = check_one_hot(seq, "x", spec.seq_shape[1])
    n = seq.shape[0]
    others = {}
    for name, shape in zip(spec.input_names, spec.input_shapes, strict=True):
        if name == spec.seq_name:
            continue
        if name in others_in:
            arr = np.asarray(others_in[name], dtype=np.float32)
            if arr.shape != (n, *shape[1:]):
                raise UserError(f"input {name!r}: expected shape {(n, *shape[1:])}, "
                                f"got {arr.shape}")
        else:
            arr = np.zeros((n, *shape[1:]), dtype=np.float32)
        others[name] = arr
    unknown = set(others_in) - set(spec.input_names)
    if unknown:
        raise UserError(f"unknown model inputs {sorted(unknown)}; the model takes "
                        f"{list(spec.input_names)}")
    return seq, others


def _strip_sigmoid(t):
    """Pre-sigmoid logits of a tensor produced by a Sigmoid (through Identity ops)."""
    node = t
    while node.op.type in ("Identity", "IdentityN") and len(node.op.inputs) >= 1:
        node = node.op.inputs[node.value_index if node.op.type == "IdentityN" else 0]
    if node.op.type == "Sigmoid":
        return node.op.inputs[0]
    return t


def select_head(outputs: Any, output: Any, logits: bool):
    """Choose the explained head tensor and how it is reduced to one scalar per example.

    Returns (head tensor, kind) with kind in {"profile", "mean", ("column", j)}.
    """
    if isinstance(outputs, dict):
        keys = sorted(outputs)
        name, col = (output if isinstance(output, tuple) else (output, None))
        if name is None and len(keys) == 1:
            name = keys[0]
        if name not in outputs:
            raise UserError(f"output={output!r}: choose one of the model's heads {keys}")
        head = outputs[name]
    elif isinstance(outputs, list | tuple) and len(outputs) > 1:
        if not isinstance(output, tuple) or not isinstance(output[0], int):
            raise UserError(f"model has {len(outputs)} outputs; pass output=(head, task)")
        head, col = outputs[output[0]], output[1]
    else:
        head = outputs[0] if isinstance(outputs, list | tuple) else outputs
        col = output
        if col is None:
            if len(head.shape) == 2 and head.shape[-1] == 1:
                col = 0
            elif len(head.shape) == 2:
                raise UserError(f"the model has {head.shape[-1]} tasks; choose one with "
                                f"output=<task index 0..{head.shape[-1] - 1}>")
        if col is not None and not isinstance(col, int | np.integer):
            raise UserError(f"output={output!r}: expected a task index for this model")
    if logits:
        head = _strip_sigmoid(head)
    rank = len(head.shape)
    if rank == 3:
        return head, "profile"
    if rank != 2:
        raise UserError(f"cannot explain an output of shape {tuple(head.shape)}")
    if col is None:
        return head, "mean"
    if not 0 <= int(col) < head.shape[-1]:
        raise UserError(f"output task {col} out of range: the head has {head.shape[-1]} columns")
    return head, ("column", int(col))


def _centred(head):
    tf = _tf()
    flat = tf.reshape(head, [tf.shape(head)[0], -1])
    return flat - tf.reduce_mean(flat, axis=-1, keepdims=True)


def reduce_head(head, kind, *, partner=None):
    """One scalar per example: a column, the mean over columns, or BPNet's profile target.

    ``partner``: the x-branch head when ``head`` is the reference branch of a DeepLIFT trace
    (the profile non-linearity then uses the rescale rule)."""
    tf = _tf()
    if kind == "profile":
        lc = _centred(head)
        if partner is not None:
            prod = rescale_product_target(lc, _centred(partner))
        else:
            prod = lc * tf.stop_gradient(tf.nn.softmax(lc, axis=-1))
        return tf.reduce_sum(prod, axis=-1)
    if kind == "mean":
        return tf.reduce_mean(head, axis=-1)
    return head[:, kind[1]]


def check_supported_ops(seq_tensor, head_tensor, rules: dict[str, Rule]) -> set:
    """Raise UserError if an op between the sequence input and the head is not supported by the
    DeepLIFT engine (not linear and not in the ``rules`` table); returns the refs of every
    tensor that depends on the sequence."""
    graph = head_tensor.graph
    # forward reachability from the sequence input
    dependent = {seq_tensor.ref()}
    ops = graph.get_operations()
    on_path: list = []
    for op in ops:  # graph ops are in creation (topological) order
        if op.type in _VALUE_FREE_OPS:
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
        if typ not in _LINEAR_OPS:
            raise UserError(
                f"op {op.name} of type {typ} lies between the sequence input and the explained "
                "output and is neither linear nor a supported non-linearity "
                f"({', '.join(rules)}); DeepLIFT cannot explain this model")
        if typ in _BILINEAR_OPS and len(dep_inputs) > 1:
            raise UserError(f"op {op.name} ({typ}) multiplies two sequence-dependent tensors; "
                            "DeepLIFT's rescale rule does not cover it")
        if typ in _DENOMINATOR_OPS and 1 in dep_inputs:
            raise UserError(f"op {op.name} ({typ}) divides by a sequence-dependent tensor; "
                            "DeepLIFT's rescale rule does not cover it")
    return dependent


# ----------------------------------------------------------------------------------------------
# traced functions, cached per model
# ----------------------------------------------------------------------------------------------
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _call_model(model, spec: ModelSpec, seq, others: dict):
    if len(spec.input_names) == 1:
        return model(seq, training=False)
    feed = dict(others)
    feed[spec.seq_name] = seq
    if spec.dict_inputs and isinstance(getattr(model, "_inputs_struct", None), dict):
        return model(feed, training=False)
    return model([feed[name] for name in spec.input_names], training=False)


def _signature(spec: ModelSpec):
    tf = _tf()
    seq = tf.TensorSpec((None, *spec.seq_shape[1:]), tf.float32)
    others = {name: tf.TensorSpec((None, *shape[1:]), tf.float32)
              for name, shape in zip(spec.input_names, spec.input_shapes, strict=True)
              if name != spec.seq_name}
    return seq, others


def _get_cache(model) -> dict:
    try:
        return _CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable
        return {}


def _traced_per_model(builder: Callable) -> Callable:
    """Memoise the traced function ``builder(model, spec, *args)`` per model and arguments, so
    repeated attribution calls on one model do not re-trace."""

    @functools.wraps(builder)
    def cached(model: Any, spec: ModelSpec, *args: Any, **kwargs: Any) -> Callable:
        key = (builder.__name__, repr(args), repr(sorted(kwargs.items())))
        cache = _get_cache(model)
        if key not in cache:
            cache[key] = builder(model, spec, *args, **kwargs)
        return cache[key]

    return cached


@_traced_per_model
def rescale_function(model: Any, spec: ModelSpec, output: Any, logits: bool, r: int,
                     division: MaxRule = CONTINUOUS, fuse: bool = True) -> Callable:
    """Traced fn(x (n,L,4), refs (n*R,L,4), others) -> (hypothetical (n,L,4) averaged over
    references, per-position summed contributions (n,L), t_x (n,), t_ref (n*R,)).
    ``division``: the max-pool rule of the max-like ops."""
    tf = _tf()
    _register_gradients()
    seq_sig, others_sig = _signature(spec)
    rules = deeplift_rules(division)

    @tf.function(input_signature=[seq_sig, seq_sig, others_sig], autograph=False)
    def fn(x, refs, others):
        _LAYOUT.r = r
        _LAYOUT.fuse = fuse
        _LAYOUT.rules = rules
        graph = tf.compat.v1.get_default_graph()
        start = len(graph.get_operations())
        head_x, kind = select_head(_call_model(model, spec, x, others), output, logits)
        middle = len(graph.get_operations())
        other_refs = {k: tf.repeat(v, r, axis=0) for k, v in others.items()}
        with graph.gradient_override_map({t: _GRADIENT_NAME for t in rules}):
            head_r, _ = select_head(_call_model(model, spec, refs, other_refs), output, logits)
            ops = graph.get_operations()
            _LAYOUT.partner = _pair_ops(ops[start:middle], ops[middle:], rules)
            _LAYOUT.dependent = check_supported_ops(refs, head_r, rules)
            t_r = reduce_head(head_r, kind, partner=head_x)
        t_x = reduce_head(head_x, kind)
        mult = tf.gradients(tf.reduce_sum(t_r), refs)[0]
        n = tf.shape(x)[0]
        shape = tf.concat([[n, r], tf.shape(x)[1:]], axis=0)
        mult = tf.reshape(mult, shape)
        refs4 = tf.reshape(refs, shape)
        hyp = tf.reduce_mean(mult - tf.reduce_sum(mult * refs4, -1, keepdims=True), axis=1)
        pos_sum = tf.reduce_mean(tf.reduce_sum(mult * (x[:, None] - refs4), -1), axis=1)
        return hyp, pos_sum, t_x, t_r

    fn.get_concrete_function()  # trace now: unsupported ops raise here, before any work
    return fn


@_traced_per_model
def target_function(model: Any, spec: ModelSpec, output: Any, logits: bool) -> Callable:
    """Traced fn(seq, others) -> scalar target per example (forward only)."""
    tf = _tf()
    seq_sig, others_sig = _signature(spec)

    @tf.function(input_signature=[seq_sig, others_sig], autograph=False)
    def fn(seq, others):
        head, kind = select_head(_call_model(model, spec, seq, others), output, logits)
        return reduce_head(head, kind)

    return fn


@_traced_per_model
def gradient_function(model: Any, spec: ModelSpec, output: Any, logits: bool) -> Callable:
    """Traced fn(seq, others) -> (d target / d seq, target)."""
    tf = _tf()
    seq_sig, others_sig = _signature(spec)

    @tf.function(input_signature=[seq_sig, others_sig], autograph=False)
    def fn(seq, others):
        with tf.GradientTape() as tape:
            tape.watch(seq)
            head, kind = select_head(_call_model(model, spec, seq, others), output, logits)
            t = reduce_head(head, kind)
            total = tf.reduce_sum(t)
        return tape.gradient(total, seq), t

    return fn


def device_scope():
    """tf.device on the first GPU when TensorFlow sees one, else the CPU."""
    tf = _tf()
    gpus = tf.config.list_logical_devices("GPU")
    return tf.device(gpus[0].name if gpus else "/CPU:0")


def chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="seq", disable=not enabled, leave=False)


def default_batch_size() -> int:
    """Rows per forward pass: 64 on a CPU (activations stay in cache; measured fastest for the
    binary model on this machine), 1024 on a GPU."""
    tf = _tf()
    return 1024 if tf.config.list_logical_devices("GPU") else 64


def check_batch_size(batch_size: int | None) -> int:
    if batch_size is None:
        return default_batch_size()
    if not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise UserError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)

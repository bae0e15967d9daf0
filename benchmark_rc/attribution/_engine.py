"""Shared machinery of every attribution method: input validation, the scalar target per example,
graph tracing with DeepLIFT-rescale gradient overrides, and batching.

How the native DeepLIFT / DeepSHAP works (no global TensorFlow state is touched):

* One traced ``tf.function`` evaluates the model on the stacked batch ``[x (n); refs (n*R)]``
  (references grouped by sequence, R per sequence). The forward activations of ``x`` are therefore
  computed once per sequence, not once per reference.
* Inside that trace the model's ops are created under ``Graph.gradient_override_map``: every
  non-linear op type (Relu, Sigmoid, Exp, MaxPool, Max, ...) gets a registered gradient that
  returns the DeepLIFT *rescale* multiplier ``(f(a_x) - f(a_r)) / (a_x - a_r)`` for each
  (sequence, reference) pair, with the activation of ``x`` broadcast over its R references, and
  falls back to the ordinary gradient where ``|a_x - a_r| < 1e-6`` (exactly as shap does). Max
  pooling uses shap's DeepLIFT rule. Linear ops (convolutions, BN in inference, flips,
  concatenations, the RC layers written with ``keras.ops``) keep their ordinary gradients.
* ``tf.gradients`` of the summed reference-half targets then gives, for each pair, the
  multipliers ``m`` on the input; contributions are ``m * (x - ref)``.
* Before tracing the override, the ops between the sequence input and the explained head are
  checked: an op type that is neither linear nor handled raises :class:`UserError`, instead of
  silently returning gradients. The override map is a context manager of one FuncGraph, so a
  failing call leaves TensorFlow exactly as it was (training keeps working).
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

_EPS = 1e-6  # shap's threshold for falling back to the gradient (non-linearities)
_EPS_POOL = 1e-7  # shap's threshold in its max-pool rule
# BPNet profile product: below this |delta logit| the float32 secant is ill-conditioned
# (RC-equivariance of rcps profile attributions breaks below ~1e-3); see rescale_product_target.
_EPS_PROFILE = 1e-3

# Per-trace layout: number of references per sequence (read by the gradient functions).
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
_POOL_OPS = ("MaxPool",)
_REDUCE_MAX_OPS = ("Max",)
# Two-input non-linearities (Shapley rule over the two inputs, as shap's nonlinearity_2d).
_BINARY_OPS = ("Maximum", "Minimum")
_OVERRIDE = {t: "BrcRescale" for t in _RESCALE_OPS}
_OVERRIDE.update({t: "BrcMaxPool" for t in _POOL_OPS})
_OVERRIDE.update({t: "BrcReduceMax" for t in _REDUCE_MAX_OPS})
_OVERRIDE.update({t: "BrcBinary" for t in _BINARY_OPS})


def _tf():
    import tensorflow as tf

    return tf


# ----------------------------------------------------------------------------------------------
# gradient functions (registered once, used only under gradient_override_map inside our traces)
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


def _derivatives():
    """f'(a) from (a, f(a)) for the common non-linearities (fused into the secant kernel)."""
    tf = _tf()
    return {
        "Relu": lambda a, y: tf.cast(a > 0, a.dtype),
        "Sigmoid": lambda a, y: y * (1.0 - y),
        "Tanh": lambda a, y: 1.0 - y * y,
        "Exp": lambda a, y: y,
        "Softplus": lambda a, y: tf.sigmoid(a),
        "Elu": lambda a, y: tf.where(a > 0, tf.ones_like(a), y + 1.0),
    }


def _secant_math(ax, ar, yx, yr, fallback, up, eps, derivative=None):
    """up * (yx - yr) / (ax - ar), x broadcast over its references; where |ax - ar| < eps the
    gradient: ``fallback`` (up * f'(ar)) or ``up * derivative(ar, yr)``."""
    tf = _tf()
    d = ax - ar
    dy = yx - yr
    small = tf.abs(d) < eps
    if derivative is not None:
        fallback = up * derivative(ar, yr)
    return tf.where(small, fallback, up * (dy / tf.where(small, tf.ones_like(d), d)))


_FUSED: dict = {}


def _secant(ax, ar, yx, yr, fallback, up, eps, op_type=None):
    """The rescale multiplier times the upstream gradient (see :func:`_secant_math`); one fused
    XLA kernel when ``_LAYOUT.fuse`` (the element-wise chain is memory-bound on a CPU)."""
    tf = _tf()
    derivative = _derivatives().get(op_type)
    if not getattr(_LAYOUT, "fuse", False):
        return _secant_math(ax, ar, yx, yr, fallback, up, eps, derivative)
    key = op_type if derivative is not None else None
    if key not in _FUSED:
        def kernel(ax, ar, yx, yr, fallback, up, eps, derivative=derivative):
            return _secant_math(ax, ar, yx, yr, fallback, up, eps, derivative)

        _FUSED[key] = tf.function(kernel, jit_compile=True, autograph=False,
                                  reduce_retracing=True)
    if derivative is not None:
        fallback = tf.zeros([], ar.dtype)  # unused by the kernel
    return _FUSED[key](ax, ar, yx, yr, fallback, up, tf.constant(eps, ar.dtype))


def _rescale_grad(op, grad):
    """Rescale rule of an element-wise non-linearity of the reference branch."""
    tf = _tf()
    from tensorflow.python.framework import ops as tf_ops

    px = _partner(op)
    ar, ax, shape = _pair(op, op.inputs[0], px.inputs[0])
    yr, yx, _ = _pair(op, op.outputs[0], px.outputs[0])
    up, _, _ = _pair(op, grad, px.outputs[0])
    if op.type in _derivatives():
        fb = None
    else:
        orig = tf_ops._gradient_registry.lookup(op.type)(op, grad)
        fb, _, _ = _pair(op, orig[0] if isinstance(orig, list | tuple) else orig, px.outputs[0])
    out = tf.reshape(_secant(ax, ar, yx, yr, fb, up, _EPS, op.type), shape)
    return [out] + [None] * (len(op.inputs) - 1)


def _pool_math(ax, ar, gx, gr, eps):
    tf = _tf()
    d = ax - ar
    small = tf.abs(d) < eps
    return tf.where(small, tf.zeros_like(d), (gx + gr) / tf.where(small, tf.ones_like(d), d))


def _pool_input_multipliers(ax, ar, gx, gr):
    """(gx + gr) / (ax - ar), 0 where |ax - ar| < 1e-7 (shap's rule); fused when enabled."""
    tf = _tf()
    if not getattr(_LAYOUT, "fuse", False):
        return _pool_math(ax, ar, gx, gr, _EPS_POOL)
    if "pool" not in _FUSED:
        _FUSED["pool"] = tf.function(_pool_math, jit_compile=True, autograph=False,
                                     reduce_retracing=True)
    return _FUSED["pool"](ax, ar, gx, gr, tf.constant(_EPS_POOL, ar.dtype))


def _maxpool_grad(op, grad):
    """shap's DeepLIFT max-pool rule. The x branch's argmax is computed once per sequence and
    reused for its R references (no repeated copies of x's activations)."""
    tf = _tf()
    r = _LAYOUT.r
    px = _partner(op)
    ar, yr = op.inputs[0], op.outputs[0]
    yx = tf.repeat(px.outputs[0], r, axis=0)  # pooled: small
    cross = tf.maximum(yx, yr)
    kw = {k: op.get_attr(k) for k in ("ksize", "strides", "padding")}
    if op.get_attr("data_format") != b"NHWC":
        raise UserError(f"max pooling {op.name}: only channels-last (NHWC) is supported")
    _, arg_x = tf.raw_ops.MaxPoolWithArgmax(input=px.inputs[0], include_batch_in_index=False,
                                            **kw)
    gx = tf.raw_ops.MaxPoolGradWithArgmax(input=ar, grad=grad * (cross - yr),
                                          argmax=tf.repeat(arg_x, r, axis=0),
                                          include_batch_in_index=False, **kw)
    gr = tf.raw_ops.MaxPoolGrad(orig_input=ar, orig_output=yr, grad=grad * (yx - cross),
                                data_format="NHWC", **kw)
    ar5, ax5, shape = _pair(op, ar, px.inputs[0])
    gx5, _, _ = _pair(op, gx, px.inputs[0])
    gr5, _, _ = _pair(op, gr, px.inputs[0])
    return [tf.reshape(_pool_input_multipliers(ax5, ar5, gx5, gr5), shape)]


def _reduce_max_grad(op, grad):
    """The max-pool rule for a max reduction (GlobalMaxPooling): route the output differences
    to the argmax of x and of the reference (ties share equally), then divide by the input delta.
    """
    tf = _tf()
    r = _LAYOUT.r
    px = _partner(op)
    ar, axes, yr = op.inputs[0], op.inputs[1], op.outputs[0]
    ax = tf.repeat(px.inputs[0], r, axis=0)
    yx = tf.repeat(px.outputs[0], r, axis=0)
    rank = tf.rank(ar)
    axes = tf.math.floormod(tf.reshape(tf.cast(axes, tf.int32), [-1]), rank)
    kept_shape = tf.tensor_scatter_nd_update(tf.shape(ar), axes[:, None], tf.ones_like(axes))

    def expand(t):
        return tf.reshape(t, kept_shape)

    cross = tf.maximum(yx, yr)

    def route(inp, out, diff):
        mask = tf.cast(tf.equal(inp, expand(out)), inp.dtype)
        count = tf.reduce_sum(mask, axis=axes, keepdims=True)
        return mask / count * expand(grad * diff)

    gx = route(ax, yx, cross - yr)
    gr = route(ar, yr, yx - cross)
    return [_pool_input_multipliers(ax, ar, gx, gr), None]


def _binary_grad(op, grad):
    """shap's two-input rule for Maximum/Minimum: each input gets half of its effect in the two
    orders of arrival (a two-player Shapley value); an input-free operand gets no gradient."""
    tf = _tf()
    f = {"Maximum": tf.maximum, "Minimum": tf.minimum}[op.type]
    r = _LAYOUT.r
    px = _partner(op)
    yr = op.outputs[0]
    yx = tf.repeat(px.outputs[0], r, axis=0)
    dep = [t.ref() in _LAYOUT.dependent for t in op.inputs]
    shape = tf.shape(yr)
    refs = [tf.broadcast_to(t, shape) for t in op.inputs]
    xs = [tf.repeat(tf.broadcast_to(t, tf.shape(px.outputs[0])), r, axis=0) for t in px.inputs]
    if dep[0] and dep[1]:
        out10, out01 = f(xs[0], refs[1]), f(refs[0], xs[1])
        effects = [0.5 * (yx - out01 + out10 - yr), 0.5 * (yx - out10 + out01 - yr)]
    else:
        effects = [yx - yr, yx - yr]
    grads = []
    for i in range(2):
        if not dep[i]:
            grads.append(None)
            continue
        d = xs[i] - refs[i]
        small = tf.abs(d) < _EPS_POOL
        m = tf.where(small, tf.zeros_like(d), effects[i] / tf.where(small, tf.ones_like(d), d))
        grads.append(grad * m)
    return grads


_REGISTERED = False


def _register_gradients() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    tf = _tf()
    tf.RegisterGradient("BrcRescale")(_rescale_grad)
    tf.RegisterGradient("BrcMaxPool")(_maxpool_grad)
    tf.RegisterGradient("BrcReduceMax")(_reduce_max_grad)
    tf.RegisterGradient("BrcBinary")(_binary_grad)
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


def _pair_ops(ops_x: list, ops_r: list) -> dict:
    """Match the overridden ops of the reference branch with those of the x branch (same model,
    same code path: same op types in the same order)."""
    xs = [op for op in ops_x if op.type in _OVERRIDE]
    rs = [op for op in ops_r if op.type in _OVERRIDE]
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


def check_supported_ops(seq_tensor, head_tensor) -> set:
    """Raise UserError if an op between the sequence input and the head is not supported by the
    rescale engine (not linear and not a handled non-linearity); returns the refs of every
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
        if typ in _RESCALE_OPS or typ in _POOL_OPS or typ in _REDUCE_MAX_OPS:
            if dep_inputs != [0]:
                raise UserError(f"op {op.name} ({typ}): only its first input may depend on the "
                                "sequence for DeepLIFT")
            continue
        if typ in _BINARY_OPS:
            if op.inputs[0].shape.rank != op.inputs[1].shape.rank:
                raise UserError(f"op {op.name} ({typ}): operands of different rank")
            continue
        if typ not in _LINEAR_OPS:
            raise UserError(
                f"op {op.name} of type {typ} lies between the sequence input and the explained "
                "output and is neither linear nor a supported non-linearity "
                f"({', '.join(_RESCALE_OPS + _POOL_OPS + _REDUCE_MAX_OPS + _BINARY_OPS)}); "
                "DeepLIFT cannot "
                "explain this model")
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
                     fuse: bool = True) -> Callable:
    """Traced fn(x (n,L,4), refs (n*R,L,4), others) -> (hypothetical (n,L,4) averaged over
    references, per-position summed contributions (n,L), t_x (n,), t_ref (n*R,))."""
    tf = _tf()
    _register_gradients()
    seq_sig, others_sig = _signature(spec)

    @tf.function(input_signature=[seq_sig, seq_sig, others_sig], autograph=False)
    def fn(x, refs, others):
        _LAYOUT.r = r
        _LAYOUT.fuse = fuse
        graph = tf.compat.v1.get_default_graph()
        start = len(graph.get_operations())
        head_x, kind = select_head(_call_model(model, spec, x, others), output, logits)
        middle = len(graph.get_operations())
        other_refs = {k: tf.repeat(v, r, axis=0) for k, v in others.items()}
        with graph.gradient_override_map(_OVERRIDE):
            head_r, _ = select_head(_call_model(model, spec, refs, other_refs), output, logits)
            ops = graph.get_operations()
            _LAYOUT.partner = _pair_ops(ops[start:middle], ops[middle:])
            _LAYOUT.dependent = check_supported_ops(refs, head_r)
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

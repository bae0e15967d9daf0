r"""Attention layers of the Enformer architecture and their exactly RC-equivariant versions.

Written with ``keras.ops`` only, registered, every weight's initializer / regularizer /
constraint in ``get_config``. Notation: a regular map h (L, 2F) has RC(h) = R h J (R reverses
positions, J reverses the channel order); one-hot DNA is regular with F = 2.

Standard layers (Avsec et al., Nat Methods 2021):

* :class:`AttentionPooling1D` ("softmax pooling"): windows of ``pool_size`` positions; per
  channel c, out[i, c] = sum_t softmax_t(l[i p + t, c]) h[i p + t, c] with logits l = h W,
  W (C, C) initialised to 2 I.
* :class:`RelativeMultiHeadAttention`: H heads, queries / keys / values q = h W_q, k = h W_k,
  v = h W_v (no bias), q scaled by key_size^-1/2; logits of head j
  a_j[p, p'] = (q_j[p] + u_j) . k_j[p'] + (q_j[p] + w_j) . W_{r,j}^T phi(p' - p); softmax over
  p', out = concat_j(A_j v_j) W_o + b_o. phi(d) are the relative position features
  (:func:`relative_position_features`): for each of the three basis families (exponential decay,
  central mask, gamma pdf) n functions of |d| (symmetric in d), then the same multiplied by
  sign(d) (odd in d): phi(-d) = S phi(d), S = diag(+1 symmetric, -1 odd).

RC-shared versions (regular map in, regular map out; f(RC h) = RC f(h) exactly, i.e. the same
products summed in another order):

* :class:`RevCompAttentionPooling1D`: logits from an RC-shared pointwise map, W_full = [W, J W J]
  so that l(R h J) = R l(h) J; the windows tile the length (L % pool == 0), so reversal maps
  window i to window L/p - 1 - i with the positions inside reversed, under which the softmax
  over a window is unchanged: out(RC h) = RC out(h).
* :class:`RevCompLayerNorm`: per-position statistics over all channels (invariant to J), scale and
  offset [g, reversed g], [b, reversed b].
* :class:`RevCompMultiHeadAttention`: ``heads`` = H free heads give 2H heads. W_q, W_k, W_v are
  RC-shared pointwise maps (2F -> 2H d), so the full query map of head 2H-1-j for RC(h) is
  J_d q_j reversed in position: RC maps head j to head 2H-1-j. Content term: J q . J k = q . k,
  so a_{2H-1-j}(RC h)[p, p'] = a_j(h)[L-1-p, L-1-p'] when the content biases are tied
  u_{2H-1-j} = J u_j. Position term: (L-1-p') - (L-1-p) = -(p' - p), so the tie must be
  W_{r,2H-1-j} = S W_{r,j} J (and w_{2H-1-j} = J w_j): (J q + J w) . J W_{r,j}^T S phi(d)
  = (q + w) . W_{r,j}^T phi(-d). That is, the symmetric position features pair with the channel
  flip and the sign-odd ones with the flip and a sign change. The attention matrices are then
  A_{2H-1-j}(RC h) = R A_j(h) R, so the concatenated head outputs form a regular map
  (head j's values v_j -> J v_j reversed), and the output projection W_o is RC-shared pointwise
  (bias [b, reversed b]). ``symmetric_positions=True`` keeps only the symmetric features (S = I;
  the positional term cannot tell upstream from downstream within a head).
* :class:`StrandSymmetricDense` (unstranded track head: kernel [W; reversed W] over channels, so
  y(R h J) = R y(h)) and :class:`StrandPairDense` (stranded pairs: + strand h W, - strand h J W,
  interleaved (+1, -1, +2, -2, ...), so RC reverses the bins and swaps each pair).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from benchmark_rc.layers._weights import WeightGroupsLayer
from benchmark_rc.layers._weights import add_group_weight as _add
from benchmark_rc.layers.rcps import PACKAGE, RCGeometryError, _check_even_channels

POSITION_FUNCTIONS = ("exponential", "central_mask", "gamma")


# ----------------------------------------------------------------------------- position features


def _exponential(distance: np.ndarray, n: int, length: int, min_half_life: float = 3.0):
    max_range = math.log(length) / math.log(2.0)
    half_life = 2.0 ** np.linspace(min_half_life, max_range, n)
    return np.exp(-math.log(2.0) / half_life[None, :] * distance[:, None])


def _central_mask(distance: np.ndarray, n: int, length: int):
    widths = 2.0 ** np.arange(1, n + 1, dtype=np.float64) - 1.0
    return (widths[None, :] > distance[:, None]).astype(np.float64)


def _gamma(distance: np.ndarray, n: int, length: int):
    from scipy.special import gammaln, xlogy

    stddev = length / (2.0 * n)
    mean = np.linspace(length / n, length, n)
    concentration = (mean / stddev) ** 2
    rate = mean / stddev**2
    log_prob = (xlogy(concentration[None, :] - 1.0, distance[:, None])
                - rate[None, :] * distance[:, None]
                - (gammaln(concentration) - concentration * np.log(rate))[None, :])
    prob = np.exp(log_prob) + 1e-8
    return prob / prob.max(axis=1, keepdims=True)


def relative_position_features(length: int, num_features: int,
                               symmetric: bool = False) -> np.ndarray:
    """Enformer's relative position features phi(d) for d = -(L-1) .. L-1: (2L-1, P) float32.

    P = ``num_features`` is split evenly among the exponential, central-mask and gamma families
    (each a function of |d|, Enformer's parameters); unless ``symmetric``, the second half of the
    features is the first half times sign(d). P must be a multiple of 6 (3 when symmetric).
    """
    parts = 3 if symmetric else 6
    if num_features < parts or num_features % parts:
        raise ValueError(f"position_features must be a positive multiple of {parts} "
                         f"({'symmetric' if symmetric else 'symmetric + sign-odd'} copies of 3 "
                         f"basis families), got {num_features}")
    n = num_features // parts
    d = np.arange(-(length - 1), length, dtype=np.float64)
    a = np.abs(d)
    feats = np.concatenate([f(a, n, length) for f in (_exponential, _central_mask, _gamma)], -1)
    if not symmetric:
        feats = np.concatenate([feats, np.sign(d)[:, None] * feats], axis=-1)
    return feats.astype(np.float32)


def position_signs(num_features: int, symmetric: bool) -> np.ndarray:
    """S: +1 for the symmetric features, -1 for the sign-odd ones (phi(-d) = S phi(d))."""
    if symmetric:
        return np.ones(num_features, np.float32)
    half = num_features // 2
    return np.concatenate([np.ones(half), -np.ones(half)]).astype(np.float32)


# ----------------------------------------------------------------------------- helpers


def _rc_pointwise(kernel: Any) -> Any:
    """(C_in, n) free kernel -> (C_in, 2n) RC-shared pointwise kernel [W, J W J]."""
    return ops.concatenate([kernel, ops.flip(ops.flip(kernel, axis=0), axis=1)], axis=-1)


def _mirror(vector: Any) -> Any:
    """(n,) -> (2n,) [v, reversed v] (an RC-shared bias)."""
    return ops.concatenate([vector, ops.flip(vector, axis=0)], axis=0)


def _check_pool(length: int | None, pool_size: int, layer: str) -> None:
    if length is not None and length % pool_size:
        raise RCGeometryError(f"{layer}: input length {length} is not a multiple of pool_size "
                              f"{pool_size} (the windows must tile the input)")


# ----------------------------------------------------------------------------- attention pooling


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentionPooling1D(WeightGroupsLayer):
    """Enformer's softmax pooling: (B, L, C) -> (B, L / pool_size, C), per-channel softmax
    weights over each window from logits h W, W (C, C) initialised to ``w_init_scale`` I."""

    weight_groups = ("kernel",)

    def __init__(self, pool_size: int = 2, w_init_scale: float = 2.0, **kwargs: Any) -> None:
        super().__init__({"kernel": keras.initializers.Identity(gain=float(w_init_scale))},
                         **kwargs)
        self.pool_size = int(pool_size)
        self.w_init_scale = float(w_init_scale)
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")

    def _kernel_shape(self, channels: int) -> tuple[int, int]:
        return (channels, channels)

    def build(self, input_shape: tuple) -> None:
        _check_pool(input_shape[1], self.pool_size, type(self).__name__)
        self.kernel = _add(self, "kernel", self._kernel_shape(int(input_shape[-1])), "kernel")

    def full_kernel(self) -> Any:
        return self.kernel

    def logit_features(self, inputs: Any) -> Any:
        """The map the logits are a linear function of (here the input itself)."""
        return inputs

    def call(self, inputs: Any) -> Any:
        length, channels = int(inputs.shape[1]), int(inputs.shape[-1])
        _check_pool(length, self.pool_size, type(self).__name__)
        logits = ops.matmul(self.logit_features(inputs),
                            ops.cast(self.full_kernel(), inputs.dtype))
        shape = (-1, length // self.pool_size, self.pool_size, channels)
        weights = ops.softmax(ops.reshape(logits, shape), axis=2)
        return ops.sum(ops.reshape(inputs, shape) * weights, axis=2)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        length = None if input_shape[1] is None else input_shape[1] // self.pool_size
        return (input_shape[0], length, input_shape[-1])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"pool_size": self.pool_size, "w_init_scale": self.w_init_scale})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class RevCompAttentionPooling1D(AttentionPooling1D):
    """RC-tied softmax pooling of a regular map (B, L, 2F) -> (B, L / pool_size, 2F): the logit
    kernel is RC-shared, [W, J W J] with W (2F, F) (initialised to ``w_init_scale`` times the
    first F columns of I, so the full kernel starts at ``w_init_scale`` I)."""

    def _kernel_shape(self, channels: int) -> tuple[int, int]:
        return (channels, _check_even_channels(channels, type(self).__name__))

    def full_kernel(self) -> Any:
        return _rc_pointwise(self.kernel)


# ----------------------------------------------------------------------------- layer norm


@keras.saving.register_keras_serializable(package=PACKAGE)
class RevCompLayerNorm(WeightGroupsLayer):
    """Layer normalisation of a regular map (B, L, 2F) over its channels, with RC-tied scale
    [g, reversed g] and offset [b, reversed b] (the statistics over all channels are already
    invariant to the channel flip)."""

    weight_groups = ("gamma", "beta")

    def __init__(self, epsilon: float = 1e-5, **kwargs: Any) -> None:
        super().__init__({"gamma": "ones", "beta": "zeros"}, **kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape: tuple) -> None:
        half = _check_even_channels(input_shape[-1], "RevCompLayerNorm")
        self.gamma = _add(self, "gamma", (half,), "gamma")
        self.beta = _add(self, "beta", (half,), "beta")

    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, "float32")
        mean = ops.mean(x, axis=-1, keepdims=True)
        var = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
        y = (x - mean) * ops.rsqrt(var + self.epsilon)
        y = y * _mirror(ops.cast(self.gamma, "float32")) + _mirror(ops.cast(self.beta, "float32"))
        return ops.cast(y, inputs.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config


# ----------------------------------------------------------------------------- attention


@keras.saving.register_keras_serializable(package=PACKAGE)
class RelativeMultiHeadAttention(WeightGroupsLayer):
    """Self-attention with Enformer's relative positional encodings: (B, L, C) -> (B, L, units).

    Args:
        heads: number of heads H.
        key_size: query / key width per head.
        value_size: value width per head.
        units: output channels (the output projection W_o, b_o; Enformer initialises W_o to 0
            so each residual block starts as the identity: ``output_initializer="zeros"``).
        position_features: P, the number of relative position features (a multiple of 6, or of
            3 with ``symmetric_positions``).
        symmetric_positions: only the features symmetric in distance (no sign-odd copies).
        attention_dropout: dropout on the attention weights (training only).
    """

    weight_groups = ("kernel", "position", "bias", "output", "output_bias")

    def __init__(self, heads: int, key_size: int, value_size: int, units: int,
                 position_features: int = 6, symmetric_positions: bool = False,
                 attention_dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__({"kernel": "glorot_uniform", "position": "glorot_uniform",
                          "bias": keras.initializers.RandomNormal(stddev=0.1),
                          "output": "glorot_uniform", "output_bias": "zeros"}, **kwargs)
        self.heads = int(heads)
        self.key_size = int(key_size)
        self.value_size = int(value_size)
        self.units = int(units)
        self.position_features = int(position_features)
        self.symmetric_positions = bool(symmetric_positions)
        self.attention_dropout = float(attention_dropout)
        if min(self.heads, self.key_size, self.value_size, self.units) < 1:
            raise ValueError("heads, key_size, value_size and units must be >= 1")
        relative_position_features(2, self.position_features, self.symmetric_positions)  # check
        self.dropout = keras.layers.Dropout(self.attention_dropout)

    # the number of heads the computation runs, and the free-weight widths (the RC layer halves)
    @property
    def total_heads(self) -> int:
        return self.heads

    def _in_channels(self, channels: int) -> int:
        return channels

    def build(self, input_shape: tuple) -> None:
        length, channels = input_shape[1], input_shape[-1]
        if length is None or channels is None:
            raise ValueError(f"{type(self).__name__} needs a known length and channel count")
        self._in_channels(int(channels))  # checks
        self.build_weights(int(channels))
        length = int(length)
        self._features = relative_position_features(length, self.position_features,
                                                    self.symmetric_positions)
        # flat index into the (L, 2L-1) relative logits of distance p' - p for (p, p')
        p = np.arange(length)
        self._shift = (p[:, None] * (2 * length - 1) + (p[None, :] - p[:, None] + length - 1))

    def build_weights(self, c: int) -> None:
        """The free weights for an input of ``c`` channels (subclasses store other blocks and
        derive :meth:`full_weights` from them)."""
        hk, hv = self.heads * self.key_size, self.heads * self.value_size
        self.query_kernel = _add(self, "query_kernel", (c, hk), "kernel")
        self.key_kernel = _add(self, "key_kernel", (c, hk), "kernel")
        self.value_kernel = _add(self, "value_kernel", (c, hv), "kernel")
        self.position_kernel = _add(self, "position_kernel", (self.position_features, hk),
                                    "position")
        self.content_bias = _add(self, "content_bias", (hk,), "bias")
        self.position_bias = _add(self, "position_bias", (hk,), "bias")
        out_in = self.total_heads * self.value_size
        self.output_kernel = _add(self, "output_kernel", (out_in, self.units), "output")
        self.output_bias = _add(self, "output_bias", (self.units,), "output_bias")

    def full_weights(self) -> dict[str, Any]:
        """The weights of all :attr:`total_heads` heads (the RC layer derives them)."""
        return {"query": self.query_kernel, "key": self.key_kernel, "value": self.value_kernel,
                "position": self.position_kernel, "content_bias": self.content_bias,
                "position_bias": self.position_bias, "output": self.output_kernel,
                "output_bias": self.output_bias}

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        w = {k: ops.cast(v, inputs.dtype) for k, v in self.full_weights().items()}
        length = int(inputs.shape[1])
        heads, dk, dv = self.total_heads, self.key_size, self.value_size

        def split(t: Any, size: int) -> Any:  # (B, L, heads * size) -> (B, heads, L, size)
            return ops.transpose(ops.reshape(t, (-1, length, heads, size)), (0, 2, 1, 3))

        q = split(ops.matmul(inputs, w["query"]), dk) * (dk**-0.5)
        k = split(ops.matmul(inputs, w["key"]), dk)
        v = split(ops.matmul(inputs, w["value"]), dv)
        u = ops.reshape(w["content_bias"], (1, heads, 1, dk))
        r_bias = ops.reshape(w["position_bias"], (1, heads, 1, dk))
        content = ops.einsum("bhid,bhjd->bhij", q + u, k)
        # relative keys: (2L-1, P) features x (P, heads * dk) -> (heads, 2L-1, dk)
        r = ops.matmul(ops.cast(self._features, inputs.dtype), w["position"])
        r = ops.transpose(ops.reshape(r, (2 * length - 1, heads, dk)), (1, 0, 2))
        relative = ops.einsum("bhid,hmd->bhim", q + r_bias, r)  # (B, heads, L, 2L-1)
        relative = ops.take(ops.reshape(relative, (-1, heads, length * (2 * length - 1))),
                            self._shift, axis=-1)  # (B, heads, L, L), distance p' - p
        attention = ops.softmax(content + relative, axis=-1)
        attention = self.dropout(attention, training=training)
        out = ops.einsum("bhij,bhjd->bhid", attention, v)
        out = ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (-1, length, heads * dv))
        return ops.matmul(out, w["output"]) + w["output_bias"]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], input_shape[1], self._out_channels())

    def _out_channels(self) -> int:
        return self.units

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"heads": self.heads, "key_size": self.key_size,
                       "value_size": self.value_size, "units": self.units,
                       "position_features": self.position_features,
                       "symmetric_positions": self.symmetric_positions,
                       "attention_dropout": self.attention_dropout})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class RevCompMultiHeadAttention(RelativeMultiHeadAttention):
    """RC-equivariant :class:`RelativeMultiHeadAttention` of a regular map (B, L, 2F) ->
    (B, L, 2 units): ``heads`` free heads give 2 ``heads`` heads, head j and head 2H-1-j RC
    partners (module docstring). Free weights: W_q, W_k (2F, H dk), W_v (2F, H dv), W_r
    (P, H dk), biases (H dk), W_o (2H dv, units), b_o (units); the partners' weights are
    derived: [W, J W J] for the pointwise maps, [u, reversed u] for the biases, and
    [W_r, (S W_r) with columns reversed] for the position projection."""

    @property
    def total_heads(self) -> int:
        return 2 * self.heads

    def _in_channels(self, channels: int) -> int:
        return 2 * _check_even_channels(channels, type(self).__name__)

    def full_weights(self) -> dict[str, Any]:
        signs = ops.convert_to_tensor(
            position_signs(self.position_features, self.symmetric_positions)[:, None])
        position = ops.concatenate(
            [self.position_kernel, ops.flip(self.position_kernel * signs, axis=1)], axis=-1)
        return {"query": _rc_pointwise(self.query_kernel),
                "key": _rc_pointwise(self.key_kernel),
                "value": _rc_pointwise(self.value_kernel),
                "position": position,
                "content_bias": _mirror(self.content_bias),
                "position_bias": _mirror(self.position_bias),
                "output": _rc_pointwise(self.output_kernel),
                "output_bias": _mirror(self.output_bias)}

    def _out_channels(self) -> int:
        return 2 * self.units


# ----------------------------------------------------------------------------- track heads


class _TrackHead(WeightGroupsLayer):
    """Shared arguments of the RC track heads: ``size`` outputs (named by ``_size_name`` in
    the config), an activation, and a kernel and bias with their initializer / regularizer /
    constraint options."""

    weight_groups = ("kernel", "bias")
    _size_name = "units"

    def __init__(self, size: int, activation: Any = None, **kwargs: Any) -> None:
        super().__init__({"kernel": "glorot_uniform", "bias": "zeros"}, **kwargs)
        setattr(self, self._size_name, int(size))
        self.activation = keras.activations.get(activation)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({self._size_name: getattr(self, self._size_name),
                       "activation": keras.activations.serialize(self.activation)})
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class StrandSymmetricDense(_TrackHead):
    """Pointwise map of a regular map (B, L, 2F) -> (B, L, units) invariant to the channel flip:
    kernel [W; reversed W] (W (F, units)) and bias b; y(RC h) = y(h) reversed along length
    (the RC rule of unstranded tracks)."""

    def __init__(self, units: int, activation: Any = None, **kwargs: Any) -> None:
        super().__init__(units, activation, **kwargs)

    def build(self, input_shape: tuple) -> None:
        half = _check_even_channels(input_shape[-1], type(self).__name__)
        self.kernel = _add(self, "kernel", (half, self.units), "kernel")
        self.bias = _add(self, "bias", (self.units,), "bias")

    def call(self, inputs: Any) -> Any:
        kernel = ops.concatenate([self.kernel, ops.flip(self.kernel, axis=0)], axis=0)
        return self.activation(ops.matmul(inputs, ops.cast(kernel, inputs.dtype)) + self.bias)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], self.units)


@keras.saving.register_keras_serializable(package=PACKAGE)
class StrandPairDense(_TrackHead):
    """Pointwise map of a regular map (B, L, 2F) -> (B, L, 2 pairs), channels (+1, -1, +2, -2,
    ...): + strand h W + b, - strand h J W + b (W (2F, pairs), b (pairs)); y(RC h) = y(h) with
    the bins reversed and each pair's strands swapped (the RC rule of stranded track pairs)."""

    _size_name = "pairs"

    def __init__(self, pairs: int, activation: Any = None, **kwargs: Any) -> None:
        super().__init__(pairs, activation, **kwargs)

    def build(self, input_shape: tuple) -> None:
        _check_even_channels(input_shape[-1], type(self).__name__)
        self.kernel = _add(self, "kernel", (int(input_shape[-1]), self.pairs), "kernel")
        self.bias = _add(self, "bias", (self.pairs,), "bias")

    def call(self, inputs: Any) -> Any:
        kernel = ops.cast(self.kernel, inputs.dtype)
        plus = ops.matmul(inputs, kernel) + self.bias
        minus = ops.matmul(inputs, ops.flip(kernel, axis=0)) + self.bias
        stacked = ops.stack([plus, minus], axis=-1)  # (..., pairs, 2)
        out = ops.reshape(stacked, (-1, *inputs.shape[1:-1], 2 * self.pairs))
        return self.activation(out)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], 2 * self.pairs)

r"""Enformer's attention layers on irreducible-representation maps (registered, ``keras.ops`` only).

An irrep map h (B, L, a + b) has a channels of type +1 and b of type -1:
RC(h) = [R h_a, -R h_b] (R reverses positions; :mod:`benchmark_rc.layers.irrep`). A function of
such a map is RC-equivariant when everything it computes is built from invariant quantities
(h_a, even functions of h_b, products of two -1 quantities) and -1 quantities enter only linearly
or through odd functions:

* :class:`IrrepAttentionPooling1D`: Enformer's softmax pooling with logits
  l = [h_a, |h_b|] W (W (C, C), initialised to 2 I as in Enformer): the logits are invariant,
  so every channel's window weights are, and out = sum_t w_t h_t is of the type of h. The
  windows tile the length, so RC maps window i to window L/p - 1 - i with its positions
  reversed, under which a softmax over the window is unchanged.
* :class:`IrrepLayerNorm`: per position, the a channels are centred on their mean (b channels
  never: their mean is a -1 quantity), and every channel is divided by the root mean square of
  [centred h_a, h_b], which is invariant; scale g on every channel, offset on a channels only.
* :class:`IrrepMultiHeadAttention`: :class:`~benchmark_rc.layers.RelativeMultiHeadAttention`
  whose queries, keys and values are irrep maps too: each head's key width splits into
  ``key_a`` +1 and key_size - key_a -1 channels (values likewise), a-parts computed from h_a only
  and b-parts from h_b only (the equivariant pointwise maps). The content logit q . k =
  q_a . k_a + q_b . k_b is then invariant. The position term (q + w) . r(p' - p) is invariant
  when the a-part of r is even in the distance and its b-part odd, since RC negates the
  distance: r_a is a projection of the symmetric position features, r_b of the sign-odd ones
  (none with ``symmetric_positions``, where r_b = 0). Biases (content u, position w, output b_o)
  exist on a-parts only. The attention matrices of RC(h) are then R A(h) R, so the head
  outputs and the pointwise output projection (a-to-a and b-to-b blocks) are irrep maps.
  The layer assembles block-structured full weights (zeros between a and b) and runs the
  parent's computation: the same code path, at up to twice the projection FLOPs of the free
  blocks.
* :class:`IrrepTrackDense` (unstranded tracks, RC reverses the bins: act(h_a W + c)) and
  :class:`IrrepStrandPairDense` (stranded (+, -) pairs, RC reverses the bins and swaps each pair:
  + = h_a W_a + h_b W_b + c, - = h_a W_a - h_b W_b + c, interleaved (+1, -1, +2, -2, ...)).
  Both are every linear equivariant map of their kind.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from benchmark_rc.layers._weights import WeightGroupsLayer
from benchmark_rc.layers._weights import add_group_weight as _add
from benchmark_rc.layers.attention import (
    AttentionPooling1D,
    RelativeMultiHeadAttention,
    _TrackHead,
    position_signs,
)
from benchmark_rc.layers.irrep import _check_irrep_split
from benchmark_rc.layers.rcps import PACKAGE, RCGeometryError


def _check_part(part: int, size: int, what: str, layer: str) -> int:
    """``part`` +1 channels of a width ``size`` (0 <= part <= size), as an int."""
    if not 0 <= int(part) <= int(size):
        raise RCGeometryError(f"{layer}: {what}={part} must lie in [0, {size}]")
    return int(part)


def _split_channels(x: Any, a: int) -> tuple[Any, Any]:
    return x[..., :a], x[..., a:]


@keras.saving.register_keras_serializable(package=PACKAGE)
class IrrepAttentionPooling1D(AttentionPooling1D):
    """Softmax pooling of an irrep map (B, L, a + b) -> (B, L / pool_size, a + b) with invariant
    logits [h_a, |h_b|] W (module docstring); W (C, C) starts at ``w_init_scale`` I, so each
    channel starts by weighting its window by its own value (a) or magnitude (b)."""

    def __init__(self, a: int, pool_size: int = 2, w_init_scale: float = 2.0,
                 **kwargs: Any) -> None:
        super().__init__(pool_size, w_init_scale, **kwargs)
        self.a = int(a)

    def _kernel_shape(self, channels: int) -> tuple[int, int]:
        _check_irrep_split(self.a, channels, type(self).__name__)
        return (channels, channels)

    def logit_features(self, inputs: Any) -> Any:
        h_a, h_b = _split_channels(inputs, self.a)
        return ops.concatenate([h_a, ops.abs(h_b)], axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "a": self.a}


@keras.saving.register_keras_serializable(package=PACKAGE)
class IrrepLayerNorm(WeightGroupsLayer):
    """Layer normalisation of an irrep map (B, L, a + b) over its channels (module docstring):
    y_a = (h_a - mean(h_a)) / s * g_a + beta, y_b = h_b / s * g_b, with
    s = sqrt(mean([h_a - mean(h_a), h_b]^2) + epsilon). The same in training and inference."""

    weight_groups = ("gamma", "beta")

    def __init__(self, a: int, epsilon: float = 1e-5, **kwargs: Any) -> None:
        super().__init__({"gamma": "ones", "beta": "zeros"}, **kwargs)
        self.a = int(a)
        self.epsilon = float(epsilon)

    def build(self, input_shape: tuple) -> None:
        channels = int(input_shape[-1])
        _check_irrep_split(self.a, channels, type(self).__name__)
        self.gamma = _add(self, "gamma", (channels,), "gamma")
        self.beta = _add(self, "beta", (self.a,), "beta")

    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, "float32")
        h_a, h_b = _split_channels(x, self.a)
        if self.a:
            h_a = h_a - ops.mean(h_a, axis=-1, keepdims=True)
        centred = ops.concatenate([h_a, h_b], axis=-1)
        y = centred * ops.rsqrt(ops.mean(ops.square(centred), axis=-1, keepdims=True)
                                + self.epsilon)
        y = y * ops.cast(self.gamma, "float32")
        offset = ops.concatenate([ops.cast(self.beta, "float32"),
                                  ops.zeros((int(x.shape[-1]) - self.a,), "float32")], axis=0)
        return ops.cast(y + offset, inputs.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "a": self.a, "epsilon": self.epsilon}


def _head_blocks(block_a: Any, block_b: Any, heads: int) -> Any:
    """Free blocks -> a full (rows, heads * (d_a + d_b)) kernel whose head j has its d_a +1 columns
    from ``block_a`` (on the first rows) and its d_b -1 columns from ``block_b`` (on the last
    rows), zeros elsewhere. block_a (r_a, heads * d_a), block_b (r_b, heads * d_b)."""
    r_a, r_b = int(block_a.shape[0]), int(block_b.shape[0])
    d_a, d_b = int(block_a.shape[1]) // heads, int(block_b.shape[1]) // heads
    dtype = block_a.dtype
    part_a = ops.concatenate([block_a, ops.zeros((r_b, heads * d_a), dtype)], axis=0)
    part_b = ops.concatenate([ops.zeros((r_a, heads * d_b), dtype), block_b], axis=0)
    full = ops.concatenate([ops.reshape(part_a, (r_a + r_b, heads, d_a)),
                            ops.reshape(part_b, (r_a + r_b, heads, d_b))], axis=-1)
    return ops.reshape(full, (r_a + r_b, heads * (d_a + d_b)))


@keras.saving.register_keras_serializable(package=PACKAGE)
class IrrepMultiHeadAttention(RelativeMultiHeadAttention):
    """RC-equivariant relative-position self-attention of an irrep map (B, L, a + b) ->
    (B, L, units) with ``units_a`` +1 output channels (module docstring).

    Args (besides :class:`~benchmark_rc.layers.RelativeMultiHeadAttention`'s):
        a: +1 channels of the input.
        key_a: +1 channels of each head's queries and keys (of ``key_size``).
        value_a: +1 channels of each head's values (of ``value_size``).
        units_a: +1 channels of the output (of ``units``).

    Free weights: query / key / value blocks a->a (a, heads * key_a or value_a) and b->b; the
    position projection of the symmetric features to the a-parts and of the sign-odd ones to the
    b-parts; content and position biases of the a-parts (heads * key_a); output blocks a->a,
    b->b and the output bias of the a channels.
    """

    def __init__(self, heads: int, key_size: int, value_size: int, units: int, *, a: int,
                 key_a: int, value_a: int, units_a: int, **kwargs: Any) -> None:
        super().__init__(heads, key_size, value_size, units, **kwargs)
        layer = type(self).__name__
        self.a = int(a)
        self.key_a = _check_part(key_a, self.key_size, "key_a", layer)
        self.value_a = _check_part(value_a, self.value_size, "value_a", layer)
        self.units_a = _check_part(units_a, self.units, "units_a", layer)

    def build_weights(self, c: int) -> None:
        b = _check_irrep_split(self.a, c, type(self).__name__)
        h = self.heads
        key_b, value_b = self.key_size - self.key_a, self.value_size - self.value_a
        signs = position_signs(self.position_features, self.symmetric_positions)
        n_odd = int((signs < 0).sum())
        n_sym = self.position_features - n_odd
        shapes = {"query": (h * self.key_a, h * key_b), "key": (h * self.key_a, h * key_b),
                  "value": (h * self.value_a, h * value_b)}
        for name, (width_a, width_b) in shapes.items():
            setattr(self, f"{name}_kernel_a", _add(self, f"{name}_kernel_a", (self.a, width_a),
                                                   "kernel"))
            setattr(self, f"{name}_kernel_b", _add(self, f"{name}_kernel_b", (b, width_b),
                                                   "kernel"))
        self.position_kernel_a = _add(self, "position_kernel_a", (n_sym, h * self.key_a),
                                      "position")
        self.position_kernel_b = _add(self, "position_kernel_b", (n_odd, h * key_b), "position")
        self.content_bias = _add(self, "content_bias", (h * self.key_a,), "bias")
        self.position_bias = _add(self, "position_bias", (h * self.key_a,), "bias")
        self.output_kernel_a = _add(self, "output_kernel_a", (h * self.value_a, self.units_a),
                                    "output")
        self.output_kernel_b = _add(self, "output_kernel_b",
                                    (h * value_b, self.units - self.units_a), "output")
        self.output_bias = _add(self, "output_bias", (self.units_a,), "output_bias")

    def _a_part_bias(self, bias: Any) -> Any:
        """(heads * key_a,) -> (heads * key_size,) with zeros on each head's -1 part."""
        h, key_b = self.heads, self.key_size - self.key_a
        full = ops.concatenate([ops.reshape(bias, (h, self.key_a)),
                                ops.zeros((h, key_b), bias.dtype)], axis=-1)
        return ops.reshape(full, (h * self.key_size,))

    def full_weights(self) -> dict[str, Any]:
        h = self.heads
        value_b = self.value_size - self.value_a
        units_b = self.units - self.units_a
        # output rows are head-major (head j: value_a then value_b rows), columns [a | b]
        out_a = ops.reshape(self.output_kernel_a, (h, self.value_a, self.units_a))
        out_b = ops.reshape(self.output_kernel_b, (h, value_b, units_b))
        dtype = out_a.dtype
        out_a = ops.concatenate([out_a, ops.zeros((h, self.value_a, units_b), dtype)], axis=-1)
        out_b = ops.concatenate([ops.zeros((h, value_b, self.units_a), dtype), out_b], axis=-1)
        output = ops.reshape(ops.concatenate([out_a, out_b], axis=1), (h * self.value_size,
                                                                       self.units))
        return {
            "query": _head_blocks(self.query_kernel_a, self.query_kernel_b, h),
            "key": _head_blocks(self.key_kernel_a, self.key_kernel_b, h),
            "value": _head_blocks(self.value_kernel_a, self.value_kernel_b, h),
            # the symmetric features come first in relative_position_features
            "position": _head_blocks(self.position_kernel_a, self.position_kernel_b, h),
            "content_bias": self._a_part_bias(self.content_bias),
            "position_bias": self._a_part_bias(self.position_bias),
            "output": output,
            "output_bias": ops.concatenate([self.output_bias, ops.zeros((units_b,), dtype)], 0),
        }

    def get_config(self) -> dict:
        return {**super().get_config(), "a": self.a, "key_a": self.key_a,
                "value_a": self.value_a, "units_a": self.units_a}


class _IrrepTrackHead(_TrackHead):
    """A track head reading an irrep map with ``a`` +1 channels."""

    def __init__(self, size: int, a: int, activation: Any = None, **kwargs: Any) -> None:
        super().__init__(size, activation, **kwargs)
        self.a = int(a)

    def get_config(self) -> dict:
        return {**super().get_config(), "a": self.a}


@keras.saving.register_keras_serializable(package=PACKAGE)
class IrrepTrackDense(_IrrepTrackHead):
    """(B, L, a + b) -> (B, L, units) = act(h_a W + c): invariant per bin, so RC(h) gives the
    tracks with the bins reversed (the RC rule of unstranded tracks)."""

    def __init__(self, units: int, a: int, activation: Any = None, **kwargs: Any) -> None:
        super().__init__(units, a, activation, **kwargs)

    def build(self, input_shape: tuple) -> None:
        _check_irrep_split(self.a, input_shape[-1], type(self).__name__)
        self.kernel = _add(self, "kernel", (self.a, self.units), "kernel")
        self.bias = _add(self, "bias", (self.units,), "bias")

    def call(self, inputs: Any) -> Any:
        h_a = inputs[..., : self.a]
        return self.activation(ops.matmul(h_a, ops.cast(self.kernel, inputs.dtype)) + self.bias)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], self.units)


@keras.saving.register_keras_serializable(package=PACKAGE)
class IrrepStrandPairDense(_IrrepTrackHead):
    """(B, L, a + b) -> (B, L, 2 pairs), channels (+1, -1, +2, -2, ...): + strand
    h_a W_a + h_b W_b + c, - strand h_a W_a - h_b W_b + c (W (a + b, pairs)); RC(h) gives the
    bins reversed and each pair's strands swapped (the RC rule of stranded track pairs)."""

    _size_name = "pairs"

    def __init__(self, pairs: int, a: int, activation: Any = None, **kwargs: Any) -> None:
        super().__init__(pairs, a, activation, **kwargs)

    def build(self, input_shape: tuple) -> None:
        _check_irrep_split(self.a, input_shape[-1], type(self).__name__)
        self.kernel = _add(self, "kernel", (int(input_shape[-1]), self.pairs), "kernel")
        self.bias = _add(self, "bias", (self.pairs,), "bias")

    def call(self, inputs: Any) -> Any:
        kernel = ops.cast(self.kernel, inputs.dtype)
        h_a, h_b = _split_channels(inputs, self.a)
        even = ops.matmul(h_a, kernel[: self.a]) + self.bias
        odd = ops.matmul(h_b, kernel[self.a:])
        stacked = ops.stack([even + odd, even - odd], axis=-1)  # (..., pairs, 2)
        return self.activation(ops.reshape(stacked, (-1, *inputs.shape[1:-1], 2 * self.pairs)))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], 2 * self.pairs)

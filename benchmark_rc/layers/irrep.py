"""Irreducible-representation RC-equivariant layers (Mallet & Vert, NeurIPS 2021), ``keras.ops`` only.

Representations of a feature map h (B, L, C) under reverse complement (../shared/DESIGN.md):

* **regular**: C = 2r channels, RC(h) = h reversed along length AND channels (one-hot ACGT is
  regular with r = 2; the layout of :class:`~benchmark_rc.layers.RevCompConv1D`).
* **irrep (a, b)**: a channels of type +1 followed by b = C - a channels of type -1;
  RC(h) = [reverse_length(h_a), -reverse_length(h_b)].

Every linear RC-equivariant map between such maps is a convolution whose kernel K (k, C_in, C_out)
is a fixed point of the involution

    S(K)[t] = R_in K[k-1-t] R_out,

with R the channel action of the representation (the channel reversal J for regular maps, the
sign matrix D = diag(1_a, -1_b) for irreps). The convolutions here store a free "half" kernel and
derive the full kernel from that rule in ``call`` (as RevCompConv1D derives its RC kernel), then run
ONE convolution:

* taps 0 .. floor(k/2)-1 (the left half) are free; tap k-1-t is S applied to tap t;
* for odd k the centre tap c must satisfy K[c] = R_in K[c] R_out; it is parametrised by a basis of
  that fixed-point space (see each layer), so no parameter is redundant.

The parameter count therefore equals dim{K : S(K) = K} = (k C_in C_out + tr S) / 2 and the map from
free weights to K is injective: the layers span exactly the space of equivariant kernels (the
tests check both numerically). RegToReg is :class:`~benchmark_rc.layers.RevCompConv1D`.

Layers: :class:`RegToIrrepConv1D`, :class:`IrrepToIrrepConv1D`, :class:`IrrepToRegConv1D`
(no bias: a bias breaks -1 channels), :class:`IrrepActivation`, :class:`IrrepBatchNorm`,
:class:`IrrepConcatenate` (strand merge), :class:`KmerEmbedding` (fixed k-mer one-hot, regular).
"""

from __future__ import annotations

import itertools
from typing import Any

import keras
import numpy as np
from keras import ops

from benchmark_rc.layers._weights import set_weight_options, weight_config
from benchmark_rc.layers.rcps import (
    PACKAGE,
    RCBatchNormalization,
    RCGeometryError,
    _as_int,
    _check_even_channels,
    check_rc_geometry,
)

ODD_ACTIVATIONS = ("tanh", "softsign", "linear")


def _irrep_signs(a: int, channels: int) -> np.ndarray:
    """(channels,) float32 [+1]*a + [-1]*(channels - a): the RC sign of each irrep channel."""
    return np.concatenate([np.ones(a), -np.ones(channels - a)]).astype("float32")


def _check_irrep_split(a: int, channels: int | None, layer: str, name: str = "a") -> int:
    """b = channels - a for an irrep input with ``a`` channels of type +1 (raises if impossible)."""
    if channels is None:
        raise RCGeometryError(f"{layer} needs a known number of input channels")
    if not 0 <= a <= int(channels):
        raise RCGeometryError(
            f"{layer}: {name}={a} channels of type +1 do not fit in an input of {channels} channels"
        )
    return int(channels) - a


def _sliced_initializer(initializer: Any, full_shape: tuple, index: tuple) -> Any:
    """Initialise a free block as its slice of one draw of ``initializer`` for the FULL kernel.

    Fan-in/fan-out (Glorot, He, ...) are then those of the kernel the convolution runs, not of
    the smaller free block, so the derived kernel has the scale a plain Conv1D would start with.
    """

    def init(shape: tuple, dtype: Any = None) -> Any:
        return initializer(full_shape, dtype=dtype)[index]

    return init


class _EquivariantConv1D(keras.layers.Layer):
    """Shared machinery of the irrep convolutions (not registered; use the subclasses).

    A subclass states its representations through :meth:`_representations`, which returns
    (in_a, out_a): the number of +1 channels of an irrep side, or None for a regular side, and its
    output channel count through :meth:`_output_channels`. The base class creates the free
    weights, derives the full kernel and runs the convolution. Training and inference compute
    the same thing (the layer has no state besides its weights).
    """

    def __init__(
        self,
        kernel_size: int,
        dilation_rate: int = 1,
        padding: str = "valid",
        kernel_initializer: Any = "glorot_uniform",
        kernel_regularizer: Any = None,
        kernel_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kernel_size = _as_int(kernel_size, "kernel_size")
        self.dilation_rate = _as_int(dilation_rate, "dilation_rate")
        self.padding = str(padding).lower()
        if self.kernel_size < 1 or self.dilation_rate < 1:
            raise RCGeometryError("kernel_size and dilation_rate must be >= 1")
        check_rc_geometry(None, self.kernel_size, 1, self.padding, self.dilation_rate)
        set_weight_options(
            self, "kernel", kernel_initializer, kernel_regularizer, kernel_constraint
        )
        self.input_spec = keras.layers.InputSpec(ndim=3)

    # --- subclass interface -------------------------------------------------------------------

    def _representations(self) -> tuple[int | None, int | None]:
        raise NotImplementedError

    def _output_channels(self) -> int:
        raise NotImplementedError

    def _check_input_channels(self, channels: int | None) -> None:
        raise NotImplementedError

    # --- weights ------------------------------------------------------------------------------

    def _free_weight(self, name: str, full_shape: tuple, index: tuple) -> Any:
        """A free block: the slice ``index`` of the full (k, C_in, C_out) kernel's layout."""
        shape = np.broadcast_to(np.float32(0), full_shape)[index].shape  # a view: no memory
        return self.add_weight(
            name=name,
            shape=shape,
            initializer=_sliced_initializer(self.kernel_initializer, full_shape, index),
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )

    def build(self, input_shape: tuple) -> None:
        channels = input_shape[-1]
        self._check_input_channels(channels)
        self.input_channels = c_in = int(channels)
        c_out = self._output_channels()
        in_a, out_a = self._representations()
        k, half = self.kernel_size, self.kernel_size // 2
        full = (k, c_in, c_out)
        # Free weights: the left half of the taps, then a basis of the centre tap's fixed points.
        self.kernel_half = (
            self._free_weight("kernel_half", full, (slice(0, half),)) if half else None
        )
        self.kernel_centre = self.kernel_centre_aa = self.kernel_centre_bb = None
        if k % 2:
            c = slice(half, half + 1)
            if in_a is None:  # regular input: centre = [H; R(H)], H the first r input rows
                self.kernel_centre = self._free_weight(
                    "kernel_centre", full, (c, slice(0, c_in // 2), slice(0, c_out))
                )
            elif out_a is None:  # regular output: centre = [H, R(H)], H the first F outputs
                self.kernel_centre = self._free_weight(
                    "kernel_centre", full, (c, slice(0, c_in), slice(0, c_out // 2))
                )
            else:  # irrep -> irrep: a->a and b->b blocks free, a->b and b->a forced to zero
                if in_a and out_a:
                    self.kernel_centre_aa = self._free_weight(
                        "kernel_centre_aa", full, (c, slice(0, in_a), slice(0, out_a))
                    )
                if c_in - in_a and c_out - out_a:
                    self.kernel_centre_bb = self._free_weight(
                        "kernel_centre_bb", full, (c, slice(in_a, c_in), slice(out_a, c_out))
                    )
        self.input_spec = keras.layers.InputSpec(ndim=3, axes={-1: c_in})

    # --- kernel derivation --------------------------------------------------------------------

    def _read(self, weight: Any) -> Any:
        return ops.cast(weight, self.compute_dtype)

    def _act_channels(self, w: Any, axis: int, a: int | None) -> Any:
        """R applied along ``axis`` of w: reversal for a regular side, the irrep signs otherwise."""
        if a is None:
            return ops.flip(w, axis=axis)
        signs = _irrep_signs(a, int(w.shape[axis]))
        shape = [1] * len(w.shape)
        shape[axis] = -1
        return w * ops.cast(np.reshape(signs, shape), w.dtype)

    def _rc_channels(self, w: Any) -> Any:
        """R_in w R_out on (taps, C_in, C_out) blocks (the taps are not reversed here)."""
        in_a, out_a = self._representations()
        return self._act_channels(self._act_channels(w, 1, in_a), 2, out_a)

    def _centre(self) -> Any:
        """(1, C_in, C_out) centre tap, a fixed point of R_in . R_out (odd kernels only)."""
        in_a, out_a = self._representations()
        c_in, c_out = self.input_channels, self._output_channels()
        if in_a is None or out_a is None:
            # One regular side (axis 1 or 2 of the block): the other half along it is R(H),
            # which makes [H, R(H)] a fixed point since R is an involution.
            h = self._read(self.kernel_centre)
            return ops.concatenate([h, self._rc_channels(h)], axis=1 if in_a is None else 2)
        b_in, b_out = c_in - in_a, c_out - out_a
        rows = []
        if in_a:
            rows.append(
                ops.pad(self._read(self.kernel_centre_aa), [[0, 0], [0, 0], [0, b_out]])
                if out_a
                else ops.zeros((1, in_a, c_out), self.compute_dtype)
            )
        if b_in:
            rows.append(
                ops.pad(self._read(self.kernel_centre_bb), [[0, 0], [0, 0], [out_a, 0]])
                if b_out
                else ops.zeros((1, b_in, c_out), self.compute_dtype)
            )
        return rows[0] if len(rows) == 1 else ops.concatenate(rows, axis=1)

    def full_kernel(self) -> Any:
        """(k, C_in, C_out) equivariant kernel: [left, (centre), S(left) in reversed tap order]."""
        taps = []
        if self.kernel_half is not None:
            left = self._read(self.kernel_half)
            taps.append(left)
        if self.kernel_size % 2:
            taps.append(self._centre())
        if self.kernel_half is not None:
            taps.append(ops.flip(self._rc_channels(left), axis=0))
        return taps[0] if len(taps) == 1 else ops.concatenate(taps, axis=0)

    @property
    def kernel(self) -> Any:
        """The full kernel the convolution runs (a tensor derived from the free weights)."""
        return self.full_kernel()

    # --- forward ------------------------------------------------------------------------------

    def call(self, inputs: Any) -> Any:
        return ops.conv(
            inputs,
            self.full_kernel(),
            strides=1,
            padding=self.padding,
            data_format="channels_last",
            dilation_rate=self.dilation_rate,
        )

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        length = input_shape[1]
        if length is not None and self.padding == "valid":
            length = length - (self.kernel_size - 1) * self.dilation_rate
        return (input_shape[0], length, self._output_channels())

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "dilation_rate": self.dilation_rate,
                "padding": self.padding,
                **weight_config(self, ("kernel",)),
            }
        )
        return config


def _check_irrep_outputs(a_out: int, b_out: int, layer: str) -> tuple[int, int]:
    a_out, b_out = int(a_out), int(b_out)
    if a_out < 0 or b_out < 0 or a_out + b_out < 1:
        raise RCGeometryError(
            f"{layer} needs a_out, b_out >= 0 and at least one output channel, got "
            f"a_out={a_out}, b_out={b_out}"
        )
    return a_out, b_out


@keras.saving.register_keras_serializable(package=PACKAGE)
class RegToIrrepConv1D(_EquivariantConv1D):
    """Regular (B, L, 2r) -> irrep (B, L', a_out + b_out) equivariant convolution, no bias.

    Guarantee: y_a(RC x) = reverse(y_a(x)) and y_b(RC x) = -reverse(y_b(x)).
    Kernel rule: tap k-1-t = tap t with input channels reversed and the b columns negated.
    Free weights: ``kernel_half`` (floor(k/2), 2r, a_out + b_out) and, for odd k,
    ``kernel_centre`` (1, r, a_out + b_out) = the centre rows of the forward input channels; the
    other r rows are their reversal (negated in the b columns). Count k*r*(a_out + b_out) =
    dim of the equivariant kernels (the centre involution has trace tr(J) tr(D) = 0).

    Args:
        a_out, b_out: output channels of type +1 and -1 (either may be 0, not both).
    """

    def __init__(self, a_out: int, b_out: int, kernel_size: int, **kwargs: Any) -> None:
        super().__init__(kernel_size, **kwargs)
        self.a_out, self.b_out = _check_irrep_outputs(a_out, b_out, "RegToIrrepConv1D")

    def _representations(self) -> tuple[int | None, int | None]:
        return None, self.a_out

    def _output_channels(self) -> int:
        return self.a_out + self.b_out

    def _check_input_channels(self, channels: int | None) -> None:
        _check_even_channels(channels, "RegToIrrepConv1D")

    def get_config(self) -> dict:
        return {**super().get_config(), "a_out": self.a_out, "b_out": self.b_out}


@keras.saving.register_keras_serializable(package=PACKAGE)
class IrrepToIrrepConv1D(_EquivariantConv1D):
    """Irrep (B, L, a_in + b_in) -> irrep (B, L', a_out + b_out) equivariant convolution, no bias.

    b_in = input channels - a_in is derived in ``build``. Kernel rule: the a->a and b->b blocks are
    symmetric in the taps (tap k-1-t = tap t), the a->b and b->a blocks antisymmetric (tap k-1-t =
    -tap t; for odd k their centre tap is zero). Free weights: ``kernel_half`` (floor(k/2), C_in,
    C_out) and, for odd k, ``kernel_centre_aa`` (1, a_in, a_out) and ``kernel_centre_bb``
    (1, b_in, b_out) (each only where both counts are > 0). Count floor(k/2) C_in C_out +
    [k odd](a_in a_out + b_in b_out) = dim of the equivariant kernels.

    Args:
        a_in: input channels of type +1 (the first a_in; 0 .. input channels).
        a_out, b_out: output channels of type +1 and -1 (either may be 0, not both).
    """

    def __init__(self, a_in: int, a_out: int, b_out: int, kernel_size: int, **kwargs: Any) -> None:
        super().__init__(kernel_size, **kwargs)
        self.a_in = int(a_in)
        self.a_out, self.b_out = _check_irrep_outputs(a_out, b_out, "IrrepToIrrepConv1D")

    def _representations(self) -> tuple[int | None, int | None]:
        return self.a_in, self.a_out

    def _output_channels(self) -> int:
        return self.a_out + self.b_out

    def _check_input_channels(self, channels: int | None) -> None:
        self.b_in = _check_irrep_split(self.a_in, channels, "IrrepToIrrepConv1D", "a_in")

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "a_in": self.a_in,
            "a_out": self.a_out,
            "b_out": self.b_out,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class IrrepToRegConv1D(_EquivariantConv1D):
    """Irrep (B, L, a_in + b_in) -> regular (B, L', 2F) equivariant convolution, no bias.

    Output layout as RevCompConv1D: F forward filters, then their RC partners in reversed order,
    so y(RC x) = y(x) reversed along length and channels. Kernel rule: tap k-1-t = tap t with the
    output channels reversed and the rows of the b inputs negated. Free weights: ``kernel_half``
    (floor(k/2), C_in, 2F) and, for odd k, ``kernel_centre`` (1, C_in, F) = the centre columns of
    the F forward filters; the other F columns are their reversal (negated in the b rows). Count
    k*C_in*F = dim of the equivariant kernels.

    Args:
        filters: F (the output has 2F channels).
        a_in: input channels of type +1 (the first a_in; 0 .. input channels).
    """

    def __init__(self, filters: int, a_in: int, kernel_size: int, **kwargs: Any) -> None:
        super().__init__(kernel_size, **kwargs)
        self.filters = int(filters)
        if self.filters < 1:
            raise RCGeometryError(f"IrrepToRegConv1D filters must be >= 1, got {filters}")
        self.a_in = int(a_in)

    def _representations(self) -> tuple[int | None, int | None]:
        return self.a_in, None

    def _output_channels(self) -> int:
        return 2 * self.filters

    def _check_input_channels(self, channels: int | None) -> None:
        self.b_in = _check_irrep_split(self.a_in, channels, "IrrepToRegConv1D", "a_in")

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, "a_in": self.a_in}


# The options every irrep convolution shares, appended to each one's Args.
_CONV_OPTIONS_DOC = """    kernel_size, dilation_rate, padding: as ``keras.layers.Conv1D`` (stride 1); 'same' with
            an even effective kernel (k-1)*dilation_rate+1 pads asymmetrically and raises
            :class:`~benchmark_rc.layers.RCGeometryError`; 'valid' works for any k.
        kernel_initializer: initialises each free block as its slice of a draw for the full
            (k, C_in, C_out) kernel, so Glorot/He use the full kernel's fans.
        kernel_regularizer, kernel_constraint: applied to each free weight (as RevCompConv1D
            regularises its free half).
"""

for _conv in (RegToIrrepConv1D, IrrepToIrrepConv1D, IrrepToRegConv1D):
    if _conv.__doc__:  # None under python -OO
        _conv.__doc__ += _CONV_OPTIONS_DOC


def _odd_activation(name: Any) -> str:
    key = "linear" if name is None else name
    if not isinstance(key, str) or key.lower() not in ODD_ACTIVATIONS:
        raise RCGeometryError(
            f"odd_activation={name!r} is not an odd function, so it would break the sign flip of "
            f"the -1 (b) channels; use one of {', '.join(ODD_ACTIVATIONS)}"
        )
    return key.lower()


@keras.saving.register_keras_serializable(package=PACKAGE)
class IrrepActivation(keras.layers.Layer):
    """Element-wise activation of an irrep map (B, L, a + b) -> same shape.

    ``even_activation`` (any function) on the first a channels: they are only reversed under RC,
    which any element-wise map commutes with. ``odd_activation`` on the b channels must be odd,
    f(-x) = -f(x), to commute with their sign flip: one of "tanh", "softsign", "linear"; any
    other raises :class:`~benchmark_rc.layers.RCGeometryError`. Same in training and inference.
    """

    def __init__(
        self,
        a: int,
        even_activation: Any = "relu",
        odd_activation: str = "tanh",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.a = int(a)
        if self.a < 0:
            raise RCGeometryError(f"IrrepActivation a must be >= 0, got {a}")
        self.even_activation = keras.activations.get(even_activation)
        self.odd_activation = _odd_activation(odd_activation)
        self._odd_fn = keras.activations.get(self.odd_activation)
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def build(self, input_shape: tuple) -> None:
        self.b = _check_irrep_split(self.a, input_shape[-1], "IrrepActivation")

    def call(self, inputs: Any) -> Any:
        if not self.b:
            return self.even_activation(inputs)
        if not self.a:
            return self._odd_fn(inputs)
        return ops.concatenate(
            [self.even_activation(inputs[..., : self.a]), self._odd_fn(inputs[..., self.a :])],
            axis=-1,
        )

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "a": self.a,
                "even_activation": keras.activations.serialize(self.even_activation),
                "odd_activation": self.odd_activation,
            }
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class IrrepBatchNorm(RCBatchNormalization):
    """Batch normalisation of an irrep map (B, L, a + b) -> same shape, RC-equivariant.

    * a channels (+1): ordinary per-channel batch norm over batch x length,
      (x - mean) / sqrt(var + epsilon) * gamma + beta.
    * b channels (-1): NOT centred (a shift would break the sign flip; their mean is zero for an
      RC-symmetric distribution): x / sqrt(mean(x^2) + epsilon) * gamma, no beta.

    Training (``training=True`` and the layer trainable): batch statistics are used and the
    moving statistics updated, m <- momentum m + (1 - momentum) batch value; the statistics are
    invariant under RC of any sample, so the layer is equivariant for ANY batch. Inference (or a
    frozen layer, as Keras' BatchNormalization): the moving statistics are used.

    Weights: ``gamma`` (a + b,) if scale, ``beta`` (a,) if center and a > 0, non-trainable
    ``moving_mean`` (a,) if a > 0 and ``moving_variance`` (a + b,) whose b entries are the moving
    second moment E[x^2] of the b channels.

    Args:
        a: the number of +1 channels (the first a; b = input channels - a).
        momentum, epsilon, center, scale, the initializers, regularizers and constraints: as
            Keras' BatchNormalization, with its defaults (see
            :class:`~benchmark_rc.layers.rcps.RCBatchNormalization`).
    """

    def __init__(self, a: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.a = int(a)
        if self.a < 0:
            raise RCGeometryError(f"IrrepBatchNorm a must be >= 0, got {a}")

    def build(self, input_shape: tuple) -> None:
        self.b = _check_irrep_split(self.a, input_shape[-1], "IrrepBatchNorm")
        channels = self.a + self.b
        per_a = (self.a,) if self.a else None
        self._add_batch_norm_weights((channels,), per_a, per_a, (channels,))
        self.input_spec = keras.layers.InputSpec(ndim=3, axes={-1: channels})

    def _pad_b(self, v: Any) -> Any:
        """(a,) -> (a + b,) with zeros for the b channels (their mean / shift is zero)."""
        return ops.pad(v, [[0, self.b]]) if self.b else v

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = ops.cast(inputs, self.compute_dtype)
        stat = ops.cast(x, "float32")
        if training and self.trainable:  # frozen (trainable=False): inference mode, as Keras BN
            # b channels keep a zero mean, so their "variance" below is the second moment.
            mask = ops.convert_to_tensor(_irrep_signs(self.a, self.a + self.b) > 0, "float32")
            mean = ops.mean(stat, axis=(0, 1)) * mask
            var = ops.mean(ops.square(stat - ops.stop_gradient(mean)), axis=(0, 1))
            m = self.momentum
            if self.a:
                self.moving_mean.assign(
                    self.moving_mean * m
                    + ops.cast(mean[: self.a], self.moving_mean.dtype) * (1.0 - m)
                )
            self.moving_variance.assign(
                self.moving_variance * m + ops.cast(var, self.moving_variance.dtype) * (1.0 - m)
            )
        else:
            var = ops.cast(self.moving_variance, "float32")
            mean = (
                self._pad_b(ops.cast(self.moving_mean, "float32"))
                if self.a
                else ops.zeros((self.b,), "float32")
            )
        inv = ops.rsqrt(var + self.epsilon)
        if self.scale:
            inv = inv * ops.cast(self.gamma, "float32")
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + self._pad_b(ops.cast(self.beta, "float32"))
        return x * ops.cast(inv, x.dtype) + ops.cast(shift, x.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "a": self.a}


@keras.saving.register_keras_serializable(package=PACKAGE)
class IrrepConcatenate(keras.layers.Layer):
    """Strand merge of an irrep map (B, L, a + b) -> same shape, RC-invariant (the paper's
    IrrepConcatLayer): a channels -> 0.5 (y + reverse(y)), b channels -> 0.5 (y - reverse(y)).

    The output is a fixed point of the irrep RC (a channels mirror-symmetric along length, b
    channels antisymmetric), so out(RC x) = out(x) and any layer after it (pooling with any
    window layout, Flatten, Dense) sees the same map for both strands.
    """

    def __init__(self, a: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.a = int(a)
        if self.a < 0:
            raise RCGeometryError(f"IrrepConcatenate a must be >= 0, got {a}")
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def build(self, input_shape: tuple) -> None:
        self.b = _check_irrep_split(self.a, input_shape[-1], "IrrepConcatenate")

    def call(self, inputs: Any) -> Any:
        signs = ops.cast(_irrep_signs(self.a, self.a + self.b), inputs.dtype)
        return 0.5 * (inputs + ops.flip(inputs, axis=1) * signs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "a": self.a}


_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}


def _revcomp(kmer: str) -> str:
    return "".join(_COMPLEMENT[base] for base in reversed(kmer))


def _kmer_channels(k: int) -> tuple[str, ...]:
    """The k-mer of each output channel of :class:`KmerEmbedding` (channel j's RC is n-1-j).

    First half: every k-mer that is lexicographically <= its reverse complement, sorted; second
    half: their reverse complements in reversed order. Palindromes (even k only) are in both.
    """
    first = [
        kmer
        for kmer in ("".join(p) for p in itertools.product("ACGT", repeat=k))
        if kmer <= _revcomp(kmer)
    ]
    return tuple(first + [_revcomp(kmer) for kmer in reversed(first)])


@keras.saving.register_keras_serializable(package=PACKAGE)
class KmerEmbedding(keras.layers.Layer):
    """Fixed exact-match k-mer detector: one-hot (B, L, 4) -> regular (B, L-k+1, n).

    Channel j is 1 where the k-mer ``kmers[j]`` starts (a width-k one-hot filter, thresholded:
    matches > k-1), else 0. Channels are ordered so that channel j's reverse complement is channel
    n-1-j (see ``kmers``), which makes the output a regular map: out(RC x) =
    RC(out(x)). n = 4^k for odd k; for even k, n = 4^k + 4^(k/2): each of the 4^(k/2) palindromic
    k-mers has two channels (j and n-1-j) and lights both. A window holding an N (all-zero) row
    matches nothing: all zeros. k = 1 returns the input unchanged (the one-hot is its own 1-mer
    embedding). No weights; same in training and inference; the threshold has zero gradient.
    """

    def __init__(self, k: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.k = int(k)
        if self.k < 1:
            raise RCGeometryError(f"KmerEmbedding k must be >= 1, got {k}")
        self.kmers = _kmer_channels(self.k)
        filters = np.zeros((self.k, 4, len(self.kmers)), dtype="float32")
        for j, kmer in enumerate(self.kmers):
            for t, base in enumerate(kmer):
                filters[t, "ACGT".index(base), j] = 1.0
        self._filters = filters
        self.input_spec = keras.layers.InputSpec(ndim=3, axes={-1: 4})

    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, self.compute_dtype)
        if self.k == 1:
            return x
        matches = ops.conv(x, ops.cast(self._filters, x.dtype), padding="valid")
        return ops.cast(ops.greater(matches, self.k - 1), x.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        length = input_shape[1]
        if length is not None:
            length = length - self.k + 1
        return (input_shape[0], length, len(self.kmers))

    def get_config(self) -> dict:
        return {**super().get_config(), "k": self.k}

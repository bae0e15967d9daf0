"""Reverse-complement parameter-sharing (RCPS) layers, written with ``keras.ops`` only.

Layout convention (../shared/DESIGN.md): an RC-shared ("regular") feature map with F filters has
2F channels, the F forward filters followed by their RC partners in reversed order, so channel i
pairs with channel 2F-1-i, and RC(h) = h reversed along length AND channels. One-hot DNA (A, C, G,
T) is regular with 2 "filters".

Layers:

* :class:`RevCompConv1D`: one kernel W (k, C_in, F); the RC kernel (taps, input channels and
  filter order reversed) is derived on the fly and ONE convolution with 2F outputs runs; output =
  conv + [b, reversed b] (not keras-genomics' 2·conv + b, which
  :class:`~benchmark_rc.layers.compat.KerasGenomicsRevCompConv1D` reproduces). Equivariant:
  y(RC x) = RC y(x).
* :class:`RevCompConv1DBatchNorm`: batch norm whose channel c and its partner 2F-1-c share
  gamma/beta and statistics (computed over batch x 2L without materialising the stacked tensor);
  its options and weights (Keras BatchNormalization's) come from :class:`RCBatchNormalization`,
  which :class:`~benchmark_rc.layers.IrrepBatchNorm` shares.
* :class:`RevCompSumPool` / :class:`RevCompAvgPool`: strand merge (B, L, 2F) -> (B, L, F),
  out[p, c] = x[p, c] + x[L-1-p, 2F-1-c] (sum) or half of it (average). RC-invariant.
* :class:`WeightedSum1D`: RC-tied position x channel weights -> (B, units) invariant read-out.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from benchmark_rc.errors import UserError
from benchmark_rc.layers._weights import add_group_weight, set_weight_options, weight_config
from benchmark_rc.sequence import reverse_complement

PACKAGE = "benchmark_rc"


class RCGeometryError(UserError, ValueError):
    """A layer configuration that cannot be RC-equivariant (padding, stride, channel count)."""


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise RCGeometryError(f"{name} must be a single integer for 1-D layers, got {value!r}")
        value = value[0]
    return int(value)


def check_rc_geometry(
    length: int | None, kernel_size: int, strides: int, padding: str, dilation_rate: int
) -> None:
    """Raise :class:`RCGeometryError` where a 1-D window geometry cannot be RC-equivariant.

    A strided / padded window layout is equivariant only if it is mirror-symmetric: the windows
    of the reversed input are the mirrored windows of the input. ``length`` may be None (unknown
    at build time); the length-dependent checks are then skipped.
    """
    eff_k = (kernel_size - 1) * dilation_rate + 1
    if padding not in ("valid", "same"):
        raise RCGeometryError(
            f"padding={padding!r} breaks RC equivariance (asymmetric); use 'valid' or 'same'"
        )
    if padding == "same":
        if strides == 1 and eff_k % 2 == 0:
            raise RCGeometryError(
                f"padding='same' with an even effective kernel ({eff_k} = (kernel_size-1)"
                f"*dilation_rate+1 with kernel_size={kernel_size}, dilation_rate={dilation_rate})"
                " pads asymmetrically and breaks RC equivariance; use an odd kernel or "
                "padding='valid'"
            )
        if strides > 1 and length is not None:
            out = -(-length // strides)
            # Windows are mirror-symmetric iff the padding TF would need, (out-1)*s + k - L, is
            # even and not negative (negative: TF pads 0 and the last window stops short).
            pad_total = (out - 1) * strides + eff_k - length
            if pad_total % 2 or pad_total < 0:
                raise RCGeometryError(
                    f"padding='same' with strides={strides}, effective kernel {eff_k} and input "
                    f"length {length} gives windows that are not mirror-symmetric ((out-1)*strides"
                    f" + kernel - length = {pad_total} must be even and >= 0) and breaks RC "
                    "equivariance"
                )
    elif strides > 1 and length is not None and (length - eff_k) % strides:
        raise RCGeometryError(
            f"strides={strides} with input length {length} and effective kernel {eff_k} leaves "
            f"(length - kernel) % strides = {(length - eff_k) % strides} != 0: the windows are not "
            "mirror-symmetric and RC equivariance breaks; change the length or the stride"
        )


def _check_even_channels(channels: int | None, layer: str) -> int:
    if channels is None or channels % 2:
        raise RCGeometryError(
            f"{layer} needs an RC-shared input with an even number of channels (2F), got {channels}"
        )
    return channels // 2


@keras.saving.register_keras_serializable(package=PACKAGE)
class RevCompConv1D(keras.layers.Layer):
    """RC-equivariant 1-D convolution: (B, L, C_in) regular -> (B, L', 2F) regular.

    Args:
        filters: F, the number of forward filters (output has 2F channels).
        kernel_size, strides, padding, dilation_rate: as ``keras.layers.Conv1D``; geometries that
            break equivariance raise :class:`RCGeometryError` (see :func:`check_rc_geometry`).
        activation: element-wise activation (commutes with RC).
        use_bias: bias b (F,) applied as [b, reversed b].
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
            kernel_constraint, bias_constraint: as ``keras.layers.Conv1D``, applied to the free
            kernel W (k, C_in, F) and bias b (F,).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        strides: int = 1,
        padding: str = "valid",
        dilation_rate: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        if self.filters < 1:
            raise RCGeometryError(f"RevCompConv1D filters must be >= 1, got {filters}")
        self.kernel_size = _as_int(kernel_size, "kernel_size")
        self.strides = _as_int(strides, "strides")
        self.padding = str(padding).lower()
        self.dilation_rate = _as_int(dilation_rate, "dilation_rate")
        if self.kernel_size < 1 or self.strides < 1 or self.dilation_rate < 1:
            raise RCGeometryError("kernel_size, strides and dilation_rate must be >= 1")
        if self.strides > 1 and self.dilation_rate > 1:
            raise RCGeometryError("strides > 1 together with dilation_rate > 1 is not supported")
        check_rc_geometry(None, self.kernel_size, self.strides, self.padding, self.dilation_rate)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        set_weight_options(
            self, "kernel", kernel_initializer, kernel_regularizer, kernel_constraint
        )
        set_weight_options(self, "bias", bias_initializer, bias_regularizer, bias_constraint)
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def build(self, input_shape: tuple) -> None:
        channels = input_shape[-1]
        if channels is None:
            raise RCGeometryError("RevCompConv1D needs a known number of input channels")
        check_rc_geometry(
            input_shape[1], self.kernel_size, self.strides, self.padding, self.dilation_rate
        )
        self.kernel = add_group_weight(
            self, "kernel", (self.kernel_size, int(channels), self.filters), "kernel"
        )
        if self.use_bias:
            self.bias = add_group_weight(self, "bias", (self.filters,), "bias")
        self.input_spec = keras.layers.InputSpec(ndim=3, axes={-1: int(channels)})

    def full_kernel(self) -> Any:
        """(k, C_in, 2F) kernel [W, W reversed on taps, input channels and filters]."""
        rc_kernel = ops.flip(ops.flip(ops.flip(self.kernel, axis=0), axis=1), axis=2)
        return ops.concatenate([self.kernel, rc_kernel], axis=-1)

    def full_bias(self) -> Any:
        """(2F,) bias [b, reversed b]."""
        return ops.concatenate([self.bias, ops.flip(self.bias, axis=0)], axis=0)

    def call(self, inputs: Any) -> Any:
        if inputs.shape[1] is not None:
            check_rc_geometry(
                int(inputs.shape[1]),
                self.kernel_size,
                self.strides,
                self.padding,
                self.dilation_rate,
            )
        outputs = ops.conv(
            inputs,
            self.full_kernel(),
            strides=self.strides,
            padding=self.padding,
            data_format="channels_last",
            dilation_rate=self.dilation_rate,
        )
        if self.use_bias:
            outputs = self._add_bias(outputs)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def _add_bias(self, conv: Any) -> Any:
        """conv + [b, reversed b] (the keras-genomics emulation overrides this)."""
        return ops.add(conv, self.full_bias())

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        length = input_shape[1]
        if length is not None:
            eff_k = (self.kernel_size - 1) * self.dilation_rate + 1
            if self.padding == "valid":
                length = (length - eff_k) // self.strides + 1
            else:
                length = -(-length // self.strides)
        return (input_shape[0], length, 2 * self.filters)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "dilation_rate": self.dilation_rate,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                **weight_config(self, ("kernel", "bias")),
            }
        )
        return config


class RCBatchNormalization(keras.layers.Layer):
    """Options and weights shared by the RC batch norms (not registered; use the subclasses).

    Args (Keras ``BatchNormalization``'s, with its defaults):
        momentum: moving statistics m <- momentum m + (1 - momentum) batch value.
        epsilon: added to the variance before the square root.
        center, scale: whether the layer has the offset ``beta`` / the scale ``gamma``.
        beta_initializer, gamma_initializer, moving_mean_initializer,
            moving_variance_initializer: initializers of the four weights.
        beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint: applied to the
            trainable ``beta`` and ``gamma``.

    A subclass creates the weights in ``build`` with :meth:`_add_batch_norm_weights` (their
    shapes are its own) and implements ``call``; ``get_config`` holds every option above.
    """

    _trainable_groups = ("beta", "gamma")
    _statistics_groups = ("moving_mean", "moving_variance")

    def __init__(
        self,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        set_weight_options(self, "beta", beta_initializer, beta_regularizer, beta_constraint)
        set_weight_options(self, "gamma", gamma_initializer, gamma_regularizer, gamma_constraint)
        self.moving_mean_initializer = keras.initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = keras.initializers.get(moving_variance_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def _add_batch_norm_weights(
        self, gamma: tuple, beta: tuple | None, mean: tuple | None, variance: tuple
    ) -> None:
        """Create ``gamma`` (if scale), ``beta`` (if center), then the non-trainable
        ``moving_mean`` and ``moving_variance`` with these shapes, in this order (the order of
        saved weights); a shape None means no such weight (the attribute is None)."""
        self.gamma = self.beta = self.moving_mean = None
        if self.scale:
            self.gamma = add_group_weight(self, "gamma", gamma, "gamma")
        if self.center and beta is not None:
            self.beta = add_group_weight(self, "beta", beta, "beta")
        if mean is not None:
            self.moving_mean = add_group_weight(
                self, "moving_mean", mean, "moving_mean", trainable=False
            )
        self.moving_variance = add_group_weight(
            self, "moving_variance", variance, "moving_variance", trainable=False
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                **weight_config(self, self._trainable_groups),
                **weight_config(self, self._statistics_groups, ("initializer",)),
            }
        )
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class RevCompConv1DBatchNorm(RCBatchNormalization):
    """Batch normalisation of a regular map (B, L, 2F) with RC-tied parameters and statistics.

    Equivalent to keras-genomics' layer (stack the channel-reversed RC half under the forward half
    along length, normalise F channels over batch x 2L, split back) but computed without the
    stacked copy: per-pair mean and variance are combined from the per-channel moments. Keras
    BatchNormalization defaults: momentum 0.99, epsilon 1e-3, centre and scale on; like Keras'
    layer it normalises with the moving statistics when ``trainable`` is False (fine-tuning).
    Output shape = input shape. Weights ``gamma``, ``beta``, ``moving_mean``,
    ``moving_variance``: (F,) each, shared by channel c and its partner 2F-1-c. Arguments: see
    :class:`RCBatchNormalization`.
    """

    def build(self, input_shape: tuple) -> None:
        half = _check_even_channels(input_shape[-1], "RevCompConv1DBatchNorm")
        self.half = half
        self._add_batch_norm_weights((half,), (half,), (half,), (half,))
        self.input_spec = keras.layers.InputSpec(ndim=3, axes={-1: 2 * half})

    @staticmethod
    def _mirror(v: Any) -> Any:
        return ops.concatenate([v, ops.flip(v, axis=0)], axis=0)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = ops.cast(inputs, self.compute_dtype)
        if training and self.trainable:  # frozen (trainable=False): inference mode, as Keras BN
            # Moments of the stacked (B, 2L, F) tensor from per-channel moments of (B, L, 2F):
            # both halves have B*L entries, so pair statistics are averages of the two channels.
            stat = ops.cast(x, "float32")
            mean = ops.mean(stat, axis=(0, 1))
            h = self.half
            pair_mean = 0.5 * (mean[:h] + ops.flip(mean[h:], axis=0))
            centred = stat - ops.stop_gradient(self._mirror(pair_mean))
            sq = ops.mean(ops.square(centred), axis=(0, 1))
            pair_var = 0.5 * (sq[:h] + ops.flip(sq[h:], axis=0))
            m = self.momentum
            self.moving_mean.assign(
                self.moving_mean * m + ops.cast(pair_mean, self.moving_mean.dtype) * (1.0 - m)
            )
            self.moving_variance.assign(
                self.moving_variance * m
                + ops.cast(pair_var, self.moving_variance.dtype) * (1.0 - m)
            )
        else:
            pair_mean = self.moving_mean
            pair_var = self.moving_variance
        inv = ops.rsqrt(ops.cast(pair_var, "float32") + self.epsilon)
        if self.scale:
            inv = inv * ops.cast(self.gamma, "float32")
        shift = -ops.cast(pair_mean, "float32") * inv
        if self.center:
            shift = shift + ops.cast(self.beta, "float32")
        inv = ops.cast(self._mirror(inv), x.dtype)
        shift = ops.cast(self._mirror(shift), x.dtype)
        return x * inv + shift

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class RevCompSumPool(keras.layers.Layer):
    """Strand merge (B, L, 2F) -> (B, L, F): out[p, c] = x[p, c] + x[L-1-p, 2F-1-c]. RC-invariant."""

    scale_factor = 1.0

    def build(self, input_shape: tuple) -> None:
        self.half = _check_even_channels(input_shape[-1], type(self).__name__)

    def call(self, inputs: Any) -> Any:
        h = self.half
        merged = inputs[..., :h] + reverse_complement(inputs[..., h:])
        if self.scale_factor != 1.0:
            merged = merged * self.scale_factor
        return merged

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], input_shape[-1] // 2)


@keras.saving.register_keras_serializable(package=PACKAGE)
class RevCompAvgPool(RevCompSumPool):
    """Averaging twin of :class:`RevCompSumPool` (RCPS-Avg): 0.5 * (x[p, c] + x[L-1-p, 2F-1-c])."""

    scale_factor = 0.5


@keras.saving.register_keras_serializable(package=PACKAGE)
class WeightedSum1D(keras.layers.Layer):
    """RC-invariant weighted read-out (B, L, 2F) -> (B, units).

    Learns W (L, F, units); the full weight is [W, W reversed in length and channels] of shape
    (L, 2F, units) and out[:, u] = sum_{p, c} x[p, c] * W_full[p, c, u]. For units=1 this is
    keras-genomics' WeightedSum1D(symmetric=False, input_is_revcomp_conv=True) followed by the
    fixed all-ones Dense of the paper's RCWeight model.

    Args:
        units: number of outputs.
        kernel_initializer: initializer of W; None (default): uniform in +-sqrt(6 / (L * 2F * 2))
            as in keras-genomics.
        kernel_regularizer, kernel_constraint: applied to the free W.
    """

    def __init__(
        self,
        units: int = 1,
        kernel_initializer: Any = None,
        kernel_regularizer: Any = None,
        kernel_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = int(units)
        set_weight_options(
            self, "kernel", kernel_initializer, kernel_regularizer, kernel_constraint
        )
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def build(self, input_shape: tuple) -> None:
        length = input_shape[1]
        if length is None:
            raise RCGeometryError("WeightedSum1D needs a known input length")
        half = _check_even_channels(input_shape[-1], "WeightedSum1D")
        initializer = self.kernel_initializer
        if initializer is None:  # keras-genomics' uniform, scaled by the full weight's size
            limit = (6.0 / (int(length) * 2 * half * 2)) ** 0.5
            initializer = keras.initializers.RandomUniform(-limit, limit)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(int(length), half, self.units),
            initializer=initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )

    def call(self, inputs: Any) -> Any:
        rc = ops.flip(ops.flip(self.kernel, axis=0), axis=1)
        full = ops.concatenate([self.kernel, rc], axis=1)
        return ops.einsum("blc,lcu->bu", inputs, ops.cast(full, inputs.dtype))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], self.units)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, **weight_config(self, ("kernel",))}

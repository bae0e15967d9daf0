"""Max pooling inside an irrep trunk (registered, serialisable).

:class:`IrrepMaxPool1D` pools an irrep map (B, L, a + b) without symmetrising it, so a trunk
can pool between convolutions and stay strand-aware (the irrep kit's ``max_pool`` symmetrises,
which is right only before a read-out). a channels (+1, only reversed under RC): ordinary max
pooling. b channels (-1, reversed and negated): a signed max-magnitude pooling, the window's
value of largest absolute value (its maximum where |max| > |min|, its minimum where
|min| > |max|, and (max + min) / 2 = 0 on a tie), which is odd, f(-y) = -f(y), as the sign flip
needs. Windows are valid with stride = pool size; RC-equivariance needs the windows to tile the
length (length divisible by the pool size), which the layer checks.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from benchmark_rc.layers.rcps import PACKAGE, RCGeometryError


@keras.saving.register_keras_serializable(package=PACKAGE)
class IrrepMaxPool1D(keras.layers.Layer):
    """(B, L, a + b) -> (B, L // pool_size, a + b): max pooling of the a channels, signed
    max-magnitude pooling of the b channels (module docstring). ``L`` must be a multiple of
    ``pool_size`` (mirror-symmetric windows)."""

    def __init__(self, a: int, pool_size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.a = int(a)
        self.pool_size = int(pool_size)
        if self.a < 0 or self.pool_size < 1:
            raise RCGeometryError(f"IrrepMaxPool1D needs a >= 0 and pool_size >= 1, got a={a}, "
                                  f"pool_size={pool_size}")
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def build(self, input_shape: tuple) -> None:
        length, channels = input_shape[1], int(input_shape[-1])
        if self.a > channels:
            raise RCGeometryError(f"IrrepMaxPool1D: a={self.a} exceeds the {channels} channels")
        if length is not None and int(length) % self.pool_size:
            raise RCGeometryError(
                f"IrrepMaxPool1D: length {length} is not a multiple of pool size "
                f"{self.pool_size}, so the windows are not mirror-symmetric")
        self.b = channels - self.a

    def _pool(self, x: Any) -> Any:
        return ops.max_pool(x, self.pool_size, self.pool_size, padding="valid")

    def call(self, inputs: Any) -> Any:
        parts = []
        if self.a:
            parts.append(self._pool(inputs[..., : self.a]))
        if self.b:
            y = inputs[..., self.a :]
            high, low = self._pool(y), -self._pool(-y)
            tie = 0.5 * (high + low)
            signed = ops.where(ops.abs(high) > ops.abs(low), high,
                               ops.where(ops.abs(low) > ops.abs(high), low, tie))
            parts.append(signed)
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        length = None if input_shape[1] is None else int(input_shape[1]) // self.pool_size
        return (input_shape[0], length, input_shape[-1])

    def get_config(self) -> dict:
        return {**super().get_config(), "a": self.a, "pool_size": self.pool_size}

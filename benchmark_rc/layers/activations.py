"""Activation layers used by the architectures and by later issues (registered, serialisable)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from benchmark_rc.layers.rcps import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class Exponential(keras.layers.Layer):
    """Element-wise exp(x) (Koo & Ploenzke's first-layer activation); any shape -> same shape."""

    def call(self, inputs: Any) -> Any:
        return ops.exp(inputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape


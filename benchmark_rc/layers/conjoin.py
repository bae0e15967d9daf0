"""Building blocks of conjoined (siamese) models: orientation transforms and strand merges.

A conjoined model is f(x) = merge(g(x), RC_out(g(RC_in x))). The RC rules (DESIGN.md):

* ``"regular"``: DNA, regular feature maps and profiles (..., L, C): reverse length and channels
  (for a profile (L, 2) = (+, -) that is "reverse positions and swap strands").
* ``"length"``: the strand-collapsed control track (..., L, 2): reverse along length only.
* ``"strands"``: per-strand vectors (..., 2), e.g. log counts: reverse the last axis.
* ``"pairs"``: stranded track pairs (..., B, 2S) with channels (+1, -1, +2, -2, ...): reverse
  the bins and swap the strands of each pair.
* ``"none"``: scalar / per-task logits that are invariant.

Unstranded binned tracks (..., B, T) follow ``"length"`` (reverse the bins only).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from benchmark_rc.errors import UserError
from benchmark_rc.layers.rcps import PACKAGE
from benchmark_rc.sequence import (
    reverse_complement,
    reverse_control,
    reverse_stranded_pairs,
    swap_strands,
)


def _identity(x: Any) -> Any:
    return x


# The one implementation of each RC rule, for numpy arrays and tensors (benchmark_rc.sequence).
RC_RULE_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "regular": reverse_complement,
    "length": reverse_control,
    "strands": swap_strands,
    "pairs": reverse_stranded_pairs,
    "none": _identity,
}
RC_RULES = tuple(RC_RULE_FUNCTIONS)
MERGE_MODES = ("mean", "max", "sigmoid_mean", "softmax_mean")


@keras.saving.register_keras_serializable(package=PACKAGE)
class RCTransform(keras.layers.Layer):
    """Apply one RC rule (see module docstring) to a tensor; shape unchanged."""

    def __init__(self, rule: str = "regular", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if rule not in RC_RULES:
            raise UserError(f"RCTransform rule must be one of {RC_RULES}, got {rule!r}")
        self.rule = rule

    def call(self, inputs: Any) -> Any:
        return RC_RULE_FUNCTIONS[self.rule](inputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config["rule"] = self.rule
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class StrandMerge(keras.layers.Layer):
    """Merge the forward and the (already mapped back) RC branch outputs: [a, b] -> same shape.

    Modes: ``"mean"`` (average of logits), ``"max"`` (element-wise max of logits),
    ``"sigmoid_mean"`` (logit of the mean of the two sigmoid probabilities),
    ``"softmax_mean"`` (log of the mean of the two softmax distributions over ``axis``, i.e.
    valid logits of the averaged profile probabilities). All are symmetric in (a, b).
    """

    def __init__(self, mode: str = "mean", axis: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in MERGE_MODES:
            raise UserError(f"StrandMerge mode must be one of {MERGE_MODES}, got {mode!r}")
        self.mode = mode
        self.axis = int(axis)

    def call(self, inputs: list) -> Any:
        a, b = inputs
        if self.mode == "mean":
            return 0.5 * (a + b)
        if self.mode == "max":
            return ops.maximum(a, b)
        if self.mode == "sigmoid_mean":
            # logit((sigmoid(a) + sigmoid(b)) / 2) computed in log space (stable for large |a|).
            log_p = ops.logaddexp(-ops.softplus(-a), -ops.softplus(-b))
            log_q = ops.logaddexp(-ops.softplus(a), -ops.softplus(b))
            return log_p - log_q
        la = ops.log_softmax(a, axis=self.axis)
        lb = ops.log_softmax(b, axis=self.axis)
        return ops.logaddexp(la, lb) - math.log(2.0)

    def compute_output_shape(self, input_shape: list) -> tuple:
        return input_shape[0]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"mode": self.mode, "axis": self.axis})
        return config

"""Losses of the paper's models, as registered loss objects (string losses break .h5 loading)."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from benchmark_rc.layers.rcps import PACKAGE

_LANCZOS = (
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def log_factorial(n: Any) -> Any:
    """log(n!) = lgamma(n + 1) for n >= 0 (Lanczos g=7; keras.ops has no lgamma).

    Relative error ~1e-7 in float32 (the float32 rounding of the result itself).
    """
    x = ops.ones_like(n) * _LANCZOS[0]
    for i, coef in enumerate(_LANCZOS[1:], start=1):
        x = x + coef / (n + float(i))
    t = n + 7.5
    return _HALF_LOG_2PI + (n + 0.5) * ops.log(t) - t + ops.log(x)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MultinomialNLL(keras.losses.Loss):
    """Profile multinomial negative log-likelihood (paper spec §4.3).

    ``y_true``: counts (B, L, S); ``y_pred``: logits (B, L, S). Per example and strand s,
    -log Multinomial(n_s | N_s = sum_p n_s, softmax_p(logits_s)) including the log multinomial
    coefficient; strands are added, giving (B,); the default reduction averages over the batch
    (sum over the batch divided by the batch size).
    """

    def __init__(
        self, name: str = "multinomial_nll", reduction: str = "sum_over_batch_size", **kwargs: Any
    ) -> None:
        super().__init__(name=name, reduction=reduction, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_true = ops.cast(y_true, y_pred.dtype)
        log_probs = ops.log_softmax(y_pred, axis=1)
        total = ops.sum(y_true, axis=1)
        log_coeff = log_factorial(total) - ops.sum(log_factorial(y_true), axis=1)
        log_like = log_coeff + ops.sum(y_true * log_probs, axis=1)
        return -ops.sum(log_like, axis=-1)

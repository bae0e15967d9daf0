"""Layers that reproduce the original stack (TF 1.15 / Keras 2.2.4 / keras-genomics 0.1.2.1) where
it changes results: the ``compat="original"`` switch of the layer kit (docs/models.md).

The default layers (:mod:`benchmark_rc.layers.rcps`, ``keras.layers.BatchNormalization``) are the
mathematically intended ones; these three reproduce what actually ran in the paper (issue 11,
spec/paper.md §6.1-6.2):

* :class:`KerasGenomicsRevCompConv1D`: keras-genomics' ``RevCompConv1D.call`` does
  ``outputs += K.bias_add(outputs, bias)``, so with a bias the output is
  ``conv + (conv + [b, reversed b])`` = 2·conv + bias (the convolution doubled, the bias not);
  without a bias it is the plain conv. Still exactly RC-equivariant.
* :class:`KerasGenomicsRevCompConv1DBatchNorm`: keras-genomics' ``RevCompConv1DBatchNorm``
  registers its moving-average updates on an internal tensor (Keras 2.2.4 drops them: the moving
  mean / variance stay at their initial 0 / 1) and returns a tensor without Keras 2's
  learning-phase flag (the RCPS model never feeds the learning phase, so the layer takes its
  inference branch in training too). What ran is a learnable per-pair affine map
  ``y = x·γ/√(1 + ε) + β`` (γ, β shared by channel c and its partner 2F-1-c), with no
  statistics, identical in training and inference.
* :class:`Keras2BatchNormalization`: an ordinary batch norm whose moving averages are updated as
  Keras 2.2.4 did on TF 1 (``K.moving_average_update`` =
  ``moving_averages.assign_moving_average(zero_debias=True)``, and the moving variance fed the
  batch variance times n/(n - 1 - ε)); training outputs (batch statistics) and inference
  outputs (moving statistics) are computed as Keras 3 does.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from benchmark_rc.layers.rcps import PACKAGE, RevCompConv1D, RevCompConv1DBatchNorm


@keras.saving.register_keras_serializable(package=PACKAGE)
class KerasGenomicsRevCompConv1D(RevCompConv1D):
    """:class:`RevCompConv1D` with keras-genomics 0.1.2.1's output: 2·conv + [b, reversed b].

    keras-genomics computes ``outputs = conv1d(x, [W, W_rc]); outputs += bias_add(outputs,
    [b, reversed b])``: the bias is added once, the convolution twice; with
    ``use_bias=False`` the output is the plain convolution. The sum is evaluated in the same
    order, conv + (conv + bias). Equivariance, weights, configuration and geometry checks are
    those of :class:`RevCompConv1D`; only the output scale of the kernel term differs (under a
    real batch norm the factor 2 is normalised away; under the affine layer of the original RCPS
    models it doubles the layer's effective kernel, its initial scale and its step size).

    ``filters`` and ``kernel_size`` default to 1 only so that the class can be instantiated bare
    (``benchmark-rc doctor``'s configuration round trip); models always pass both.
    """

    def __init__(self, filters: int = 1, kernel_size: int = 1, **kwargs: Any) -> None:
        super().__init__(filters, kernel_size, **kwargs)

    def _add_bias(self, conv: Any) -> Any:
        return ops.add(conv, ops.add(conv, self.full_bias()))


@keras.saving.register_keras_serializable(package=PACKAGE)
class KerasGenomicsRevCompConv1DBatchNorm(RevCompConv1DBatchNorm):
    """The RC batch norm as it ran in the paper: always the inference branch, never updated.

    y = (x - moving_mean)·γ/√(moving_variance + ε) + β per channel pair (γ, β, the statistics
    shared by channel c and 2F-1-c), in training and in inference alike; nothing updates the
    moving statistics, so with their initial values (0 and 1) the layer is the affine map
    x·γ/√(1 + ε) + β. Same weights (γ, β, moving mean, moving variance: F each) and configuration
    as :class:`RevCompConv1DBatchNorm`, so parameter counts do not change. Exactly
    RC-equivariant in training and inference.
    """

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return super().call(inputs, training=False)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Keras2BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` with Keras 2.2.4 / TF 1's zero-debiased moving averages.

    Keras 2.2.4 (TensorFlow backend) updates each moving statistic with
    ``tf.train.moving_averages.assign_moving_average(var, value, momentum, zero_debias=True)``,
    which keeps a zero-initialised shadow ``biased`` and a step counter ``t``; per training step,
    with d = 1 - momentum::

        biased <- biased - (biased - value) * d          # = momentum*biased + d*value
        t      <- t + 1
        var    <- biased / (1 - (1 - d)**t)

    so after k steps var_k = d * sum_i momentum**(k-i) * value_i / (1 - momentum**k): the
    initial value of the moving statistic (0 or 1) no longer counts after the first step, which
    itself sets it to the batch value. ``value`` is the batch mean for the moving mean; for the
    moving variance it is the (biased) batch variance times n / (n - (1 + ε)), n = the number of
    entries per channel (batch x length), as Keras 2.2.4's BatchNormalization did. Keras 3
    instead updates var <- momentum*var + d*value from the initial value with the biased variance.

    The shadows are non-trainable weights (``biased_mean``, ``biased_variance``, ``local_step``,
    after Keras' four), so a checkpointed run resumes the same averages. Training outputs use
    the batch statistics and inference outputs the moving ones, exactly as Keras 3's layer; a
    frozen layer (``trainable=False``) normalises with the moving statistics and updates nothing.
    ``renorm`` is not supported (Keras 2.2.4 had none). A mask is accepted and, as in
    Keras 2.2.4, not used by the statistics.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.renorm:
            raise ValueError("Keras2BatchNormalization does not support renorm=True")

    def build(self, input_shape: tuple) -> None:
        super().build(input_shape)
        shape = (input_shape[self.axis],)
        self.biased_mean = self.add_weight(
            shape=shape, name="biased_mean", initializer="zeros", trainable=False,
            autocast=False)
        self.biased_variance = self.add_weight(
            shape=shape, name="biased_variance", initializer="zeros", trainable=False,
            autocast=False)
        self.local_step = self.add_weight(
            shape=(), name="local_step", initializer="zeros", trainable=False, autocast=False)

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        if not (training and self.trainable):
            return super().call(inputs, training=False)
        dtype = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, dtype)
        mean, variance = ops.moments(x, axes=self._reduction_axes,
                                     synchronized=self.synchronized)
        shape = ops.shape(x)
        n = ops.cast(shape[self._reduction_axes[0]], dtype)
        for axis in self._reduction_axes[1:]:
            n = n * ops.cast(shape[axis], dtype)
        sample_variance = variance * (n / (n - (1.0 + self.epsilon)))
        decay = ops.cast(1.0 - self.momentum, "float32")
        step = self.local_step + 1.0
        bias_factor = 1.0 - ops.power(1.0 - decay, step)
        for moving, biased, value in ((self.moving_mean, self.biased_mean, mean),
                                      (self.moving_variance, self.biased_variance,
                                       sample_variance)):
            value = ops.cast(value, biased.dtype)
            updated = biased - (biased - value) * decay
            biased.assign(updated)
            moving.assign(updated / bias_factor)
        self.local_step.assign(step)
        gamma = ops.cast(self.gamma, dtype) if self.scale else None
        beta = ops.cast(self.beta, dtype) if self.center else None
        outputs = ops.batch_normalization(x=x, mean=mean, variance=variance, axis=self.axis,
                                          offset=beta, scale=gamma, epsilon=self.epsilon)
        return ops.cast(outputs, self.compute_dtype)

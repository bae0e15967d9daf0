"""The :class:`Task` interface: everything that differs between kinds of prediction problem.

A task owns, in one place, what the rest of the package used to infer from a task-name string:

* its HDF5 arrays (:attr:`Task.arrays`: dtype, shape, the RC rule of a row, whether the array is a
  window the jitter margin crops) and any extra validation of a split;
* the names of the model's inputs (and the stored array each comes from) and of its logits
  outputs, with their RC rules — the single source for RC augmentation in the input pipeline,
  conjoining, rc_divergence, attribution and the equivariance tests;
* the loss, the selection rule of the training protocol, and how validation scores are computed
  during training;
* :meth:`Task.evaluate` (test metrics plus rc_divergence) and the default attribution target;
* :meth:`Task.example_inputs`, random valid inputs of a model for tests.

The RC rules themselves ("regular", "length", "strands", "pairs", "none") are implemented once, in
:data:`benchmark_rc.layers.conjoin.RC_RULE_FUNCTIONS` (numpy and Keras tensors) and, for tf.data
graphs, in :mod:`benchmark_rc.data.pipeline`. Tasks are imported by data_prep, so importing this
module must not import Keras or TensorFlow; methods import them when called.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

RC_RULES = ("regular", "length", "strands", "pairs", "none")


@dataclass(frozen=True)
class ArraySpec:
    """One array of a dataset split.

    Attributes:
        dtype: stored dtype.
        ndim: number of axes, rows first.
        last: size of the last axis, or None when any size is allowed (e.g. T tasks).
        rc_rule: how the RC of a row transforms it (see module docstring).
        windowed: axis 1 is the sequence window, widened by the jitter margin on each side.
    """

    dtype: np.dtype
    ndim: int
    last: int | None
    rc_rule: str
    windowed: bool = False

    def shape_text(self) -> str:
        """Expected shape for messages, e.g. ``(N, …, 4)``."""
        return "(N, " + ", ".join(["…"] * (self.ndim - 2) + [str(self.last or "T")]) + ")"

    def check_shape(self, where: str, shape: tuple) -> None:
        """Raise DatasetError naming ``where`` unless ``shape`` fits this spec."""
        from benchmark_rc.errors import DatasetError

        if len(shape) != self.ndim or (self.last is not None and shape[-1] != self.last):
            raise DatasetError(f"{where} has shape {tuple(shape)}, expected {self.shape_text()}")


class Task:
    """A kind of prediction problem; subclasses fill in the class attributes and hooks.

    Class attributes:
        name: the value of the HDF5 ``task`` attribute and of ``config.json``'s ``task``.
        arrays: stored arrays of a split, ``x`` (uint8 one-hot (N, L, 4)) first.
        model_inputs: model input name -> the stored array it is fed from.
        model_targets: target name -> stored array (or None when derived from other arrays).
        output_rules: logits output name -> RC rule.
        selection: default selection of the kept weights: "auroc" (max) or "loss" (min).
        default_output: default attribution target (task index or head name).
    """

    name: ClassVar[str]
    arrays: ClassVar[Mapping[str, ArraySpec]]
    model_inputs: ClassVar[Mapping[str, str]]
    output_rules: ClassVar[Mapping[str, str]]
    selection: ClassVar[str]
    default_output: ClassVar[Any]

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    # ------------------------------------------------------------------ RC rules

    @property
    def input_rules(self) -> dict[str, str]:
        """Model input name -> RC rule (that of the stored array it is fed from)."""
        return {name: self.arrays[array].rc_rule for name, array in self.model_inputs.items()}

    def rc_inputs(self, x: Any) -> Any:
        """RC of model inputs (a dict by name, or the sequence alone for one-input tasks)."""
        from benchmark_rc.layers.conjoin import RC_RULE_FUNCTIONS

        if not isinstance(x, Mapping):
            return RC_RULE_FUNCTIONS[self.input_rules["sequence"]](x)
        return {key: RC_RULE_FUNCTIONS[self.input_rules[key]](value) for key, value in x.items()}

    def rc_outputs(self, y: Any) -> Any:
        """RC of logits outputs (a dict by name, or the single output of one-output tasks)."""
        from benchmark_rc.layers.conjoin import RC_RULE_FUNCTIONS

        if not isinstance(y, Mapping):
            (rule,) = self.output_rules.values()
            return RC_RULE_FUNCTIONS[rule](y)
        return {key: RC_RULE_FUNCTIONS[self.output_rules[key]](value) for key, value in y.items()}

    # ------------------------------------------------------------------ data

    def check_split(self, where: str, shapes: Mapping[str, tuple], jitter_margin: int) -> None:
        """Task-specific checks of one split's array shapes (raise DatasetError); default none."""

    def model_hparams(self, hparams: dict[str, Any], x_length: int, jitter_margin: int,
                      arrays: Mapping[str, tuple]) -> dict[str, Any]:
        """Architecture hyper-parameters the dataset fixes (``setdefault`` on ``hparams``)."""
        hparams.setdefault("input_length", x_length - 2 * jitter_margin)
        return hparams

    def model_batch(self, arrays: dict[str, Any], jittered: bool) -> tuple[Any, Any]:
        """One batch of stored arrays (tf tensors, already RC-augmented and cropped) ->
        ``(inputs, targets)`` as ``model.fit`` takes them."""
        raise NotImplementedError

    # ------------------------------------------------------------------ models

    def make_loss(self, hp: Mapping[str, Any]) -> tuple[Any, Any]:
        """Loss object(s) and loss weights (or None) of a model of this task."""
        raise NotImplementedError

    def finalize(self, logits_net: Any) -> Any:
        """The user-facing model from a logits network (default: the network itself)."""
        return logits_net

    def merge_modes(self, mode: str) -> dict[str, str]:
        """:class:`~benchmark_rc.layers.StrandMerge` mode per logits output for a conjoin mode
        ("logit", "prob" or "max")."""
        raise NotImplementedError

    # ------------------------------------------------------------------ training and evaluation

    def validation(self, dataset: Any) -> Any:
        """What the training loop validates on each epoch (see :class:`Validation`)."""
        raise NotImplementedError

    def evaluate(self, model: Any, data: str | os.PathLike, split: str = "test", *,
                 batch_size: int | None = None, max_rows: int | None = None) -> dict[str, Any]:
        """Test metrics and ``rc_divergence`` of a model on one split; also ``n`` (rows)."""
        raise NotImplementedError

    def example_inputs(self, model: Any, n: int, seed: int = 0) -> Any:
        """Random valid inputs of ``model``: one-hot sequences with some all-zero (N) rows, and
        non-negative tracks; a dict by input name (the array alone for one-input models)."""
        rng = np.random.default_rng(seed)
        out = {}
        for tensor in model.inputs:
            shape = (n, *tensor.shape[1:])
            if tensor.name == "sequence":
                x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, shape[:2])]
                x[rng.random(shape[:2]) < 0.02] = 0.0  # N bases
                out[tensor.name] = x
            else:
                out[tensor.name] = rng.gamma(2.0, 1.0, shape).astype(np.float32)
        return out if len(out) > 1 else out["sequence"]


class Validation:
    """Per-epoch validation of the training loop.

    ``keras_data``: passed to ``model.fit(validation_data=...)`` (None when the task scores
    validation itself); :meth:`scores` returns the values logged for an epoch, given Keras' logs.
    """

    keras_data: Any = None

    def scores(self, model: Any, logs: Mapping[str, float]) -> dict[str, float]:
        raise NotImplementedError


def predict_batch(model: Any, data: Any) -> Any:
    """One batch through ``model``: numpy array, or dict of numpy arrays for dict outputs."""
    out = model.predict_on_batch(data)
    if isinstance(out, Mapping):
        return {k: np.asarray(v) for k, v in out.items()}
    return np.asarray(out)


def evaluation_batches(data: str | os.PathLike, split: str, batch_size: int,
                       max_rows: int | None) -> Any:
    """Centre-cropped, unaugmented batches of a split (the first ``max_rows`` rows if given)."""
    from benchmark_rc.data.hdf5 import read_attrs, read_split
    from benchmark_rc.data.pipeline import make_dataset

    source: Any = data
    margin = None
    if max_rows:
        arrays = read_split(data, split)
        source = {k: v[:max_rows] for k, v in arrays.items() if isinstance(v, np.ndarray)}
        margin = int(read_attrs(data).get("jitter_margin", 0))
    return make_dataset(source, split, batch_size=batch_size, jitter_margin=margin)

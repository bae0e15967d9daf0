"""Multi-task binary classification of sequences (the paper's simulated and binary tasks).

Stored: ``x`` uint8 (N, L, 4) and ``y`` float32 (N, T) labels. Model: input "sequence", logits
output "logits" (N, T), invariant under RC; the user-facing model ends in a sigmoid layer named
"probabilities". Loss: binary cross-entropy. Selection: best validation auROC (macro over tasks).
Evaluation: auROC, auPRC and rc_divergence = mean |logit(x) − logit(RC x)|.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmark_rc.tasks.base import (
    ArraySpec,
    Task,
    Validation,
    evaluation_batches,
    predict_batch,
)

_MERGES = {"logit": "mean", "max": "max", "prob": "sigmoid_mean"}


class ClassificationTask(Task):
    name = "classification"
    arrays = {
        "x": ArraySpec(np.dtype(np.uint8), 3, 4, "regular", windowed=True),
        "y": ArraySpec(np.dtype(np.float32), 2, None, "none"),
    }
    model_inputs = {"sequence": "x"}
    output_rules = {"logits": "none"}
    selection = "auroc"
    default_output = 0

    def model_hparams(self, hparams: dict[str, Any], x_length: int, jitter_margin: int,
                      arrays: Mapping[str, tuple]) -> dict[str, Any]:
        hparams = super().model_hparams(hparams, x_length, jitter_margin, arrays)
        hparams.setdefault("num_tasks", int(arrays["y"][1]))
        return hparams

    def model_batch(self, arrays: dict[str, Any], jittered: bool) -> tuple[Any, Any]:
        import tensorflow as tf

        return tf.cast(arrays["x"], tf.float32), arrays["y"]

    def make_loss(self, hp: Mapping[str, Any]) -> tuple[Any, Any]:
        import keras

        return keras.losses.BinaryCrossentropy(), None

    def finalize(self, logits_net: Any) -> Any:
        import keras

        probs = keras.layers.Activation("sigmoid", name="probabilities")(logits_net.outputs[0])
        return keras.Model(logits_net.inputs[0], probs, name=logits_net.name)

    def merge_modes(self, mode: str) -> dict[str, str]:
        return {"logits": _MERGES[mode]}

    def validation(self, dataset: Any) -> Validation:
        return ClassificationValidation(dataset)

    def evaluate(self, model: Any, data: str | os.PathLike, split: str = "test", *,
                 batch_size: int | None = None, max_rows: int | None = None) -> dict[str, Any]:
        """auROC, auPRC (sigmoid outputs, macro over tasks) and rc_divergence = mean
        |logit(x) − logit(RC x)|. Every benchmark_rc classifier is sigmoid(layer "logits"), so
        the probabilities are the sigmoid of the logits already predicted (two passes per batch,
        x and RC x, not three)."""
        from scipy.special import expit

        from benchmark_rc import metrics
        from benchmark_rc.registry import logits_model

        logits = logits_model(model)
        ys, fwd, back = [], [], []
        for xb, yb in evaluation_batches(data, split, batch_size or 1000, max_rows):
            ys.append(np.asarray(yb))
            fwd.append(predict_batch(logits, xb))
            back.append(self.rc_outputs(predict_batch(logits, self.rc_inputs(xb))))
        y, f = np.concatenate(ys), np.concatenate(fwd).astype(np.float64)
        out: dict[str, Any] = metrics.classification_metrics(y, expit(f))
        out["rc_divergence"] = metrics.rc_divergence_logits(f, np.concatenate(back))
        out["n"] = int(len(y))
        return out


class ClassificationValidation(Validation):
    """Validation loss (the model's own compiled loss), auROC and auPRC from one prediction
    pass over the validation split per epoch."""

    def __init__(self, dataset: Any) -> None:
        self.y = np.concatenate([np.asarray(yb) for _, yb in dataset])
        self.x = dataset.map(_features)

    def scores(self, model: Any, logs: Mapping[str, float]) -> dict[str, float]:
        import keras

        from benchmark_rc.metrics import classification_metrics

        pred = model.predict(self.x, verbose=0)
        scores = classification_metrics(self.y, pred)
        loss = model.loss
        if isinstance(loss, Mapping):
            loss = next(iter(loss.values()))
        elif isinstance(loss, list | tuple):
            loss = loss[0]
        loss = keras.losses.get(loss) if isinstance(loss, str) else loss
        value = loss(self.y.astype(np.float32), pred.astype(np.float32))
        return {"val_loss": float(keras.ops.convert_to_numpy(value)),
                "val_auroc": scores["auroc"], "val_auprc": scores["auprc"]}


def _features(x: Any, y: Any) -> Any:
    """(x, y) -> x for tf.data (a named function: autograph cannot read lambdas' source)."""
    return x


CLASSIFICATION = ClassificationTask()

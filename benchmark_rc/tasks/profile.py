"""Stranded base-resolution profiles (BPNet-style, the paper's §4 task).

Stored: ``x`` uint8 (N, Lx, 4), ``profile`` float32 (N, P, 2) target counts (+, − strand),
``control`` float32 (N, P, 2) strand-collapsed control (raw, smoothed) and ``control_logcount``
float32 (N, 1); windows widened by ``attrs["jitter_margin"]`` on each side, the profile window
centred in the sequence window. RC rules (DESIGN.md): sequence and profile "regular" (reverse
positions, swap strands), control "length" (reversed along length only, never strand-swapped),
control log count "none", log counts "strands".

Model: inputs "sequence", "control", "control_logcount"; logits outputs "profile" (N, P, 2) and
"counts" (N, 2). Loss: multinomial NLL of the profile plus MSE of the log counts weighted by the
``counts_loss_weight`` hyper-parameter (0 in the paper, so val_loss is the profile MNLL).
Selection: lowest validation loss. Evaluation: JSD, Pearson, Spearman (spec §4.5) and
rc_divergence = mean JSD between the forward and the RC-mapped-back predicted distributions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmark_rc.errors import DatasetError
from benchmark_rc.tasks.base import (
    ArraySpec,
    Task,
    Validation,
    evaluation_batches,
    predict_batch,
)

_PROFILE_MERGES = {"logit": "mean", "max": "max", "prob": "softmax_mean"}


class ProfileTask(Task):
    name = "profile"
    arrays = {
        "x": ArraySpec(np.dtype(np.uint8), 3, 4, "regular", windowed=True),
        "profile": ArraySpec(np.dtype(np.float32), 3, 2, "regular", windowed=True),
        "control": ArraySpec(np.dtype(np.float32), 3, 2, "length", windowed=True),
        "control_logcount": ArraySpec(np.dtype(np.float32), 2, 1, "none"),
    }
    model_inputs = {"sequence": "x", "control": "control", "control_logcount": "control_logcount"}
    output_rules = {"profile": "regular", "counts": "strands"}
    selection = "loss"
    default_output = "profile"

    def check_split(self, where: str, shapes: Mapping[str, tuple], jitter_margin: int) -> None:
        """The output window must be centred in the sequence window and survive the crop."""
        seq_len, out_len = shapes["x"][1], shapes["profile"][1]
        if shapes["control"][1] != out_len:
            raise DatasetError(f"{where}/control has length {shapes['control'][1]}, "
                               f"/profile has {out_len}")
        gap = seq_len - out_len
        if gap < 0 or gap % 2:
            raise DatasetError(f"{where}: /x length {seq_len} and /profile length {out_len} do "
                               "not centre the profile window in the sequence (the difference "
                               "must be even and >= 0)")
        if jitter_margin < 0 or out_len - 2 * jitter_margin < 1:
            raise DatasetError(f"{where}: attribute jitter_margin={jitter_margin} does not fit "
                               f"the stored profile length {out_len} (need 0 <= 2 * margin < "
                               "length)")

    def model_batch(self, arrays: dict[str, Any], jittered: bool) -> tuple[Any, Any]:
        import tensorflow as tf

        control = arrays["control"]
        logcount = arrays["control_logcount"]
        if jittered:  # the stored log count is that of the centred window
            logcount = tf.math.log1p(tf.reduce_sum(control[..., :1], axis=1))
        counts = tf.math.log1p(tf.reduce_sum(arrays["profile"], axis=1))
        inputs = {"sequence": tf.cast(arrays["x"], tf.float32), "control": control,
                  "control_logcount": logcount}
        return inputs, {"profile": arrays["profile"], "counts": counts}

    def make_loss(self, hp: Mapping[str, Any]) -> tuple[Any, Any]:
        import keras

        from benchmark_rc.layers import MultinomialNLL

        losses = {"profile": MultinomialNLL(), "counts": keras.losses.MeanSquaredError()}
        return losses, {"profile": 1.0, "counts": float(hp["counts_loss_weight"])}

    def merge_modes(self, mode: str) -> dict[str, str]:
        return {"profile": _PROFILE_MERGES[mode], "counts": "max" if mode == "max" else "mean"}

    def validation(self, dataset: Any) -> Validation:
        return ProfileValidation(dataset)

    def evaluate(self, model: Any, data: str | os.PathLike, split: str = "test", *,
                 batch_size: int | None = None, max_rows: int | None = None) -> dict[str, Any]:
        """JSD, Pearson, Spearman (spec §4.5, forward strand only) and rc_divergence = mean JSD
        between softmax(f(x)) and softmax(RC_out(f(RC_in x)))."""
        from benchmark_rc import metrics

        true, pred, jsd_rc = [], [], []
        for inputs, targets in evaluation_batches(data, split, batch_size or 64, max_rows):
            forward = predict_batch(model, inputs)["profile"]
            back = self.rc_outputs(predict_batch(model, self.rc_inputs(inputs)))["profile"]
            true.append(np.asarray(targets["profile"]))
            pred.append(metrics.softmax_profile(forward).astype(np.float32))  # memory: N x L x 2
            jsd_rc.append(metrics.rc_jsd_profile(forward, back))
        result: dict[str, Any] = metrics.profile_metrics(np.concatenate(true),
                                                         np.concatenate(pred))
        result["rc_divergence"] = float(np.mean(np.concatenate(jsd_rc)))
        result["n"] = int(sum(len(t) for t in true))
        return result


class ProfileValidation(Validation):
    """Keras computes val_loss on the validation split; this checks it is the profile MNLL.

    Keras 3 logs ``val_profile_loss`` too, but as an unweighted mean over batches (its per-output
    trackers weight by the static batch size, unknown in the traced step), so it differs from
    val_loss whenever the last validation batch is short. The check therefore recomputes the
    sample-weighted MNLL of the validation split itself, once, after the first epoch: the loss
    weights do not change afterwards.
    """

    # val_loss is a float32 running mean over the batches; the recomputation sums in float64
    RTOL = 1e-4

    def __init__(self, dataset: Any) -> None:
        self.keras_data = dataset
        self._checked = False

    def scores(self, model: Any, logs: Mapping[str, float]) -> dict[str, float]:
        """Raise unless val_loss is the profile MNLL (count weight 0; spec §8.1)."""
        if "val_loss" not in logs:
            raise RuntimeError("profile training needs validation data (no val_loss logged)")
        if not self._checked:
            nll = self.profile_nll(model)
            if not math.isclose(logs["val_loss"], nll, rel_tol=self.RTOL):
                raise RuntimeError(f"val_loss {logs['val_loss']} != profile MNLL {nll} of the "
                                   "validation split: the count loss is not weighted 0, early "
                                   "stopping would be wrong")
            self._checked = True
        return {}

    def profile_nll(self, model: Any) -> float:
        """Mean multinomial NLL of the profile output over the validation split."""
        from benchmark_rc.layers import MultinomialNLL

        per_example = MultinomialNLL(reduction="none")
        total, rows = 0.0, 0
        for inputs, targets in self.keras_data:
            logits = predict_batch(model, inputs)["profile"]
            losses = np.asarray(per_example(targets["profile"], logits), np.float64)
            total += float(losses.sum())
            rows += len(losses)
        return total / rows


PROFILE = ProfileTask()

"""Binned-track regression (Enformer / Basenji style): coverage of many tracks in bins.

Stored: ``x`` uint8 (N, L, 4); ``tracks`` float32 (N, B, T) unstranded binned counts (e.g. DNase,
ChIP coverage); ``stranded_tracks`` float32 (N, B, 2S) stranded track pairs, channels
(+1, -1, +2, -2, ...) (e.g. CAGE, PRO-cap, motif-bound coverage on the bound strand). The bins
tile the centre of the sequence window (the architecture says how many; e.g. Enformer 896 bins of
128 bp). ``x`` may be stored widened by ``attrs["jitter_margin"]`` on each side, a shift
augmentation of the sequence against the fixed bins (as Enformer's ±3 bp shifts).

RC rules (the rule table, :data:`benchmark_rc.layers.conjoin.RC_RULE_FUNCTIONS`): the sequence
"regular"; unstranded tracks "length" (reverse the bins); stranded pairs "pairs" (reverse the
bins and swap the strands of each pair).

Model: input "sequence"; outputs "tracks" (N, B, T) and "stranded_tracks" (N, B, 2S), predicted
rates (softplus heads, non-negative). Loss: Poisson NLL of each output (weights 1). Selection:
lowest validation loss. Evaluation: per track, Pearson and Spearman of log(1 + counts) over all
bins of the split, averaged over tracks (stranded channels count as tracks); rc_divergence = mean
|log(1 + f(x)) − log(1 + RC_out f(RC_in x))| over both outputs.
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

OUTPUTS = ("tracks", "stranded_tracks")


class TracksTask(Task):
    name = "tracks"
    arrays = {
        "x": ArraySpec(np.dtype(np.uint8), 3, 4, "regular", windowed=True),
        "tracks": ArraySpec(np.dtype(np.float32), 3, None, "length"),
        "stranded_tracks": ArraySpec(np.dtype(np.float32), 3, None, "pairs"),
    }
    model_inputs = {"sequence": "x"}
    output_rules = {"tracks": "length", "stranded_tracks": "pairs"}
    selection = "loss"
    default_output = "tracks"

    def check_split(self, where: str, shapes: Mapping[str, tuple], jitter_margin: int) -> None:
        """Both track arrays have the same bins, at least one track, an even number of stranded
        channels, and the jitter margin leaves a sequence."""
        bins, stranded = shapes["tracks"][1], shapes["stranded_tracks"][1]
        if stranded != bins:
            raise DatasetError(f"{where}/stranded_tracks has {stranded} bins, /tracks {bins}")
        if shapes["tracks"][2] < 1:
            raise DatasetError(f"{where}/tracks needs at least one track")
        pairs = shapes["stranded_tracks"][2]
        if pairs < 2 or pairs % 2:
            raise DatasetError(f"{where}/stranded_tracks has {pairs} channels; it needs (+, -) "
                               "pairs: an even number, at least 2")
        if jitter_margin < 0 or shapes["x"][1] - 2 * jitter_margin < 1:
            raise DatasetError(f"{where}: attribute jitter_margin={jitter_margin} does not fit "
                               f"the stored sequence length {shapes['x'][1]}")

    def model_hparams(self, hparams: dict[str, Any], x_length: int, jitter_margin: int,
                      arrays: Mapping[str, tuple]) -> dict[str, Any]:
        hparams = super().model_hparams(hparams, x_length, jitter_margin, arrays)
        hparams.setdefault("num_tracks", int(arrays["tracks"][2]))
        hparams.setdefault("num_stranded", int(arrays["stranded_tracks"][2]) // 2)
        hparams.setdefault("output_bins", int(arrays["tracks"][1]))
        return hparams

    def model_batch(self, arrays: dict[str, Any], jittered: bool) -> tuple[Any, Any]:
        import tensorflow as tf

        return tf.cast(arrays["x"], tf.float32), {key: arrays[key] for key in OUTPUTS}

    def make_loss(self, hp: Mapping[str, Any]) -> tuple[Any, Any]:
        import keras

        return {key: keras.losses.Poisson() for key in OUTPUTS}, {key: 1.0 for key in OUTPUTS}

    def merge_modes(self, mode: str) -> dict[str, str]:
        """The outputs are rates already: "logit" and "prob" both average them, "max" takes
        the element-wise maximum."""
        merge = "max" if mode == "max" else "mean"
        return {key: merge for key in OUTPUTS}

    def validation(self, dataset: Any) -> Validation:
        return TracksValidation(dataset)

    def evaluate(self, model: Any, data: str | os.PathLike, split: str = "test", *,
                 batch_size: int | None = None, max_rows: int | None = None) -> dict[str, Any]:
        """Pearson and Spearman of log(1 + counts) per track (tracks and stranded channels;
        means over tracks, and per-track lists) and rc_divergence (module docstring)."""
        from benchmark_rc import metrics

        true = {key: [] for key in OUTPUTS}
        pred = {key: [] for key in OUTPUTS}
        back = {key: [] for key in OUTPUTS}
        for inputs, targets in evaluation_batches(data, split, batch_size or 16, max_rows):
            forward = predict_batch(model, inputs)
            reverse = self.rc_outputs(predict_batch(model, self.rc_inputs(inputs)))
            for key in OUTPUTS:
                true[key].append(np.asarray(targets[key]))
                pred[key].append(forward[key])
                back[key].append(reverse[key])
        joined = {name: np.concatenate([np.concatenate(store[key]) for key in OUTPUTS], axis=-1)
                  for name, store in (("true", true), ("pred", pred), ("back", back))}
        result: dict[str, Any] = metrics.track_metrics(joined["true"], joined["pred"])
        result["rc_divergence"] = metrics.rc_divergence_tracks(joined["pred"], joined["back"])
        result["n"] = int(len(joined["true"]))
        return result


class TracksValidation(Validation):
    """Keras computes val_loss (the summed Poisson losses) on the validation split."""

    def __init__(self, dataset: Any) -> None:
        self.keras_data = dataset

    def scores(self, model: Any, logs: Mapping[str, float]) -> dict[str, float]:
        if "val_loss" not in logs or not math.isfinite(logs["val_loss"]):
            raise RuntimeError(f"track training logged no finite val_loss (logs: {sorted(logs)})")
        return {}


TRACKS = TracksTask()

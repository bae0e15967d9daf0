"""Checkpoints: the loop's state (:class:`TrainState`) and the files of ``RUN/checkpoint/``.

After every epoch the model weights with the optimizer state (``epoch-NNNN.weights.h5``), the
best weights so far (``best.npz``, rewritten only when they change) and ``state.json`` (epoch,
history, early-stopping and selection state, seconds) are written atomically to
``RUN/checkpoint/``; the previous epoch's weights file is removed after ``state.json`` names the
new one. A new call on the same run directory loads them, skips the batches already consumed (the
data stream is a seeded repeated ``tf.data`` pipeline) and continues, so an interrupted run ends
with the same weights as an uninterrupted one. :func:`benchmark_rc.training.train_run` removes
the checkpoint when the run finishes; ``run.json`` there records the parameters a resume must
share (:func:`benchmark_rc.training.run._check_resumable`).

``state.json``'s keys are a file format: a sweep running from another checkout may resume from
it. They are the fields of :class:`TrainState`, in that order.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.fileio import atomic_path, atomic_write_text

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
BEST_FILE = "best.npz"
RUN_FILE = "run.json"


@dataclass
class TrainState:
    """Where a training run stands after its last finished epoch (``state.json``).

    Attributes:
        epoch: last finished epoch (0-based); -1 before the first.
        history: one row per finished epoch: ``epoch``, Keras' logs, the validation scores,
            ``seconds``.
        best_value: selection metric of the kept weights (None before the first epoch).
        best_epoch: epoch of the kept weights; -1 before the first epoch.
        es_best: lowest val_loss so far (early stopping; None when not stopping early).
        es_wait: epochs since ``es_best`` last fell.
        stopped_early: early stopping ended the run.
        seconds: training seconds over all epochs, across resumes.
        resumed_from: the epoch each resume started at.
        weights: file name of the last epoch's weights in the checkpoint directory.
    """

    epoch: int = -1
    history: list[dict[str, float]] = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int = -1
    es_best: float | None = None
    es_wait: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    resumed_from: list[int] = field(default_factory=list)
    weights: str | None = None

    def to_json(self) -> str:
        """The ``state.json`` text (one line, the fields in order)."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrainState:
        """Parse ``state.json``; keys other than the fields are ignored."""
        data = json.loads(text)
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [name for name in names if name not in data]
        if missing:
            raise ValueError(f"training state lacks {missing}")
        return cls(**{name: data[name] for name in names})


class Checkpoint:
    """Files of ``RUN/checkpoint``: state.json, epoch-NNNN.weights.h5, best.npz (and run.json,
    written by :func:`benchmark_rc.training.run._check_resumable`)."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.dir = Path(run_dir) / CHECKPOINT_DIR

    @property
    def state_path(self) -> Path:
        return self.dir / STATE_FILE

    @property
    def run_path(self) -> Path:
        return self.dir / RUN_FILE

    def load_state(self) -> TrainState | None:
        """The saved state, or None when there is no checkpoint."""
        path = self.state_path
        return TrainState.from_json(path.read_text()) if path.is_file() else None

    def save(self, model: Any, state: TrainState, best_weights: list[np.ndarray] | None,
             best_changed: bool) -> None:
        """Write the epoch ``state.epoch``: its weights, best.npz if ``best_changed``, then
        state.json (which names the new weights file); then drop older weights files."""
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{state.epoch:04d}.weights.h5"
        tmp = self.dir / f".partial-{name}"
        model.save_weights(tmp)
        os.replace(tmp, self.dir / name)
        if best_changed and best_weights is not None:
            with atomic_path(self.dir / BEST_FILE) as tmp_best, open(tmp_best, "wb") as f:
                np.savez(f, *best_weights)
        state.weights = name
        atomic_write_text(self.state_path, state.to_json())
        for old in self.dir.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def restore(self, model: Any, state: TrainState) -> list[np.ndarray] | None:
        """Load the epoch weights (and optimizer state) of ``state`` into ``model``; return the
        best weights (None if best.npz is absent)."""
        model.optimizer.build(model.trainable_variables)
        model.load_weights(self.dir / state.weights)
        best = self.dir / BEST_FILE
        if not best.is_file():
            return None
        with np.load(best) as arrays:
            return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

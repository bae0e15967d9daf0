"""The training loop: per-epoch validation, selection of the kept weights, early stopping.

:class:`ProtocolCallback` does the protocol's work at the end of every epoch and keeps its state
in a :class:`~benchmark_rc.training.checkpoint.TrainState`; :func:`fit_model` runs ``model.fit``
with it, resuming from a checkpoint when there is one.

The validation auROC is macro over tasks (sklearn). For classification, validation loss and
auROC come from one prediction pass over the validation split with the model's own compiled
loss; for profiles Keras computes ``val_loss`` and the loop checks after the first epoch that it
is the profile MNLL of the validation split (count-loss weight 0, spec §8.1) and stops with an
error otherwise (the task's :class:`~benchmark_rc.tasks.Validation` computes these scores).

Selection: the kept weights are those of the epoch with the best selection metric (max val auROC
or min val_loss): the first epoch's weights are kept, and a later epoch replaces them when its
value is finite and either strictly better or the kept value is not finite (NaN, inf).
Early stopping follows Keras (stop after ``patience`` epochs without a strictly better value of
the protocol's ``monitor``: val_loss, or val auROC / auPRC for the Koo protocols); a protocol
with ``lr_plateau`` also lowers the learning rate on a plateau of that metric (replayed from the
history, so resumes continue it); ``select="last"`` keeps the last epoch's weights;
unlike Keras 2 the kept weights are the best by the selection metric whether or not training
stopped early.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from benchmark_rc.tasks import Validation
from benchmark_rc.training.checkpoint import Checkpoint, TrainState
from benchmark_rc.training.protocol import Protocol


class ProtocolCallback(keras.callbacks.Callback):
    """The protocol's work at the end of each epoch, on ``state``.

    Logs a history row (Keras' logs, ``validation.scores``, ``seconds``; the scores are also
    added to Keras' logs for later callbacks), keeps a copy of the best weights
    (:attr:`best_weights`), counts epochs for early stopping (sets ``model.stop_training``) and
    writes ``checkpoint`` (when given).

    Args:
        protocol: patience and selection metric (``select``), ``epochs`` for the progress bar.
        validation: the task's per-epoch validation.
        state: the run's state, updated in place (a fresh :class:`TrainState`, or one loaded
            from a checkpoint to continue).
        checkpoint: where to save each epoch; None: save nothing.
        progress: show a tqdm bar over epochs.
        desc: the bar's label.
        best_weights: the kept weights of a resumed run (from :meth:`Checkpoint.restore`).
    """

    def __init__(self, protocol: Protocol, validation: Validation, state: TrainState,
                 checkpoint: Checkpoint | None = None, progress: bool = False, desc: str = "",
                 *, best_weights: list[np.ndarray] | None = None) -> None:
        super().__init__()
        self.protocol = protocol
        self.validation = validation
        self.state = state
        self.checkpoint = checkpoint
        self.progress = progress
        self.desc = desc
        self.best_weights = best_weights
        self.bar: Any = None
        self.t0 = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.protocol.epochs, initial=self.state.epoch + 1,
                            desc=self.desc or "epochs", unit="epoch", leave=False)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        row: dict[str, float] = {"epoch": epoch}
        row.update({k: float(v) for k, v in logs.items()})
        row.update(self.validation.scores(self.model, row))
        row["seconds"] = time.perf_counter() - self.t0
        logs.update({k: v for k, v in row.items() if k != "epoch"})

        select = self.protocol.select
        value = float(epoch) if select == "last" else row[f"val_{select}"]
        best_changed = self._select(epoch, value)
        self._early_stopping(epoch, row[self.protocol.monitor])
        state = self.state
        if self.protocol.lr_plateau is not None:
            row["next_learning_rate"] = self._plateau([*state.history, row])
        state.epoch = epoch
        state.history.append(row)
        state.seconds += row["seconds"]
        if self.checkpoint is not None:
            self.checkpoint.save(self.model, state, self.best_weights, best_changed)
        if self.bar is not None:
            shown = {"loss": row.get("loss", float("nan")), "val_loss": row["val_loss"]}
            if "val_auroc" in row:
                shown["val_auroc"] = row["val_auroc"]
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()})
            self.bar.update(1)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.close()

    def _select(self, epoch: int, value: float) -> bool:
        """Keep the model's weights if ``value`` beats the kept one; True if they were kept."""
        state = self.state
        higher = self.protocol.select in ("auroc", "auprc", "last")
        better = (state.best_value is None or not math.isfinite(state.best_value)
                  or (value > state.best_value if higher else value < state.best_value))
        if not (better and math.isfinite(value) or state.best_epoch < 0):
            return False
        state.best_value, state.best_epoch = float(value), epoch
        self.best_weights = [np.array(w) for w in self.model.get_weights()]
        return True

    def _sign(self) -> float:
        """+1 when the monitored metric is better lower (val_loss), -1 when higher."""
        return 1.0 if self.protocol.monitor == "val_loss" else -1.0

    def _plateau(self, history: list[dict[str, float]]) -> float:
        """Set (and return) the learning rate for the next epoch: Keras' ReduceLROnPlateau
        (min_delta 1e-4, no cooldown) replayed over the whole ``history`` from the initial rate
        recorded in its first row, so a resumed run continues the same schedule."""
        factor, patience, min_lr = self.protocol.lr_plateau
        optimizer = self.model.optimizer
        if "initial_learning_rate" not in history[0]:
            history[0]["initial_learning_rate"] = float(
                keras.ops.convert_to_numpy(optimizer.learning_rate))
        lr = float(history[0]["initial_learning_rate"])
        best, wait, sign = None, 0, self._sign()
        for row in history:
            current = sign * float(row[self.protocol.monitor])
            if best is None or current < best - 1e-4:
                best, wait = current, 0
            else:
                wait += 1
                if wait >= patience:
                    lr, wait = max(lr * factor, min_lr), 0
        optimizer.learning_rate.assign(lr)
        return lr

    def _early_stopping(self, epoch: int, value: float) -> None:
        """Stop after ``patience`` epochs without a strict improvement of the monitored metric
        (``es_best`` holds it signed so that lower is better: -auROC for val_auroc)."""
        state, patience = self.state, self.protocol.patience
        if patience is None:
            return
        val_loss = self._sign() * value
        if state.es_best is None or val_loss < state.es_best:
            state.es_best, state.es_wait = val_loss, 0
        else:
            state.es_wait += 1
            if state.es_wait >= patience and epoch > 0:
                state.stopped_early = True
                self.model.stop_training = True


@dataclass
class FitResult:
    """What :func:`fit_model` did."""

    history: list[dict[str, float]]
    best_epoch: int
    best_value: float
    epochs_run: int
    stopped_early: bool
    train_seconds: float
    resumed_from: list[int]

    @classmethod
    def from_state(cls, state: TrainState) -> FitResult:
        return cls(history=state.history, best_epoch=int(state.best_epoch),
                   best_value=float(state.best_value) if state.best_value is not None
                   else float("nan"),
                   epochs_run=state.epoch + 1, stopped_early=bool(state.stopped_early),
                   train_seconds=float(state.seconds), resumed_from=state.resumed_from)


def fit_model(model: Any, train_ds: Any, steps_per_epoch: int, valid: Validation,
              protocol: Protocol, run_dir: str | os.PathLike, *,
              progress: bool = False, desc: str = "",
              extra_callbacks: list[Any] | None = None) -> FitResult:
    """Train ``model`` by ``protocol``; checkpoint to ``run_dir``; resume if a checkpoint exists.

    Args:
        model: compiled keras.Model (sigmoid outputs (N, T) for classification; bpnet dict
            outputs for profiles).
        train_ds: endless (repeated) tf.data stream of training batches; ``steps_per_epoch``
            batches make one epoch. On resume the consumed batches are skipped.
        valid: the task's per-epoch validation (:meth:`benchmark_rc.tasks.Task.validation`).
        protocol: epochs, patience, selection metric.
        run_dir: directory for ``checkpoint/``.
        progress: show a tqdm bar over epochs.
        extra_callbacks: more Keras callbacks (called after the protocol's own).

    Returns:
        :class:`FitResult`; the model holds the selected (best) weights on return.
    """
    checkpoint = Checkpoint(Path(run_dir))
    state = checkpoint.load_state()
    best_weights: list[np.ndarray] | None = None
    if state is not None:
        best_weights = checkpoint.restore(model, state)
        state.resumed_from.append(state.epoch + 1)
        initial_epoch = state.epoch + 1
    else:
        state = TrainState()
        initial_epoch = 0
    if state.stopped_early or initial_epoch >= protocol.epochs:
        initial_epoch = protocol.epochs  # nothing left to train

    callback = ProtocolCallback(protocol, valid, state, checkpoint, progress, desc,
                                best_weights=best_weights)
    if initial_epoch < protocol.epochs:
        stream = train_ds.skip(initial_epoch * steps_per_epoch) if initial_epoch else train_ds
        fit_kwargs: dict[str, Any] = {}
        if valid.keras_data is not None:
            fit_kwargs["validation_data"] = valid.keras_data
        model.fit(stream, epochs=protocol.epochs, initial_epoch=initial_epoch,
                  steps_per_epoch=steps_per_epoch, verbose=0, shuffle=False,
                  callbacks=[callback, *(extra_callbacks or [])], **fit_kwargs)
    if callback.best_weights is not None:
        model.set_weights(callback.best_weights)
    return FitResult.from_state(state)

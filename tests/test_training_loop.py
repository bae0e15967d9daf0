"""The protocol callback alone: selection, early stopping, checkpoints and resume.

The callback is driven by hand, epoch by epoch, on a tiny model whose weights are set to the
epoch number before each epoch, with a fake validation that returns scripted scores; so every
expected epoch below follows from the scripts and the rules in benchmark_rc.training.selection.
All comparisons are exact: weights are copied, not computed, and scores are the scripted floats.
"""

from __future__ import annotations

import dataclasses
import json
import math

import keras
import numpy as np
import pytest

from benchmark_rc.tasks import Validation
from benchmark_rc.training import (
    PROTOCOLS,
    Checkpoint,
    ProtocolCallback,
    TrainState,
)

# state.json is read by sweeps running from other checkouts: its keys are a file format
STATE_KEYS = ["epoch", "history", "best_value", "best_epoch", "es_best", "es_wait",
              "stopped_early", "seconds", "resumed_from", "weights"]


class FakeValidation(Validation):
    """Scripted scores: ``scores[epoch]`` for each epoch (``val_loss`` and maybe ``val_auroc``)."""

    def __init__(self, scores: list[dict[str, float]]) -> None:
        self.script = scores
        self.calls: list[int] = []

    def scores(self, model, logs):
        epoch = int(logs["epoch"])
        self.calls.append(epoch)
        return dict(self.script[epoch])


def _model() -> keras.Model:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.optimizer.build(model.trainable_variables)  # as after model.fit's first step
    return model


def _protocol(**kw):
    base = dict(epochs=10, patience=None, select="auroc")
    return dataclasses.replace(PROTOCOLS["sim"], **{**base, **kw})


def _weights_of(epoch: int, model: keras.Model) -> list[np.ndarray]:
    return [np.full(w.shape, float(epoch), w.dtype) for w in model.get_weights()]


def _drive(callback: ProtocolCallback, model: keras.Model, epochs, logs_seen=None) -> None:
    """Run the callback's epoch hooks as model.fit would, the weights filled with the epoch."""
    for epoch in epochs:
        model.set_weights(_weights_of(epoch, model))
        callback.on_epoch_begin(epoch)
        logs = {"loss": 0.25}
        callback.on_epoch_end(epoch, logs)
        if logs_seen is not None:
            logs_seen.append(logs)
        if model.stop_training:
            break


def _callback(protocol, scores, state=None, checkpoint=None, best_weights=None):
    model = _model()
    callback = ProtocolCallback(protocol, FakeValidation(scores), state or TrainState(),
                                checkpoint, best_weights=best_weights)
    callback.set_model(model)
    return callback, model


def _assert_weights(got, epoch, model):
    assert got is not None
    for a, b in zip(got, _weights_of(epoch, model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_selection_keeps_the_first_strictly_best_auroc():
    aurocs = [0.6, 0.8, 0.7, 0.8, 0.5]  # epoch 3 only ties epoch 1: not strictly better
    scores = [{"val_loss": 1.0 - i / 10, "val_auroc": a} for i, a in enumerate(aurocs)]
    callback, model = _callback(_protocol(select="auroc"), scores)
    seen: list[dict] = []
    _drive(callback, model, range(5), seen)
    state = callback.state
    assert (state.best_epoch, state.best_value) == (1, 0.8)
    _assert_weights(callback.best_weights, 1, model)
    assert [row["epoch"] for row in state.history] == [0, 1, 2, 3, 4]
    assert [row["val_auroc"] for row in state.history] == aurocs
    assert state.history[2]["loss"] == 0.25 and state.epoch == 4
    # later callbacks see the validation scores in Keras' logs
    assert [logs["val_auroc"] for logs in seen] == aurocs
    assert not model.stop_training and not state.stopped_early  # patience None


def test_selection_by_loss_keeps_the_lowest_val_loss():
    losses = [1.0, 0.7, 0.9, 0.6, 0.65]
    callback, model = _callback(_protocol(select="loss"), [{"val_loss": v} for v in losses])
    _drive(callback, model, range(5))
    assert (callback.state.best_epoch, callback.state.best_value) == (3, 0.6)
    _assert_weights(callback.best_weights, 3, model)


def test_selection_with_non_finite_values():
    # the first epoch is kept even with NaN; a finite value then replaces it; NaN never does
    aurocs = [math.nan, math.nan, 0.55, math.nan, 0.5]
    scores = [{"val_loss": 1.0, "val_auroc": a} for a in aurocs]
    callback, model = _callback(_protocol(select="auroc"), scores)
    _drive(callback, model, range(2))
    assert callback.state.best_epoch == 0 and math.isnan(callback.state.best_value)
    _assert_weights(callback.best_weights, 0, model)
    _drive(callback, model, range(2, 5))
    assert (callback.state.best_epoch, callback.state.best_value) == (2, 0.55)
    _assert_weights(callback.best_weights, 2, model)


@pytest.mark.parametrize("patience", [1, 2, 3])
def test_early_stopping_after_patience_epochs_without_strictly_lower_val_loss(patience):
    # lowest at epoch 1; epoch 2 only equals it (no reset); the rest are higher
    losses = [1.0, 0.8, 0.8, 0.9, 0.85, 0.95, 0.99]
    scores = [{"val_loss": v, "val_auroc": 0.5} for v in losses]
    callback, model = _callback(_protocol(patience=patience), scores)
    _drive(callback, model, range(len(losses)))
    stop = 1 + patience  # the last epoch run
    assert callback.state.stopped_early and model.stop_training
    assert callback.state.epoch == stop
    assert [row["epoch"] for row in callback.state.history] == list(range(stop + 1))
    assert (callback.state.es_best, callback.state.es_wait) == (0.8, patience)


def test_no_early_stopping_while_val_loss_keeps_falling():
    losses = [1.0, 0.9, 0.8, 0.7, 0.6]
    scores = [{"val_loss": v, "val_auroc": 0.5} for v in losses]
    callback, model = _callback(_protocol(patience=1), scores)
    _drive(callback, model, range(5))
    assert not callback.state.stopped_early and not model.stop_training
    assert callback.state.es_wait == 0 and callback.state.es_best == 0.6


def test_a_checkpoint_is_written_after_every_epoch(tmp_path):
    aurocs = [0.6, 0.7, 0.65]
    scores = [{"val_loss": 1.0, "val_auroc": a} for a in aurocs]
    checkpoint = Checkpoint(tmp_path)
    callback, model = _callback(_protocol(patience=5), scores, checkpoint=checkpoint)
    for epoch in range(3):
        _drive(callback, model, [epoch])
        text = checkpoint.state_path.read_text()
        assert list(json.loads(text)) == STATE_KEYS
        saved = TrainState.from_json(text)
        assert saved.epoch == epoch and len(saved.history) == epoch + 1
        assert saved.weights == f"epoch-{epoch:04d}.weights.h5"
        assert [p.name for p in checkpoint.dir.glob("epoch-*")] == [saved.weights]
        # the epoch's weights as saved, and the best weights so far (epoch 1 from then on)
        fresh = _model()
        fresh.load_weights(checkpoint.dir / saved.weights)
        _assert_weights(fresh.get_weights(), epoch, model)
        with np.load(checkpoint.dir / "best.npz") as best:
            _assert_weights([best[f"arr_{i}"] for i in range(len(best.files))],
                            min(epoch, 1), model)
    assert saved.best_epoch == 1 and saved.es_wait == 2


def test_a_resumed_state_continues_selection_and_early_stopping(tmp_path):
    # uninterrupted: best auROC at epoch 2, val_loss lowest at epoch 1, patience 3 -> stops at 4
    scores = [{"val_loss": 1.0, "val_auroc": 0.6}, {"val_loss": 0.5, "val_auroc": 0.7},
              {"val_loss": 0.6, "val_auroc": 0.9}, {"val_loss": 0.7, "val_auroc": 0.8},
              {"val_loss": 0.8, "val_auroc": 0.95}, {"val_loss": 0.4, "val_auroc": 0.99}]
    protocol = _protocol(patience=3)
    checkpoint = Checkpoint(tmp_path)
    callback, model = _callback(protocol, scores, checkpoint=checkpoint)
    _drive(callback, model, range(3))  # killed after epoch 2
    state = checkpoint.load_state()
    assert (state.epoch, state.best_epoch, state.es_wait) == (2, 2, 1)
    model = _model()
    best = checkpoint.restore(model, state)
    _assert_weights(model.get_weights(), 2, model)
    resumed = ProtocolCallback(protocol, FakeValidation(scores), state, checkpoint,
                               best_weights=best)
    resumed.set_model(model)
    _drive(resumed, model, range(3, 6))
    # epoch 3 does not beat the restored best (0.9); epoch 4 does; the wait, restored at 1,
    # reaches 3 at epoch 4, so epoch 5 (the lowest loss of all) is never run
    assert (state.best_epoch, state.best_value) == (4, 0.95)
    _assert_weights(resumed.best_weights, 4, model)
    assert state.stopped_early and state.epoch == 4
    assert [row["epoch"] for row in state.history] == [0, 1, 2, 3, 4]
    assert resumed.validation.calls == [3, 4]
    assert TrainState.from_json(checkpoint.state_path.read_text()) == state


def test_train_state_round_trips_and_rejects_incomplete_files():
    state = TrainState(epoch=3, history=[{"epoch": 0, "val_loss": 0.5}], best_value=0.7,
                       best_epoch=2, es_best=0.5, es_wait=1, stopped_early=True, seconds=1.5,
                       resumed_from=[2], weights="epoch-0003.weights.h5")
    text = state.to_json()
    assert list(json.loads(text)) == STATE_KEYS
    assert TrainState.from_json(text) == state
    assert TrainState.from_json(json.dumps({**json.loads(text), "later": 1})) == state
    with pytest.raises(ValueError, match="es_wait"):
        TrainState.from_json(json.dumps({k: v for k, v in json.loads(text).items()
                                         if k != "es_wait"}))

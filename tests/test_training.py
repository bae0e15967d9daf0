"""The training loop: best-auROC weights, early stopping, resume after a kill, determinism.

Exact comparisons here are reproducibility: the same seed, data stream and ops, run again in
this process on this machine, give the same bits (set_determinism; same kernels for the same
shapes). Independent re-computations of metrics use the same batches as the package, so they
see the very same predictions: rank metrics (auROC) cannot flip on a near tie, and what is left
is float64 arithmetic. Values computed along another path get float32 tolerances (conftest).
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import assert_f32_close, f32_rtol, model_terms
from sklearn.metrics import roc_auc_score

from benchmark_rc.data.pipeline import make_dataset
from benchmark_rc.tasks import CLASSIFICATION
from benchmark_rc.training import (
    PROTOCOLS,
    TrainConfig,
    fit_model,
    set_determinism,
)

N_TRAIN, N_VALID, LENGTH = 192, 96, 24
BATCH, VALID_BATCH = 32, 64
STEPS = N_TRAIN // BATCH
# float64 metrics (auROC, JSD, correlations) recomputed from the same predictions: a few hundred
# float64 operations, so 1e-12 relative (~5e3 float64 eps) only absorbs another summation order
F64_REL = 1e-12
# a control must miss the bar of the check it controls even when the bar is this much looser
CONTROL_MARGIN = 100


def _arrays(n: int, seed: int) -> dict[str, np.ndarray]:
    """Task 0: 'ACGT' present; task 1: 'GGG' present (both strands count)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 4, size=(n, LENGTH))
    y = np.zeros((n, 2), np.float32)
    for i in range(n):
        if rng.random() < 0.5:
            p = rng.integers(0, LENGTH - 4)
            idx[i, p:p + 4] = [0, 1, 2, 3]
            y[i, 0] = 1
        if rng.random() < 0.5:
            p = rng.integers(0, LENGTH - 3)
            idx[i, p:p + 3] = 2
            y[i, 1] = 1
    # label noise so that validation auROC is not saturated
    flip = rng.random(y.shape) < 0.15
    y = np.where(flip, 1 - y, y).astype(np.float32)
    return {"x": np.eye(4, dtype=np.uint8)[idx], "y": y}


TRAIN = _arrays(N_TRAIN, 0)
VALID = _arrays(N_VALID, 1)


def _model() -> keras.Model:
    inputs = keras.Input((LENGTH, 4))
    h = keras.layers.Conv1D(8, 4, activation="relu")(inputs)
    h = keras.layers.GlobalMaxPooling1D()(h)
    out = keras.layers.Dense(2, activation="sigmoid")(h)
    model = keras.Model(inputs, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.BinaryCrossentropy())
    return model


def _setup(seed: int = 7):
    set_determinism(seed)
    model = _model()
    train_ds = make_dataset(TRAIN, "train", batch_size=BATCH, shuffle=True, seed=seed,
                            repeat=True)
    valid_ds = make_dataset(VALID, "valid", batch_size=VALID_BATCH)
    return model, train_ds, CLASSIFICATION.validation(valid_ds)


def _protocol(**kw):
    base = dict(batch_size=BATCH, epochs=5, steps_per_epoch=STEPS, patience=None, select="auroc")
    base.update(kw)
    import dataclasses

    return dataclasses.replace(PROTOCOLS["sim"], **base)


class _Record(keras.callbacks.Callback):
    """Records weights and an independently computed validation auROC after every epoch."""

    def __init__(self):
        super().__init__()
        self.weights, self.aurocs, self.logged = [], [], []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([np.array(w) for w in self.model.get_weights()])
        # the validation batches of fit_model: same kernels, so the very same predictions
        pred = self.model.predict(VALID["x"].astype(np.float32), batch_size=VALID_BATCH,
                                  verbose=0)
        self.aurocs.append(roc_auc_score(VALID["y"], pred, average="macro"))
        self.logged.append(logs["val_auroc"])


class _ZeroFrom(keras.callbacks.Callback):
    """From ``epoch`` on: every weight 0 and learning rate 0, so the model predicts a constant."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.set_weights([np.zeros_like(w) for w in self.model.get_weights()])
            self.model.optimizer.learning_rate.assign(0.0)


def test_keeps_weights_of_best_validation_auroc(tmp_path):
    model, train_ds, valid = _setup()
    record = _Record()
    result = fit_model(model, train_ds, STEPS, valid, _protocol(epochs=5), tmp_path,
                       extra_callbacks=[record, _ZeroFrom(3)])
    assert record.logged == pytest.approx(record.aurocs, rel=F64_REL)
    # exact: a constant prediction ties every pair, auROC 1/2
    assert record.aurocs[3] == 0.5 and record.aurocs[4] == 0.5
    best = int(np.argmax(record.aurocs))
    assert best < 3 and result.best_epoch == best
    assert result.best_value == pytest.approx(record.aurocs[best], rel=F64_REL)
    for got, want in zip(model.get_weights(), record.weights[best], strict=True):
        np.testing.assert_array_equal(got, want)  # exact: the restored copy of those weights
    # the last epoch's weights (all zero) differ: the choice mattered
    assert not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), record.weights[-1],
                                                        strict=True))
    assert [row["epoch"] for row in result.history] == [0, 1, 2, 3, 4]
    assert result.epochs_run == 5 and not result.stopped_early


class _FreezeFrom(keras.callbacks.Callback):
    """Learning rate 0 from ``epoch`` on: val_loss stops improving."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.optimizer.learning_rate.assign(0.0)


def test_early_stopping_on_val_loss(tmp_path):
    model, train_ds, valid = _setup()
    patience = 2
    result = fit_model(model, train_ds, STEPS, valid,
                       _protocol(epochs=20, patience=patience, select="auroc"), tmp_path,
                       extra_callbacks=[_FreezeFrom(2)])
    losses = [row["val_loss"] for row in result.history]
    best = int(np.argmin(losses))
    assert result.stopped_early
    assert result.epochs_run == best + patience + 1 < 20
    # the validation loss is the model's compiled loss on the validation set
    pred = model.predict(VALID["x"].astype(np.float32), verbose=0)  # best-auROC weights
    assert np.isfinite(losses).all() and pred.shape == VALID["y"].shape


class _Kill(keras.callbacks.Callback):
    """Simulates a kill right after the checkpoint of ``epoch`` was written."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated kill")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    model, train_ds, valid = _setup()
    result = fit_model(model, train_ds, STEPS, valid, _protocol(epochs=4),
                       tmp_path_factory.mktemp("full"))
    return model.get_weights(), result


def test_resume_after_kill_gives_identical_weights(tmp_path, uninterrupted):
    full_weights, full = uninterrupted
    model, train_ds, valid = _setup()
    with pytest.raises(KeyboardInterrupt):
        fit_model(model, train_ds, STEPS, valid, _protocol(epochs=4), tmp_path,
                  extra_callbacks=[_Kill(1)])
    state = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 1 and len(list((tmp_path / "checkpoint").glob("epoch-*"))) == 1
    model, train_ds, valid = _setup()  # a fresh process would rebuild everything
    resumed = fit_model(model, train_ds, STEPS, valid, _protocol(epochs=4), tmp_path)
    assert resumed.resumed_from == [2]
    assert [row["epoch"] for row in resumed.history] == [0, 1, 2, 3]  # nothing lost or repeated
    assert resumed.best_epoch == full.best_epoch
    # exact: reproducibility in one process (checkpointed state restored bit for bit, then the
    # same deterministic steps on the same kernels)
    for got, want in zip(model.get_weights(), full_weights, strict=True):
        np.testing.assert_array_equal(got, want)
    for a, b in zip(resumed.history, full.history, strict=True):
        assert a["val_auroc"] == b["val_auroc"] and a["loss"] == b["loss"]


def test_same_seed_bit_identical_other_seed_differs(tmp_path, uninterrupted):
    full_weights, _ = uninterrupted
    model, train_ds, valid = _setup(seed=7)
    fit_model(model, train_ds, STEPS, valid, _protocol(epochs=4), tmp_path / "a")
    # exact: same seed, same process and machine, deterministic ops
    for got, want in zip(model.get_weights(), full_weights, strict=True):
        np.testing.assert_array_equal(got, want)
    model, train_ds, valid = _setup(seed=8)
    fit_model(model, train_ds, STEPS, valid, _protocol(epochs=4), tmp_path / "b")
    assert not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), full_weights,
                                                        strict=True))


def test_protocol_defaults_and_overrides():
    sim = TrainConfig(data="x.h5", arch="sim", strategy="standard").resolved_protocol()
    assert (sim.batch_size, sim.epochs, sim.patience, sim.select) == (500, 200, 10, "auroc")
    binary = TrainConfig(data="x.h5", arch="binary", strategy="rcaug").resolved_protocol()
    assert (binary.batch_size, binary.epochs, binary.steps_per_epoch, binary.patience,
            binary.upsample) == (100, 160, 50, None, 0.2)
    profile = TrainConfig(data="x.h5", arch="bpnet", strategy="rcps").resolved_protocol()
    assert (profile.batch_size, profile.jitter, profile.select, profile.patience) == (
        64, 200, "loss", 10)
    small = TrainConfig(data="x.h5", arch="sim", strategy="rcps", epochs=3, batch_size=16,
                        patience=0).resolved_protocol()
    assert (small.epochs, small.batch_size, small.patience) == (3, 16, None)


@pytest.fixture(scope="module")
def profile_runs(tmp_path_factory):
    from benchmark_rc.data.simulation_profile import simulate_profile
    from benchmark_rc.training import train_run

    out = tmp_path_factory.mktemp("profile")
    data = simulate_profile(out / "tiny.h5", num_seqs=60, seq_len=306, out_len=200,
                            jitter_margin=8)
    runs = {}
    for strategy in ("rcps", "standard"):
        config = TrainConfig(data=str(data), arch="bpnet", strategy=strategy, seed=3, epochs=2,
                             batch_size=8, jitter=8, hparams={"filters": 4, "n_dilated": 2})
        runs[strategy] = (train_run(config, out / strategy), out / strategy)
    return str(data), runs


def test_profile_val_loss_is_the_multinomial_nll(profile_runs):
    from scipy.special import softmax
    from scipy.stats import multinomial

    from benchmark_rc.registry import load_model

    data, runs = profile_runs
    summary, run_dir = runs["rcps"]
    assert summary["selected_by"] == "loss" and summary["protocol"]["jitter"] == 8
    history = pd.read_csv(run_dir / "history.csv")
    # equal in real arithmetic (counts loss weight 0); Keras keeps the two means in separate
    # trackers over the validation batches: a few roundings per batch
    from benchmark_rc.data.hdf5 import validate

    n_batches = -(-validate(data)["valid"] // 8)  # batch size 8 (the runs' config)
    assert_f32_close(history["val_loss"], history["val_profile_loss"],
                     rtol=f32_rtol(4 * n_batches))
    model = load_model(run_dir / "model.keras")
    nll = []
    for inputs, targets in make_dataset(data, "valid", batch_size=16):
        probs = softmax(np.asarray(model.predict_on_batch(inputs)["profile"], np.float64), axis=1)
        counts = np.asarray(targets["profile"]).round()
        for n in range(len(counts)):
            nll.append(-sum(multinomial.logpmf(counts[n, :, s], counts[n, :, s].sum(),
                                               probs[n, :, s]) for s in range(2)))
    best = history.loc[history["val_loss"].idxmin()]
    assert int(best["epoch"]) == summary["best_epoch"]
    # float32 model and loss (batches of 8 in training, 16 here: other kernels) vs float64
    # scipy: the model's terms, then per strand a 200-position log-softmax, 200 count x log p
    # products summed, 200 log-factorials (~16 roundings each) summed
    rtol = f32_rtol(model_terms(model), 200, 200, 200, 16)
    assert best["val_loss"] == pytest.approx(np.mean(nll), rel=rtol)


def test_profile_val_loss_check_with_a_short_last_batch_and_a_weighted_count_loss(
        profile_runs, tmp_path):
    # Keras 3 logs val_profile_loss as an unweighted mean over batches, so with a short last
    # validation batch it differs from val_loss; the check recomputes the weighted MNLL instead
    from benchmark_rc.data.hdf5 import validate
    from benchmark_rc.training import train_run

    data, _ = profile_runs
    n_valid = validate(data)["valid"]
    eval_batch = 4
    assert n_valid % eval_batch, "the split must end in a short batch for this test"
    base = dict(data=data, arch="bpnet", strategy="standard", seed=3, epochs=1, batch_size=8,
                eval_batch_size=eval_batch, jitter=8)
    summary = train_run(TrainConfig(**base, hparams={"filters": 4, "n_dilated": 2}),
                        tmp_path / "weight0")
    assert summary["epochs_run"] == 1
    with pytest.raises(RuntimeError, match="count loss is not weighted 0"):
        train_run(TrainConfig(**base, hparams={"filters": 4, "n_dilated": 2,
                                               "counts_loss_weight": 1.0}), tmp_path / "weight1")


def test_profile_evaluation_and_rc_divergence(profile_runs):
    from benchmark_rc import metrics
    from benchmark_rc.registry import load_model
    from benchmark_rc.training import evaluate_model

    data, runs = profile_runs
    models = {s: load_model(d / "model.keras") for s, (_, d) in runs.items()}
    scores = {s: evaluate_model(m, data, batch_size=16) for s, m in models.items()}
    # rc_divergence is a JSD between softmax(logits) and the RC-mapped prediction: 0 in exact
    # arithmetic for rcps, and quadratic in a logit difference d (JSD <= d**2 / 2 to second
    # order); d is the model's float32 round-off at the logits' scale. Allow d**2.
    pred, bars = [], {}
    for strategy, model in models.items():
        logits = [model.predict_on_batch(inputs)["profile"]
                  for inputs, _ in make_dataset(data, "test", batch_size=16)]
        scale = max(float(np.max(np.abs(b))) for b in logits)
        bars[strategy] = (f32_rtol(model_terms(model)) * scale) ** 2
        if strategy == "standard":
            pred = [metrics.softmax_profile(b).astype(np.float32) for b in logits]
    assert scores["rcps"]["rc_divergence"] <= bars["rcps"]
    assert scores["standard"]["rc_divergence"] > CONTROL_MARGIN * bars["standard"]
    # the same batches and the same float32 cast as evaluate_model: identical predictions, so
    # the metrics are the same float64 computation
    true = [np.asarray(t["profile"]) for _, t in make_dataset(data, "test", batch_size=16)]
    expected = metrics.profile_metrics(np.concatenate(true), np.concatenate(pred))
    for key in ("jsd", "pearson", "spearman"):
        assert scores["standard"][key] == pytest.approx(expected[key], rel=F64_REL)
    assert 0 < scores["standard"]["jsd"] < np.log(2)


def test_train_cli_mirrored_and_posthoc_refusal(tmp_path, capsys):
    from benchmark_rc.cli import main
    from benchmark_rc.data.hdf5 import write_dataset
    from benchmark_rc.errors import UserError
    from benchmark_rc.training import train_run

    rng = np.random.default_rng(0)
    splits = {}
    for split, n in (("train", 64), ("valid", 32), ("test", 32)):
        x = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, size=(n, 200))]
        splits[split] = {"x": x, "y": rng.integers(0, 2, size=(n, 3)).astype(np.float32)}
    data = tmp_path / "tiny.h5"
    write_dataset(data, "classification", splits, params={"generator": "test"})
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--arch", "sim", "--strategy", "rcps", "--seed",
                 "1", "--epochs", "1", "--batch-size", "32", "--out", str(out),
                 "--distribute", "mirrored", "--no-progress", "--hparam", "filters=6"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["distribute"] == "mirrored"
    assert config["model_hparams"] == {"filters": 6, "input_length": 200, "num_tasks": 3}
    assert config["steps_per_epoch"] == 2 and config["epochs_run"] == 1
    assert '"best_epoch": 0' in capsys.readouterr().out
    with pytest.raises(UserError, match="conjoin"):
        train_run(TrainConfig(data=str(data), arch="sim", strategy="posthoc"), tmp_path / "p")


def test_checkpoint_refuses_resume_with_other_data_stream(tmp_path):
    from benchmark_rc.errors import UserError
    from benchmark_rc.training import _check_resumable

    base = TrainConfig(data=str(tmp_path / "d.h5"), arch="sim", strategy="rcps", seed=1)
    _check_resumable(tmp_path, base)
    (tmp_path / "checkpoint" / "state.json").write_text("{}")
    _check_resumable(tmp_path, TrainConfig(**{**base.to_dict(), "epochs": 50}))  # may change
    with pytest.raises(UserError, match="seed"):
        _check_resumable(tmp_path, TrainConfig(**{**base.to_dict(), "seed": 2}))


@pytest.mark.parametrize("strategy", ["standard", "posthoc-prob"])
def test_classification_evaluation_matches_independent_computation(tmp_path, strategy):
    """auROC / auPRC on the model's own sigmoid outputs; rc_divergence on its logits."""
    from scipy.special import expit
    from sklearn.metrics import average_precision_score

    from benchmark_rc.data.hdf5 import write_dataset
    from benchmark_rc.registry import build_model, conjoin, logits_model
    from benchmark_rc.strategies import get_strategy
    from benchmark_rc.training import evaluate_model

    rng = np.random.default_rng(2)
    test = _arrays(40, 3)
    splits = {s: test for s in ("train", "valid", "test")}
    data = tmp_path / "tiny.h5"
    write_dataset(data, "classification", splits, params={"generator": "test"})
    model = build_model("sim", "standard", input_length=LENGTH, num_tasks=2, filters=4,
                        kernel_sizes=(5,), pool_size=4, pool_stride=4, seed=1)
    for w in model.trainable_weights:  # random, not the zero biases / unit gammas of the init
        w.assign(rng.normal(0, 1.0, w.shape))
    mode = get_strategy(strategy).posthoc
    if mode:
        model = conjoin(model, "sim", mode)
    x = test["x"].astype(np.float32)
    batch = 16  # evaluate_model's batches: the same kernels, so the very same logits
    logits = logits_model(model)

    def predict(m, inputs):
        return np.concatenate([np.asarray(m.predict_on_batch(inputs[i:i + batch]))
                               for i in range(0, len(inputs), batch)]).astype(np.float64)

    probs, fwd = predict(model, x), predict(logits, x)
    rev = predict(logits, x[:, ::-1, ::-1].copy())
    rtol = f32_rtol(model_terms(model), 16)  # two forward passes, TF's sigmoid vs scipy's
    assert_f32_close(probs, expit(fwd), rtol=rtol)
    scores = evaluate_model(model, data, batch_size=batch)
    assert scores["n"] == 40
    # the package ranks expit(logits) in float64; ranking the float32 probabilities could
    # break float32 ties differently, so the reference ranks the same values
    assert scores["auroc"] == pytest.approx(roc_auc_score(test["y"], expit(fwd)), rel=F64_REL)
    assert scores["auprc"] == pytest.approx(average_precision_score(test["y"], expit(fwd)),
                                            rel=F64_REL)
    assert scores["rc_divergence"] == pytest.approx(np.mean(np.abs(fwd - rev)), rel=F64_REL)
    # post-hoc conjoined: 0 in exact arithmetic; mean |logit difference| <= the model's
    # round-off at the logits' scale. The plain model must miss that by far.
    bar = rtol * float(np.max(np.abs(fwd)))
    if mode:
        assert scores["rc_divergence"] <= bar
    else:
        assert scores["rc_divergence"] > CONTROL_MARGIN * bar

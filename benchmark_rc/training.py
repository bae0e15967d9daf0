"""The training protocol of the paper (spec/paper.md §2.3, §3.5, §4.3), checkpoints and evaluation.

One loop (:func:`fit_model`) serves every task; a :class:`Protocol` says how:

=========  ======  =======================  =================  ===================  ============
protocol   batch   epochs                   early stopping     weights kept         data
=========  ======  =======================  =================  ===================  ============
sim        500     ≤ 200 passes             val_loss, pat. 10  best val auROC       RCAug: the
                                                                                    doubled set
                                                                                    [x, RC x],
                                                                                    shuffled
binary     100     160 × 50-step epochs     none               best val auROC       upsampled
                                                                                    stream (0.2),
                                                                                    RCAug within
profile    64      ≤ 200 passes             val_loss (= the    best val_loss        jitter 200,
                                            profile MNLL),                          RCAug within
                                            pat. 10
=========  ======  =======================  =================  ===================  ============

The validation auROC is macro over tasks (sklearn). For classification, validation loss and
auROC come from one prediction pass over the validation split with the model's own compiled
loss; for profiles Keras computes ``val_loss`` and the loop checks on every epoch that it equals
``val_profile_loss`` (count-loss weight 0, spec §8.1) and stops with an error otherwise.
Early stopping follows Keras (stop after ``patience`` epochs without a strictly lower val_loss);
unlike Keras 2 the kept weights are the best by the selection metric whether or not training
stopped early.

Checkpoints and resume: after every epoch the model weights with the optimizer state
(``epoch-NNNN.weights.h5``), the best weights so far (``best.npz``) and ``state.json`` (epoch,
history, early-stopping and selection state, seconds) are written atomically to
``RUN/checkpoint/``. A new call on the same run directory loads them, skips the batches already
consumed (the data stream is a seeded repeated ``tf.data`` pipeline) and continues, so an
interrupted run ends with the same weights as an uninterrupted one. The checkpoint is removed
when the run finishes.

Outputs of a finished run: ``model.keras`` (saved first: an .h5 save strips the optimizer from
the live model, keras3_notes §1), ``model.h5``, ``history.csv`` and ``config.json`` (every
parameter, the resolved protocol, the dataset attributes, versions, best epoch, seconds;
written last, so its presence marks a finished run).

Determinism: :func:`set_determinism` calls ``keras.utils.set_random_seed`` and
``tf.config.experimental.enable_op_determinism``: with the same seed two runs give bit-identical
weights on CPU (keras3_notes §5).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.errors import UserError
from benchmark_rc.fileio import atomic_path, atomic_write_text, json_default
from benchmark_rc.tasks import CLASSIFICATION, PROFILE, Task, Validation, get_task

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoint"


@dataclass(frozen=True)
class Protocol:
    """How one task is trained (see the module table)."""

    name: str
    task: Task
    batch_size: int
    epochs: int
    steps_per_epoch: int | None  # None: one pass over the training split
    patience: int | None  # early stopping on val_loss; None: never stop early
    select: str  # weights kept: "auroc" (max val auROC) | "loss" (min val_loss)
    upsample: float | None
    jitter: int
    rc_mode: str  # how RC augmentation is realised: "doubled" set or "within" batch
    eval_batch_size: int

    def to_dict(self) -> dict[str, Any]:
        """Every field, the task by name (for config.json)."""
        return dict(dataclasses.asdict(self), task=self.task.name)


PROTOCOLS: dict[str, Protocol] = {
    "sim": Protocol("sim", CLASSIFICATION, 500, 200, None, 10, "auroc", None, 0, "doubled",
                    1000),
    "binary": Protocol("binary", CLASSIFICATION, 100, 160, 50, None, "auroc", 0.2, 0, "within",
                       1000),
    "profile": Protocol("profile", PROFILE, 64, 200, None, 10, "loss", None, 200, "within", 64),
}
_OVERRIDABLE = ("batch_size", "epochs", "steps_per_epoch", "patience", "select", "upsample",
                "jitter", "eval_batch_size")


@dataclass
class TrainConfig:
    """Every parameter of one training run. ``None`` fields take the protocol default."""

    data: str
    arch: str
    strategy: str
    seed: int = 0
    protocol: str | None = None  # default: from the architecture (sim, binary, bpnet->profile)
    batch_size: int | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    patience: int | None = None
    select: str | None = None
    upsample: float | None = None
    jitter: int | None = None
    eval_batch_size: int | None = None
    max_valid: int | None = None  # use only the first N validation rows (tests, quick presets)
    hparams: dict[str, Any] = field(default_factory=dict)
    distribute: str | None = None  # None | "mirrored"

    def resolved_protocol(self) -> Protocol:
        """The protocol with this config's overrides applied."""
        from benchmark_rc.architectures import get_architecture

        name = self.protocol or get_architecture(self.arch).protocol
        if name not in PROTOCOLS:
            raise UserError(f"no training protocol {name!r} (arch {self.arch!r}); choose one of "
                            f"{list(PROTOCOLS)}")
        base = PROTOCOLS[name]
        overrides = {k: getattr(self, k) for k in _OVERRIDABLE if getattr(self, k) is not None}
        if "patience" in overrides and overrides["patience"] <= 0:
            overrides["patience"] = None  # 0 / negative on the command line: no early stopping
        if "upsample" in overrides and overrides["upsample"] <= 0:
            overrides["upsample"] = None
        proto = dataclasses.replace(base, **overrides)
        if proto.select not in ("auroc", "loss"):
            raise UserError(f"select must be 'auroc' or 'loss', got {proto.select!r}")
        if proto.select == "auroc" and proto.task.selection != "auroc":
            raise UserError(f"{proto.task.name} models are selected by validation loss "
                            "(select='loss')")
        return proto

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


# ----------------------------------------------------------------------------------------------
# Seeds, versions


def set_determinism(seed: int) -> None:
    """Seed Python, numpy and TensorFlow and turn on TF op determinism (bit-identical on CPU)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a run depends on."""
    from importlib import metadata

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("benchmark_rc", "tensorflow", "keras", "numpy", "h5py", "scikit-learn", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            if pkg == "benchmark_rc":
                from benchmark_rc._version import __version__

                out[pkg] = __version__
            else:
                out[pkg] = "absent"
    return out


# ----------------------------------------------------------------------------------------------
# Model files


def save_model_atomic(model: Any, path: str | os.PathLike) -> None:
    """``model.save(path)`` through a temporary file, so a crash leaves no half-written model."""
    import absl.logging

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{path.name}")  # Keras wants the real suffix
    verbosity = absl.logging.get_verbosity()
    absl.logging.set_verbosity(absl.logging.ERROR)  # the "legacy HDF5" notice on every save
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        absl.logging.set_verbosity(verbosity)


def save_model_files(model: Any, run_dir: str | os.PathLike) -> None:
    """model.keras then model.h5 (order matters, keras3_notes §1), each written atomically."""
    for name in ("model.keras", "model.h5"):
        save_model_atomic(model, Path(run_dir) / name)


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The config.json of a finished run, or None."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


# ----------------------------------------------------------------------------------------------
# The loop


class _Checkpoint:
    """Files of ``RUN/checkpoint``: state.json, epoch-NNNN.weights.h5, best.npz."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir / CHECKPOINT_DIR

    def load_state(self) -> dict[str, Any] | None:
        path = self.dir / "state.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def save(self, model: Any, state: dict[str, Any], best_weights: list[np.ndarray] | None,
             best_changed: bool) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{state['epoch']:04d}.weights.h5"
        tmp = self.dir / f".partial-{name}"
        model.save_weights(tmp)
        os.replace(tmp, self.dir / name)
        if best_changed and best_weights is not None:
            with atomic_path(self.dir / "best.npz") as tmp_best, open(tmp_best, "wb") as f:
                np.savez(f, *best_weights)
        atomic_write_text(self.dir / "state.json", json.dumps(dict(state, weights=name)))
        for old in self.dir.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def restore(self, model: Any, state: dict[str, Any]) -> list[np.ndarray] | None:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(self.dir / state["weights"])
        best = self.dir / "best.npz"
        if not best.is_file():
            return None
        with np.load(best) as arrays:
            return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


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
    import keras

    run_dir = Path(run_dir)
    ckpt = _Checkpoint(run_dir)
    state = ckpt.load_state()
    best_weights: list[np.ndarray] | None = None
    if state is not None:
        best_weights = ckpt.restore(model, state)
        state["resumed_from"].append(state["epoch"] + 1)
        initial_epoch = state["epoch"] + 1
    else:
        state = {"epoch": -1, "history": [], "best_value": None, "best_epoch": -1,
                 "es_best": None, "es_wait": 0, "stopped_early": False, "seconds": 0.0,
                 "resumed_from": []}
        initial_epoch = 0
    if state["stopped_early"] or initial_epoch >= protocol.epochs:
        initial_epoch = protocol.epochs  # nothing left to train

    class ProtocolCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.bar = None
            self.t0 = 0.0

        def on_train_begin(self, logs: dict | None = None) -> None:
            if progress:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=protocol.epochs, initial=initial_epoch, desc=desc or "epochs",
                                unit="epoch", leave=False)

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            nonlocal best_weights
            logs = logs if logs is not None else {}
            row: dict[str, float] = {"epoch": epoch}
            row.update({k: float(v) for k, v in logs.items()})
            row.update(valid.scores(self.model, row))
            row["seconds"] = time.perf_counter() - self.t0
            logs.update({k: v for k, v in row.items() if k != "epoch"})

            value = row["val_auroc"] if protocol.select == "auroc" else row["val_loss"]
            better = (state["best_value"] is None or not math.isfinite(state["best_value"])
                      or (value > state["best_value"] if protocol.select == "auroc"
                          else value < state["best_value"]))
            if better and math.isfinite(value) or state["best_epoch"] < 0:
                state["best_value"], state["best_epoch"] = float(value), epoch
                best_weights = [np.array(w) for w in self.model.get_weights()]
                better = True
            else:
                better = False
            if protocol.patience is not None:
                if state["es_best"] is None or row["val_loss"] < state["es_best"]:
                    state["es_best"], state["es_wait"] = row["val_loss"], 0
                else:
                    state["es_wait"] += 1
                    if state["es_wait"] >= protocol.patience and epoch > 0:
                        state["stopped_early"] = True
                        self.model.stop_training = True
            state["epoch"] = epoch
            state["history"].append(row)
            state["seconds"] += row["seconds"]
            ckpt.save(self.model, state, best_weights, better)
            if self.bar is not None:
                shown = {"loss": row.get("loss", float("nan")), "val_loss": row["val_loss"]}
                if "val_auroc" in row:
                    shown["val_auroc"] = row["val_auroc"]
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()})
                self.bar.update(1)

        def on_train_end(self, logs: dict | None = None) -> None:
            if self.bar is not None:
                self.bar.close()

    if initial_epoch < protocol.epochs:
        stream = train_ds.skip(initial_epoch * steps_per_epoch) if initial_epoch else train_ds
        fit_kwargs: dict[str, Any] = {}
        if valid.keras_data is not None:
            fit_kwargs["validation_data"] = valid.keras_data
        model.fit(stream, epochs=protocol.epochs, initial_epoch=initial_epoch,
                  steps_per_epoch=steps_per_epoch, verbose=0, shuffle=False,
                  callbacks=[ProtocolCallback(), *(extra_callbacks or [])], **fit_kwargs)
    if best_weights is not None:
        model.set_weights(best_weights)
    return FitResult(history=state["history"], best_epoch=int(state["best_epoch"]),
                     best_value=float(state["best_value"]) if state["best_value"] is not None
                     else float("nan"),
                     epochs_run=state["epoch"] + 1, stopped_early=bool(state["stopped_early"]),
                     train_seconds=float(state["seconds"]), resumed_from=state["resumed_from"])


# ----------------------------------------------------------------------------------------------
# One run of the benchmark: data + model + fit + files


def _dataset_info(path: str) -> dict[str, Any]:
    import h5py

    from benchmark_rc.data.hdf5 import read_attrs, validate

    rows = validate(path)
    attrs = read_attrs(path)
    task = get_task(attrs.get("task"), f"{path}: attribute task")
    with h5py.File(path, "r") as f:
        shapes = {name: tuple(f["train"][name].shape) for name in task.arrays}
    return {"path": str(Path(path).resolve()), "rows": rows, "task": task.name,
            "x_length": shapes["x"][1], "array_shapes": shapes,
            "jitter_margin": int(attrs.get("jitter_margin", 0)),
            "params": attrs.get("params")}


def _model_hparams(config: TrainConfig, info: Mapping[str, Any]) -> dict[str, Any]:
    """The run's hyper-parameters with those the dataset fixes (input length, tasks)."""
    return get_task(info["task"]).model_hparams(dict(config.hparams), info["x_length"],
                                                info["jitter_margin"], info["array_shapes"])


def make_training_data(config: TrainConfig, protocol: Protocol, info: Mapping[str, Any],
                       rc_augment: bool) -> tuple[Any, int, Validation]:
    """The training stream, its steps per epoch and the validation data of a run."""
    from benchmark_rc.data.hdf5 import read_split
    from benchmark_rc.data.pipeline import make_dataset, upsampling_plan
    from benchmark_rc.sequence import reverse_complement

    path = config.data
    n_train = int(info["rows"]["train"])
    batch = protocol.batch_size
    if get_task(info["task"]) is not protocol.task:
        raise UserError(f"{path}: a {info['task']} dataset cannot train with the "
                        f"{protocol.name} protocol ({protocol.task.name}); check --arch")
    if protocol.upsample is not None:
        mode = "within" if rc_augment else "none"
        train_ds = make_dataset(path, "train", batch_size=batch, seed=config.seed,
                                rc_augment=mode, upsample=protocol.upsample)
        if protocol.steps_per_epoch is None:
            y = read_split(path, "train", keys=("y",))["y"]
            steps = upsampling_plan(y, protocol.upsample, batch)["steps_per_pass"]
        else:
            steps = protocol.steps_per_epoch
    else:
        source: Any = path
        mode = "none"
        if rc_augment and protocol.rc_mode == "doubled":
            arrays = read_split(path, "train", keys=("x", "y"))
            x = np.empty((2 * n_train, *arrays["x"].shape[1:]), arrays["x"].dtype)
            x[0::2], x[1::2] = arrays["x"], reverse_complement(arrays["x"])
            source = {"x": x, "y": np.repeat(arrays["y"], 2, axis=0)}
            n_train *= 2
        elif rc_augment:
            mode = "within"
        train_ds = make_dataset(source, "train", batch_size=batch, shuffle=True,
                                seed=config.seed, rc_augment=mode,
                                jitter=protocol.jitter,
                                repeat=True,
                                jitter_margin=info["jitter_margin"]
                                if isinstance(source, Mapping) else None)
        steps = protocol.steps_per_epoch or math.ceil(n_train / batch)

    if config.max_valid:
        valid_source: Any = read_split(path, "valid")
        valid_source = {k: v[:config.max_valid] for k, v in valid_source.items()
                        if isinstance(v, np.ndarray)}
        margin = info["jitter_margin"]
    else:
        valid_source, margin = path, None
    valid_ds = make_dataset(valid_source, "valid", batch_size=protocol.eval_batch_size,
                            jitter_margin=margin)
    return train_ds, steps, protocol.task.validation(valid_ds)


def train_run(config: TrainConfig, run_dir: str | os.PathLike, *, progress: bool = False,
              desc: str = "", restart: bool = False) -> dict[str, Any]:
    """Train one architecture × strategy × seed on a dataset and write the run directory.

    Resumes from ``run_dir/checkpoint`` after an interruption (``restart`` discards it). A
    finished run (``config.json`` present) is not retrained: its config is returned.

    Returns the run's config.json content (``config``, ``protocol``, ``best_epoch``,
    ``epochs_run``, ``train_seconds``, ``versions``, ...).
    """
    import benchmark_rc.registry as registry
    from benchmark_rc.strategies import get_strategy

    run_dir = Path(run_dir)
    finished = read_run_config(run_dir)
    if finished is not None and not restart:
        return finished
    strategy = get_strategy(config.strategy)
    if strategy.posthoc:
        raise UserError(f"strategy {config.strategy!r} is not trained: it is the rcaug model "
                        f"wrapped post hoc. Train --strategy rcaug, then run `benchmark-rc "
                        f"conjoin --model RUN/model.keras --mode {strategy.posthoc}`")
    if restart:
        _Checkpoint(run_dir).remove()
        (run_dir / CONFIG_FILE).unlink(missing_ok=True)
    if not Path(config.data).is_file():
        raise UserError(f"{config.data}: no such dataset file")
    protocol = config.resolved_protocol()
    info = _dataset_info(config.data)
    hparams = _model_hparams(config, info)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    _check_resumable(run_dir, config)
    set_determinism(config.seed)
    scope = _distribution_scope(config.distribute)
    with scope:
        train_ds, steps, valid = make_training_data(config, protocol, info, strategy.rc_augment)
        model = registry.build_model(config.arch, config.strategy, **hparams)
        result = fit_model(model, train_ds, steps, valid, protocol, run_dir, progress=progress,
                           desc=desc)
    save_model_files(model, run_dir)
    _write_history(run_dir / "history.csv", result.history)
    summary = {
        "status": "finished",
        "config": config.to_dict(),
        "task": protocol.task.name,
        "protocol": protocol.to_dict(),
        "strategy": dataclasses.asdict(strategy),
        "model_hparams": hparams,
        "steps_per_epoch": steps,
        "best_epoch": result.best_epoch,
        "best_value": result.best_value,
        "selected_by": protocol.select,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "train_seconds": result.train_seconds,
        "resumed_from_epochs": result.resumed_from,
        "params": model.count_params(),
        "dataset": info,
        "versions": versions(),
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(run_dir / CONFIG_FILE, json.dumps(summary, indent=2, default=json_default))
    _Checkpoint(run_dir).remove()
    return summary


# A checkpoint may be resumed with other epochs / patience / selection, not with other data.
_RESUME_KEYS = ("data", "arch", "strategy", "seed", "protocol", "batch_size", "steps_per_epoch",
                "upsample", "jitter", "max_valid", "hparams")


def _check_resumable(run_dir: Path, config: TrainConfig) -> None:
    """Refuse to resume a checkpoint written with a different data stream or model."""
    path = run_dir / CHECKPOINT_DIR / "run.json"
    current = {k: config.to_dict()[k] for k in _RESUME_KEYS}
    current["data"] = str(Path(current["data"]).resolve())
    if (run_dir / CHECKPOINT_DIR / "state.json").is_file() and path.is_file():
        saved = json.loads(path.read_text())
        changed = sorted(k for k in _RESUME_KEYS if saved.get(k) != current[k])
        if changed:
            raise UserError(f"{run_dir}: its checkpoint was written with different {changed} "
                            f"({ {k: saved.get(k) for k in changed} }); use --restart (or "
                            "another --out) to train from scratch")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(current, indent=2))



def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    import pandas as pd

    with atomic_path(path) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)


def _distribution_scope(distribute: str | None) -> Any:
    import contextlib

    if distribute in (None, "", "none"):
        return contextlib.nullcontext()
    if distribute == "mirrored":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy().scope()
    raise UserError(f"--distribute must be 'mirrored' (or omitted), got {distribute!r}")


# ----------------------------------------------------------------------------------------------
# Evaluation


def evaluate_model(model: Any, data: str | os.PathLike, split: str = "test", *,
                   batch_size: int | None = None, max_rows: int | None = None) -> dict[str, Any]:
    """Test metrics and RC divergence of a (trained or conjoined) model on one split of a
    dataset, by the dataset's task (:meth:`benchmark_rc.tasks.Task.evaluate`): classification
    ``auroc``, ``auprc``; profile ``jsd``, ``pearson``, ``spearman``; both ``rc_divergence``
    (0 up to round-off for an RC-equivariant model) and ``n`` (rows evaluated)."""
    from benchmark_rc.data.hdf5 import read_attrs

    task = get_task(read_attrs(data).get("task"), f"{data}: attribute task")
    return task.evaluate(model, data, split, batch_size=batch_size, max_rows=max_rows)

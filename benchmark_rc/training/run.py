"""One run of the benchmark: dataset + model + :func:`fit_model` + the run directory's files.

:func:`train_run` resumes from ``RUN/checkpoint`` (see :mod:`benchmark_rc.training.checkpoint`)
when the checkpoint was written with the same data stream and model (:func:`_check_resumable`),
and does not retrain a finished run (``config.json`` present; see
:mod:`benchmark_rc.training.files`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmark_rc.errors import UserError
from benchmark_rc.fileio import atomic_write_text, json_default
from benchmark_rc.training.checkpoint import Checkpoint
from benchmark_rc.training.data import dataset_info, make_training_data, model_hparams
from benchmark_rc.training.files import (
    CONFIG_FILE,
    read_run_config,
    save_model_files,
    versions,
    write_history,
)
from benchmark_rc.training.protocol import TrainConfig, set_determinism
from benchmark_rc.training.selection import fit_model


def train_run(config: TrainConfig, run_dir: str | os.PathLike, *, progress: bool = False,
              desc: str = "", restart: bool = False) -> dict[str, Any]:
    """Train one architecture × strategy × seed on a dataset and write the run directory.

    Resumes from ``run_dir/checkpoint`` after an interruption (``restart`` discards it). A
    finished run (``config.json`` present) is not retrained: its config is returned.

    Returns the run's config.json content (``config``, ``protocol``, ``best_epoch``,
    ``epochs_run``, ``train_seconds``, ``versions``, ...). The compat mode is recorded in
    ``config["compat"]``, and for non-default modes also in ``model_hparams["compat"]`` (the
    hyper-parameter the model was built with).
    """
    import benchmark_rc.registry as registry
    from benchmark_rc.strategies import get_strategy

    run_dir = Path(run_dir)
    finished = read_run_config(run_dir)
    if finished is not None and not restart:
        return finished
    strategy = get_strategy(config.strategy)
    if strategy.trained_as != strategy.name:
        raise UserError(f"strategy {config.strategy!r} is not trained: it is the "
                        f"{strategy.trained_as} model wrapped post hoc. Train --strategy "
                        f"{strategy.trained_as}, then run `benchmark-rc conjoin --model "
                        f"RUN/model.keras --mode {strategy.posthoc}`")
    if restart:
        Checkpoint(run_dir).remove()
        (run_dir / CONFIG_FILE).unlink(missing_ok=True)
    if not Path(config.data).is_file():
        raise UserError(f"{config.data}: no such dataset file")
    protocol = config.resolved_protocol()
    info = dataset_info(config.data)
    hparams = model_hparams(config, info)
    if config.compat != "default":  # default runs record the same model_hparams as before
        hparams["compat"] = config.compat
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    _check_resumable(run_dir, config)
    set_determinism(config.seed)
    with distribution_scope(config.distribute):
        train_ds, steps, valid = make_training_data(config, protocol, info, strategy.rc_augment)
        model = registry.build_model(config.arch, config.strategy, **hparams)
        result = fit_model(model, train_ds, steps, valid, protocol, run_dir, progress=progress,
                           desc=desc)
    save_model_files(model, run_dir)
    write_history(run_dir / "history.csv", result.history)
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
    Checkpoint(run_dir).remove()
    return summary


# A checkpoint may be resumed with other epochs / patience / selection, not with other data or
# another model.
_RESUME_KEYS = ("data", "arch", "strategy", "seed", "protocol", "batch_size", "steps_per_epoch",
                "upsample", "jitter", "max_valid", "hparams", "compat")
# what a checkpoint written before a key existed meant by it
_RESUME_DEFAULTS = {"compat": "default"}


def _check_resumable(run_dir: Path, config: TrainConfig) -> None:
    """Refuse to resume a checkpoint written with a different data stream or model; record the
    run's parameters (``checkpoint/run.json``) when there is nothing to resume."""
    checkpoint = Checkpoint(run_dir)
    path = checkpoint.run_path
    current = {k: config.to_dict()[k] for k in _RESUME_KEYS}
    current["data"] = str(Path(current["data"]).resolve())
    if checkpoint.state_path.is_file() and path.is_file():
        saved = json.loads(path.read_text())
        saved = {k: saved.get(k, _RESUME_DEFAULTS.get(k)) for k in _RESUME_KEYS}
        changed = sorted(k for k in _RESUME_KEYS if saved[k] != current[k])
        if changed:
            raise UserError(f"{run_dir}: its checkpoint was written with different {changed} "
                            f"({ {k: saved[k] for k in changed} }); use --restart (or "
                            "another --out) to train from scratch")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(current, indent=2))


def distribution_scope(distribute: str | None) -> Any:
    """The context a run builds its data and model in: none, or a ``tf.distribute`` strategy."""
    if distribute in (None, "", "none"):
        return contextlib.nullcontext()
    if distribute == "mirrored":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy().scope()
    raise UserError(f"--distribute must be 'mirrored' (or omitted), got {distribute!r}")

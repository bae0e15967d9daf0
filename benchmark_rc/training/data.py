"""The data of a training run: dataset facts, the model hyper-parameters they fix, and the
training stream and validation data a protocol asks for (the "data" column of the table in
:mod:`benchmark_rc.training`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.errors import UserError
from benchmark_rc.tasks import Validation, get_task
from benchmark_rc.training.protocol import Protocol, TrainConfig


def dataset_info(path: str) -> dict[str, Any]:
    """What a run records about its (validated) dataset: resolved ``path``, ``rows`` per split,
    ``task``, ``x_length``, ``array_shapes`` of the train split, ``jitter_margin``, ``params``."""
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


def model_hparams(config: TrainConfig, info: Mapping[str, Any]) -> dict[str, Any]:
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

"""Files of a finished run, and the versions a run (or a report) records.

Outputs of a finished run: ``model.keras`` (saved first: an .h5 save strips the optimizer from
the live model, keras3_notes §1), ``model.h5``, ``history.csv`` and ``config.json`` (every
parameter, the resolved protocol, the dataset attributes, versions, best epoch, seconds;
written last, so its presence marks a finished run). Every file is written atomically.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmark_rc.fileio import atomic_path

CONFIG_FILE = "config.json"
# what a run's config.json records
RUN_PACKAGES = ("benchmark_rc", "tensorflow", "keras", "numpy", "h5py", "scikit-learn", "scipy")
# environment switches that choose TensorFlow's CPU kernels (and so the last bits of a result):
# oneDNN on or off changes the summation order, and TensorFlow's default depends on the CPU
KERNEL_ENVIRONMENT = ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def versions(packages: Iterable[str] = RUN_PACKAGES, *, missing: str = "absent",
             system: bool = True) -> dict[str, str]:
    """Installed versions of ``packages`` (distribution names), ``missing`` for those not
    installed; with ``system``, first ``python``, ``platform`` and the kernel-choosing
    environment variables (``KERNEL_ENVIRONMENT``; "unset" where TensorFlow's default applies)."""
    from importlib import metadata

    out = {}
    if system:
        out = {"python": platform.python_version(), "platform": platform.platform()}
        out.update({name: os.environ.get(name, "unset") for name in KERNEL_ENVIRONMENT})
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            if pkg == "benchmark_rc":  # running from a source tree
                from benchmark_rc._version import __version__

                out[pkg] = __version__
            else:
                out[pkg] = missing
    return out


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


def write_history(path: str | os.PathLike, history: list[dict[str, float]]) -> None:
    """The per-epoch history rows as a CSV file (one column per key)."""
    import pandas as pd

    with atomic_path(path) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)

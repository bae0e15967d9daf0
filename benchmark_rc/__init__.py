"""benchmark_rc: reverse-complement equivariant deep learning on DNA (TensorFlow 2 / Keras 3).

Importing the package registers every custom Keras layer, so ``keras.models.load_model`` works
on saved .h5 and .keras files with the default ``safe_mode`` (or use :func:`load_model`, which
also accepts a run directory). The public functions are imported on first use.

The one exception is the ``benchmark-rc`` command line, whose launcher asks to defer the
registration so that ``--help``, ``--version`` and ``prepare`` start without TensorFlow; it
calls :func:`register_layers` itself before every command that builds or loads a model.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from benchmark_rc._version import __version__

# public name -> module that defines it
_API: dict[str, str] = {
    "build_model": "benchmark_rc.registry",
    "conjoin": "benchmark_rc.registry",
    "list_architectures": "benchmark_rc.registry",
    "list_strategies": "benchmark_rc.registry",
    "load_model": "benchmark_rc.registry",
    "logits_model": "benchmark_rc.registry",
    "rc_inputs": "benchmark_rc.registry",
    "rc_outputs": "benchmark_rc.registry",
    "reverse_complement": "benchmark_rc.sequence",
}

__all__ = ["__version__", "register_layers", *sorted(_API)]


def register_layers() -> None:
    """Register every custom layer and loss with ``keras.saving`` (imports Keras)."""
    importlib.import_module("benchmark_rc.layers")


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'benchmark_rc' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


if not getattr(sys.modules.get("benchmark_rc_launcher"), "defer_layer_registration", False):
    register_layers()

"""Every simulation by name, in one table shared by ``benchmark-rc simulate`` and the sweep's
``simulate: {kind: ..., ...}`` datasets, so each simulation is usable in both.

A kind names a generator that takes ``out`` and keyword parameters and returns the path:
``paper`` (:func:`~benchmark_rc.data.simulation.simulate_paper`, needs ``length``),
``koo-task1``, ``koo-task3`` (:mod:`benchmark_rc.data.simulation`), ``profile``
(:func:`~benchmark_rc.data.simulation_profile.simulate_profile`), ``long-range``
(:func:`~benchmark_rc.data.simulation_long_range.simulate_long_range`) and ``realistic``
(:func:`~benchmark_rc.data.simulation_realistic.simulate_realistic`). Generators are imported when
used, so this module stays light.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark_rc.errors import UserError

# kind -> (module, generator function)
SIMULATIONS: dict[str, tuple[str, str]] = {
    "paper": ("benchmark_rc.data.simulation", "simulate_paper"),
    "koo-task1": ("benchmark_rc.data.simulation", "simulate_koo_task1"),
    "koo-task3": ("benchmark_rc.data.simulation", "simulate_koo_task3"),
    "profile": ("benchmark_rc.data.simulation_profile", "simulate_profile"),
    "long-range": ("benchmark_rc.data.simulation_long_range", "simulate_long_range"),
    "realistic": ("benchmark_rc.data.simulation_realistic", "simulate_realistic"),
}


def generator(kind: str) -> Callable[..., Path]:
    """The generator function of simulation ``kind``."""
    if kind not in SIMULATIONS:
        raise UserError(f"simulation kind must be one of {list(SIMULATIONS)}, got {kind!r}")
    module, name = SIMULATIONS[kind]
    return getattr(importlib.import_module(module), name)


def simulate(kind: str, out: str | os.PathLike, **parameters: Any) -> Path:
    """Write simulation ``kind`` to ``out`` with ``parameters``; returns the path. Unknown
    kinds and parameters, and missing required ones, raise :class:`UserError`."""
    fn = generator(kind)
    accepted = [p for p in inspect.signature(fn).parameters if p != "out"]
    try:
        inspect.signature(fn).bind(out=out, **parameters)
    except TypeError as err:
        raise UserError(f"simulation {kind!r}: {err} (parameters: {', '.join(accepted)})"
                        ) from None
    return fn(out=out, **parameters)

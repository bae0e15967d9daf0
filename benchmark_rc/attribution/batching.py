"""How every attribution method runs its work: the device, chunks of rows, the batch size,
progress bars, and the one memo of traced functions (:func:`memoised`, :func:`traced_per_model`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterator
from typing import Any

import numpy as np

from benchmark_rc.errors import UserError

_OWNER_ATTRIBUTE = "_benchmark_rc_traces"  # the memo of one owner, in the owner's __dict__
_SHARED: dict = {}


def memoised(owner: Any, key: Hashable, build: Callable[[], Any]) -> Any:
    """``build()``, made once per ``owner`` and ``key`` and then reused.

    The traced ``tf.function`` of an attribution method is built once per model (``owner``)
    and per arguments (``key``), so repeated calls on one model do not re-trace. The memo lives
    in the owner's ``__dict__`` (written directly, past Keras' attribute tracking), so it goes
    with the model: the traced functions refer to their model, and a memo held outside it (a
    weak-key table) would keep every model ever attributed alive. ``owner=None``: one
    process-wide entry per ``key`` (model-independent kernels). An owner without a ``__dict__``
    is not memoised.
    """
    if owner is None:
        store = _SHARED
    else:
        try:
            store = vars(owner).setdefault(_OWNER_ATTRIBUTE, {})
        except TypeError:  # no __dict__
            return build()
    if key not in store:
        store[key] = build()
    return store[key]


def traced_per_model(builder: Callable) -> Callable:
    """Decorator: ``builder(model, spec, *args, **kwargs)`` memoised with :func:`memoised`, per
    model and per (repr of the) arguments."""

    @functools.wraps(builder)
    def cached(model: Any, spec: Any, *args: Any, **kwargs: Any) -> Callable:
        key = (builder.__module__, builder.__qualname__, repr(args),
               repr(sorted(kwargs.items())))
        return memoised(model, key, lambda: builder(model, spec, *args, **kwargs))

    return cached


def device_scope():
    """tf.device on the first GPU when TensorFlow sees one, else the CPU."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return tf.device(gpus[0].name if gpus else "/CPU:0")


def chunks(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` rows covering ``range(n)``."""
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
    """``array`` grown to ``rows`` rows by repeating its last row (a chunk padded to the fixed
    batch, whose extra results are dropped); unchanged when it already has ``rows`` rows."""
    if array.shape[0] == rows:
        return array
    return array[np.minimum(np.arange(rows), array.shape[0] - 1)]


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar counting sequences (disabled unless ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="seq", disable=not enabled, leave=False)


CPU_BATCH_SIZE = 256
GPU_BATCH_SIZE = 1024


def default_batch_size() -> int:
    """Rows per forward pass: 1024 on a GPU, 256 on a CPU.

    The CPU figure is measured (bench/attribution.py, ``batch_sweep``: binary model, 1 kb, 2-core
    AMD EPYC, idle): DeepSHAP is ~20% faster at 256 rows than at 64 (the default before issue
    18) and no faster at 512, ISM is fastest between 128 and 512, and both are slower again at
    1024 (the activations leave the caches). DeepSHAP then runs 12 sequences with their 20
    references per pass (a short last chunk is padded to that shape)."""
    import tensorflow as tf

    return GPU_BATCH_SIZE if tf.config.list_logical_devices("GPU") else CPU_BATCH_SIZE


def check_batch_size(batch_size: int | None) -> int:
    """``batch_size`` validated, or the device's default when None."""
    if batch_size is None:
        return default_batch_size()
    if not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise UserError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)

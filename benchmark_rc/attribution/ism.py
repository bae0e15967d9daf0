"""In-silico mutagenesis: every alternative base at every position, batched; ``restricted=True``
recomputes only what each mutation reaches (:mod:`benchmark_rc.attribution.fast_ism`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmark_rc.attribution.batching import (
    check_batch_size,
    chunks,
    device_scope,
    progress_bar,
    traced_per_model,
)
from benchmark_rc.attribution.fast_ism import (
    NotRestrictable,
    RestrictedISMFallback,
    restricted_mutants,
)
from benchmark_rc.attribution.targets import (
    ModelSpec,
    explained_target,
    input_signature,
    model_spec,
    split_inputs,
    target_function,
)


@traced_per_model
def mutant_function(model: Any, spec: ModelSpec, output: Any, logits: bool) -> Callable:
    """Traced fn(seq, others, rows, pos, base) -> target of each mutant: seq[rows] with base
    ``base`` at ``pos`` (the mutants are built on the device)."""
    import tensorflow as tf

    seq_sig, others_sig = input_signature(spec)
    idx_sig = tf.TensorSpec((None,), tf.int32)

    @tf.function(input_signature=[seq_sig, others_sig, idx_sig, idx_sig, idx_sig], autograph=False)
    def fn(seq, others, rows, pos, base):
        length = tf.shape(seq)[1]
        src = tf.gather(seq, rows)
        at = tf.one_hot(pos, length, dtype=seq.dtype)[:, :, None]  # (B, L, 1)
        new = tf.one_hot(base, 4, dtype=seq.dtype)[:, None, :]  # (B, 1, 4)
        mutant = src * (1.0 - at) + at * new
        feed = {k: tf.gather(v, rows) for k, v in others.items()}
        return explained_target(model, spec, mutant, feed, output, logits)

    return fn


class PlainMutants:
    """Plain ISM of one model and target: every mutant through the whole model (the interface
    of :class:`~benchmark_rc.attribution.fast_ism.RestrictedMutants`)."""

    def __init__(self, model: Any, spec: ModelSpec, output: Any, logits: bool) -> None:
        self.fn = mutant_function(model, spec, output, logits)

    def prepare(self, seq: np.ndarray, others: dict[str, np.ndarray]) -> tuple:
        import tensorflow as tf

        return tf.constant(seq), {k: tf.constant(v) for k, v in others.items()}

    def __call__(self, state: tuple, rows: np.ndarray, pos: np.ndarray,
                 base: np.ndarray) -> np.ndarray:
        return self.fn(*state, rows, pos, base).numpy()


def mutant_evaluator(model: Any, spec: ModelSpec, output: Any, logits: bool,
                     restricted: bool) -> PlainMutants | Any:
    """Restricted ISM's evaluator when ``restricted`` and the model allows it; otherwise plain
    ISM's (with a :class:`RestrictedISMFallback` warning saying why, when it was asked for)."""
    if restricted:
        try:
            return restricted_mutants(model, spec, output, logits)
        except NotRestrictable as why:
            warnings.warn(f"restricted ISM of model {model.name!r} falls back to plain ISM: "
                          f"{why}", RestrictedISMFallback, stacklevel=3)
    return PlainMutants(model, spec, output, logits)


def ism(model: Any, x: Any, output: Any = None, *, logits: bool = True,
        batch_size: int | None = None, progress: bool = False,
        restricted: bool = False) -> np.ndarray:
    """Saturation mutagenesis: entry [n, p, b] = f(x_n with base b at p) - f(x_n); (N, L, 4).

    The observed base's entry is 0 without being evaluated (3L forward passes per sequence; at
    all-zero N rows all four bases are evaluated). ``output``/``logits`` as in
    :func:`benchmark_rc.attribution.predict_target`; ``batch_size`` mutants per forward pass.
    ``restricted``: recompute, per mutant, only the positions of each position-local layer that
    the mutation reaches (fastISM; :mod:`benchmark_rc.attribution.fast_ism`): the same values up
    to float32 summation order, several times faster for deep convolutional models. A model
    without a position-local trunk, or with attention, runs plain ISM with a
    :class:`RestrictedISMFallback` warning.
    """
    spec = model_spec(model)
    seq, others = split_inputs(model, x, spec)
    batch_size = check_batch_size(batch_size)
    evaluate = mutant_evaluator(model, spec, output, logits, restricted)
    target = target_function(model, spec, output, logits)
    n = seq.shape[0]
    result = np.zeros(seq.shape, dtype=np.float32)
    # sequences per chunk so that every forward pass is a full batch
    per = max(1, batch_size // (3 * seq.shape[1]))
    with device_scope(), progress_bar(n, "ism", progress) as bar:
        for sl in chunks(n, per):
            xs = seq[sl]
            os_ = {k: v[sl] for k, v in others.items()}
            wild = target(xs, os_).numpy()
            rows, pos, base = np.nonzero(xs == 0)
            rows, pos, base = (a.astype(np.int32) for a in (rows, pos, base))
            values = np.empty(rows.shape[0], dtype=np.float32)
            state = evaluate.prepare(xs, os_)
            for b in chunks(rows.shape[0], batch_size):
                values[b] = evaluate(state, rows[b], pos[b], base[b])
            result[sl][rows, pos, base] = values - wild[rows]
            bar.update(sl.stop - sl.start)
    return result


def ism_fast(model: Any, x: Any, output: Any = None, *, logits: bool = True,
             batch_size: int | None = None, progress: bool = False) -> np.ndarray:
    """:func:`ism` with ``restricted=True`` (the registered method "ism_fast")."""
    return ism(model, x, output, logits=logits, batch_size=batch_size, progress=progress,
               restricted=True)

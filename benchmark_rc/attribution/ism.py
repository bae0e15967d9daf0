"""In-silico mutagenesis: every alternative base at every position, batched."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmark_rc.attribution import _engine as E


def _mutant_function(model: Any, spec: E.ModelSpec, output: Any, logits: bool):
    key = ("ism", repr(output), logits)
    cache = E._get_cache(model)
    if key in cache:
        return cache[key]
    tf = E._tf()
    seq_sig, others_sig = E._signature(spec)
    idx_sig = tf.TensorSpec((None,), tf.int32)

    @tf.function(input_signature=[seq_sig, others_sig, idx_sig, idx_sig, idx_sig], autograph=False)
    def fn(seq, others, rows, pos, base):
        """Mutants of seq[rows] with base ``base`` at ``pos``, built on the device."""
        length = tf.shape(seq)[1]
        src = tf.gather(seq, rows)
        at = tf.one_hot(pos, length, dtype=seq.dtype)[:, :, None]  # (B, L, 1)
        new = tf.one_hot(base, 4, dtype=seq.dtype)[:, None, :]  # (B, 1, 4)
        mutant = src * (1.0 - at) + at * new
        feed = {k: tf.gather(v, rows) for k, v in others.items()}
        head, kind = E.select_head(E._call_model(model, spec, mutant, feed), output, logits)
        return E.reduce_head(head, kind)

    cache[key] = fn
    return fn


def ism(model: Any, x: Any, output: Any = None, *, logits: bool = True,
        batch_size: int | None = None, progress: bool = False) -> np.ndarray:
    """Saturation mutagenesis: entry [n, p, b] = f(x_n with base b at p) - f(x_n); (N, L, 4).

    The observed base's entry is 0 without being evaluated (3L forward passes per sequence; at
    all-zero N rows all four bases are evaluated). ``output``/``logits`` as in
    :func:`benchmark_rc.attribution.predict_target`; ``batch_size`` mutants per forward pass.
    """
    spec = E.model_spec(model)
    seq, others = E.split_inputs(model, x, spec)
    batch_size = E.check_batch_size(batch_size)
    fn = _mutant_function(model, spec, output, logits)
    target = E.target_function(model, spec, output, logits)
    n = seq.shape[0]
    result = np.zeros(seq.shape, dtype=np.float32)
    # sequences per chunk so that every forward pass is a full batch
    per = max(1, batch_size // (3 * seq.shape[1]))
    with E.device_scope(), E.progress(n, "ism", progress) as bar:
        for sl in E.chunks(n, per):
            xs = seq[sl]
            os_ = {k: v[sl] for k, v in others.items()}
            wild = target(xs, os_).numpy()
            rows, pos, base = np.nonzero(xs == 0)
            rows, pos, base = (a.astype(np.int32) for a in (rows, pos, base))
            values = np.empty(rows.shape[0], dtype=np.float32)
            xs_t = E._tf().constant(xs)
            os_t = {k: E._tf().constant(v) for k, v in os_.items()}
            for b in E.chunks(rows.shape[0], batch_size):
                values[b] = fn(xs_t, os_t, rows[b], pos[b], base[b]).numpy()
            result[sl][rows, pos, base] = values - wild[rows]
            bar.update(sl.stop - sl.start)
    return result

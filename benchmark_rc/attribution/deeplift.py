"""DeepLIFT (rescale rule) / DeepSHAP: multipliers averaged over references, with hypothetical
contributions. Engine: :mod:`benchmark_rc.attribution._engine` (batched native TensorFlow)."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from benchmark_rc.attribution import _engine as E
from benchmark_rc.attribution.references import check_references, dinuc_shuffle_references
from benchmark_rc.errors import UserError


def combine_multipliers(mult: np.ndarray, x: np.ndarray, refs: np.ndarray,
                        hypothetical: bool) -> np.ndarray:
    """Turn multipliers into scores, averaged over references.

    mult, refs: (N, R, L, 4); x: (N, L, 4). Hypothetical score of base b at a position:
    ``m[b] - sum_c m[c] ref[c]`` (the contribution had the base been b). Actual scores
    (``hypothetical=False``) put the per-position sum ``sum_c m[c] (x[c] - ref[c])`` on the
    observed base (= hypothetical x one-hot); at all-zero (N) rows that sum is spread evenly over
    the four channels so that summation-to-delta still holds. Returns (N, L, 4) float32.
    """
    hyp = (mult - np.sum(mult * refs, axis=-1, keepdims=True)).mean(axis=1)
    if hypothetical:
        return hyp.astype(np.float32, copy=False)
    pos_sum = np.sum(mult * (x[:, None] - refs), axis=-1).mean(axis=1)
    return project(hyp, pos_sum, x)


def project(hyp: np.ndarray, pos_sum: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Actual scores from hypothetical ones: hyp x one-hot; at all-zero (N) rows the per-position
    sum ``pos_sum`` (N, L) is spread evenly over the four channels. Returns (N, L, 4) float32."""
    out = hyp * x
    empty = x.sum(-1) == 0
    if empty.any():
        out[empty] = (pos_sum[empty] / 4.0)[:, None]
    return out.astype(np.float32, copy=False)


def delta_tolerance(delta: np.ndarray, t_x: np.ndarray, t_r: np.ndarray, pos_sum: np.ndarray,
                    rtol: float) -> np.ndarray:
    """How far ``pos_sum.sum(1)`` may be from ``delta`` = t_x - mean_r t_r, per sequence (N,).

    ``rtol * |delta|`` (the check proper) plus a float32 rounding budget: the targets f(x),
    f(ref) and the sum of the per-position contributions are float32 results whose rounding
    error scales with their magnitude, not with ``delta`` (for an RC-invariant model and
    reference RC(x), delta is 0 up to rounding while |f| may be 30). The budget is the
    random-walk bound of a float32 sum of 4L terms, eps32 * sqrt(4L), times the magnitude at
    play: |f(x)| + mean_r |f(ref_r)| + sum_l |pos_sum_l|. Measured errors on registry models are
    about eps32 times that magnitude, so the budget leaves a margin of sqrt(4L) (28 at 200 bp,
    63 at 1 kb) while staying far below a real violation (a wrong multiplier moves the sum by
    a fraction of the contributions themselves).

    delta, t_x: (N,); t_r: (N, R); pos_sum: (N, L).
    """
    eps = np.finfo(np.float32).eps
    magnitude = np.abs(t_x) + np.abs(t_r).mean(1) + np.abs(pos_sum).sum(1)
    return rtol * np.abs(delta) + eps * np.sqrt(4 * pos_sum.shape[1]) * magnitude


def predict_target(model: Any, x: Any, output: Any = None, *, logits: bool = True,
                   batch_size: int | None = None) -> np.ndarray:
    """The scalar every method explains, one per sequence: (N,).

    ``x``: (N, L, 4) one-hot or a dict of model inputs. ``output``: task index for single-head
    models, head name for dict outputs ("profile": BPNet's sum of mean-centred logits weighted by
    their softmax; "counts": mean over strands; ("counts", j): strand j). ``logits``: explain the
    pre-sigmoid logit when the output ends in a sigmoid.
    """
    spec = E.model_spec(model)
    seq, others = E.split_inputs(model, x, spec)
    fn = E.target_function(model, spec, output, logits)
    batch_size = E.check_batch_size(batch_size)
    out = np.empty(seq.shape[0], dtype=np.float32)
    with E.device_scope():
        for sl in E.chunks(seq.shape[0], batch_size):
            out[sl] = fn(seq[sl], {k: v[sl] for k, v in others.items()}).numpy()
    return out


def deepshap(model: Any, x: Any, references: np.ndarray | None = None, n_shuffles: int = 20,
             seed: int = 0, hypothetical: bool = False, output: Any = None, *,
             logits: bool = True, batch_size: int | None = None, progress: bool = False,
             check_delta: float | None = 1e-3,
             maxpool_rule: str | E.MaxRule = "continuous") -> np.ndarray:
    """DeepSHAP scores (DeepLIFT rescale averaged over references): (N, L, 4) float32.

    Args:
        model: keras model, input (N, L, 4) one-hot (or several inputs, one named "sequence").
        x: (N, L, 4) one-hot (all-zero rows for N), or a dict of model inputs; non-sequence inputs
            are held fixed (same value for x and its references).
        references: optional (N, R, L, 4) references; default ``n_shuffles`` dinucleotide shuffles
            of each sequence (deeplift's ``dinuc_shuffle``, ``RandomState(seed)`` per sequence).
        hypothetical: return hypothetical contributions (for TF-MoDISco) instead of actual ones.
        output: task index, or head name for dict outputs (see :func:`predict_target`).
        logits: explain the pre-sigmoid logit when the output ends in a sigmoid.
        batch_size: rows (sequences + references) per forward pass; bounds memory.
        progress: show a tqdm progress bar.
        check_delta: warn when ``|scores.sum() - delta|`` exceeds ``check_delta * |delta|`` plus
            the float32 rounding budget of the computation (:func:`delta_tolerance`); None: no
            check.
        maxpool_rule: how max pooling, global max pooling and element-wise maximum/minimum
            divide by their input change: "continuous" (default; divide wherever the change is
            non-zero, the gradient limit at exactly zero) or "shap" (shap.DeepExplainer's rule:
            multiplier 0 where the change is below 1e-7, so scores jump at that threshold and
            hypothetical scores vanish where x and a reference coincide over a receptive field).
            Actual scores differ between the two only where some max input changes by less than
            1e-7. See :class:`benchmark_rc.attribution._engine.MaxRule`.

    Actual scores carry, at the observed base, the per-position sum of the per-channel
    contributions, so ``scores.sum((1, 2)) == f(x) - mean_r f(ref_r)``.
    """
    spec = E.model_spec(model)
    seq, others = E.split_inputs(model, x, spec)
    batch_size = E.check_batch_size(batch_size)
    if references is not None:
        refs_all = check_references(references, seq)
        n_refs = refs_all.shape[1]
    else:
        if not isinstance(n_shuffles, int | np.integer) or n_shuffles < 1:
            raise UserError(f"n_shuffles must be a positive integer, got {n_shuffles!r}")
        refs_all, n_refs = None, int(n_shuffles)
    fn = E.rescale_function(model, spec, output, logits, n_refs, E.max_rule(maxpool_rule))
    n, length = seq.shape[:2]
    per = max(1, batch_size // (n_refs + 1))
    result = np.empty(seq.shape, dtype=np.float32)
    bad: list[tuple[float, float]] = []  # (error, tolerance) of failing sequences

    def refs_for(sl: slice) -> np.ndarray:
        if refs_all is not None:
            return refs_all[sl]
        return dinuc_shuffle_references(seq[sl], n_refs, seed)

    slices = list(E.chunks(n, per))
    with ThreadPoolExecutor(max_workers=1) as pool, E.device_scope(), \
            E.progress(n, "deepshap", progress) as bar:
        pending = pool.submit(refs_for, slices[0]) if slices else None
        for i, sl in enumerate(slices):
            refs = pending.result()
            if i + 1 < len(slices):
                pending = pool.submit(refs_for, slices[i + 1])
            m = sl.stop - sl.start
            hyp, pos_sum, t_x, t_r = fn(seq[sl], refs.reshape(m * n_refs, length, 4),
                                        {k: v[sl] for k, v in others.items()})
            hyp, pos_sum = hyp.numpy(), pos_sum.numpy()
            result[sl] = hyp if hypothetical else project(hyp, pos_sum, seq[sl])
            if check_delta is not None:
                t_x, t_r = t_x.numpy(), t_r.numpy().reshape(m, n_refs)
                delta = t_x - t_r.mean(1)
                err = np.abs(pos_sum.sum(1) - delta)
                tol = delta_tolerance(delta, t_x, t_r, pos_sum, check_delta)
                bad.extend(zip(err[err > tol].tolist(), tol[err > tol].tolist(), strict=True))
            bar.update(m)
    if bad:
        err, tol = max(bad, key=lambda pair: pair[0] / pair[1])
        warnings.warn(f"DeepLIFT summation-to-delta fails in {len(bad)} sequence(s): "
                      f"|sum(scores) - delta| up to {err:.2e} where {tol:.2e} is tolerated "
                      f"({check_delta:g} x |delta| + float32 rounding); the model may contain an "
                      "op the DeepLIFT rules approximate", RuntimeWarning, stacklevel=2)
    return result

"""Evaluation metrics of the benchmark (spec/paper.md §2.4, §3.6, §4.5) and RC-consistency.

Everything here is plain numpy/scipy/sklearn on arrays already predicted by a model; the code that
runs models lives in :mod:`benchmark_rc.training`.

Classification (sim and binary tasks)
    :func:`classification_metrics` — sklearn ``roc_auc_score`` / ``average_precision_score`` on
    the (N, T) label matrix and (N, T) scores, macro average over tasks.

Profile (BPNet task), exactly as ``fourier_attribution_priors/profile_performance.py``
    :func:`profile_metrics` — JSD of σ=3 (truncate 1) Gaussian-smoothed, renormalised profiles
    (natural log, zero terms skipped, strands averaged) and Pearson / Spearman correlations of the
    strand-interleaved 2000-vector max-binned at 1, 5 and 10, averaged over examples × bin sizes.

Undefined values (NaN handling, a documented deviation from a plain ``np.average``)
    An example whose true profile has zero counts on a strand has an undefined JSD (the
    renormalisation divides by 0) and, if the whole binned vector is constant (e.g. all zero),
    an undefined correlation. The original code keeps the NaN and ``np.average`` then makes the
    whole metric NaN. Here such (example[, bin size]) entries are *excluded* from the average and
    their number is reported (``n_jsd_excluded``, ``n_corr_excluded``); with real peak data
    (every region has reads) nothing is excluded and the numbers equal the original definition.
    A classification task whose labels contain a single class has no auROC / auPRC; it is left
    out of the macro average and counted in ``n_tasks_excluded`` (all tasks undefined → NaN).

RC-consistency
    Both take the forward prediction f(x) and the prediction for the reverse complement already
    mapped back by the output's RC rule, RC_out(f(RC x)) (:meth:`benchmark_rc.tasks.Task.
    rc_outputs`); they are 0 for an RC-equivariant model.
    :func:`rc_divergence_logits` — mean |f(x) − RC_out(f(RC x))| of (N, T) logits;
    :func:`rc_divergence_profile` (per example: :func:`rc_jsd_profile`) — mean JSD between the
    two predicted distributions (unsmoothed, natural log).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special, stats
from scipy.ndimage import gaussian_filter1d

JSD_SMOOTH_SIGMA = 3.0
JSD_SMOOTH_TRUNCATE = 1.0
CORR_BIN_SIZES = (1, 5, 10)
_CHUNK = 1024  # examples per vectorised chunk (bounds memory at ~2000 x 8 B x 1024 per array)


def _as_2d(name: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected shape (N,) or (N, T), got {a.shape}")
    return a


def classification_metrics(y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float]:
    """auROC and auPRC, macro averaged over tasks.

    Args:
        y_true: (N, T) or (N,) binary labels.
        y_score: (N, T) or (N,) scores (probabilities or logits: both metrics are rank based).

    Returns:
        ``{"auroc", "auprc", "n_tasks_excluded"}``; a task whose labels hold one class only is
        excluded from the average (NaN if every task is).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true = _as_2d("y_true", y_true)
    y_score = _as_2d("y_score", y_score)
    if y_true.shape != y_score.shape:
        raise ValueError(f"y_true {y_true.shape} and y_score {y_score.shape} differ in shape")
    defined = [t for t in range(y_true.shape[1]) if np.unique(y_true[:, t]).size == 2]
    out = {"auroc": float("nan"), "auprc": float("nan"),
           "n_tasks_excluded": int(y_true.shape[1] - len(defined))}
    if defined:
        yt, ys = y_true[:, defined], y_score[:, defined].astype(np.float64)
        out["auroc"] = float(roc_auc_score(yt, ys, average="macro"))
        out["auprc"] = float(average_precision_score(yt, ys, average="macro"))
    return out


def _normalise(p: np.ndarray, axis: int) -> np.ndarray:
    """p / sum(p) along ``axis``; NaN where the sum is 0."""
    total = p.sum(axis=axis, keepdims=True)
    return np.divide(p, total, out=np.full_like(p, np.nan), where=total != 0)


def jensen_shannon(p: np.ndarray, q: np.ndarray, axis: int = -1) -> np.ndarray:
    """Jensen–Shannon divergence (natural log) along ``axis`` after renormalising p and q to sum 1.

    Zero-probability terms contribute 0 (``scipy.special.rel_entr``); a slice summing to 0 gives
    NaN. Not the JS *distance* (no square root). Max value ln 2 (disjoint supports); clamped at
    0 because for p ≈ q the terms cancel and round-off leaves sums like -1e-18 (NaN stays NaN).
    """
    p = _normalise(np.asarray(p, dtype=np.float64), axis)
    q = _normalise(np.asarray(q, dtype=np.float64), axis)
    m = 0.5 * (p + q)
    js = 0.5 * (special.rel_entr(p, m).sum(axis=axis) + special.rel_entr(q, m).sum(axis=axis))
    return np.maximum(js, 0.0)


def smooth_profile(profile: np.ndarray) -> np.ndarray:
    """Gaussian smoothing along positions (axis 1 of (N, L, S)), σ = 3, truncate = 1 (7 taps),
    scipy's default ``reflect`` boundary."""
    return gaussian_filter1d(np.asarray(profile, dtype=np.float64), sigma=JSD_SMOOTH_SIGMA,
                             truncate=JSD_SMOOTH_TRUNCATE, axis=1)


def bin_max(vectors: np.ndarray, bin_size: int) -> np.ndarray:
    """Max over consecutive non-overlapping bins of the last axis (zero padded to a multiple)."""
    length = vectors.shape[-1]
    n_bins = -(-length // bin_size)
    pad = n_bins * bin_size - length
    if pad:
        widths = [(0, 0)] * (vectors.ndim - 1) + [(0, pad)]
        vectors = np.pad(vectors, widths, constant_values=0)
    return vectors.reshape(*vectors.shape[:-1], n_bins, bin_size).max(axis=-1)


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair (scipy.stats.pearsonr along axis -1); NaN for constant rows."""
    constant = (np.ptp(a, axis=-1) == 0) | (np.ptp(b, axis=-1) == 0)
    r = np.full(a.shape[0], np.nan)
    keep = ~constant
    if keep.any():
        r[keep] = stats.pearsonr(a[keep], b[keep], axis=-1).statistic
    return r


def profile_correlations(true_counts: np.ndarray, pred_probs: np.ndarray,
                         bin_sizes: tuple[int, ...] = CORR_BIN_SIZES
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per-example Pearson and Spearman correlations, each of shape (N, len(bin_sizes)).

    (N, L, 2) arrays are flattened in C order to strand-interleaved (N, 2L) vectors, max-binned,
    then correlated (Spearman: Pearson of average ranks, ``scipy.stats.rankdata``).
    """
    n = true_counts.shape[0]
    pear = np.empty((n, len(bin_sizes)))
    spear = np.empty((n, len(bin_sizes)))
    for start in range(0, n, _CHUNK):
        t = np.asarray(true_counts[start:start + _CHUNK], dtype=np.float64)
        p = np.asarray(pred_probs[start:start + _CHUNK], dtype=np.float64)
        t = t.reshape(t.shape[0], -1)
        p = p.reshape(p.shape[0], -1)
        for j, size in enumerate(bin_sizes):
            tb, pb = bin_max(t, size), bin_max(p, size)
            pear[start:start + len(t), j] = _rowwise_pearson(tb, pb)
            spear[start:start + len(t), j] = _rowwise_pearson(
                stats.rankdata(tb, method="average", axis=-1),
                stats.rankdata(pb, method="average", axis=-1))
    return pear, spear


def profile_jsd(true_counts: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Per-example JSD (N,): smoothed, renormalised, per strand, averaged over the strands."""
    out = np.empty(true_counts.shape[0])
    for start in range(0, len(out), _CHUNK):
        t = smooth_profile(true_counts[start:start + _CHUNK])
        p = smooth_profile(pred_probs[start:start + _CHUNK])
        out[start:start + len(t)] = jensen_shannon(t, p, axis=1).mean(axis=-1)
    return out


def _check_profiles(true_counts: np.ndarray, pred_probs: np.ndarray) -> None:
    if true_counts.ndim != 3 or true_counts.shape != pred_probs.shape:
        raise ValueError("true_counts and pred_probs must both be (N, L, strands); got "
                         f"{true_counts.shape} and {pred_probs.shape}")


def profile_metrics(true_counts: np.ndarray, pred_probs: np.ndarray) -> dict[str, float]:
    """The profile metrics of spec/paper.md §4.5.

    Args:
        true_counts: (N, 1000, 2) raw observed counts (+ strand, − strand).
        pred_probs: (N, 1000, 2) predicted probabilities (softmax of the profile logits over
            positions, per strand).

    Returns:
        ``{"jsd", "pearson", "spearman", "n_jsd_excluded", "n_corr_excluded"}``: JSD averaged
        over examples; correlations averaged over examples × bin sizes (1, 5, 10). Undefined
        entries (all-zero true strand / constant vector) are excluded and counted (module doc).
    """
    true_counts = np.asarray(true_counts)
    pred_probs = np.asarray(pred_probs)
    _check_profiles(true_counts, pred_probs)
    jsd = profile_jsd(true_counts, pred_probs)
    pear, spear = profile_correlations(true_counts, pred_probs)

    def mean(values: np.ndarray) -> float:
        ok = np.isfinite(values)
        return float(values[ok].mean()) if ok.any() else float("nan")

    return {"jsd": mean(jsd), "pearson": mean(pear), "spearman": mean(spear),
            "n_jsd_excluded": int((~np.isfinite(jsd)).sum()),
            "n_corr_excluded": int((~np.isfinite(pear) | ~np.isfinite(spear)).sum())}


def softmax_profile(logits: np.ndarray) -> np.ndarray:
    """Softmax over positions (axis 1) of (N, L, S) profile logits, in float64."""
    return special.softmax(np.asarray(logits, dtype=np.float64), axis=1)


def rc_divergence_logits(forward_logits: np.ndarray, back_logits: np.ndarray) -> float:
    """Mean |f(x) − RC_out(f(RC x))| over examples and tasks of (N, T) pre-sigmoid logits (for
    an invariant output RC_out is the identity); 0 (to float32 round-off) for an exactly
    RC-invariant model."""
    f = np.asarray(forward_logits, dtype=np.float64)
    r = np.asarray(back_logits, dtype=np.float64)
    if f.shape != r.shape:
        raise ValueError(f"forward {f.shape} and RC {r.shape} logits differ in shape")
    return float(np.mean(np.abs(f - r)))


def rc_jsd_profile(forward_logits: np.ndarray, back_logits: np.ndarray) -> np.ndarray:
    """Per-example JSD (N,) (natural log, unsmoothed, mean over strands) between
    softmax(f(x)) and softmax(RC_out(f(RC x))), from (N, L, 2) logits; the softmax is over
    positions, so it commutes with RC_out (reverse positions, swap strands)."""
    p = softmax_profile(forward_logits)
    q = softmax_profile(back_logits)
    _check_profiles(p, q)
    return jensen_shannon(p, q, axis=1).mean(axis=-1)


def rc_divergence_profile(forward_logits: np.ndarray, back_logits: np.ndarray) -> float:
    """Mean over examples of :func:`rc_jsd_profile`."""
    return float(np.mean(rc_jsd_profile(forward_logits, back_logits)))


def track_metrics(true_counts: np.ndarray, pred_counts: np.ndarray) -> dict[str, Any]:
    """Binned-track metrics (Enformer-style): per track, the Pearson and Spearman correlation of
    log(1 + counts) over every (example, bin) of the split; then their means over tracks.

    Args:
        true_counts: (N, B, T) observed binned counts (non-negative).
        pred_counts: (N, B, T) predicted rates (softplus outputs).

    Returns:
        ``{"pearson", "spearman", "pearson_per_track", "spearman_per_track",
        "n_tracks_excluded"}``: the means over tracks with a defined correlation (a track whose
        true or predicted values are constant has none; it is excluded and counted), and the
        per-track lists (NaN where undefined).
    """
    t = np.log1p(np.asarray(true_counts, dtype=np.float64))
    p = np.log1p(np.asarray(pred_counts, dtype=np.float64))
    if t.ndim != 3 or t.shape != p.shape:
        raise ValueError(f"true and predicted tracks must both be (N, B, T); got {t.shape} and "
                         f"{p.shape}")
    t = t.reshape(-1, t.shape[-1]).T  # (T, N*B)
    p = p.reshape(-1, p.shape[-1]).T
    pear = _rowwise_pearson(t, p) if t.shape[1] > 1 else np.full(len(t), np.nan)
    spear = (_rowwise_pearson(stats.rankdata(t, axis=-1), stats.rankdata(p, axis=-1))
             if t.shape[1] > 1 else np.full(len(t), np.nan))

    def mean(values: np.ndarray) -> float:
        ok = np.isfinite(values)
        return float(values[ok].mean()) if ok.any() else float("nan")

    return {"pearson": mean(pear), "spearman": mean(spear),
            "pearson_per_track": [float(v) for v in pear],
            "spearman_per_track": [float(v) for v in spear],
            "n_tracks_excluded": int((~np.isfinite(pear) | ~np.isfinite(spear)).sum())}


def rc_divergence_tracks(forward: np.ndarray, back: np.ndarray) -> float:
    """Mean |log(1 + f(x)) − log(1 + RC_out(f(RC x)))| over examples, bins and tracks of
    predicted rates; 0 (to float32 round-off) for an exactly RC-equivariant model."""
    f = np.log1p(np.asarray(forward, dtype=np.float64))
    r = np.log1p(np.asarray(back, dtype=np.float64))
    if f.shape != r.shape:
        raise ValueError(f"forward {f.shape} and RC {r.shape} tracks differ in shape")
    return float(np.mean(np.abs(f - r)))


# -------------------------------------------------------------------------------- summaries
def mean_se(values: Any) -> dict[str, float]:
    """mean, se (sample SD / sqrt(n); NaN for n < 2), sd (sample) and n of the finite
    ``values``."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    n = len(v)
    if not n:
        return {"mean": float("nan"), "se": float("nan"), "sd": float("nan"), "n": 0}
    sd = float(v.std(ddof=1)) if n > 1 else float("nan")
    return {"mean": float(v.mean()), "se": sd / float(np.sqrt(n)) if n > 1 else float("nan"),
            "sd": sd, "n": n}

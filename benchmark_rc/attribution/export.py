"""Export attributions for TF-MoDISco (modisco-lite) and as an HDF5 file with coordinates."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.errors import UserError
from benchmark_rc.fileio import atomic_path


def write_modisco_npz(out_dir: str | os.PathLike, x: np.ndarray, hypothetical: np.ndarray,
                      prefix: str = "attributions") -> tuple[Path, Path]:
    """Write ``<prefix>.ohe.npz`` and ``<prefix>.attr.npz`` (compressed, key ``arr_0``,
    (N, 4, L) float32 as modisco-lite's ``modisco motifs -s ... -a ...`` expects) from (N, L, 4)
    one-hot sequences and hypothetical contributions. Returns the two paths."""
    x = np.asarray(x)
    hyp = np.asarray(hypothetical)
    if x.shape != hyp.shape or x.ndim != 3 or x.shape[-1] != 4:
        raise UserError(f"one-hot {x.shape} and hypothetical scores {hyp.shape} must both be "
                        "(N, L, 4)")
    out_dir = Path(out_dir)
    paths = []
    for name, arr in (("ohe", x), ("attr", hyp)):
        path = out_dir / f"{prefix}.{name}.npz"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, np.ascontiguousarray(
                    np.transpose(arr, (0, 2, 1)), dtype=np.float32))
        paths.append(path)
    return paths[0], paths[1]


def write_attribution_h5(path: str | os.PathLike, x: np.ndarray, hypothetical: np.ndarray,
                         contributions: np.ndarray | None = None,
                         coords: dict[str, Any] | None = None,
                         attrs: dict[str, Any] | None = None) -> Path:
    """HDF5 in the BPNet-refactor layout read by ``modisco motifs -i``: ``input_seqs`` (N, L, 4)
    int8, ``hyp_scores`` (N, L, 4) float32, optional ``contrib_scores``, and ``coords_chrom``
    (strings), ``coords_start``, ``coords_end`` (int64; default: row index, 0, L)."""
    import h5py

    x = np.asarray(x)
    n, length = x.shape[:2]
    if coords is None:
        coords = {"chrom": np.array([f"seq{i}" for i in range(n)]),
                  "start": np.zeros(n, dtype=np.int64),
                  "end": np.full(n, length, dtype=np.int64)}
    for key in ("chrom", "start", "end"):
        if key not in coords or len(coords[key]) != n:
            raise UserError(f"coords[{key!r}] must have one entry per sequence ({n})")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("input_seqs", data=x.astype(np.int8), compression="gzip")
        f.create_dataset("hyp_scores", data=np.asarray(hypothetical, np.float32),
                         compression="gzip")
        if contributions is not None:
            f.create_dataset("contrib_scores", data=np.asarray(contributions, np.float32),
                             compression="gzip")
        f.create_dataset("coords_chrom", data=np.asarray(coords["chrom"]).astype("S"))
        f.create_dataset("coords_start", data=np.asarray(coords["start"], np.int64))
        f.create_dataset("coords_end", data=np.asarray(coords["end"], np.int64))
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return Path(path)

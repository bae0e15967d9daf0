"""The one extraction loop shared by `prepare binary` and `prepare profile`.

Windows are processed chromosome by chromosome (FASTA order), sorted by start, in chunks: each
chunk is gathered from the chromosome bytes, one-hot encoded, reverse complemented where the strand
is -1, filtered for N content, completed with task arrays by a callback, and appended to the
HDF5 file. Peak memory is one chromosome plus one chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from benchmark_rc.data.hdf5 import DatasetWriter
from data_prep.genome import Genome, n_fraction
from data_prep.regions import Regions
from data_prep.splits import SPLIT_NAMES

# (chromosome, kept windows of a chunk, their one-hot x (n, L, 4), their indices into the
# windows) -> the task arrays to append for them
ArraysFn = Callable[[str, Regions, np.ndarray, np.ndarray], Mapping[str, np.ndarray]]


@dataclass
class ExtractStats:
    """What the extraction loop wrote and dropped, per split."""

    written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLIT_NAMES, 0))
    too_many_n: list[np.ndarray] = field(default_factory=list)  # indices into windows
    kept: list[np.ndarray] = field(default_factory=list)  # indices into windows, written

    @property
    def n_too_many_n(self) -> int:
        return int(sum(len(i) for i in self.too_many_n))

    @staticmethod
    def indices(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.zeros(0, np.int64), *parts])


def write_windows(writer: DatasetWriter, genome: Genome, windows: Regions, length: int,
                  split_of: Mapping[str, str] | None, arrays_fn: ArraysFn, *,
                  max_n: float = 1.0, chunk_size: int = 4096,
                  progress: bool = True) -> ExtractStats:
    """Extract ``windows`` (all of ``length`` bp, inside their chromosomes) and append them to
    ``writer`` with their coords, each to its split: ``windows.split`` (codes of
    :data:`data_prep.splits.SPLIT_NAMES`) when set, else ``split_of[chrom]`` (whole chromosomes).

    ``arrays_fn(chrom, chunk, x, idx)`` returns the task arrays of the kept rows of a chunk
    (``idx`` indexes ``windows``, e.g. to pick labels). Windows whose fraction of non-ACGT bases
    exceeds ``max_n`` are dropped and counted. Rows of a split are in genome (FASTA) order.
    """
    from tqdm.auto import tqdm

    stats = ExtractStats()
    order_of = {name: i for i, name in enumerate(genome.sizes)}
    chrom_rank = np.fromiter((order_of[c] for c in windows.chrom), np.int64, len(windows))
    if windows.split is not None:
        split_code = np.asarray(windows.split, np.int64)
    else:
        code_of = {name: i for i, name in enumerate(SPLIT_NAMES)}
        split_code = np.fromiter((code_of[split_of[c]] for c in windows.chrom), np.int64,
                                 len(windows))
    order = np.lexsort((windows.strand, windows.start, split_code, chrom_rank))
    key = chrom_rank[order] * len(SPLIT_NAMES) + split_code[order]
    bounds = np.flatnonzero(np.diff(key)) + 1
    groups = np.split(order, bounds) if len(order) else []
    bar = tqdm(total=len(windows), unit="win", disable=not progress, desc="windows",
               mininterval=0.5)
    try:
        for group in groups:
            chrom = str(windows.chrom[group[0]])
            split = SPLIT_NAMES[split_code[group[0]]]
            for lo in range(0, len(group), chunk_size):
                idx = group[lo:lo + chunk_size]
                x = genome.one_hot(chrom, windows.start[idx], length, windows.strand[idx])
                keep = n_fraction(x) <= max_n
                if not keep.all():  # (copying x only when something is dropped)
                    stats.too_many_n.append(idx[~keep])
                    idx, x = idx[keep], x[keep]
                if len(idx):
                    chunk = windows.take(idx)
                    arrays = arrays_fn(chrom, chunk, x, idx)
                    writer.append(split, x=x, **arrays)
                    writer.append_table(split, "coords", chrom=chunk.chrom, start=chunk.start,
                                        end=chunk.end, strand=chunk.strand)
                    stats.written[split] += len(idx)
                    stats.kept.append(idx)
                bar.update(len(keep))
    finally:
        bar.close()
    return stats

"""Stranded bigWig tracks (pyBigWig) and the control smoothing of the profile task.

Positions a bigWig does not cover read as 0 (count tracks are sparse). A value *stored* as NaN is
also read as 0, and counted so the caller can warn about it. Chromosomes are asked for by their
FASTA names; with chromosome aliases a bigWig may spell them differently (``1`` for ``chr1``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from benchmark_rc.errors import UserError
from data_prep.chroms import ChromAliases

_BIGWIG_MAGIC = (0x888FFC26).to_bytes(4, "little")


class BigWig:
    """One bigWig file opened for reading; ``nan_values`` counts stored NaN values read."""

    def __init__(self, path: str | os.PathLike, role: str, aliases: ChromAliases | None = None):
        import pyBigWig

        self.path = Path(path)
        self.role = role
        if not self.path.is_file():
            raise UserError(f"{self.path}: {role} bigWig not found")
        with open(self.path, "rb") as handle:
            magic = handle.read(4)
        if magic not in (_BIGWIG_MAGIC, _BIGWIG_MAGIC[::-1]):
            raise UserError(f"{self.path}: {role} is not a bigWig file (bad magic number; "
                            "expected a .bw/.bigWig file, e.g. from bedGraphToBigWig)")
        try:
            self._bw = pyBigWig.open(str(self.path))
        except RuntimeError as err:
            raise UserError(f"{self.path}: cannot open {role} bigWig ({err})") from None
        if self._bw is None or not self._bw.isBigWig():
            raise UserError(f"{self.path}: {role} is not a bigWig file")
        self.chroms: dict[str, int] = dict(self._bw.chroms())
        self.aliases = aliases
        # FASTA name -> this file's name for it
        self._names = (aliases.other_names(self.chroms) if aliases is not None
                       else {name: name for name in self.chroms})
        self.nan_values = 0
        self.may_hold_nan = _summary_may_hold_nan(self.path, magic == _BIGWIG_MAGIC)

    def close(self) -> None:
        self._bw.close()

    def check_chromosomes(self, needed: Mapping[str, tuple[int, str]],
                          sizes: Mapping[str, int]) -> None:
        """Raise :class:`UserError` when a chromosome with windows is missing from this bigWig or
        has a different length than in the genome. ``needed`` maps chromosome -> (number of
        windows, where the first one comes from)."""
        for chrom, (count, where) in needed.items():
            name = self._names.get(chrom)
            if name is None:
                have = ", ".join(list(self.chroms)[:8]) + (", ..." if len(self.chroms) > 8 else "")
                hint = (self.aliases.suggest_other(chrom, self.chroms, "the bigWig")
                        if self.aliases is not None else "")
                raise UserError(f"{self.path}: {self.role} bigWig lacks chromosome {chrom!r}, "
                                f"needed by {count} window(s), first at {where} "
                                f"(the bigWig has {have or 'no chromosomes'}){hint}")
            if self.chroms[name] != sizes[chrom]:
                spelled = f" (as {name!r})" if name != chrom else ""
                raise UserError(f"{self.path}: {self.role} bigWig gives {chrom!r}{spelled} "
                                f"length {self.chroms[name]}, the genome FASTA {sizes[chrom]} "
                                "(expected the same assembly)")

    def values(self, chrom: str, start: int, end: int,
               used: np.ndarray | None = None) -> np.ndarray:
        """Values over [start, end) as float32 (end - start,); missing and NaN -> 0.

        Stored NaN values are added to ``nan_values``, only at positions where ``used`` (bool,
        (end - start,)) is True when it is given.
        """
        out = np.asarray(self._bw.values(self._names[chrom], int(start), int(end), numpy=True),
                         dtype=np.float32)
        nan = np.isnan(out)
        if nan.any():
            if self.may_hold_nan:
                self.nan_values += self._stored_nans(chrom, start, end, used)
            out[nan] = 0.0
        return out

    def _stored_nans(self, chrom: str, start: int, end: int, used: np.ndarray | None) -> int:
        """Positions in [start, end) (and ``used``) covered by a stored NaN value; positions
        without data are not NaN values of the file."""
        intervals = self._bw.intervals(self._names[chrom], int(start), int(end))
        if not intervals:
            return 0
        table = np.array(intervals, dtype=np.float64)
        table = table[np.isnan(table[:, 2])]
        count = 0
        for s, e in table[:, :2].astype(np.int64).tolist():
            lo, hi = max(s, start) - start, min(e, end) - start
            count += int(used[lo:hi].sum()) if used is not None else hi - lo
        return count


def _summary_may_hold_nan(path: Path, little_endian: bool) -> bool:
    """False when the bigWig's total summary (min, max, sum, sum of squares; header field
    totalSummaryOffset) is finite, i.e. no stored value is NaN (NaN propagates into the sums
    that the writers accumulate); True when it is NaN or absent. Read with struct, since
    pyBigWig's header() crashes on a NaN summary."""
    import math
    import struct

    order = "<" if little_endian else ">"
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
            (offset,) = struct.unpack_from(order + "Q", head, 44)
            if offset == 0:
                return True
            handle.seek(offset)
            summary = struct.unpack(order + "Q4d", handle.read(40))
    except (OSError, struct.error):
        return True
    return not all(math.isfinite(v) for v in summary[1:])


def open_bigwigs(paths: Mapping[str, str | os.PathLike],
                 aliases: ChromAliases | None = None) -> dict[str, BigWig]:
    """Open several bigWigs (role -> path); closes the opened ones if a later one fails."""
    opened: dict[str, BigWig] = {}
    try:
        for role, path in paths.items():
            opened[role] = BigWig(path, role, aliases)
    except BaseException:
        for bw in opened.values():
            bw.close()
        raise
    return opened


def smoothing_offsets(window: int) -> tuple[int, int]:
    """Left and right extent of a ``window``-bp moving average: an odd window is centred
    (w//2, w//2); an even one is the original BPNet's (w//2 - 1, w//2), e.g. 24 / 25 for 50."""
    if window < 1:
        raise ValueError("smoothing window must be >= 1")
    return (window - 1) // 2, window // 2


def moving_average(track: np.ndarray, window: int) -> np.ndarray:
    """Moving average along the last axis with the 'valid' convention: input length
    L + window - 1 (already padded by :func:`smoothing_offsets`) -> output length L."""
    csum = np.cumsum(track, axis=-1, dtype=np.float64)
    csum = np.concatenate([np.zeros((*track.shape[:-1], 1)), csum], axis=-1)
    return ((csum[..., window:] - csum[..., :-window]) / window).astype(np.float32)


def padded_values(bw: BigWig, chrom: str, start: int, end: int, length: int,
                  used: np.ndarray | None = None) -> np.ndarray:
    """Values over [start, end), clipped to the chromosome [0, length) and edge-padded back."""
    lo, hi = max(start, 0), min(end, length)
    values = bw.values(chrom, lo, hi, None if used is None else used[lo - start:hi - start])
    if lo == start and hi == end:
        return values
    return np.pad(values, (lo - start, end - hi), mode="edge")


def coverage(offsets: np.ndarray, width: int, length: int) -> np.ndarray:
    """Boolean mask (length,) of the positions covered by [offset, offset + width) windows."""
    diff = np.zeros(length + 1, np.int64)
    np.add.at(diff, np.clip(offsets, 0, length), 1)
    np.add.at(diff, np.clip(offsets + width, 0, length), -1)
    return np.cumsum(diff[:-1]) > 0


def blocks(starts: np.ndarray, width: int, gap: int, max_span: int) -> list[tuple[int, int]]:
    """Split sorted window starts into runs read with one bigWig call each: a new run begins
    where the next window starts more than ``gap`` after the run's end, or (without overlap)
    would make the run longer than ``max_span``. Returns (first, stop) index pairs."""
    out = []
    first, run_lo, run_end = 0, int(starts[0]), int(starts[0]) + width
    for i, s in enumerate(starts[1:].tolist(), start=1):
        if s > run_end + gap or (s >= run_end and s + width - run_lo > max_span):
            out.append((first, i))
            first, run_lo, run_end = i, s, s + width
        else:
            run_end = max(run_end, s + width)
    out.append((first, len(starts)))
    return out

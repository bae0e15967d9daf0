"""BED / narrowPeak reading, validation against a genome, windows, overlaps and splits.

Coordinates are 0-based, half-open (BED). A record's *centre* is ``start + summit`` for a
narrowPeak file (``peak_format="narrowPeak"``, or ``"auto"`` and exactly 10 columns) whose summit
offset (column 10) is not -1, else the interval midpoint ``(start + end) // 2``: in BED12,
gappedPeak and other files of 10 or more columns, column 10 is something else (BED12: the block
count), so it is never read as a summit there. Column 6, when present, is the strand (``+``,
``-`` or ``.``); ``-`` records are extracted as the reverse complement of the genome slice.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from benchmark_rc.errors import UserError

_HEADER_PREFIXES = (b"#", b"track", b"browser")
_STRANDS = {"+": 1, "-": -1, ".": 1}
PEAK_FORMATS = ("auto", "bed", "narrowPeak")


@dataclass
class Regions:
    """Records of one BED-like file, as parallel 1-D arrays of length N.

    ``chrom`` str (object), ``start``/``end``/``centre`` int64 (0-based, half-open),
    ``strand`` int8 (+1 / -1), ``line`` int64 (1-based line number in ``path``, for messages),
    ``split`` int8 split code per window once assigned (see :mod:`data_prep.splits`), else None.
    ``centred_on`` says how the centres were chosen (``"summit"`` or ``"midpoint"``).
    """

    path: str
    chrom: np.ndarray
    start: np.ndarray
    end: np.ndarray
    centre: np.ndarray
    strand: np.ndarray
    line: np.ndarray
    split: np.ndarray | None = None
    centred_on: str = "midpoint"

    def __len__(self) -> int:
        return len(self.start)

    def take(self, index: np.ndarray) -> Regions:
        """Subset by a boolean mask or an index array."""
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self)
                                if isinstance(getattr(self, f.name), np.ndarray)})

    def replace(self, **changes) -> Regions:
        """A copy with some fields replaced."""
        return replace(self, **changes)

    def where(self, i: int) -> str:
        """``file line N`` of record ``i``, for messages."""
        return f"{self.path} line {int(self.line[i])}"


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            magic = handle.read(2)
        if magic == b"\x1f\x8b":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise UserError(f"{path}: cannot read {what} file ({err})") from None


def read_regions(path: str | os.PathLike, what: str = "regions",
                 peak_format: str = "auto") -> Regions:
    """Read a BED / narrowPeak file (plain or gzip) and check every record.

    ``what`` names the role of the file in messages (e.g. ``"peaks"``). ``peak_format``:
    ``"narrowPeak"`` centres on the summit (column 10), ``"bed"`` on the interval midpoint,
    ``"auto"`` reads a file of exactly 10 columns as narrowPeak and any other as BED. Raises
    :class:`UserError` naming the file, the line and the expectation for: a missing or empty
    file, fewer than 3 columns or a column count that differs from the first record, non-integer
    or negative coordinates, ``start >= end``, an invalid strand, a summit offset outside the
    interval, and fewer than 10 columns in a file declared narrowPeak. Parsing is vectorised;
    when anything is wrong a line-by-line pass finds the first bad line for the message.
    """
    if peak_format not in PEAK_FORMATS:
        raise UserError(f"--peak-format must be one of {', '.join(PEAK_FORMATS)}, "
                        f"got {peak_format!r}")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} file not found")
    data = _read_bytes(path, what)
    lines = data.split(b"\n")
    keep = [i for i, line in enumerate(lines)
            if line.strip() and not line.startswith(_HEADER_PREFIXES)]
    if not keep:
        raise UserError(f"{path}: {what} file is empty (expected BED or narrowPeak records: "
                        "chrom, start, end, ...)")
    sep = b"\t" if b"\t" in data else None
    try:
        table = _split_fields([lines[i].rstrip(b"\r") for i in keep], sep)
        ncols = table.shape[1]
        summits = _has_summits(ncols, peak_format, path, what, keep[0] + 1)
        start = table[:, 1].astype(bytes).astype(np.int64)
        end = table[:, 2].astype(bytes).astype(np.int64)
        if (start < 0).any() or (start >= end).any():
            raise ValueError("interval")
        strand = np.ones(len(start), np.int8)
        if ncols >= 6:
            col = table[:, 5].astype(bytes)
            if not np.isin(col, (b"+", b"-", b".")).all():
                raise ValueError("strand")
            strand[col == b"-"] = -1
        centre = (start + end) // 2
        if summits:
            offset = table[:, 9].astype(bytes).astype(np.int64)
            has = offset != -1
            if ((offset[has] < 0) | (offset[has] >= (end - start)[has])).any():
                raise ValueError("summit")
            centre[has] = start[has] + offset[has]
        names = {name: name.decode("utf-8", errors="replace") for name in set(table[:, 0])}
        chrom = np.empty(len(table), dtype=object)
        chrom[:] = [names[name] for name in table[:, 0]]
    except (ValueError, OverflowError):
        _find_bad_line(path, lines, keep, sep, peak_format, what)
        raise UserError(f"{path}: cannot parse {what} file as BED / narrowPeak") from None
    return Regions(str(path), chrom, start, end, centre, strand,
                   np.asarray(keep, np.int64) + 1,
                   centred_on="summit" if summits else "midpoint")


def _has_summits(ncols: int, peak_format: str, path: Path, what: str, line: int) -> bool:
    """Is column 10 a narrowPeak summit offset? Only for narrowPeak: in BED12 it is the block
    count and in gappedPeak too, so "auto" trusts it only in files of exactly 10 columns."""
    if peak_format == "narrowPeak" and ncols < 10:
        raise UserError(f"{path} line {line}: {what} file has {ncols} columns, but "
                        "--peak-format narrowPeak needs 10 (column 10 = summit offset from "
                        "start); pass --peak-format bed to centre on the interval midpoint")
    return peak_format == "narrowPeak" or (peak_format == "auto" and ncols == 10)


def _split_fields(records: list[bytes], sep: bytes | None) -> np.ndarray:
    """(n, ncols) object array of the fields; ValueError unless every record has the same
    number (>= 3) of fields. Tab-separated files are split with one join + one split."""
    if sep is None:
        fields = [r.split() for r in records]
        ncols = len(fields[0])
        if ncols < 3 or any(len(f) != ncols for f in fields):
            raise ValueError("columns")
        return np.array(fields, dtype=object)
    tabs = np.fromiter((r.count(sep) for r in records), np.int64, len(records))
    ncols = int(tabs[0]) + 1
    if ncols < 3 or (tabs != tabs[0]).any():
        raise ValueError("columns")
    flat = sep.join(records).split(sep)
    table = np.empty(len(flat), dtype=object)
    table[:] = flat
    return table.reshape(len(records), ncols)


def _find_bad_line(path: Path, lines: list[bytes], keep: list[int], sep: bytes | None,
                   peak_format: str, what: str) -> None:
    """Raise :class:`UserError` for the first bad record (line-by-line checks)."""
    ncols = None
    summits = False
    for i in keep:
        fields = [f.decode("utf-8", errors="replace") for f in lines[i].rstrip(b"\r").split(sep)]
        where = f"{path} line {i + 1}"
        if len(fields) < 3:
            raise UserError(f"{where}: expected at least 3 tab-separated columns "
                            f"(chrom, start, end), got {len(fields)}")
        if ncols is None:
            ncols = len(fields)
            summits = _has_summits(ncols, peak_format, path, what, i + 1)
        elif len(fields) != ncols:
            raise UserError(f"{where}: has {len(fields)} columns, but the first record "
                            f"has {ncols} (every record must have the same columns)")
        start = _parse_int(fields[1], where, "start")
        end = _parse_int(fields[2], where, "end")
        if start < 0:
            raise UserError(f"{where}: start {start} is negative "
                            "(expected 0-based coordinates >= 0)")
        if start >= end:
            raise UserError(f"{where}: start {start} >= end {end} "
                            "(expected a non-empty interval, start < end)")
        if ncols >= 6 and fields[5] not in _STRANDS:
            raise UserError(f"{where}: strand (column 6) is {fields[5]!r}, "
                            "expected '+', '-' or '.'")
        if summits:
            offset = _parse_int(fields[9], where, "summit offset (column 10)")
            if offset != -1 and not 0 <= offset < end - start:
                raise UserError(f"{where}: summit offset (column 10) {offset} is "
                                f"outside the interval of length {end - start} "
                                "(expected 0 <= offset < end - start, or -1)")


def _parse_int(text: str, where: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UserError(f"{where}: {name} {text!r} is not an integer "
                        "(expected integer 0-based coordinates)") from None


def check_against_genome(regions: Regions, sizes: Mapping[str, int], genome_path: str) -> None:
    """Raise :class:`UserError` for the first record that ends beyond its chromosome (names
    must already be the genome's: :meth:`data_prep.chroms.ChromAliases.rename`)."""
    length = np.fromiter((sizes[c] for c in regions.chrom), np.int64, len(regions))
    beyond = regions.end > length
    if beyond.any():
        i = int(np.argmax(beyond))
        raise UserError(f"{regions.where(i)}: interval {regions.chrom[i]}:{regions.start[i]}-"
                        f"{regions.end[i]} ends beyond the end of {regions.chrom[i]} "
                        f"(length {length[i]} in {genome_path})")


def dedupe(regions: Regions, key: str = "interval") -> tuple[Regions, int]:
    """Remove repeated records, keeping the first; returns (regions, number removed)."""
    keep = first_occurrences(regions, key)
    return regions.take(keep), int((~keep).sum())


def first_occurrences(regions: Regions, key: str = "interval") -> np.ndarray:
    """Boolean mask of the records that do not repeat an earlier one.

    ``key="interval"`` compares chrom, start, end, centre and strand (an exactly repeated region);
    ``key="window"`` compares chrom, start, end and strand (identical extracted windows).
    """
    keep = np.zeros(len(regions), bool)
    if not len(regions):
        return keep
    columns = [regions.start, regions.end, regions.strand]
    if key == "interval":
        columns.append(regions.centre)
    _, codes = np.unique(regions.chrom.astype(str), return_inverse=True)
    table = np.stack([codes.astype(np.int64), *[np.asarray(c, np.int64) for c in columns]], 1)
    _, first = np.unique(table, axis=0, return_index=True)
    keep[first] = True
    return keep


def centred_windows(regions: Regions, length: int) -> Regions:
    """Windows of ``length`` bp centred on each record's centre (left of centre: length // 2)."""
    start = regions.centre - length // 2
    return regions.replace(start=start, end=start + length)


def inside_chromosome(windows: Regions, sizes: Mapping[str, int]) -> np.ndarray:
    """Boolean mask of windows lying entirely within their chromosome."""
    length = np.fromiter((sizes[c] for c in windows.chrom), np.int64, len(windows))
    return (windows.start >= 0) & (windows.end <= length)


class IntervalIndex:
    """Merged intervals per chromosome for fast "does [start, end) overlap anything" queries."""

    def __init__(self, chrom: Iterable[str], start: np.ndarray, end: np.ndarray, flank: int = 0):
        chrom = np.asarray(list(chrom), dtype=object)
        start = np.asarray(start, np.int64) - flank
        end = np.asarray(end, np.int64) + flank
        self._merged: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, idx in group_by_chrom(chrom).items():
            s, e = start[idx], end[idx]
            order = np.argsort(s, kind="stable")
            s, e = s[order], e[order]
            run_end = np.maximum.accumulate(e)
            # a new merged block begins where the start is past every earlier end
            new = np.ones(len(s), bool)
            new[1:] = s[1:] > run_end[:-1]
            block = np.cumsum(new) - 1
            ms = s[new]
            me = np.full(len(ms), np.iinfo(np.int64).min, np.int64)
            np.maximum.at(me, block, e)
            self._merged[name] = (ms, me)

    def overlaps(self, chrom: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Boolean mask: does each [start, end) overlap a stored interval (flank included)?"""
        out = np.zeros(len(start), bool)
        start, end = np.asarray(start, np.int64), np.asarray(end, np.int64)
        for name, idx in group_by_chrom(chrom).items():
            if name not in self._merged:
                continue
            ms, me = self._merged[name]
            pos = np.searchsorted(ms, end[idx], side="left") - 1
            hit = pos >= 0
            hit[hit] = me[pos[hit]] > start[idx][hit]
            out[idx] = hit
        return out


def group_by_chrom(chrom: np.ndarray | Sequence[str]) -> dict[str, np.ndarray]:
    """chromosome -> indices of its records (ascending), in order of first appearance; one
    sort, so it stays fast with many contigs."""
    chrom = np.asarray(chrom, dtype=object)
    if not len(chrom):
        return {}
    names, first, codes = np.unique(chrom.astype(str), return_index=True, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    groups = dict(zip(names.tolist(), np.split(order, bounds), strict=True))
    return {str(names[k]): groups[str(names[k])] for k in np.argsort(first)}


def concat_regions(parts: Sequence[Regions], path: str = "") -> Regions:
    """Concatenate several :class:`Regions` (the ``path`` of the result is only descriptive);
    the split codes are kept when every part has them."""
    splits = [p.split for p in parts]
    return Regions(path or "+".join(p.path for p in parts),
                   np.concatenate([p.chrom for p in parts]).astype(object),
                   *(np.concatenate([getattr(p, name) for p in parts])
                     for name in ("start", "end", "centre", "strand", "line")),
                   split=None if any(s is None for s in splits) else np.concatenate(splits))

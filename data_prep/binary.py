"""`prepare binary`: TF ChIP-seq peaks vs background windows (spec/paper.md §3.1).

Positives are ``window``-bp windows centred on the peak summits (narrowPeak column 10) or
interval centres; negatives are windows centred on background regions (``--negatives``, e.g.
DNase peaks) that overlap no peak and no positive window (each widened by ``flank``), and/or
random genomic windows whose GC-content histogram matches the positives of the same split
(``--gc-negatives RATIO``). Label y = 1 for positives, 0 for negatives, shape (N, 1).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.data.hdf5 import DatasetWriter
from benchmark_rc.errors import UserError
from data_prep.common import (
    Log,
    format_summary,
    make_splits,
    read_blacklist,
    read_checked,
    select_windows,
    stderr_log,
    versions,
)
from data_prep.extract import write_windows
from data_prep.genome import Genome, gc_fraction, n_fraction
from data_prep.regions import (
    SPLIT_NAMES,
    IntervalIndex,
    Regions,
    concat_regions,
    group_by_chrom,
)


def prepare_binary(genome: str | os.PathLike, peaks: str | os.PathLike, out: str | os.PathLike,
                   *, negatives: str | os.PathLike | None = None, gc_negatives: float = 0.0,
                   blacklist: str | os.PathLike | None = None, window: int = 1000,
                   flank: int = 0, max_n: float = 0.1, valid_chroms: Sequence[str] = ("chr1",),
                   test_chroms: Sequence[str] = ("chr2",),
                   train_chroms: Sequence[str] | None = None, gc_bins: int = 20, seed: int = 0,
                   chunk_size: int = 4096, progress: bool = True,
                   log: Log = stderr_log) -> dict[str, Any]:
    """Build a classification dataset (x (N, window, 4) uint8, y (N, 1) float32, coords) at
    ``out``; returns the counts summary (also stored in the file's params under ``counts``).

    Raises :class:`UserError` for bad input; no file is left at ``out`` on any error.
    """
    if negatives is None and not gc_negatives:
        raise UserError("prepare binary needs negatives: give --negatives BED and/or "
                        "--gc-negatives RATIO")
    _check_options(window=window, flank=flank, max_n=max_n, gc_negatives=gc_negatives,
                   gc_bins=gc_bins, chunk_size=chunk_size)
    params = {
        "command": "prepare binary", "genome": _abs(genome), "peaks": _abs(peaks),
        "negatives": _abs(negatives), "gc_negatives": gc_negatives, "blacklist": _abs(blacklist),
        "window": window, "flank": flank, "max_n": max_n, "valid_chroms": list(valid_chroms),
        "test_chroms": list(test_chroms),
        "train_chroms": None if train_chroms is None else list(train_chroms),
        "gc_bins": gc_bins, "seed": seed, "versions": versions(),
    }
    counts: dict[str, Any] = {"peaks": {}}
    if blacklist is not None:
        counts["blacklist"] = {}
    if negatives is not None:
        counts["negatives"] = {}
    with Genome(genome) as gen:
        split_of = make_splits(gen, valid_chroms, test_chroms, train_chroms, log)
        peak_records = read_checked(peaks, "peaks", gen, counts["peaks"])
        black = read_blacklist(blacklist, gen, counts.get("blacklist", {}))
        positives = select_windows(peak_records, window, gen, split_of, black, counts["peaks"])
        # negatives may touch neither a peak nor a positive window (flank added to both)
        exclude = IntervalIndex(
            np.concatenate([peak_records.chrom, positives.chrom]),
            np.concatenate([peak_records.start, positives.start]),
            np.concatenate([peak_records.end, positives.end]), flank=flank)
        parts = [positives]
        if negatives is not None:
            neg_records = read_checked(negatives, "negatives", gen, counts["negatives"])
            neg = select_windows(neg_records, window, gen, split_of, black, counts["negatives"])
            hit = exclude.overlaps(neg.chrom, neg.start, neg.end)
            counts["negatives"]["overlapping_a_positive"] = int(hit.sum())
            parts.append(neg.take(~hit))
        if gc_negatives:
            counts["gc_negatives"] = {}
            parts.append(sample_gc_negatives(
                gen, positives, split_of, ratio=gc_negatives, window=window, bins=gc_bins,
                max_n=max_n, exclude=exclude, blacklist=black, seed=seed,
                chunk_size=chunk_size, counts=counts["gc_negatives"], log=log))
        labels = np.concatenate([np.ones(len(positives), np.float32)]
                                + [np.zeros(len(p), np.float32) for p in parts[1:]])
        windows = concat_regions(parts)
        per_split = {s: {"positive": 0, "negative": 0} for s in SPLIT_NAMES}

        def arrays(chrom: str, chunk: Regions, x: np.ndarray, idx: np.ndarray) -> dict:
            y = labels[idx]
            split = split_of[chrom]
            per_split[split]["positive"] += int(y.sum())
            per_split[split]["negative"] += int(len(y) - y.sum())
            return {"y": y[:, None]}

        with DatasetWriter(out, "classification", params) as writer:
            stats = write_windows(writer, gen, windows, window, split_of, arrays, max_n=max_n,
                                  chunk_size=chunk_size, progress=progress)
            dropped = labels[np.concatenate([np.zeros(0, np.int64), *stats.too_many_n])]
            counts["peaks"]["too_many_n"] = int(dropped.sum())
            counts["negatives" if negatives is not None else "gc_negatives"]["too_many_n"] = int(
                len(dropped) - dropped.sum())
            counts["written"] = per_split
            total = sum(stats.written.values())
            if total == 0:
                raise UserError(f"no windows left to write to {out} (see the counts: "
                                f"{counts})")
            writer.params["counts"] = counts
    log(format_summary(f"prepare binary: wrote {total} windows to {out}", counts))
    return counts


def sample_gc_negatives(genome: Genome, positives: Regions, split_of: Mapping[str, str], *,
                        ratio: float, window: int, bins: int, max_n: float,
                        exclude: IntervalIndex, blacklist: IntervalIndex | None, seed: int,
                        chunk_size: int, counts: dict[str, Any], log: Log,
                        max_rounds: int = 50) -> Regions:
    """Random ``window``-bp windows, ``ratio`` per positive, drawn per split from that split's
    chromosomes (uniform over positions) so that the histogram of GC fraction (``bins`` equal
    bins on [0, 1]) matches the positives of the split. Candidates overlapping ``exclude`` or the
    blacklist, or with more than ``max_n`` N, are rejected. Shortfalls are counted and warned.
    """
    rng = np.random.default_rng(seed)
    pos_gc, pos_ok = _positive_gc(genome, positives, window, max_n, chunk_size)
    pos_split = np.array([split_of[c] for c in positives.chrom], dtype=object)
    chosen: list[tuple[str, int]] = []
    counts["requested"] = 0
    counts["shortfall"] = 0
    for split in SPLIT_NAMES:
        mask = (pos_split == split) & pos_ok
        if not mask.any():
            continue
        hist = np.bincount(_gc_bin(pos_gc[mask], bins), minlength=bins)
        quota = np.round(hist * ratio).astype(np.int64)
        counts["requested"] += int(quota.sum())
        chroms = [c for c, s in split_of.items() if s == split and genome.sizes[c] >= window]
        if not chroms:
            counts["shortfall"] += int(quota.sum())
            continue
        span = np.array([genome.sizes[c] - window + 1 for c in chroms], np.float64)
        taken: set[tuple[str, int]] = set()
        for _ in range(max_rounds):
            need = int(quota.sum())
            if need == 0:
                break
            n = max(4 * need, 256)
            which = rng.choice(len(chroms), size=n, p=span / span.sum())
            starts = (rng.random(n) * span[which]).astype(np.int64)
            for ci, members in group_by_chrom(which.astype(str)).items():
                chrom = chroms[int(ci)]
                st = np.sort(starts[members])
                ok = ~exclude.overlaps(np.full(len(st), chrom, object), st, st + window)
                if blacklist is not None:
                    ok &= ~blacklist.overlaps(np.full(len(st), chrom, object), st, st + window)
                st = st[ok]
                if not len(st):
                    continue
                x = genome.one_hot(chrom, st, window)
                good = n_fraction(x) <= max_n
                st, gc = st[good], gc_fraction(x[good])
                for start, b in zip(st.tolist(), _gc_bin(gc, bins).tolist(), strict=True):
                    if quota[b] > 0 and (chrom, start) not in taken:
                        taken.add((chrom, start))
                        quota[b] -= 1
        chosen.extend(sorted(taken))
        counts["shortfall"] += int(quota.sum())
    counts["sampled"] = len(chosen)
    if counts["shortfall"]:
        log(f"warning: {counts['shortfall']} GC-matched negative(s) could not be found in "
            f"{max_rounds} rounds of sampling (rare GC bins)")
    chrom = np.array([c for c, _ in chosen], dtype=object)
    start = np.array([s for _, s in chosen], dtype=np.int64)
    return Regions("random GC-matched", chrom, start, start + window, start + window // 2,
                   np.ones(len(start), np.int8), np.zeros(len(start), np.int64))


def _positive_gc(genome: Genome, positives: Regions, window: int, max_n: float,
                 chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    gc = np.zeros(len(positives))
    ok = np.zeros(len(positives), bool)
    for chrom, idx in group_by_chrom(positives.chrom).items():
        for lo in range(0, len(idx), chunk_size):
            sub = idx[lo:lo + chunk_size]
            x = genome.one_hot(chrom, positives.start[sub], window)
            gc[sub] = gc_fraction(x)
            ok[sub] = n_fraction(x) <= max_n
    return gc, ok


def _gc_bin(gc: np.ndarray, bins: int) -> np.ndarray:
    return np.clip((np.nan_to_num(gc) * bins).astype(np.int64), 0, bins - 1)


def _check_options(**values: Any) -> None:
    if values["window"] < 1:
        raise UserError(f"--window must be >= 1, got {values['window']}")
    if values["flank"] < 0:
        raise UserError(f"--flank must be >= 0, got {values['flank']}")
    if not 0 <= values["max_n"] <= 1:
        raise UserError(f"--max-n must be a fraction in [0, 1], got {values['max_n']}")
    if values["gc_negatives"] < 0:
        raise UserError(f"--gc-negatives must be >= 0, got {values['gc_negatives']}")
    if values["chunk_size"] < 1:
        raise UserError(f"--chunk-size must be >= 1, got {values['chunk_size']}")
    if values["gc_bins"] < 1:
        raise UserError(f"--gc-bins must be >= 1, got {values['gc_bins']}")


def _abs(path: str | os.PathLike | None) -> str | None:
    return None if path is None else str(Path(path).resolve())

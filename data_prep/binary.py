"""`prepare binary`: TF ChIP-seq peaks vs background windows (spec/paper.md §3.1).

Positives are ``window``-bp windows centred on the peak summits (narrowPeak column 10) or
interval midpoints (BED, BED12, gappedPeak, ...); negatives are windows centred on background
regions (``--negatives``, e.g. DNase peaks) that overlap no peak and no positive window (each
widened by ``flank``), and/or random genomic windows whose GC-content histogram matches the
positives of the same split (``--gc-negatives RATIO``). Label y = 1 for positives, 0 for negatives, shape (N, 1).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.data.hdf5 import DatasetWriter
from benchmark_rc.errors import UserError
from data_prep.chroms import ChromAliases
from data_prep.common import (
    Log,
    Tally,
    format_summary,
    read_blacklist,
    read_checked,
    require_every_split,
    select_windows,
    stderr_log,
    versions,
)
from data_prep.extract import ExtractStats, write_windows
from data_prep.genome import Genome, gc_fraction, n_fraction
from data_prep.regions import IntervalIndex, Regions, concat_regions, group_by_chrom
from data_prep.splits import SPLIT_NAMES, SplitLayout, build_layout

Chroms = Sequence[str] | str | None


def prepare_binary(genome: str | os.PathLike, peaks: str | os.PathLike, out: str | os.PathLike,
                   *, negatives: str | os.PathLike | None = None, gc_negatives: float = 0.0,
                   blacklist: str | os.PathLike | None = None, window: int = 1000,
                   flank: int = 0, max_n: float = 0.1, valid_chroms: Chroms = None,
                   test_chroms: Chroms = None, train_chroms: Chroms = None,
                   valid_regions: Chroms = None, test_regions: Chroms = None,
                   holdout_fraction: str | Sequence[float] | None = None,
                   peak_format: str = "auto", chrom_aliases: str | os.PathLike | None = None,
                   gc_bins: int = 20, seed: int = 0, chunk_size: int = 4096,
                   progress: bool = True, log: Log = stderr_log) -> dict[str, Any]:
    """Build a classification dataset (x (N, window, 4) uint8, y (N, 1) float32, coords) at
    ``out``; returns the counts summary (also stored in the file's params under ``counts``).

    Splits: see :func:`data_prep.splits.build_layout` (default: valid chr1, test chr2, unless
    regions or a hold-out fraction are given). ``peak_format`` ("auto", "bed", "narrowPeak")
    applies to ``peaks``; ``negatives`` are read as "auto". ``chrom_aliases`` ("auto" or a
    two-column file) maps chromosome names of every input to the FASTA's.

    Raises :class:`UserError` for bad input, and when a split ends up without positives or
    negatives; no file is left at ``out`` on any error.
    """
    if negatives is None and not gc_negatives:
        raise UserError("prepare binary needs negatives: give --negatives BED and/or "
                        "--gc-negatives RATIO")
    _check_options(window=window, flank=flank, max_n=max_n, gc_negatives=gc_negatives,
                   gc_bins=gc_bins, chunk_size=chunk_size)
    params: dict[str, Any] = {
        "command": "prepare binary", "genome": _abs(genome), "peaks": _abs(peaks),
        "negatives": _abs(negatives), "gc_negatives": gc_negatives, "blacklist": _abs(blacklist),
        "window": window, "flank": flank, "max_n": max_n, "peak_format": peak_format,
        "gc_bins": gc_bins, "seed": seed, "versions": versions(),
    }
    counts: dict[str, Any] = {"peaks": {}}
    if blacklist is not None:
        counts["blacklist"] = {}
    with Genome(genome) as gen:
        aliases = ChromAliases(gen.sizes, gen.path, chrom_aliases)
        layout, split_record = build_layout(
            aliases, gen.sizes, valid_chroms=valid_chroms, test_chroms=test_chroms,
            train_chroms=train_chroms, valid_regions=valid_regions, test_regions=test_regions,
            holdout_fraction=holdout_fraction, defaults=(("chr1",), ("chr2",)), log=log)
        params.update(split_record)
        peak_records = read_checked(peaks, "peaks", gen, aliases, counts["peaks"], peak_format)
        black = read_blacklist(blacklist, gen, aliases, counts.get("blacklist", {}))
        tallies = {"peaks": Tally(counts["peaks"], "peak")}
        positives = select_windows(peak_records, window, gen, layout, black, tallies["peaks"])
        # negatives may touch neither a peak nor a positive window (flank added to both)
        exclude = IntervalIndex(
            np.concatenate([peak_records.chrom, positives.chrom]),
            np.concatenate([peak_records.start, positives.start]),
            np.concatenate([peak_records.end, positives.end]), flank=flank)
        parts = {"peaks": positives}
        if negatives is not None:
            counts["negatives"] = {}
            tally = tallies["negatives"] = Tally(counts["negatives"], "background (--negatives)")
            neg_records = read_checked(negatives, "negatives", gen, aliases, counts["negatives"])
            neg = select_windows(neg_records, window, gen, layout, black, tally)
            hit = exclude.overlaps(neg.chrom, neg.start, neg.end)
            parts["negatives"] = tally.keep(neg, ~hit, "overlapping_a_positive")
        if gc_negatives:
            counts["gc_negatives"] = {}
            tally = tallies["gc_negatives"] = Tally(counts["gc_negatives"],
                                                    "GC-matched (--gc-negatives)")
            parts["gc_negatives"] = sample_gc_negatives(
                gen, positives, layout, ratio=gc_negatives, window=window, bins=gc_bins,
                max_n=max_n, exclude=exclude, blacklist=black, seed=seed,
                chunk_size=chunk_size, tally=tally, log=log)
        classes = {"positive": [tallies["peaks"]],
                   "negative": [t for name, t in tallies.items() if name != "peaks"]}
        summary = "prepare binary: counts so far"
        require_every_split(layout, classes, format_summary(summary, counts), log)
        source = np.concatenate([np.full(len(p), i, np.int64)
                                 for i, p in enumerate(parts.values())])
        labels = (source == 0).astype(np.float32)
        windows = concat_regions(list(parts.values()))

        def arrays(chrom: str, chunk: Regions, x: np.ndarray, idx: np.ndarray) -> dict:
            return {"y": labels[idx][:, None]}

        with DatasetWriter(out, "classification", params) as writer:
            stats = write_windows(writer, gen, windows, window, None, arrays, max_n=max_n,
                                  chunk_size=chunk_size, progress=progress)
            for i, tally in enumerate(tallies[name] for name in parts):
                for reason, found in (("too_many_n", stats.too_many_n), ("written", stats.kept)):
                    idx = ExtractStats.indices(found)
                    tally.add(reason, windows.split[idx[source[idx] == i]])
            counts["written"] = {
                s: {"positive": tallies["peaks"].by_split[s].get("written", 0),
                    "negative": sum(t.by_split[s].get("written", 0)
                                    for t in classes["negative"])}
                for s in SPLIT_NAMES}
            params.update(aliases.record())
            writer.params.update(params, counts=counts)
            require_every_split(layout, classes, format_summary(summary, counts), log)
            total = sum(stats.written.values())
    log(format_summary(f"prepare binary: wrote {total} windows to {out}", counts))
    return counts


def sample_gc_negatives(genome: Genome, positives: Regions, layout: SplitLayout, *,
                        ratio: float, window: int, bins: int, max_n: float,
                        exclude: IntervalIndex, blacklist: IntervalIndex | None, seed: int,
                        chunk_size: int, tally: Tally, log: Log,
                        max_rounds: int = 50) -> Regions:
    """Random ``window``-bp windows, ``ratio`` per positive, drawn per split from that split's
    positions (uniform over the windows lying wholly inside one of its segments, so none
    crosses into another split) so that the histogram of GC fraction (``bins`` equal bins on
    [0, 1]) matches the positives of the split. Candidates overlapping ``exclude`` or the
    blacklist, or with more than ``max_n`` N, are rejected. The ``tally`` counts the windows
    requested and, as the drop reason ``shortfall``, those not found; shortfalls are warned.
    """
    rng = np.random.default_rng(seed)
    pos_gc, pos_ok = _positive_gc(genome, positives, window, max_n, chunk_size)
    chosen: list[tuple[str, int, int]] = []
    for code in range(len(SPLIT_NAMES)):
        mask = (positives.split == code) & pos_ok
        if not mask.any():
            continue
        hist = np.bincount(_gc_bin(pos_gc[mask], bins), minlength=bins)
        quota = np.round(hist * ratio).astype(np.int64)
        tally.add("windows", np.full(int(quota.sum()), code))
        segments = [(c, s, e) for c, s, e in layout.intervals(code) if e - s >= window]
        span = np.array([e - s - window + 1 for _, s, e in segments], np.float64)
        taken: set[tuple[str, int]] = set()
        for _ in range(max_rounds if segments else 0):
            need = int(quota.sum())
            if need == 0:
                break
            n = max(4 * need, 256)
            which = rng.choice(len(segments), size=n, p=span / span.sum())
            offsets = (rng.random(n) * span[which]).astype(np.int64)
            for si, members in group_by_chrom(which.astype(str)).items():
                chrom, seg_start, _ = segments[int(si)]
                st = np.sort(offsets[members]) + seg_start
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
        chosen.extend((chrom, start, code) for chrom, start in sorted(taken))
        tally.add("shortfall", np.full(int(quota.sum()), code))
    tally.counts.setdefault("shortfall", 0)
    tally.counts.setdefault("windows", 0)
    if tally.counts["shortfall"]:
        log(f"warning: {tally.counts['shortfall']} GC-matched negative(s) could not be found in "
            f"{max_rounds} rounds of sampling (rare GC bins)")
    chrom = np.array([c for c, _, _ in chosen], dtype=object)
    start = np.array([s for _, s, _ in chosen], dtype=np.int64)
    return Regions("random GC-matched", chrom, start, start + window, start + window // 2,
                   np.ones(len(start), np.int8), np.zeros(len(start), np.int64),
                   split=np.array([c for _, _, c in chosen], dtype=np.int8))


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

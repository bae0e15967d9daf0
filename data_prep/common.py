"""Steps shared by `prepare binary` and `prepare profile`: reading and filtering windows,
chromosome splits, logging and the summary of everything dropped."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.genome import Genome
from data_prep.regions import (
    IntervalIndex,
    Regions,
    centred_windows,
    check_against_genome,
    dedupe,
    drop_unknown_chromosomes,
    inside_chromosome,
    read_regions,
    split_assignment,
)

Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    """Default logger of the prepare commands: one line to stderr."""
    print(message, file=sys.stderr, flush=True)


def read_checked(path: str | Path, what: str, genome: Genome,
                 counts: dict[str, Any]) -> Regions:
    """Read a BED/narrowPeak file, check it against the genome and drop repeated records."""
    regions = read_regions(path, what)
    check_against_genome(regions, genome.sizes, str(genome.path))
    counts["records"] = len(regions)
    regions, counts["duplicate_records"] = dedupe(regions, "interval")
    return regions


def read_blacklist(path: str | Path | None, genome: Genome,
                   counts: dict[str, Any]) -> IntervalIndex | None:
    """Blacklist intervals as an index; records on chromosomes absent from the genome are
    ignored (and counted), since no window can overlap them."""
    if path is None:
        return None
    regions = read_regions(path, "blacklist")
    regions, counts["blacklist_records_on_other_chromosomes"] = drop_unknown_chromosomes(
        regions, genome.sizes)
    counts["blacklist_records"] = len(regions)
    return IntervalIndex(regions.chrom, regions.start, regions.end)


def make_splits(genome: Genome, valid: Sequence[str], test: Sequence[str],
                train: Sequence[str] | None, log: Log) -> dict[str, str]:
    """chromosome -> split; warns about listed chromosomes the genome does not have."""
    for role, names in (("validation", valid), ("test", test), ("training", train or ())):
        missing = [n for n in names if n not in genome.sizes]
        if missing:
            log(f"warning: {role} chromosome(s) {', '.join(missing)} not in the genome "
                f"{genome.path}")
    return split_assignment(genome.sizes, valid, test, train)


def select_windows(records: Regions, length: int, genome: Genome, split_of: Mapping[str, str],
                   blacklist: IntervalIndex | None, counts: dict[str, Any]) -> Regions:
    """Centre ``length``-bp windows on the records and drop (counting each reason) windows that
    run off a chromosome edge, lie on a chromosome in no split, overlap the blacklist, or repeat
    an earlier window exactly."""
    windows = centred_windows(records, length)
    inside = inside_chromosome(windows, genome.sizes)
    counts["off_chromosome_edge"] = int((~inside).sum())
    windows = windows.take(inside)
    in_split = np.fromiter((c in split_of for c in windows.chrom), bool, len(windows))
    counts["chromosome_in_no_split"] = int((~in_split).sum())
    windows = windows.take(in_split)
    if blacklist is not None:
        hit = blacklist.overlaps(windows.chrom, windows.start, windows.end)
        counts["blacklisted"] = int(hit.sum())
        windows = windows.take(~hit)
    windows, counts["duplicate_windows"] = dedupe(windows, "window")
    return windows


def needed_chromosomes(windows: Regions) -> dict[str, tuple[int, str]]:
    """chromosome -> (number of windows, location of the first one) for bigWig checks."""
    out: dict[str, tuple[int, str]] = {}
    for i, chrom in enumerate(windows.chrom):
        count, first = out.get(chrom, (0, ""))
        out[chrom] = (count + 1, first or windows.where(i))
    return out


def format_summary(title: str, counts: Mapping[str, Any]) -> str:
    """Readable multi-line summary of a nested counts dict."""
    lines = [title]

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, sub in value.items():
                walk(f"{prefix}{key}." if isinstance(sub, Mapping) else f"{prefix}{key}", sub)
        else:
            lines.append(f"  {prefix.replace('_', ' ')}: {value}")

    walk("", counts)
    return "\n".join(lines)


def versions() -> dict[str, str]:
    """Versions of the libraries that shaped the output."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("benchmark_rc", "numpy", "h5py", "pyfaidx", "pyBigWig", "biopython"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out

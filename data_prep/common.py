"""Steps shared by `prepare binary` and `prepare profile`: reading and filtering windows,
chromosome names and splits, logging and the account of everything dropped."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.errors import UserError
from data_prep.chroms import ChromAliases
from data_prep.genome import Genome
from data_prep.regions import (
    IntervalIndex,
    Regions,
    centred_windows,
    check_against_genome,
    dedupe,
    first_occurrences,
    inside_chromosome,
    read_regions,
)
from data_prep.splits import NO_SPLIT, SPLIT_NAMES, STRADDLES, SplitLayout

Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    """Default logger of the prepare commands: one line to stderr."""
    print(message, file=sys.stderr, flush=True)


class Tally:
    """What became of the windows of one class (peaks, background regions, random GC-matched
    windows): how many there were and every drop by reason, in total (flat keys of ``counts``,
    as stored in the file) and by split (``counts["by_split"]``: the split holding the window's
    centre), so that a split left without windows can be explained."""

    def __init__(self, counts: dict[str, Any], label: str):
        self.counts = counts
        self.label = label  # e.g. "peak", for messages
        self.by_split: dict[str, dict[str, int]] = {s: {} for s in SPLIT_NAMES}
        counts["by_split"] = self.by_split

    def add(self, reason: str, home: np.ndarray) -> None:
        """Count windows under ``reason`` (``"windows"``: the windows there are; ``"written"``:
        those written; anything else: a drop); ``home`` holds their split codes."""
        home = np.asarray(home)
        self.counts[reason] = self.counts.get(reason, 0) + len(home)
        codes, n = np.unique(home[home >= 0], return_counts=True)
        for code, count in zip(codes.tolist(), n.tolist(), strict=True):
            row = self.by_split[SPLIT_NAMES[code]]
            row[reason] = row.get(reason, 0) + count

    def keep(self, windows: Regions, mask: np.ndarray, reason: str) -> Regions:
        """``windows`` where ``mask``; the others are dropped, counted under ``reason``."""
        self.add(reason, windows.split[~mask])
        return windows.take(mask)

    def drops(self, split: str) -> dict[str, int]:
        return {k: v for k, v in self.by_split[split].items()
                if k not in ("windows", "written") and v}

    def remaining(self, split: str) -> int:
        """Windows of ``split`` not dropped so far."""
        return self.by_split[split].get("windows", 0) - sum(self.drops(split).values())

    def explain(self, split: str) -> str:
        """Why ``split`` has no window of this class left."""
        row = self.by_split[split]
        if not row.get("windows"):
            elsewhere = ", ".join(f"{s}: {self.by_split[s].get('windows', 0)}"
                                  for s in SPLIT_NAMES if s != split)
            outside = self.counts.get("chromosome_in_no_split", 0)
            return (f"no {self.label} window has its centre in it ({elsewhere}; in no split: "
                    f"{outside})")
        reasons = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in self.drops(split).items())
        return f"all {row['windows']} {self.label} windows in it were dropped ({reasons})"


def require_every_split(layout: SplitLayout, classes: Mapping[str, Sequence[Tally]],
                        summary: str, log: Log) -> None:
    """Raise :class:`UserError` (after logging ``summary``, the counts so far) when a split has
    no window left of one of the ``classes`` (name -> its tallies): training stops on an empty
    split, and a binary split without both classes has no auROC."""
    for code, split in enumerate(SPLIT_NAMES):
        for name, tallies in classes.items():
            if sum(t.remaining(split) for t in tallies):
                continue
            log(summary)
            why = "; ".join(t.explain(split) for t in tallies)
            if any(t.by_split[split].get("windows") for t in tallies):
                advice = "see the counts above for what dropped them"
            else:
                advice = f"choose other --{split}-chroms / --{split}-regions / --holdout-fraction"
            raise UserError(f"{split} split has no {name} windows ({split} = "
                            f"{layout.describe(code)}): {why}; {advice}")


def read_checked(path: str | Path, what: str, genome: Genome, aliases: ChromAliases,
                 counts: dict[str, Any], peak_format: str = "auto") -> Regions:
    """Read a BED/narrowPeak file, rename its chromosomes to the genome's, check it against
    the genome and drop repeated records."""
    regions = read_regions(path, what, peak_format)
    regions, _ = aliases.rename(regions)
    check_against_genome(regions, genome.sizes, str(genome.path))
    counts["records"] = len(regions)
    counts["centred_on"] = regions.centred_on
    regions, counts["duplicate_records"] = dedupe(regions, "interval")
    return regions


def read_blacklist(path: str | Path | None, genome: Genome, aliases: ChromAliases,
                   counts: dict[str, Any]) -> IntervalIndex | None:
    """Blacklist intervals as an index; records on chromosomes absent from the genome (in any
    spelling) are ignored (and counted), since no window can overlap them."""
    if path is None:
        return None
    regions = read_regions(path, "blacklist", "bed")
    regions, counts["blacklist_records_on_other_chromosomes"] = aliases.rename(
        regions, drop_unknown=True)
    counts["blacklist_records"] = len(regions)
    return IntervalIndex(regions.chrom, regions.start, regions.end)


def select_windows(records: Regions, length: int, genome: Genome, layout: SplitLayout,
                   blacklist: IntervalIndex | None, tally: Tally) -> Regions:
    """Centre ``length``-bp windows on the records, give each its split, and drop (counting
    each reason) windows that run off a chromosome edge, lie in no split, straddle a split
    boundary, overlap the blacklist, or repeat an earlier window exactly."""
    windows = centred_windows(records, length)
    windows = windows.replace(split=layout.assign(windows.chrom, windows.centre,
                                                  windows.centre + 1))
    tally.add("windows", windows.split)
    windows = tally.keep(windows, inside_chromosome(windows, genome.sizes),
                         "off_chromosome_edge")
    code = layout.assign(windows.chrom, windows.start, windows.end)
    windows = tally.keep(windows, code != NO_SPLIT, "chromosome_in_no_split")
    windows = tally.keep(windows, code[code != NO_SPLIT] != STRADDLES,
                         "straddles_split_boundary")
    if blacklist is not None:
        hit = blacklist.overlaps(windows.chrom, windows.start, windows.end)
        windows = tally.keep(windows, ~hit, "blacklisted")
    return tally.keep(windows, first_occurrences(windows, "window"), "duplicate_windows")


def needed_chromosomes(windows: Regions) -> dict[str, tuple[int, str]]:
    """chromosome -> (number of windows, location of the first one) for bigWig checks."""
    out: dict[str, tuple[int, str]] = {}
    for i, chrom in enumerate(windows.chrom):
        count, first = out.get(chrom, (0, ""))
        out[chrom] = (count + 1, first or windows.where(i))
    return out


def format_summary(title: str, counts: Mapping[str, Any]) -> str:
    """Readable multi-line summary of a nested counts dict: a table (reason x split) for each
    class of windows that has a ``by_split`` record (a :class:`Tally`), ``key: value`` lines
    for the rest. Reasons that dropped nothing are left out of the tables (not of the file)."""
    lines = [title]

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and "by_split" in value:
            lines.extend(_tally_table(prefix.rstrip("."), value))
        elif isinstance(value, Mapping):
            for key, sub in value.items():
                walk(f"{prefix}{key}." if isinstance(sub, Mapping) else f"{prefix}{key}", sub)
        elif prefix != "written" and not prefix.startswith("written."):  # in the tables
            lines.append(f"  {prefix.replace('_', ' ')}: {value}")

    walk("", counts)
    return "\n".join(lines)


def _tally_table(name: str, counts: Mapping[str, Any]) -> list[str]:
    by_split = counts["by_split"]
    scalars = {k: v for k, v in counts.items() if isinstance(v, int) and k != "by_split"}
    head = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()
                     if k in ("records", "duplicate_records", "centred_on"))
    lines = [f"  {name}" + (f" ({head})" if head else "")]
    rows = [k for k, v in scalars.items()
            if k not in ("records", "duplicate_records") and (v or k in ("windows", "written"))]
    rows.sort(key=lambda k: (k == "written", k != "windows"))  # windows first, written last
    width = max([len(r) for r in rows] + [10]) + 2
    lines.append("    " + " " * width + "".join(f"{s:>8}" for s in (*SPLIT_NAMES, "total")))
    for row in rows:
        cells = [by_split[s].get(row, 0) for s in SPLIT_NAMES] + [scalars[row]]
        lines.append(f"    {row.replace('_', ' '):<{width}}" + "".join(f"{c:>8}" for c in cells))
    return lines


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

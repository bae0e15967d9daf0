"""Train / validation / test splits of a genome: whole chromosomes or positions on them.

A :class:`SplitLayout` says which split every base of the genome belongs to. It is built in
three steps, later steps taking precedence:

1. whole chromosomes: ``valid_chroms`` -> valid, ``test_chroms`` -> test, every other chromosome
   -> train, or exactly ``train_chroms`` when given (then chromosomes in no list are in no split);
2. ``holdout_fraction = (v, t)``: on every training chromosome of length L, positions
   ``[floor((1 - v) L), L)`` -> valid and ``[floor((1 - v - t) L), floor((1 - v) L))`` -> test
   (the last v of the chromosome, and the t before it), for genomes with one or few chromosomes;
3. ``valid_regions`` / ``test_regions`` (``chrIV:0-200000``, 0-based half-open like BED).

A window belongs to a split only when it lies entirely inside that split's positions; one that
straddles a boundary is dropped (and counted), never put in two splits, so nothing leaks between
splits. A split that covers no base of the genome is an error that says what to pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction

import numpy as np

from benchmark_rc.errors import UserError
from data_prep.chroms import ChromAliases, resolve_names
from data_prep.regions import group_by_chrom

SPLIT_NAMES = ("train", "valid", "test")
NO_SPLIT = -1  # a position in no split (a chromosome left out by --train-chroms)
STRADDLES = -2  # a window across a split boundary
_OPTION = {"train": "--train-chroms", "valid": "--valid-chroms", "test": "--test-chroms"}
_REGION = re.compile(r"^(?P<chrom>[^:\s]+):(?P<start>\d+)-(?P<end>\d+)$")


def parse_chrom_list(text: str | Sequence[str] | None) -> list[str] | None:
    """``"chr1,chr8, chr9"`` -> ``["chr1", "chr8", "chr9"]``; None or "" -> None. A list is
    returned as a list."""
    if text is None:
        return None
    if not isinstance(text, str):
        return list(text) or None
    names = [t.strip() for t in text.replace(" ", ",").split(",") if t.strip()]
    return names or None


def parse_holdout_fraction(value: str | Sequence[float] | None) -> tuple[Fraction, Fraction] | None:
    """``"0.1,0.1"`` or ``(0.1, 0.1)`` -> exact fractions (valid, test); None -> None.

    Exact fractions so that ``floor(0.9 * L)`` is not off by one from float rounding."""
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        fractions = [Fraction(str(p).strip()) for p in parts]
    except (ValueError, ZeroDivisionError):
        fractions = []
    if len(fractions) != 2 or any(f < 0 for f in fractions) or sum(fractions) >= 1:
        raise UserError(f"--holdout-fraction {value!r}: expected two fractions VALID,TEST, each "
                        ">= 0 and summing to less than 1 (e.g. 0.1,0.1: the last 10% of every "
                        "training chromosome -> valid, the 10% before it -> test)")
    return fractions[0], fractions[1]


class SplitLayout:
    """Split code of every base: per chromosome, the starts of its segments (the first is 0)
    and their codes (0 train, 1 valid, 2 test, :data:`NO_SPLIT`), neighbours differing."""

    def __init__(self, sizes: Mapping[str, int],
                 pieces: Mapping[str, Sequence[tuple[int, int, int]]]):
        """``pieces[chrom]``: (start, end, code) painted in order, later ones on top, over a
        chromosome that starts as :data:`NO_SPLIT`."""
        self.sizes = dict(sizes)
        self._segments: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for chrom, size in self.sizes.items():
            bounds = {0, size}
            for start, end, _ in pieces.get(chrom, ()):
                bounds.update((start, end))
            edges = np.array(sorted(b for b in bounds if 0 <= b <= size), np.int64)
            codes = np.full(max(len(edges) - 1, 1), NO_SPLIT, np.int8)
            for start, end, code in pieces.get(chrom, ()):
                codes[(edges[:-1] >= start) & (edges[:-1] < end)] = code
            starts = edges[:-1] if len(edges) > 1 else np.zeros(1, np.int64)
            keep = np.ones(len(codes), bool)
            keep[1:] = codes[1:] != codes[:-1]  # merge equal neighbours
            self._segments[chrom] = (starts[keep], codes[keep])

    def assign(self, chrom: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Split code of each window [start, end) (inside its chromosome): the code of the
        segment holding all of it, or :data:`STRADDLES`."""
        out = np.full(len(start), NO_SPLIT, np.int8)
        start, end = np.asarray(start, np.int64), np.asarray(end, np.int64)
        for name, idx in group_by_chrom(chrom).items():
            starts, codes = self._segments[name]
            first = np.searchsorted(starts, start[idx], side="right") - 1
            last = np.searchsorted(starts, end[idx] - 1, side="right") - 1
            out[idx] = np.where(first == last, codes[first], STRADDLES)
        return out

    def intervals(self, code: int) -> list[tuple[str, int, int]]:
        """(chrom, start, end) of every segment of split ``code``, in genome order."""
        out = []
        for chrom, (starts, codes) in self._segments.items():
            ends = np.append(starts[1:], self.sizes[chrom])
            out.extend((chrom, int(s), int(e))
                       for s, e, c in zip(starts, ends, codes, strict=True) if c == code)
        return out

    def describe(self, code: int, limit: int = 6) -> str:
        """``chr1, chrIV:0-200000, ...``: the split's positions, for messages and the params."""
        parts = [chrom if start == 0 and end == self.sizes[chrom] else f"{chrom}:{start}-{end}"
                 for chrom, start, end in self.intervals(code)]
        if not parts:
            return "nothing"
        return ", ".join(parts[:limit]) + (f", ... ({len(parts)} in all)"
                                            if len(parts) > limit else "")


def build_layout(aliases: ChromAliases, sizes: Mapping[str, int], *,
                 valid_chroms: Sequence[str] | str | None,
                 test_chroms: Sequence[str] | str | None,
                 train_chroms: Sequence[str] | str | None = None,
                 valid_regions: Sequence[str] | str | None = None,
                 test_regions: Sequence[str] | str | None = None,
                 holdout_fraction: str | Sequence[float] | None = None,
                 defaults: tuple[Sequence[str], Sequence[str]] = ((), ()),
                 log: Callable[[str], None] = print) -> tuple[SplitLayout, dict]:
    """The split layout of the options above (names in any spelling ``aliases`` resolves) and
    the record of it for the params. ``defaults`` = (valid, test) chromosomes, used for a split
    only when neither its chromosomes, its regions nor ``holdout_fraction`` are given.

    Raises :class:`UserError` for a chromosome in two lists, a malformed or overlapping region, a
    region on a chromosome listed whole for validation or test, and a split with no base.
    """
    fraction = parse_holdout_fraction(holdout_fraction)
    given = {"valid": parse_chrom_list(valid_chroms), "test": parse_chrom_list(test_chroms)}
    regions_text = {"valid": parse_chrom_list(valid_regions),
                    "test": parse_chrom_list(test_regions)}
    for split, default in zip(("valid", "test"), defaults, strict=True):
        if given[split] is None and regions_text[split] is None and fraction is None:
            given[split] = list(default)
    missing: dict[str, list[str]] = {}
    lists = {split: resolve_names(given[split], aliases, _OPTION[split], missing)
             for split in ("valid", "test")}
    train = parse_chrom_list(train_chroms)
    if train is not None:
        lists["train"] = resolve_names(train, aliases, _OPTION["train"], missing)
    owner: dict[str, str] = {}
    for split, names in lists.items():
        for name in names:
            if owner.setdefault(name, split) != split:
                raise UserError(f"chromosome {name!r} is listed for both {owner[name]} and "
                                f"{split} (expected each chromosome in one split)")
    code = {name: i for i, name in enumerate(SPLIT_NAMES)}
    pieces: dict[str, list[tuple[int, int, int]]] = {}
    for chrom, size in sizes.items():
        split = owner.get(chrom, "train" if train is None else None)
        if split is None:
            continue
        pieces[chrom] = [(0, size, code[split])]
        if split == "train" and fraction is not None:
            valid_at = int(size * (1 - fraction[0]))  # exact: Fraction floors
            test_at = int(size * (1 - fraction[0] - fraction[1]))
            pieces[chrom] += [(test_at, valid_at, code["test"]), (valid_at, size, code["valid"])]
    regions = {split: [_parse_region(text, split, aliases, sizes, owner)
                       for text in regions_text[split] or ()] for split in ("valid", "test")}
    _check_disjoint(regions["valid"] + regions["test"])
    for split in ("valid", "test"):
        for chrom, start, end, _ in regions[split]:
            pieces.setdefault(chrom, []).append((start, end, code[split]))
    layout = SplitLayout(sizes, pieces)
    for split in SPLIT_NAMES:
        if not layout.intervals(code[split]):
            raise UserError(_empty_split_message(split, given, regions_text, train, fraction,
                                                 missing, sizes, aliases.genome_path))
    for option, names in missing.items():
        log(f"warning: {option} {', '.join(names)}: not in the genome {aliases.genome_path} "
            "(left out)")
    record = {
        "valid_chroms": lists["valid"], "test_chroms": lists["test"],
        "train_chroms": lists.get("train"), "valid_regions": regions_text["valid"],
        "test_regions": regions_text["test"],
        "holdout_fraction": None if fraction is None else [str(f) for f in fraction],
        "splits": {split: layout.describe(code[split], limit=50) for split in SPLIT_NAMES},
    }
    return layout, record


def _parse_region(text: str, split: str, aliases: ChromAliases, sizes: Mapping[str, int],
                  owner: Mapping[str, str]) -> tuple[str, int, int, str]:
    option = f"--{split}-regions"
    match = _REGION.match(text)
    if not match:
        raise UserError(f"{option} {text!r}: expected CHROM:START-END (0-based, end exclusive, "
                        "like BED), e.g. chrIV:0-200000")
    chrom = aliases.resolve_or_raise(match["chrom"], f"{option} {text}")
    start, end = int(match["start"]), int(match["end"])
    if not start < end <= sizes[chrom]:
        raise UserError(f"{option} {text!r}: expected 0 <= START < END <= {sizes[chrom]} (the "
                        f"length of {chrom})")
    if owner.get(chrom) in ("valid", "test"):
        raise UserError(f"{option} {text!r}: {chrom} is already wholly in the {owner[chrom]} "
                        f"split ({_OPTION[owner[chrom]]}); regions carve hold-outs out of "
                        "training chromosomes")
    return chrom, start, end, text


def _check_disjoint(regions: list[tuple[str, int, int, str]]) -> None:
    by_chrom: dict[str, list[tuple[int, int, str]]] = {}
    for chrom, start, end, text in regions:
        by_chrom.setdefault(chrom, []).append((start, end, text))
    for items in by_chrom.values():
        items.sort()
        for (_, end, text), (start, _, other) in zip(items, items[1:], strict=False):
            if start < end:
                raise UserError(f"regions {text} and {other} overlap (expected every position "
                                "in at most one of --valid-regions / --test-regions)")


def _empty_split_message(split: str, given: Mapping[str, list[str] | None],
                         regions: Mapping[str, list[str] | None], train: list[str] | None,
                         fraction: tuple[Fraction, Fraction] | None,
                         missing: Mapping[str, list[str]], sizes: Mapping[str, int],
                         genome_path: str) -> str:
    """Why ``split`` has no base, and what to pass instead."""
    listing = ", ".join(list(sizes)[:8]) + (", ..." if len(sizes) > 8 else "")
    absent = missing.get(_OPTION[split], [])
    if absent:
        names = ", ".join(absent)
        why = (f"chromosome{'s' if len(absent) > 1 else ''} {names} "
               f"{'are' if len(absent) > 1 else 'is'} not in {genome_path} "
               f"(chromosomes: {listing})")
    elif split == "train":
        why = ("every chromosome is in the validation or test split"
               if train is None else "no training chromosome")
    elif given.get(split) or regions.get(split):
        why = "its chromosomes and regions cover no base of the genome"
    elif fraction is not None:
        why = f"--holdout-fraction gives it {fraction[split == 'test']} of each chromosome"
    else:
        why = f"no {_OPTION[split]}, --{split}-regions or --holdout-fraction was given"
    largest = max(sizes, key=sizes.get)
    tenth = max(sizes[largest] // 10, 1)
    if split == "train":
        advice = ("pass --train-chroms, or fewer --valid-chroms / --test-chroms, or hold out "
                  "positions with --valid-regions / --test-regions / --holdout-fraction")
    else:
        advice = (f"pass {_OPTION[split]} NAME, --{split}-regions "
                  f"{largest}:{sizes[largest] - tenth}-{sizes[largest]} or --holdout-fraction "
                  "0.1,0.1")
    return f"{split} split is empty: {why}; {advice}"

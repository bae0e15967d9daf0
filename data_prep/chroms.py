"""Chromosome names across the genome FASTA, the BED files, the split options and the bigWigs.

Every name is mapped to the FASTA's naming, which is the one used everywhere inside `prepare`.
A name that is in the FASTA is never renamed. Beyond that:

* no aliases (default): names must be spelled exactly as in the FASTA;
* ``auto``: names that differ only by a ``chr`` prefix (any case: ``chr1`` / ``Chr1`` / ``1``) or
  by the spelling of the mitochondrion (``chrM``, ``M``, ``MT``, ``chrMT``, ``Mito``) match, when
  exactly one FASTA name matches;
* a FILE of two columns, the name used in a file and the name in the FASTA.

When a name does not match, the error names the file and line and, if the ``auto`` rule would
have found a match, suggests the option (or the FILE line) that fixes it: the naming mismatch
is the most common real-world problem, so it must never pass silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from benchmark_rc.errors import UserError
from data_prep.regions import Regions

_MITOCHONDRION = {"m", "mt", "mito"}


def name_key(name: str) -> str:
    """The spelling-independent key of the ``auto`` rule: no ``chr`` prefix, one mitochondrion."""
    core = name[3:] if name[:3].lower() == "chr" and len(name) > 3 else name
    return "M" if core.lower() in _MITOCHONDRION else core


def _listing(names: Iterable[str], limit: int = 8) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


class ChromAliases:
    """Maps chromosome names used in input files to the names of the genome FASTA.

    ``spec`` is None (exact names only), ``"auto"`` or the path of a two-column alias file.
    ``used`` collects every rename performed (name in a file -> FASTA name), for the record.
    """

    def __init__(self, genome_names: Iterable[str], genome_path: str | os.PathLike,
                 spec: str | os.PathLike | None = None):
        self.genome = {name: None for name in genome_names}  # ordered set
        self.genome_path = str(genome_path)
        self.spec = None if spec is None else str(spec)
        self.mode = None if spec is None else "auto" if str(spec) == "auto" else "file"
        self.used: dict[str, str] = {}
        self._by_key: dict[str, list[str]] = {}
        for name in self.genome:
            self._by_key.setdefault(name_key(name), []).append(name)
        self._file: dict[str, tuple[str, int]] = {}  # name -> (FASTA name, line in the file)
        if self.mode == "file":
            self._file = _read_alias_file(Path(self.spec))

    def resolve(self, name: str) -> str | None:
        """The FASTA name for ``name``, or None when it has none."""
        if name in self.genome:
            return name
        if self.mode == "file":
            target = self._file.get(name)
            return target[0] if target and target[0] in self.genome else None
        if self.mode == "auto":
            matches = self._by_key.get(name_key(name), [])
            return matches[0] if len(matches) == 1 else None
        return None

    def rename(self, regions: Regions, drop_unknown: bool = False) -> tuple[Regions, int]:
        """``regions`` with every chromosome renamed to the FASTA's naming.

        A name without a FASTA counterpart raises :class:`UserError` (file, line, suggestion),
        or with ``drop_unknown`` (the blacklist) drops its records and returns how many, unless
        the ``auto`` rule would match it: then it is a naming mismatch and still an error.
        """
        names = {name: self.resolve(name) for name in dict.fromkeys(regions.chrom.tolist())}
        unknown = [name for name, target in names.items() if target is None]
        dropped = 0
        if unknown:
            fatal = unknown if not drop_unknown else [n for n in unknown if self.auto_match(n)]
            if fatal:
                i = int(np.flatnonzero(np.isin(regions.chrom, fatal))[0])
                raise self.missing(str(regions.chrom[i]), regions.where(i))
            keep = ~np.isin(regions.chrom, unknown)
            dropped = int((~keep).sum())
            regions = regions.take(keep)
        renamed = {name: target for name, target in names.items()
                   if target is not None and target != name}
        if renamed:
            self.used.update(renamed)
            chrom = np.empty(len(regions), dtype=object)
            chrom[:] = [names[c] for c in regions.chrom.tolist()]
            regions = regions.replace(chrom=chrom)
        return regions, dropped

    def resolve_or_raise(self, name: str, where: str) -> str:
        """:meth:`resolve`, raising :meth:`missing` when there is no FASTA name."""
        target = self.resolve(name)
        if target is None:
            raise self.missing(name, where)
        if target != name:
            self.used[name] = target
        return target

    def missing(self, name: str, where: str) -> UserError:
        """The error for a name of an input file that is not in the genome."""
        head = f"{where}: chromosome {name!r}"
        genome = f"the genome FASTA {self.genome_path}"
        if self.mode == "file" and name in self._file:
            target, line = self._file[name]
            return UserError(f"{head} maps to {target!r} ({self.spec} line {line}), which is "
                             f"not in {genome} (it has {_listing(self.genome)})")
        match = self.auto_match(name)
        if match:
            return UserError(f"{head} is not in {genome}; the genome has {match!r}: "
                             + self.how_to_match(name, match))
        extra = ", even with --chrom-aliases auto" if self.mode == "auto" else ""
        return UserError(f"{head} is not in {genome}{extra} (it has {_listing(self.genome)})")

    def how_to_match(self, name: str, genome_name: str) -> str:
        """The advice that makes ``name`` (in a file) match ``genome_name`` (in the FASTA)."""
        if self.mode == "file":
            return (f"add the line '{name}<TAB>{genome_name}' to {self.spec} or pass "
                    "--chrom-aliases auto")
        if self.mode == "auto":
            return ("several FASTA names match it under --chrom-aliases auto; map it with "
                    "--chrom-aliases FILE")
        return "pass --chrom-aliases auto"

    def auto_match(self, name: str) -> str | None:
        """The FASTA name(s) other than ``name`` the ``auto`` rule matches, as text, or None."""
        matches = [m for m in self._by_key.get(name_key(name), []) if m != name]
        return " / ".join(matches) or None

    def other_names(self, names: Iterable[str]) -> dict[str, str]:
        """FASTA name -> the name used for it in another file (a bigWig), for every name of
        ``names`` that resolves; an exact spelling wins over an alias."""
        out: dict[str, str] = {}
        for name in names:
            target = self.resolve(name)
            if target is not None and (target not in out or name == target):
                out[target] = name
        return out

    def suggest_other(self, genome_name: str, names: Iterable[str], owner: str) -> str:
        """When ``genome_name`` has no counterpart among ``names`` (of ``owner``): the advice
        naming the one the ``auto`` rule would match, or "" when there is none."""
        key = name_key(genome_name)
        matches = [n for n in names if name_key(n) == key and n != genome_name]
        if not matches:
            return ""
        return (f"; {owner} has {' / '.join(matches)!r}: "
                + self.how_to_match(matches[0], genome_name))

    def record(self) -> dict[str, object]:
        """What to store in the params: the option and every rename performed."""
        return {"chrom_aliases": self.spec, "renamed_chromosomes": dict(sorted(self.used.items()))}


def _read_alias_file(path: Path) -> dict[str, tuple[str, int]]:
    """name used in a file -> (FASTA name, line); ``#`` lines and blank lines skipped."""
    if not path.is_file():
        raise UserError(f"{path}: chromosome alias file not found (--chrom-aliases expects "
                        "'auto' or a file of two columns: name used in your files, name in the "
                        "FASTA)")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read the chromosome alias file ({err})") from None
    out: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise UserError(f"{path} line {number}: expected 2 columns (name used in your "
                            f"files, name in the FASTA), got {len(fields)}")
        name, target = fields
        if name in out and out[name][0] != target:
            raise UserError(f"{path} line {number}: {name!r} is mapped to {target!r}, but line "
                            f"{out[name][1]} maps it to {out[name][0]!r} (expected one FASTA "
                            "name per name)")
        out.setdefault(name, (target, number))
    if not out:
        raise UserError(f"{path}: chromosome alias file is empty (expected lines of two "
                        "columns: name used in your files, name in the FASTA)")
    return out


def resolve_names(names: Iterable[str] | None, aliases: ChromAliases, option: str,
                  log_missing: dict[str, list[str]] | None = None) -> list[str]:
    """Split-list names (``option`` e.g. ``--valid-chroms``) in the FASTA's naming.

    A name the ``auto`` rule would match is an error (a naming mismatch); other names absent
    from the genome are left out and collected in ``log_missing[option]`` for a warning.
    """
    out = []
    for name in names or ():
        target = aliases.resolve(name)
        if target is None:
            if aliases.auto_match(name):
                raise aliases.missing(name, option)
            if log_missing is not None:
                log_missing.setdefault(option, []).append(name)
            continue
        if target != name:
            aliases.used[name] = target
        out.append(target)
    return out

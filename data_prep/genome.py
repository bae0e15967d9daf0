"""Genome FASTA access (plain or bgzip) and vectorised window extraction.

The FASTA index (``.fai``, plus ``.gzi`` for bgzip) is built with pyfaidx when missing. Windows
are extracted one chromosome at a time: the chromosome's bytes are loaded once (for a plain FASTA
straight from a memory map, dropping the line breaks with one reshape), then every window of that
chromosome is a fancy-indexing gather, one-hot encoded through the byte lookup table of
:func:`benchmark_rc.sequence.one_hot_encode`. Memory is bounded by the largest chromosome plus one
chunk of windows.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from benchmark_rc.errors import UserError
from benchmark_rc.sequence import one_hot_encode, reverse_complement


class Genome:
    """A genome FASTA: chromosome sizes and window extraction.

    ``sizes`` maps chromosome name -> length, in FASTA order.
    """

    def __init__(self, path: str | os.PathLike):
        import pyfaidx

        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"{self.path}: genome FASTA not found")
        if self.path.stat().st_size == 0:
            raise UserError(f"{self.path}: genome FASTA is empty (expected '>name' records)")
        try:
            self._faidx = pyfaidx.Faidx(str(self.path), build_index=True, rebuild=True)
        except pyfaidx.UnsupportedCompressionFormat as err:
            raise UserError(f"{self.path}: unsupported compression ({err}); expected a plain "
                            "FASTA or one compressed with bgzip (not gzip)") from None
        except (pyfaidx.FastaIndexingError, ValueError) as err:
            raise UserError(f"{self.path}: not a valid FASTA file ({err})") from None
        except PermissionError as err:
            raise UserError(f"{self.path}: cannot write the FASTA index next to the genome "
                            f"({err}); index it once with `samtools faidx`") from None
        except OSError as err:
            raise UserError(f"{self.path}: cannot read the genome FASTA ({err})") from None
        self.sizes: dict[str, int] = {name: int(rec.rlen)
                                      for name, rec in self._faidx.index.items()}
        if not self.sizes:
            raise UserError(f"{self.path}: genome FASTA has no sequences "
                            "(expected '>name' records)")
        self._compressed = bool(getattr(self._faidx, "_bgzf", False))
        self._cached: tuple[str, np.ndarray] | None = None

    def close(self) -> None:
        self._cached = None
        self._faidx.close()

    def __enter__(self) -> Genome:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def chromosome_bytes(self, chrom: str) -> np.ndarray:
        """The ASCII bytes of a whole chromosome as a 1-D uint8 array (cached: one at a time)."""
        if self._cached is not None and self._cached[0] == chrom:
            return self._cached[1]
        self._cached = None  # free the previous chromosome before loading the next
        rec = self._faidx.index[chrom]
        rlen, lenc, lenb, offset = int(rec.rlen), int(rec.lenc), int(rec.lenb), int(rec.offset)
        if rlen == 0:
            data = np.zeros(0, np.uint8)
        elif self._compressed:
            seq = self._faidx.fetch(chrom, 1, rlen).seq
            data = np.frombuffer(seq.encode("ascii", errors="replace"), np.uint8)
        else:
            mm = np.memmap(self.path, dtype=np.uint8, mode="r")
            full = rlen // lenc
            body = mm[offset:offset + full * lenb].reshape(full, lenb)[:, :lenc]
            rest = rlen - full * lenc
            tail_at = offset + full * lenb
            data = np.empty(rlen, np.uint8)
            data[:full * lenc].reshape(full, lenc)[...] = body  # one copy, line ends dropped
            data[full * lenc:] = mm[tail_at:tail_at + rest]
            del mm
        self._cached = (chrom, data)
        return data

    def window_bytes(self, chrom: str, starts: np.ndarray, length: int) -> np.ndarray:
        """Raw bytes of windows ``[start, start + length)`` of one chromosome: (n, length) uint8.

        Windows must lie inside the chromosome.
        """
        data = self.chromosome_bytes(chrom)
        starts = np.asarray(starts, np.int64)
        if len(starts) and (starts.min() < 0 or starts.max() + length > len(data)):
            raise ValueError(f"window outside {chrom} (length {len(data)})")
        if len(starts) == 0:
            return np.zeros((0, length), np.uint8)
        # sliding_window_view is a zero-copy view; fancy indexing gathers the rows
        view = np.lib.stride_tricks.sliding_window_view(data, length)
        return view[starts]

    def one_hot(self, chrom: str, starts: np.ndarray, length: int,
                strands: np.ndarray | None = None) -> np.ndarray:
        """One-hot windows (n, length, 4) uint8; rows with strand -1 are reverse complemented."""
        x = one_hot_encode(self.window_bytes(chrom, starts, length))
        if strands is not None:
            minus = np.asarray(strands) < 0
            if minus.any():
                x[minus] = reverse_complement(x[minus])
        return x


def n_fraction(x: np.ndarray) -> np.ndarray:
    """Fraction of all-zero (N or other non-ACGT) rows per window of one-hot x (n, L, 4) uint8."""
    flat = np.ascontiguousarray(x).view(np.uint32)[..., 0]  # 4 bytes of a row -> one word
    if not x.shape[1]:
        return np.zeros(len(x))
    return np.count_nonzero(flat == 0, axis=1) / x.shape[1]


def gc_fraction(x: np.ndarray) -> np.ndarray:
    """GC fraction over the ACGT bases of each window of one-hot x (n, L, 4); NaN if none."""
    counts = x.sum(axis=1, dtype=np.int64)  # (n, 4)
    total = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts[:, 1] + counts[:, 2]) / total

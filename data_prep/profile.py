"""`prepare profile`: BPNet-style base-resolution profile data (spec/paper.md §4.1).

For every peak (centred on the summit, narrowPeak column 10, else the interval centre) it stores,
widened by the jitter margin J on each side so the input pipeline can jitter by cropping:

* ``x``                (N, S + 2J, 4)  one-hot sequence, S = ``sequence_length`` (1346);
* ``profile``          (N, P + 2J, 2)  target counts [+ strand, |- strand|], P = ``output_length``;
* ``control``          (N, P + 2J, 2)  strand-summed control [raw, moving average];
* ``control_logcount`` (N, 1)          log(1 + total raw control over the central P bp).

The moving average is computed from the genome-wide track (real neighbours, not edge padding of
the window), so any crop sees the same smoothed values. An odd ``smoothing_window`` (default 51)
is centred, so smoothing commutes with the length reversal of the RC rule; ``50`` reproduces the
original 24-left / 25-right window (spec §8 item 8; docs/prepare.md). Records on the ``-`` strand
are stored reverse complemented: sequence RC, profile reversed with strands swapped, control
reversed along length (smoothing applied after the reversal, as the original RC augmentation).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmark_rc.data.hdf5 import DatasetWriter
from benchmark_rc.errors import UserError
from data_prep.binary import _abs
from data_prep.common import (
    Log,
    format_summary,
    make_splits,
    needed_chromosomes,
    read_blacklist,
    read_checked,
    select_windows,
    stderr_log,
    versions,
)
from data_prep.extract import write_windows
from data_prep.genome import Genome
from data_prep.regions import Regions
from data_prep.signals import (
    BigWig,
    blocks,
    coverage,
    moving_average,
    open_bigwigs,
    padded_values,
    smoothing_offsets,
)


def prepare_profile(genome: str | os.PathLike, peaks: str | os.PathLike, out: str | os.PathLike,
                    *, plus: str | os.PathLike, minus: str | os.PathLike,
                    control_plus: str | os.PathLike, control_minus: str | os.PathLike,
                    blacklist: str | os.PathLike | None = None, sequence_length: int = 1346,
                    output_length: int = 1000, jitter_margin: int = 200,
                    smoothing_window: int = 51, max_n: float = 0.1,
                    valid_chroms: Sequence[str] = ("chr1", "chr8", "chr9"),
                    test_chroms: Sequence[str] = ("chr2", "chr3", "chr4"),
                    train_chroms: Sequence[str] | None = None, chunk_size: int = 1024,
                    progress: bool = True, log: Log = stderr_log) -> dict[str, Any]:
    """Build a profile dataset at ``out`` (arrays above, plus coords of the stored sequence
    window and ``attrs["jitter_margin"] = J``); returns the counts summary (also stored in the
    params under ``counts``). Raises :class:`UserError` for bad input, leaving no file."""
    _check_options(sequence_length, output_length, jitter_margin, smoothing_window, max_n)
    if chunk_size < 1:
        raise UserError(f"--chunk-size must be >= 1, got {chunk_size}")
    J = jitter_margin
    seq_len = sequence_length + 2 * J
    out_len = output_length + 2 * J
    inner = (sequence_length - output_length) // 2  # output offset inside the sequence window
    paths = {"plus": plus, "minus": minus, "control plus": control_plus,
             "control minus": control_minus}
    params = {
        "command": "prepare profile", "genome": _abs(genome), "peaks": _abs(peaks),
        "bigwigs": {k: _abs(v) for k, v in paths.items()}, "blacklist": _abs(blacklist),
        "sequence_length": sequence_length, "output_length": output_length,
        "jitter_margin": J, "smoothing_window": smoothing_window,
        "smoothing_offsets": list(smoothing_offsets(smoothing_window)), "max_n": max_n,
        "valid_chroms": list(valid_chroms), "test_chroms": list(test_chroms),
        "train_chroms": None if train_chroms is None else list(train_chroms),
        "coords": "stored sequence window (length sequence_length + 2 * jitter_margin); the "
                  "profile window starts (sequence_length - output_length) / 2 bp later",
        "versions": versions(),
    }
    counts: dict[str, Any] = {"peaks": {}}
    with Genome(genome) as gen:
        split_of = make_splits(gen, valid_chroms, test_chroms, train_chroms, log)
        records = read_checked(peaks, "peaks", gen, counts["peaks"])
        if blacklist is not None:
            counts["blacklist"] = {}
        black = read_blacklist(blacklist, gen, counts.get("blacklist", {}))
        windows = select_windows(records, seq_len, gen, split_of, black, counts["peaks"])
        bigwigs = open_bigwigs(paths)
        try:
            needed = needed_chromosomes(windows)
            for bw in bigwigs.values():
                bw.check_chromosomes(needed, gen.sizes)
            tracks = _Tracks(bigwigs, gen.sizes, out_len, smoothing_window, output_length, J)

            def arrays(chrom: str, chunk: Regions, x: np.ndarray, idx: np.ndarray) -> dict:
                return tracks.fetch(chrom, chunk.start + inner, chunk.strand)

            with DatasetWriter(out, "profile", params, attrs={"jitter_margin": J}) as writer:
                stats = write_windows(writer, gen, windows, seq_len, split_of, arrays,
                                      max_n=max_n, chunk_size=chunk_size, progress=progress)
                counts["peaks"]["too_many_n"] = stats.n_too_many_n
                counts["bigwig_nan_values"] = {k: bw.nan_values for k, bw in bigwigs.items()}
                counts["written"] = dict(stats.written)
                total = sum(stats.written.values())
                if total == 0:
                    raise UserError(f"no windows left to write to {out} (counts: {counts})")
                writer.params["counts"] = counts
        finally:
            for bw in bigwigs.values():
                bw.close()
    for role, bw in bigwigs.items():
        if bw.nan_values:
            log(f"warning: {bw.path}: {bw.nan_values} NaN value(s) in the {role} bigWig "
                "were read as 0")
    log(format_summary(f"prepare profile: wrote {total} windows to {out}", counts))
    return counts


class _Tracks:
    """Per-window profile / control arrays from the four bigWigs."""

    def __init__(self, bigwigs: dict[str, BigWig], sizes: dict[str, int], length: int,
                 window: int, output_length: int, margin: int):
        self.bw = bigwigs
        self.sizes = sizes
        self.length = length
        self.window = window
        self.left, self.right = smoothing_offsets(window)
        self.centre = slice(margin, margin + output_length)

    def fetch(self, chrom: str, starts: np.ndarray, strands: np.ndarray) -> dict[str, np.ndarray]:
        """Arrays of windows [start, start + length) of one chromosome (starts ascending):
        each run of nearby windows is read with one call per bigWig, then gathered."""
        n, L = len(starts), self.length
        profile = np.empty((n, L, 2), np.float32)
        control = np.empty((n, L, 2), np.float32)
        for first, stop in blocks(starts, L, gap=L, max_span=1 << 22):
            self._fetch_block(chrom, starts[first:stop], strands[first:stop],
                              profile[first:stop], control[first:stop])
        logcount = np.log1p(control[:, self.centre, 0].sum(axis=1, dtype=np.float64))
        return {"profile": profile, "control": control,
                "control_logcount": logcount.astype(np.float32)[:, None]}

    def _fetch_block(self, chrom: str, starts: np.ndarray, strands: np.ndarray,
                     profile: np.ndarray, control: np.ndarray) -> None:
        L, size = self.length, self.sizes[chrom]
        lo = int(starts.min())
        hi = int(starts.max()) + L
        rel = starts - lo
        used = coverage(rel, L, hi - lo)
        plus = self.bw["plus"].values(chrom, lo, hi, used)
        minus = np.abs(self.bw["minus"].values(chrom, lo, hi, used))
        # the control is read with a pad for the moving average (edge-padded at chromosome ends)
        pad = max(self.left, self.right)
        cused = coverage(rel, L + 2 * pad, hi - lo + 2 * pad)
        ctrl = (padded_values(self.bw["control plus"], chrom, lo - pad, hi + pad, size, cused)
                + np.abs(padded_values(self.bw["control minus"], chrom, lo - pad, hi + pad,
                                       size, cused)))
        # ma[j] = mean of ctrl[j : j + window]: the + strand value at ctrl position p is
        # ma[p - left]; a - strand window is smoothed after its reversal, which is the mirror
        # window, ma[p - right] (the same for an odd window)
        ma = moving_average(ctrl, self.window)

        def gather(track: np.ndarray, offset: int) -> np.ndarray:
            return np.lib.stride_tricks.sliding_window_view(track, L)[rel + offset]

        pos, neg = gather(plus, 0), gather(minus, 0)
        raw, smooth = gather(ctrl, pad), gather(ma, pad - self.left)
        rc = strands < 0
        if rc.any():
            pos[rc], neg[rc] = neg[rc, ::-1], pos[rc, ::-1]
            raw[rc] = raw[rc, ::-1]
            smooth[rc] = gather(ma, pad - self.right)[rc, ::-1]
        profile[..., 0], profile[..., 1] = pos, neg
        control[..., 0], control[..., 1] = raw, smooth


def _check_options(sequence_length: int, output_length: int, jitter_margin: int,
                   smoothing_window: int, max_n: float) -> None:
    if output_length < 1 or sequence_length < output_length:
        raise UserError(f"--sequence-length ({sequence_length}) must be >= --output-length "
                        f"({output_length}) >= 1")
    if (sequence_length - output_length) % 2:
        raise UserError(f"--sequence-length minus --output-length must be even so the output "
                        f"window is centred, got {sequence_length} - {output_length}")
    if jitter_margin < 0:
        raise UserError(f"--jitter-margin must be >= 0, got {jitter_margin}")
    if smoothing_window < 1:
        raise UserError(f"--smoothing-window must be >= 1, got {smoothing_window}")
    if not 0 <= max_n <= 1:
        raise UserError(f"--max-n must be a fraction in [0, 1], got {max_n}")

"""`prepare profile`: BPNet-style base-resolution profile data (spec/paper.md §4.1).

For every peak (centred on its narrowPeak summit, else on the interval midpoint) it stores,
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
from data_prep.binary import Chroms, _abs
from data_prep.chroms import ChromAliases
from data_prep.common import (
    Log,
    Tally,
    format_summary,
    needed_chromosomes,
    read_blacklist,
    read_checked,
    require_every_split,
    select_windows,
    stderr_log,
    versions,
)
from data_prep.extract import ExtractStats, write_windows
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
from data_prep.splits import build_layout


def prepare_profile(genome: str | os.PathLike, peaks: str | os.PathLike, out: str | os.PathLike,
                    *, plus: str | os.PathLike, minus: str | os.PathLike,
                    control_plus: str | os.PathLike, control_minus: str | os.PathLike,
                    blacklist: str | os.PathLike | None = None, sequence_length: int = 1346,
                    output_length: int = 1000, jitter_margin: int = 200,
                    smoothing_window: int = 51, max_n: float = 0.1,
                    valid_chroms: Chroms = None, test_chroms: Chroms = None,
                    train_chroms: Chroms = None, valid_regions: Chroms = None,
                    test_regions: Chroms = None,
                    holdout_fraction: str | Sequence[float] | None = None,
                    peak_format: str = "auto", chrom_aliases: str | os.PathLike | None = None,
                    chunk_size: int = 1024, progress: bool = True,
                    log: Log = stderr_log) -> dict[str, Any]:
    """Build a profile dataset at ``out`` (arrays above, plus coords of the stored sequence
    window and ``attrs["jitter_margin"] = J``); returns the counts summary (also stored in the
    params under ``counts``).

    Splits: see :func:`data_prep.splits.build_layout` (default: valid chr1, chr8, chr9 and test
    chr2, chr3, chr4 unless regions or a hold-out fraction are given); ``peak_format`` and
    ``chrom_aliases`` (also applied to the bigWigs' names) as in
    :func:`data_prep.binary.prepare_binary`. Raises :class:`UserError` for bad input and when a
    split ends up empty, leaving no file."""
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
        "peak_format": peak_format,
        "coords": "stored sequence window (length sequence_length + 2 * jitter_margin); the "
                  "profile window starts (sequence_length - output_length) / 2 bp later",
        "versions": versions(),
    }
    counts: dict[str, Any] = {"peaks": {}}
    with Genome(genome) as gen:
        aliases = ChromAliases(gen.sizes, gen.path, chrom_aliases)
        layout, split_record = build_layout(
            aliases, gen.sizes, valid_chroms=valid_chroms, test_chroms=test_chroms,
            train_chroms=train_chroms, valid_regions=valid_regions, test_regions=test_regions,
            holdout_fraction=holdout_fraction,
            defaults=(("chr1", "chr8", "chr9"), ("chr2", "chr3", "chr4")), log=log)
        params.update(split_record)
        records = read_checked(peaks, "peaks", gen, aliases, counts["peaks"], peak_format)
        if blacklist is not None:
            counts["blacklist"] = {}
        black = read_blacklist(blacklist, gen, aliases, counts.get("blacklist", {}))
        tally = Tally(counts["peaks"], "peak")
        windows = select_windows(records, seq_len, gen, layout, black, tally)
        summary = "prepare profile: counts so far"
        require_every_split(layout, {"peak": [tally]}, format_summary(summary, counts), log)
        bigwigs = open_bigwigs(paths, aliases)
        try:
            needed = needed_chromosomes(windows)
            for bw in bigwigs.values():
                bw.check_chromosomes(needed, gen.sizes)
            tracks = _Tracks(bigwigs, gen.sizes, out_len, smoothing_window, output_length, J)

            def arrays(chrom: str, chunk: Regions, x: np.ndarray, idx: np.ndarray) -> dict:
                return tracks.fetch(chrom, chunk.start + inner, chunk.strand)

            with DatasetWriter(out, "profile", params, attrs={"jitter_margin": J}) as writer:
                stats = write_windows(writer, gen, windows, seq_len, None, arrays,
                                      max_n=max_n, chunk_size=chunk_size, progress=progress)
                for reason, found in (("too_many_n", stats.too_many_n), ("written", stats.kept)):
                    tally.add(reason, windows.split[ExtractStats.indices(found)])
                counts["bigwig_nan_values"] = {k: bw.nan_values for k, bw in bigwigs.items()}
                counts["written"] = dict(stats.written)
                params.update(aliases.record())
                writer.params.update(params, counts=counts)
                require_every_split(layout, {"peak": [tally]}, format_summary(summary, counts),
                                    log)
                total = sum(stats.written.values())
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

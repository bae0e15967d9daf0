"""Long-range binned-track task with ground truth, for the enformer architecture (issue 13).

Generative model (every step is mirror-symmetric, so the distribution of (RC sequence, tracks
reversed along bins, stranded pairs reversed and swapped) equals that of the data):

1. Background: i.i.d. bases, P(A) = P(T) = 0.3, P(C) = P(G) = 0.2, ``seq_len`` bases (default
   4096 = 32 bins of ``bin_size`` 128).
2. Promoter: with probability ``promoter_prob`` a ``promoter`` motif (default ELF1_known2) is
   sampled from its PWM on a random strand and placed at the centre (start (L - w) // 2).
3. Enhancers: k = min(Poisson(``mean_enhancers``), ``max_enhancers``) instances of ``enhancer``
   (default GATA_known6), each on a random strand at a uniform non-overlapping position anywhere
   in the window, with strength s ~ U(0.5, 1.5).
4. Per-base intensities (Laplace bumps of width ``footprint`` around instance centres), summed
   over bins, then the central ``out_bins`` bins are kept:
   * ``tracks[..., 0]`` (promoter activity, unstranded): promoter present x
     ``promoter_height`` x (``basal`` + sum_e s_e exp(-|c_e - c_p| / ``decay``)) at the
     promoter. Distal enhancers matter: the decay (default 1024 bp, a quarter of the window)
     lets enhancers up to the full window away contribute, far beyond a conv receptive field.
   * ``tracks[..., 1]`` (enhancer occupancy, unstranded, local): sum_e s_e at each enhancer.
   * ``stranded_tracks`` (one pair, local, strand-aware): each enhancer's bump on the + channel
     when its motif reads on the given strand, on the - channel otherwise.
5. Counts: Poisson(``depth`` x binned intensity) per bin and track.

Stored (task ``tracks``): x (N, L, 4), tracks (N, out_bins, 2), stranded_tracks
(N, out_bins, 2), the motif table (promoter and enhancers, strands), ``motif_pwms`` and every
parameter; split 70/15/15.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from benchmark_rc.data.hdf5 import DatasetWriter
from benchmark_rc.data.simulation import Instance, _random_splits, encode_pwm
from benchmark_rc.errors import UserError

BACKGROUND = (0.3, 0.2, 0.2, 0.3)


def promoter_activity(distances: np.ndarray, strengths: np.ndarray, decay: float,
                      basal: float) -> float:
    """The ground-truth promoter rate factor: basal + sum_e s_e exp(-|d_e| / decay)."""
    return float(basal + np.sum(np.asarray(strengths) * np.exp(-np.abs(distances) / decay)))


def _bumps(length: int, centres: list[float], heights: list[float], width: float) -> np.ndarray:
    p = np.arange(length, dtype=np.float64)
    out = np.zeros(length)
    for c, h in zip(centres, heights, strict=True):
        out += h * np.exp(-np.abs(p - c) / width)
    return out


def simulate_long_range(out: str | os.PathLike, seed: int = 1234, num_seqs: int = 2000,
                        seq_len: int = 4096, bin_size: int = 128, out_bins: int = 24,
                        promoter: str = "ELF1_known2", enhancer: str = "GATA_known6",
                        promoter_prob: float = 0.8, mean_enhancers: float = 3.0,
                        max_enhancers: int = 8, decay: float = 1024.0, basal: float = 0.2,
                        promoter_height: float = 1.0, footprint: float = 20.0,
                        depth: float = 20.0,
                        fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> Path:
    """Write the long-range dataset (module docstring) to ``out``; returns the path."""
    if seq_len % bin_size or not 0 < out_bins <= seq_len // bin_size \
            or (seq_len // bin_size - out_bins) % 2:
        raise UserError(f"seq_len {seq_len} must be a multiple of bin_size {bin_size} and "
                        f"out_bins {out_bins} at most its bins with an even crop")
    rng = np.random.RandomState(seed)
    pwm_p, pwm_e = encode_pwm(promoter), encode_pwm(enhancer)
    wp, we = len(pwm_p), len(pwm_e)
    bg_cdf = np.cumsum(BACKGROUND)
    n_bins = seq_len // bin_size
    crop = (n_bins - out_bins) // 2
    x = np.zeros((num_seqs, seq_len, 4), np.uint8)
    tracks = np.zeros((num_seqs, out_bins, 2), np.float32)
    stranded = np.zeros((num_seqs, out_bins, 2), np.float32)
    table: list[Instance] = []

    def sample(pwm: np.ndarray, strand: int) -> np.ndarray:
        cols = pwm if strand == 1 else pwm[::-1, ::-1]
        return np.minimum((rng.uniform(size=(len(cols), 1)) > np.cumsum(cols, 1)).sum(1), 3)

    def binned(v: np.ndarray) -> np.ndarray:
        return v.reshape(n_bins, bin_size).sum(-1)[crop:crop + out_bins]

    for n in range(num_seqs):
        bases = np.minimum(np.searchsorted(bg_cdf, rng.uniform(size=seq_len), side="right"), 3)
        occupied = np.zeros(seq_len, bool)
        has_promoter = rng.uniform() < promoter_prob
        p_start = (seq_len - wp) // 2
        p_centre = p_start + (wp - 1) / 2
        if has_promoter:
            strand = 1 if rng.uniform() < 0.5 else -1
            bases[p_start:p_start + wp] = sample(pwm_p, strand)
            table.append(Instance(n, p_start, p_start + wp, promoter, strand))
        occupied[p_start:p_start + wp] = True  # enhancers never overlap the promoter site
        centres, strengths, strands = [], [], []
        for _ in range(min(int(rng.poisson(mean_enhancers)), max_enhancers)):
            for _ in range(1000):
                start = int(rng.randint(seq_len - we + 1))
                if not occupied[start:start + we].any():
                    break
            else:
                raise UserError("cannot place an enhancer: lower mean_enhancers/max_enhancers")
            strand = 1 if rng.uniform() < 0.5 else -1
            bases[start:start + we] = sample(pwm_e, strand)
            occupied[start:start + we] = True
            centres.append(start + (we - 1) / 2)
            strengths.append(float(rng.uniform(0.5, 1.5)))
            strands.append(strand)
            table.append(Instance(n, start, start + we, enhancer, strand))
        x[n] = np.eye(4, dtype=np.uint8)[bases]
        activity = promoter_activity(np.asarray(centres) - p_centre, np.asarray(strengths),
                                     decay, basal) if has_promoter else 0.0
        rates = np.stack([
            binned(_bumps(seq_len, [p_centre], [promoter_height * activity], footprint)),
            binned(_bumps(seq_len, centres, strengths, footprint)),
            binned(_bumps(seq_len, [c for c, s in zip(centres, strands, strict=True) if s > 0],
                          [h for h, s in zip(strengths, strands, strict=True) if s > 0],
                          footprint)),
            binned(_bumps(seq_len, [c for c, s in zip(centres, strands, strict=True) if s < 0],
                          [h for h, s in zip(strengths, strands, strict=True) if s < 0],
                          footprint)),
        ], axis=-1) * (depth / footprint)
        counts = rng.poisson(rates).astype(np.float32)
        tracks[n], stranded[n] = counts[:, :2], counts[:, 2:]

    params = {"seed": seed, "num_seqs": num_seqs, "seq_len": seq_len, "bin_size": bin_size,
              "out_bins": out_bins, "promoter": promoter, "enhancer": enhancer,
              "promoter_prob": promoter_prob, "mean_enhancers": mean_enhancers,
              "max_enhancers": max_enhancers, "decay": decay, "basal": basal,
              "promoter_height": promoter_height, "footprint": footprint, "depth": depth,
              "fractions": list(fractions), "background": list(BACKGROUND),
              "tracks": ["promoter_activity", "enhancer_occupancy"],
              "stranded_tracks": ["enhancer_bound(+)", "enhancer_bound(-)"]}
    attrs = {"motif_pwms": json.dumps({promoter: np.round(pwm_p, 8).tolist(),
                                       enhancer: np.round(pwm_e, 8).tolist()})}
    splits = _random_splits(num_seqs, fractions, seed)
    with DatasetWriter(out, "tracks", params, attrs=attrs) as writer:
        for split, rows in splits.items():
            rows = np.sort(rows)
            writer.append(split, x=x[rows], tracks=tracks[rows], stranded_tracks=stranded[rows])
            where = {int(r): i for i, r in enumerate(rows)}
            kept = [t for t in table if t.seq in where]
            writer.append_table(split, "motifs", seq=[where[t.seq] for t in kept],
                                start=[t.start for t in kept], end=[t.end for t in kept],
                                name=[t.name for t in kept], strand=[t.strand for t in kept])
    return Path(out)

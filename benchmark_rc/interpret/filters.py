"""First-layer filters as motifs (Koo & Ploenzke; spec/interpretation.md §3.1, §3.4–3.6).

* :func:`first_layer` finds a model's first convolution and the activation after it (also inside
  a conjoined model's shared network) and returns a model from the sequence to that
  post-activation map. A model whose first layer with weights is not a convolution over the
  one-hot bases is refused (:class:`UserError`).
* :func:`activation_ppms`: each filter's PPM, the mean of the 20-nt one-hot windows centred where
  its activation exceeds ``threshold`` x its maximum over the sequences (windows strictly inside
  the sequence; fewer than 2 windows: a uniform PPM); :func:`clip_ppm` keeps the span between
  the first and last position with IC > 0.5 bits, extended by 3 on each side.
* RC-shared (RCPS) first layers: channel i and 2F-1-i are one filter and its reverse complement,
  so they are **one motif**: the pair's PPM is aligned from the windows of channel i and the
  reverse complements of the windows of channel 2F-1-i, with one threshold (half the pair's
  maximum); the match fraction counts pairs (F of them). Irrep first layers have no strand
  pairs: every channel is counted.
* :func:`tomtom_matches`: TomTom (memelite, complete score, RC included) of the clipped PPMs
  against JASPAR 2016 CORE vertebrates (519 matrices, as Koo) plus any ground-truth motif not in
  it. A hit is E < 0.1 (E = p x number of targets), Koo's cut-off; q-values are Benjamini-
  Hochberg over each filter's targets and choose its best ground-truth hit. Statistics: match
  fraction (filters with a ground-truth hit), match-any (filters with any hit, not counting
  those whose only hit is Gmeb1 MA0615.1), coverage (ground-truth motifs hit by some filter).
  memelite's p-values differ from MEME 5.1.0's (Euclidean column score, not Pearson).
* :func:`localisation_auroc` (§3.4): per sequence, the IC > 0.01 positions of the generative
  model dilated by a box of width 10 split the sequence into positive and negative runs, each
  scored by the maximum of a track inside it; the ROC AUC over the runs, averaged over
  sequences. Tracks: the max over filters of the post-activation map, and the max over the
  ground-truth PWMs (and their RCs) of a log2-odds scan (pseudocount 1e-3). Chance is not 0.5:
  a run's score is a maximum, so long background runs (the gaps between motifs) beat short
  motif runs under a random track; ``chance_auroc`` is the value of an i.i.d. uniform track.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.errors import UserError

WINDOW = 20
HIT_EVALUE = 0.1
GMEB1 = "MA0615.1"
# spec §3.6: the JASPAR IDs accepted for each task-1 TF (any version counts). One correction:
# Koo's list gives STAT1 MA0660.1 and MA0773.1, which JASPAR 2016 names MEF2B and MEF2D; they
# count for MEF2A here (a MEF2 filter would otherwise be credited to STAT1).
ACCEPTED_IDS = {
    "ARID3A": ("MA0151.1", "MA0601.1", "PB0001.1"), "CEBPB": ("MA0466.1", "MA0466.2"),
    "FOSL1": ("MA0477.1",), "GABPA": ("MA0062.1", "MA0062.2"),
    "MAFK": ("MA0496.1", "MA0496.2"), "MAX": ("MA0058.1", "MA0058.2", "MA0058.3"),
    "MEF2A": ("MA0052.1", "MA0052.2", "MA0052.3", "MA0660.1", "MA0773.1"),
    "NFYB": ("MA0502.1", "MA0060.1", "MA0060.2"), "SP1": ("MA0079.1", "MA0079.2", "MA0079.3"),
    "SRF": ("MA0083.1", "MA0083.2", "MA0083.3"),
    "STAT1": ("MA0137.1", "MA0137.2", "MA0137.3"),
    "YY1": ("MA0095.1", "MA0095.2"),
}
_ID = re.compile(r"(MA|PB|PF|PH|CN|UN)\d{4}\.\d+$")


# ------------------------------------------------------------------------------ the first layer
@dataclass
class FirstLayer:
    """The first convolution of a model and the map after its activation."""

    extractor: Any  # keras.Model: sequence (N, L, 4) -> post-activation map (N, L', C)
    conv_name: str
    conv_class: str
    activation_name: str
    kind: str  # "standard" | "rc" (channel i pairs with 2F-1-i) | "irrep"
    channels: int
    kernel_size: int
    offset: int  # input position of map position p: p + offset (centre of its window)

    @property
    def units(self) -> list[tuple[int, int | None]]:
        """The motifs counted: (channel, RC partner or None)."""
        if self.kind == "rc":
            half = self.channels // 2
            return [(i, self.channels - 1 - i) for i in range(half)]
        return [(i, None) for i in range(self.channels)]


def _conv_kind(layer: Any) -> str | None:
    import keras

    from benchmark_rc.layers import KerasGenomicsRevCompConv1D, RegToIrrepConv1D, RevCompConv1D

    if isinstance(layer, RevCompConv1D | KerasGenomicsRevCompConv1D):
        return "rc"
    if isinstance(layer, RegToIrrepConv1D):
        return "irrep"
    if isinstance(layer, keras.layers.Conv1D):
        return "standard"
    return None


def _is_activation(layer: Any) -> bool:
    import keras

    from benchmark_rc.layers import Exponential, IrrepActivation

    return isinstance(layer, keras.layers.Activation | keras.layers.ReLU | Exponential
                      | IrrepActivation | keras.layers.ELU | keras.layers.LeakyReLU)


def _first_weighted(model: Any) -> tuple[Any, Any]:
    """(container model, its first layer with weights), descending into nested models."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            if layer.weights:
                return _first_weighted(layer)
            continue
        if layer.weights:
            return model, layer
    raise UserError(f"model {model.name!r} has no layer with weights")


def first_layer(model: Any) -> FirstLayer:
    """The first convolution of ``model`` and the activation after it (module docstring)."""
    import keras

    container, conv = _first_weighted(model)
    kind = _conv_kind(conv)
    if kind is None:
        raise UserError(
            f"the first layer with weights of model {model.name!r} is {conv.name!r} "
            f"({type(conv).__name__}), not a convolution over the one-hot bases; `filters` "
            "analyses first-layer convolution filters")
    layers = container.layers
    act = None
    for layer in layers[layers.index(conv) + 1:]:
        if _is_activation(layer):
            act = layer
            break
        if layer.weights and "batchnorm" not in type(layer).__name__.lower():
            break  # another weighted layer (conv, dense) before any activation
    if act is None:
        raise UserError(f"no activation follows the first convolution {conv.name!r} of model "
                        f"{model.name!r}")
    inputs = container.inputs
    if len(inputs) != 1 or tuple(inputs[0].shape[2:]) != (4,):
        raise UserError(f"model {model.name!r}: the first convolution's network does not take one "
                        "(N, L, 4) sequence input")
    extractor = keras.Model(inputs[0], act.output, name=f"{model.name}_first_layer")
    length_in = int(inputs[0].shape[1])
    length_out = int(act.output.shape[1])
    kernel = int(np.ravel(conv.kernel_size)[0]) if hasattr(conv, "kernel_size") else 0
    return FirstLayer(extractor, conv.name, type(conv).__name__, act.name, kind,
                      int(act.output.shape[-1]), kernel, (length_in - length_out) // 2)


def activation_maps(layer: FirstLayer, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Post-activation maps (N, L', C) float32 of one-hot ``x`` (N, L, 4)."""
    out = [np.asarray(layer.extractor(np.asarray(x[i:i + batch_size], np.float32),
                                      training=False))
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype(np.float32)


# -------------------------------------------------------------------------- PPMs and clipping
def _window_sum(x: np.ndarray, seqs: np.ndarray, centres: np.ndarray, window: int,
                chunk: int = 50_000) -> tuple[np.ndarray, int]:
    """Sum of the one-hot windows [c - window/2, c + window/2) of x[seqs] strictly inside the
    sequences; returns (sum (window, 4), count)."""
    half = window // 2
    keep = (centres - half >= 0) & (centres - half + window <= x.shape[1])
    seqs, centres = seqs[keep], centres[keep]
    total = np.zeros((window, 4))
    offsets = np.arange(-half, window - half)
    for i in range(0, len(seqs), chunk):
        s, c = seqs[i:i + chunk], centres[i:i + chunk]
        total += x[s[:, None], c[:, None] + offsets].sum(axis=0, dtype=np.float64)
    return total, int(len(seqs))


def activation_ppms(maps: np.ndarray, x: np.ndarray, units: Sequence[tuple[int, int | None]],
                    offset: int = 0, threshold: float = 0.5, window: int = WINDOW
                    ) -> tuple[list[np.ndarray], list[int]]:
    """One PPM (window, 4) per unit (channel, RC partner or None) and its number of windows.

    A unit's windows are those centred where its activation exceeds ``threshold`` x its maximum
    over all sequences and positions (for a pair: the pair's maximum; the partner's windows are
    reverse-complemented). Fewer than 2 windows: uniform."""
    x = np.asarray(x, dtype=np.float32)
    length = x.shape[1]
    ppms, counts = [], []
    for channel, partner in units:
        chans = [channel] if partner is None else [channel, partner]
        top = max(float(maps[..., c].max()) for c in chans)
        total, count = np.zeros((window, 4)), 0
        for k, c in enumerate(chans):
            seqs, pos = np.nonzero(maps[..., c] > threshold * top)
            if k == 0:
                s, n = _window_sum(x, seqs, pos + offset, window)
                total += s
            else:  # the partner reads the RC strand: RC of its window of RC(x) at the mirror
                s, n = _window_sum(x[:, ::-1, ::-1], seqs, length - 1 - (pos + offset), window)
                total += s
            count += n
        ppms.append(total / count if count >= 2 else np.full((window, 4), 0.25))
        counts.append(count)
    return ppms, counts


def information_content(ppm: np.ndarray) -> np.ndarray:
    """Per-position IC in bits of a (W, 4) PPM: 2 + sum p log2 p (0 log 0 = 0)."""
    p = np.asarray(ppm, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return 2.0 + terms.sum(axis=-1)


def clip_ppm(ppm: np.ndarray, min_ic: float = 0.5, extend: int = 3) -> np.ndarray:
    """The span from the first to the last position with IC > ``min_ic``, extended by
    ``extend`` on each side within bounds; unclipped when no position passes."""
    keep = np.nonzero(information_content(ppm) > min_ic)[0]
    if not keep.size:
        return np.asarray(ppm)
    lo, hi = max(0, keep[0] - extend), min(len(ppm), keep[-1] + 1 + extend)
    return np.asarray(ppm)[lo:hi]


# ---------------------------------------------------------------------------- motif files
def read_meme(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Motifs of a MEME-format file: name -> (W, 4) probabilities (ACGT). A file that does not
    parse (no MOTIF, a matrix whose rows are not 4 probabilities, a short matrix) raises
    :class:`UserError` naming the line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such motif file")
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not a text (MEME) motif file ({err})") from None
    motifs: dict[str, np.ndarray] = {}
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("MOTIF"):
            parts = line.split()
            if len(parts) < 2:
                raise UserError(f"{path}:{i + 1}: MOTIF line without a name")
            name = parts[1] if len(parts) < 3 else f"{parts[2]}_{parts[1]}"
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("letter-probability"):
                if lines[j].strip().startswith("MOTIF"):
                    raise UserError(f"{path}:{i + 1}: motif {parts[1]} has no "
                                    "letter-probability matrix")
                j += 1
            if j == len(lines):
                raise UserError(f"{path}:{i + 1}: motif {parts[1]} has no letter-probability "
                                "matrix")
            width = re.search(r"w=\s*(\d+)", lines[j])
            if not width:
                raise UserError(f"{path}:{j + 1}: letter-probability line without w=")
            rows = []
            for k in range(j + 1, j + 1 + int(width.group(1))):
                try:
                    row = [float(v) for v in lines[k].split()]
                except (IndexError, ValueError):
                    raise UserError(f"{path}:{k + 1}: expected 4 probabilities of motif "
                                    f"{parts[1]}") from None
                if len(row) != 4 or min(row) < 0 or abs(sum(row) - 1) > 0.02:
                    raise UserError(f"{path}:{k + 1}: expected 4 probabilities summing to 1 "
                                    f"(motif {parts[1]}), got {lines[k].strip()!r}")
                rows.append(row)
            motifs[name] = np.asarray(rows, dtype=np.float64)
            i = j + 1 + len(rows)
            continue
        i += 1
    if not motifs:
        raise UserError(f"{path}: no MOTIF with a letter-probability matrix (not MEME format)")
    return motifs


def write_meme(path: str | os.PathLike, motifs: Mapping[str, np.ndarray]) -> Path:
    """MEME (version 4) text of (W, 4) PPMs, uniform background, nsites = width (as Koo)."""
    from benchmark_rc.fileio import atomic_write_text

    out = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
           "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for name, ppm in motifs.items():
        out += [f"MOTIF {name}", f"letter-probability matrix: alength= 4 w= {len(ppm)} "
                f"nsites= {len(ppm)} E= 0"]
        out += [" ".join(f"{v:.6f}" for v in row) for row in np.asarray(ppm)]
        out.append("")
    atomic_write_text(path, "\n".join(out))
    return Path(path)


def jaspar_vertebrates(release: str = "JASPAR2016") -> dict[str, np.ndarray]:
    """JASPAR CORE vertebrates, latest versions (519 matrices for 2016), name_ID -> (W, 4)."""
    from pyjaspar import jaspardb

    out = {}
    for m in jaspardb(release=release).fetch_motifs(collection="CORE", tax_group=["vertebrates"],
                                                    all_versions=False):
        counts = np.array([m.counts[b] for b in "ACGT"], dtype=np.float64).T
        out[f"{m.name}_{m.matrix_id}"] = counts / counts.sum(axis=1, keepdims=True)
    return out


def matrix_id(name: str) -> str | None:
    """The JASPAR ID at the end of a motif name ("SP1_MA0079.3" -> "MA0079.3"), or None."""
    found = _ID.search(name)
    return found.group(0) if found else None


def accepted_ids(name: str) -> set[str]:
    """The IDs that count as a match of ground-truth motif ``name``: its own and, for Koo's
    task-1 TFs, the other versions of spec §3.6."""
    ids = {matrix_id(name)} - {None}
    tf = name.rsplit("_", 1)[0].upper() if matrix_id(name) else name.upper()
    return ids | set(ACCEPTED_IDS.get(tf, ()))


# ---------------------------------------------------------------------------- TomTom matches
@dataclass
class MatchResult:
    per_filter: Any  # DataFrame
    per_motif: Any  # DataFrame
    stats: dict[str, float] = field(default_factory=dict)


def tomtom_matches(queries: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray],
                   database: Mapping[str, np.ndarray] | None = None,
                   evalue: float = HIT_EVALUE) -> MatchResult:
    """TomTom of the (W, 4) ``queries`` against ``database`` + ``truth`` (module docstring)."""
    import pandas as pd
    from memelite.tomtom import tomtom

    from benchmark_rc.attribution.motifs import _bh

    targets = dict(database or {})
    present = {matrix_id(n) for n in targets} - {None}
    for name, pwm in truth.items():  # ground-truth motifs not already in the database
        if name not in targets and (matrix_id(name) is None or matrix_id(name) not in present):
            targets[name] = pwm
    names = list(targets)
    is_truth = np.zeros((len(truth), len(names)), dtype=bool)
    for g, gname in enumerate(truth):
        ok = accepted_ids(gname)
        for t, tname in enumerate(names):
            is_truth[g, t] = tname == gname or (matrix_id(tname) in ok)
    if not queries:
        raise UserError("no filters to match")
    q = [np.asarray(m, dtype=np.float64).T for m in queries.values()]
    t = [np.asarray(targets[n], dtype=np.float64).T for n in names]
    pvals = np.asarray(tomtom(q, t, n_jobs=1)[0], dtype=np.float64)
    evals = pvals * len(names)
    qvals = np.stack([_bh(p) for p in pvals])
    any_truth = is_truth.any(axis=0)
    rows = []
    for i, qname in enumerate(queries):
        hits = np.nonzero(evals[i] < evalue)[0]
        truth_hits = [h for h in hits if any_truth[h]]
        best = int(np.argmin(pvals[i]))
        row = {"filter": qname, "width": len(queries[qname]), "n_hits": len(hits),
               "best_match": names[best], "best_p": pvals[i, best], "best_e": evals[i, best],
               "best_q": qvals[i, best], "matched": bool(truth_hits),
               "match_any": bool(len(hits)) and not all(matrix_id(names[h]) == GMEB1
                                                        for h in hits)}
        if truth_hits:
            h = min(truth_hits, key=lambda k: qvals[i, k])
            row.update(truth_match=names[h], truth_q=qvals[i, h], truth_e=evals[i, h])
        else:
            row.update(truth_match="", truth_q=np.nan, truth_e=np.nan)
        rows.append(row)
    per_filter = pd.DataFrame(rows)
    motif_rows = []
    for g, gname in enumerate(truth):
        cols = np.nonzero(is_truth[g])[0]
        hit = (evals[:, cols] < evalue) if len(cols) else np.zeros((len(queries), 0), bool)
        who = [qn for qn, h in zip(queries, hit.any(axis=1), strict=True) if h]
        motif_rows.append({"motif": gname, "covered": bool(who), "n_filters": len(who),
                           "filters": " ".join(who)})
    per_motif = pd.DataFrame(motif_rows)
    stats = {"n_filters": len(queries), "match_fraction": float(per_filter["matched"].mean()),
             "match_any": float(per_filter["match_any"].mean()),
             "coverage": float(per_motif["covered"].mean()) if len(per_motif) else float("nan"),
             "n_targets": len(names)}
    return MatchResult(per_filter, per_motif, stats)


# ----------------------------------------------------------------------- ground truth, scans
def model_matrix(motifs: Any, pwms: Mapping[str, np.ndarray], n: int, length: int,
                 names: Sequence[str] | None = None) -> np.ndarray:
    """The generative model (N, L, 4): 0.25 background, each embedded motif's PWM (reverse-
    complemented for strand -1) at its place; ``names`` restricts to those motifs."""
    out = np.full((n, length, 4), 0.25)
    keep = None if names is None else set(names)
    for s, a, b, name, strand in zip(motifs["seq"], motifs["start"], motifs["end"],
                                     motifs["name"], motifs["strand"], strict=True):
        name = name.decode() if isinstance(name, bytes) else str(name)
        if keep is not None and name not in keep:
            continue
        if name not in pwms:
            raise UserError(f"motif {name!r} of the motif table has no PWM in the dataset")
        pwm = np.asarray(pwms[name])
        if int(strand) < 0:
            pwm = pwm[::-1, ::-1]
        if not 0 <= int(s) < n:
            continue
        a, b = int(a), int(b)
        lo, hi = max(a, 0), min(b, length)
        if hi > lo:
            out[int(s), lo:hi] = pwm[lo - a:hi - a]
    return out


def ic_positions(matrix: np.ndarray, min_ic: float = 0.01) -> np.ndarray:
    """(N, L) bool: IC of the generative model column > ``min_ic`` bits (spec §3.1)."""
    return (2 + np.sum(matrix * np.log2(matrix + 1e-10), axis=-1)) > min_ic


def pwm_scan(x: np.ndarray, pwms: Sequence[np.ndarray], pseudocount: float = 1e-3,
             batch: int = 1000) -> np.ndarray:
    """Max over ``pwms`` and their RCs of the "same" log2-odds scan of one-hot x: (N, L)."""
    import tensorflow as tf

    x = np.asarray(x, np.float32)
    width = max(len(p) for p in pwms)
    kernels = []
    for pwm in pwms:
        for m in (np.asarray(pwm), np.asarray(pwm)[::-1, ::-1]):
            lo = np.log2((m + pseudocount) / (1 + 4 * pseudocount) / 0.25)
            k = np.zeros((width, 4))
            start = width // 2 - len(m) // 2  # centre each motif in the common width
            k[start:start + len(m)] = lo
            mask = np.zeros(width, bool)
            mask[start:start + len(m)] = True
            kernels.append(np.where(mask[:, None], k, 0.0))
    kernel = tf.constant(np.stack(kernels, axis=-1).astype(np.float32))  # (W, 4, M)
    out = []
    for i in range(0, len(x), batch):
        xb = tf.constant(x[i:i + batch])
        xb = tf.pad(xb, [[0, 0], [width // 2, width - 1 - width // 2], [0, 0]])
        out.append(tf.reduce_max(tf.nn.conv1d(xb, kernel, 1, "VALID"), axis=-1).numpy())
    return np.concatenate(out)


def _runs(labels: np.ndarray) -> list[tuple[int, int, bool]]:
    """Maximal runs (start, end, value) of a 1-D bool array."""
    edges = np.nonzero(np.diff(labels.astype(np.int8)))[0] + 1
    bounds = np.concatenate([[0], edges, [len(labels)]])
    return [(int(a), int(b), bool(labels[a])) for a, b in zip(bounds[:-1], bounds[1:],
                                                             strict=True)]


def localisation_auroc(track: np.ndarray, positives: np.ndarray, dilate: int = 10
                       ) -> tuple[float, float, int]:
    """Koo's instance-level localisation AUROC (module docstring): (NaN-mean, NaN-SD, number of
    sequences scored) over sequences; ``track`` and ``positives`` (N, L)."""
    from scipy.ndimage import maximum_filter1d
    from sklearn.metrics import roc_auc_score

    labels = maximum_filter1d(positives.astype(np.uint8), size=dilate, axis=1) > 0
    values = []
    for t, y in zip(track, labels, strict=True):
        runs = _runs(y)
        truth = [v for _, _, v in runs]
        if all(truth) or not any(truth):
            values.append(np.nan)
            continue
        values.append(roc_auc_score(truth, [float(np.max(t[a:b])) for a, b, _ in runs]))
    arr = np.asarray(values, dtype=np.float64)
    n = int(np.sum(~np.isnan(arr)))
    if n == 0:
        return float("nan"), float("nan"), 0
    return float(np.nanmean(arr)), float(np.nanstd(arr)), n


# ------------------------------------------------------------------------------ the analysis
def dataset_truth(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The ground-truth motifs of a simulated dataset: the motifs its labels are about (task 1:
    the 12 TFs; task 3: the 5 core TFs), else every motif of its ``motif_pwms``."""
    from benchmark_rc.data.hdf5 import read_attrs
    from benchmark_rc.data.simulation import read_motif_pwms

    pwms = read_motif_pwms(path)
    params = read_attrs(path).get("params") or {}
    if isinstance(params, str):
        params = json.loads(params)
    for key in ("core_motifs", "motifs"):
        names = params.get(key) if isinstance(params, dict) else None
        if names and all(n in pwms for n in names):
            return {n: pwms[n] for n in names}
    return pwms


@dataclass
class FilterReport:
    layer: FirstLayer
    ppms: dict[str, np.ndarray]  # unclipped
    clipped: dict[str, np.ndarray]
    counts: list[int]
    matches: MatchResult
    localisation: dict[str, float]
    summary: dict[str, Any]


def analyse_filters(model: Any, data: str | os.PathLike, *, split: str = "test",
                    max_seqs: int | None = None, threshold: float = 0.5,
                    truth: Mapping[str, np.ndarray] | None = None,
                    database: Mapping[str, np.ndarray] | None = None,
                    localisation: bool = True) -> FilterReport:
    """Filters of ``model``'s first layer on a split of ``data`` (module docstring).

    ``truth``: ground-truth motifs (default :func:`dataset_truth`); ``database``: TomTom's
    other targets (default JASPAR 2016 CORE vertebrates; ``{}`` for none)."""
    from benchmark_rc.data.hdf5 import read_motifs, read_split
    from benchmark_rc.data.simulation import read_motif_pwms

    layer = first_layer(model)
    x = np.asarray(read_split(data, split, keys=("x",))["x"])
    if max_seqs is not None:
        x = x[:max_seqs]
    if x.shape[1] != int(layer.extractor.inputs[0].shape[1]):
        raise UserError(f"{data}: sequences of length {x.shape[1]}, the model takes "
                        f"{layer.extractor.inputs[0].shape[1]}")
    truth = dict(dataset_truth(data) if truth is None else truth)
    database = jaspar_vertebrates() if database is None else dict(database)
    maps = activation_maps(layer, x)
    units = layer.units
    ppm_list, counts = activation_ppms(maps, x, units, layer.offset, threshold)
    ppms = {f"filter{i}": p for i, p in enumerate(ppm_list)}
    clipped = {k: clip_ppm(p) for k, p in ppms.items()}
    matches = tomtom_matches(clipped, truth, database)
    matches.per_filter.insert(1, "n_windows", counts)
    loc: dict[str, float] = {}
    if localisation:
        motifs = read_motifs(data, split)
        n = len(x)
        motifs = motifs[np.asarray(motifs["seq"]) < n]
        all_pwms = read_motif_pwms(data)
        names = np.array([m.decode() if isinstance(m, bytes) else str(m)
                          for m in motifs["name"]])
        bad = np.unique(np.asarray(motifs["seq"])[~np.isin(names, list(truth))])
        rows = np.setdiff1d(np.arange(n), bad)  # sequences whose motifs are all ground truth
        positives = ic_positions(model_matrix(motifs, all_pwms, n, x.shape[1]))[rows]
        track = np.full((len(rows), x.shape[1]), -np.inf, dtype=np.float64)
        lo = max(layer.offset, 0)
        track[:, lo:lo + maps.shape[1]] = maps[rows].max(axis=-1)[:, :x.shape[1] - lo]
        cnn = localisation_auroc(track, positives)
        pwm = localisation_auroc(pwm_scan(x[rows], list(truth.values())), positives)
        noise = np.random.default_rng(0).random(positives.shape)
        chance = localisation_auroc(noise, positives)
        loc = {"cnn_auroc": cnn[0], "cnn_sd": cnn[1], "pwm_auroc": pwm[0], "pwm_sd": pwm[1],
               "chance_auroc": chance[0], "n_sequences": cnn[2]}
    summary = {"conv_layer": layer.conv_name, "conv_class": layer.conv_class,
               "activation_layer": layer.activation_name, "kind": layer.kind,
               "channels": layer.channels, "motifs_counted": len(units),
               "counting": ("RC pairs (channel i with 2F-1-i) count as one motif"
                            if layer.kind == "rc" else "every channel is one motif"),
               "threshold": threshold, "split": split, "n_sequences": int(len(x)),
               "ground_truth": list(truth), **matches.stats,
               **{f"localisation_{k}": v for k, v in loc.items()}}
    return FilterReport(layer, ppms, clipped, counts, matches, loc, summary)


def write_report(report: FilterReport, out: str | os.PathLike, *, logos: bool = True,
                 title: str = "First-layer filters") -> Path:
    """filters.csv, motifs.csv, filters.meme, summary.json, logos/*.png and report.md in
    ``out``; returns the report path."""
    from benchmark_rc.attribution.motifs import ppm_to_bits, save_logo
    from benchmark_rc.fileio import atomic_write_text, json_default

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pf = report.matches.per_filter
    atomic_write_text(out / "filters.csv", pf.to_csv(index=False))
    atomic_write_text(out / "motifs.csv", report.matches.per_motif.to_csv(index=False))
    write_meme(out / "filters.meme", report.clipped)
    atomic_write_text(out / "summary.json",
                      json.dumps(report.summary, indent=2, default=json_default) + "\n")
    if logos:
        for name, ppm in report.clipped.items():
            save_logo(ppm_to_bits(ppm), out / "logos" / f"{name}.png", name)
    s = report.summary
    lines = [f"# {title}", "",
             f"First layer `{s['conv_layer']}` ({s['conv_class']}, {s['channels']} channels), "
             f"post-activation map of `{s['activation_layer']}`; {s['counting']}: "
             f"{s['motifs_counted']} motifs. PPMs from windows where the activation exceeds "
             f"{s['threshold']} x its maximum over {s['n_sequences']} {s['split']} sequences; "
             "clipped to IC > 0.5 bits + 3. TomTom (memelite) against "
             f"{s['n_targets']} targets (JASPAR 2016 CORE vertebrates + ground truth), hit = "
             f"E < {HIT_EVALUE}.", "",
             "| statistic | value |", "|---|---|",
             f"| match fraction (filters matching ground truth) | {s['match_fraction']:.3f} |",
             f"| match any JASPAR (Gmeb1-only excluded) | {s['match_any']:.3f} |",
             f"| coverage of the {len(s['ground_truth'])} ground-truth motifs | "
             f"{s['coverage']:.3f} |"]
    if "localisation_cnn_auroc" in s:
        lines += [f"| localisation AUROC, first-layer scan | {s['localisation_cnn_auroc']:.3f} "
                  f"± {s['localisation_cnn_sd']:.3f} |",
                  f"| localisation AUROC, ground-truth PWM scan | "
                  f"{s['localisation_pwm_auroc']:.3f} ± {s['localisation_pwm_sd']:.3f} |",
                  f"| localisation AUROC of an i.i.d. random track (chance) | "
                  f"{s['localisation_chance_auroc']:.3f} |",
                  f"| sequences scored for localisation | {s['localisation_n_sequences']} |"]
    lines += ["", "| filter | logo | windows | width | best match (q) | ground-truth match "
              "(q, E) |", "|---|---|---|---|---|---|"]
    for _, r in pf.iterrows():
        logo = f"![](logos/{r['filter']}.png)" if logos else ""
        gt = (f"{r['truth_match']} ({r['truth_q']:.2g}, {r['truth_e']:.2g})" if r["matched"]
              else "—")
        lines.append(f"| {r['filter']} | {logo} | {r['n_windows']} | {r['width']} | "
                     f"{r['best_match']} ({r['best_q']:.2g}) | {gt} |")
    lines += ["", "Ground-truth motifs:", "", "| motif | covered by |", "|---|---|"]
    for _, r in report.matches.per_motif.iterrows():
        lines.append(f"| {r['motif']} | {r['filters'] or '—'} |")
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    return out / "report.md"

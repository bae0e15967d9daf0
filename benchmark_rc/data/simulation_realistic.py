"""Prakash et al.'s "more realistic" simulation (spec/interpretation.md §2.4) and its offline
surrogate, for ``benchmark-rc simulate realistic``.

One pipeline serves user files and the offline default:

1. **Sources.** Real positive sequences (``positives`` FASTA) and, optionally, real negatives
   (``negatives`` FASTA), all of one length. Without files both are generated (offline demo and
   tests): an order-2 Markov background (:class:`MarkovBackground`: a built-in RC-symmetric table,
   or one fitted to a ``background`` FASTA); sources of positives get k = max(1,
   Poisson(``mean_motifs``)) PWM-sampled instances, either strand, centre-biased (start ~
   Normal(centre, length / 8), clipped); sources of negatives get Poisson(``mean_negative_motifs``)
   instances at uniform positions (the background rate). Later instances overwrite earlier ones.
2. **Scan.** FIMO (memelite, both strands) of the motifs on every source at p < ``threshold``
   (1e-4, FIMO's default, as Prakash).
3. **Motif filter** (Prakash step 4; both thresholds are recorded, their values in Prakash's
   config are unknown): a motif is kept when it has at least ``min_pos_hits`` hits in the
   positives and, when there are negatives, a centre-weighted hit-density ratio (each hit weighted
   by (h - |h - start|)², h = length / 2; per positive over per negative) of at least
   ``min_enrichment`` (default 0: off).
4. **Positives.** Each source positive is dinucleotide-shuffled (:func:`dinucleotide_shuffle`,
   Altschul-Erickson) and the original bases of every kept-motif hit found in it are pasted back
   at the same coordinates, so each hit keeps its position and strand. Positives without a
   kept-motif hit are dropped (counted in ``params["counts"]``).
5. **Negatives.** With real negatives (a file, or the offline ones): one per real negative, a
   dinucleotide shuffle of a randomly chosen kept positive source (positive-like composition, so
   GC content is no shortcut) with the kept-motif hits FIMO found in that real negative pasted at
   their coordinates (Prakash's ``sim_pos_and_neg``). Without negatives: as many as there are
   positives, the same shuffled backgrounds, with Poisson(``negative_hit_fraction`` x mean kept
   hits per positive) hits drawn from the positives' hits pasted at uniform positions (an assumed
   background rate). ``implant_negatives=False`` gives Prakash's ``no_neg_implant`` variant.
6. **Ground truth.** FIMO re-scan of the final sequences with the kept motifs at the same
   threshold: stored in each split's ``motifs`` table (row, 0-based start, exclusive end, motif,
   strand), so chance hits in the shuffled background count too, as in Prakash (§3.8). The kept
   motifs go to ``motif_pwms``. Labels (N, 1): positive = 1. Random split by ``seed``
   (``fractions``, default 70/15/15), or by chromosome for region-named FASTA records
   (``valid_chroms``, ``test_chroms``).

Non-ACGT letters raise :class:`UserError` naming the record and position, unless
``drop_non_acgt`` (Prakash drops such sequences), which drops those records and counts them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np

from benchmark_rc.data.simulation import KOO_TASK3_CORE, Instance, _random_splits, _write
from benchmark_rc.errors import UserError
from benchmark_rc.sequence import ALPHABET

# The offline default motif set: Koo & Ploenzke's task-3 core TFs (SP1, Gabpa, CEBPB, MAX, YY1).
DEFAULT_MOTIFS = "jaspar:JASPAR2016:" + ",".join(KOO_TASK3_CORE)
# Instances sort by row, position, motif and strand.
_ORDER = attrgetter("seq", "start", "end", "name", "strand")
# Start of an offline positive's instances: Normal(centre, CENTRE_SD x length), clipped.
CENTRE_SD = 0.125

# Built-in order-2 background: approximate human-genome dinucleotide frequencies (percent, rounded
# to 0.1 from published figures, not measured here: no genome is available offline; CpG depleted,
# A/T rich), rows = first base, columns = second, A, C, G, T. TA and CG were lowered by 0.1 so
# that the table is exactly stationary (row sums = column sums) and RC-symmetric (f(a, b) =
# f(comp b, comp a)), so its sequences are RC-symmetric in distribution. It has no third-order
# structure; fit a true order-2 table to a FASTA with ``background``.
DINUCLEOTIDE_PERCENT = np.array([
    [9.8, 5.0, 7.0, 7.6],
    [7.3, 5.2, 0.9, 7.0],
    [5.9, 4.3, 5.2, 5.0],
    [6.4, 5.9, 7.3, 9.8],
])


# ----------------------------------------------------------------------------------------------
# Dinucleotide shuffle


def dinucleotide_shuffle(tokens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random sequence with exactly the dinucleotide counts, first and last letter of
    ``tokens`` (L,) (integers 0..3), by Altschul & Erickson (1985).

    The sequence is an Eulerian trail through the letters, one edge per dinucleotide. Each letter
    other than the last gets a random *last exit* edge such that the last exits form a tree
    leading to the last letter (drawn uniformly, by rejection); every other edge is ordered at
    random; walking the edges in that order from the first letter always uses them all. Uniform
    over the tree and the orders means uniform over the sequences (deeplift's shuffle keeps the
    original tree, so it cannot reach every such sequence).
    """
    tokens = np.asarray(tokens)
    if len(tokens) < 3:
        return tokens.copy()
    successors = [tokens[1:][tokens[:-1] == v] for v in range(4)]
    exits = _last_exits(successors, int(tokens[-1]), rng)
    orders = []
    for v, succ in enumerate(successors):
        order = rng.permutation(len(succ))
        if v in exits:  # the chosen last exit goes last, the rest in random order
            order = np.append(order[order != exits[v]], exits[v])
        orders.append(succ[order].tolist())
    out = [int(tokens[0])]
    pointer = [0, 0, 0, 0]
    for _ in range(len(tokens) - 1):
        v = out[-1]
        out.append(orders[v][pointer[v]])
        pointer[v] += 1
    return np.asarray(out, dtype=tokens.dtype)


def _last_exits(successors: Sequence[np.ndarray], root: int,
                rng: np.random.Generator) -> dict[int, int]:
    """For every letter v != ``root`` with out-edges, the index (into ``successors[v]``) of its
    last exit, uniformly among the choices whose exits all lead to ``root`` without a cycle.
    Self-loops can never be on such a tree, so they are not drawn (same conditional law)."""
    candidates = {v: np.nonzero(succ != v)[0] for v, succ in enumerate(successors)
                  if v != root and len(succ)}
    while True:
        exits = {v: int(c[rng.integers(len(c))]) for v, c in candidates.items()}
        if all(_reaches_root(v, exits, successors, root) for v in exits):
            return exits


def _reaches_root(v: int, exits: Mapping[int, int], successors: Sequence[np.ndarray],
                  root: int) -> bool:
    seen = set()
    while v != root:
        if v in seen:
            return False
        seen.add(v)
        v = int(successors[v][exits[v]])
    return True


def dinucleotide_counts(tokens: np.ndarray) -> np.ndarray:
    """(4, 4) counts of the dinucleotides of ``tokens`` (L,) or (N, L), rows = first letter."""
    tokens = np.atleast_2d(np.asarray(tokens, dtype=np.int64))
    return np.bincount((4 * tokens[:, :-1] + tokens[:, 1:]).ravel(), minlength=16).reshape(4, 4)


# ----------------------------------------------------------------------------------------------
# Order-2 Markov background


@dataclass(frozen=True)
class MarkovBackground:
    """An order-2 Markov chain over A, C, G, T: ``initial`` (4, 4) probabilities of the first
    two letters and ``transitions`` (4, 4, 4) = P(next | two previous)."""

    initial: np.ndarray
    transitions: np.ndarray
    source: str

    @classmethod
    def default(cls) -> MarkovBackground:
        """The built-in table (:data:`DINUCLEOTIDE_PERCENT`)."""
        joint = DINUCLEOTIDE_PERCENT / DINUCLEOTIDE_PERCENT.sum()
        step = joint / joint.sum(axis=1, keepdims=True)
        return cls(joint, np.broadcast_to(step, (4, 4, 4)).copy(),
                   "built-in human dinucleotide table (DINUCLEOTIDE_PERCENT)")

    @classmethod
    def fit(cls, tokens: Sequence[np.ndarray], source: str,
            pseudocount: float = 1.0) -> MarkovBackground:
        """Trinucleotide counts of ``tokens`` and their reverse complements, plus
        ``pseudocount``: an RC-symmetric order-2 chain."""
        tri = np.full(64, pseudocount)
        di = np.full(16, pseudocount)
        for seq in tokens:
            for s in (np.asarray(seq, dtype=np.int64), 3 - np.asarray(seq, dtype=np.int64)[::-1]):
                tri += np.bincount(16 * s[:-2] + 4 * s[1:-1] + s[2:], minlength=64)
                di += np.bincount(4 * s[:-1] + s[1:], minlength=16)
        tri = tri.reshape(4, 4, 4)
        return cls((di / di.sum()).reshape(4, 4), tri / tri.sum(axis=-1, keepdims=True), source)

    def sample(self, rng: np.random.Generator, num_seqs: int, length: int) -> np.ndarray:
        """(num_seqs, length) int8 letters 0..3."""
        out = np.zeros((num_seqs, length), dtype=np.int8)
        first = rng.choice(16, size=num_seqs, p=self.initial.ravel())
        out[:, 0] = first // 4
        if length > 1:
            out[:, 1] = first % 4
        cdf = np.cumsum(self.transitions, axis=-1)
        for i in range(2, length):
            rows = cdf[out[:, i - 2], out[:, i - 1]]
            out[:, i] = np.minimum((rng.random((num_seqs, 1)) > rows).sum(axis=1), 3)
        return out

    def describe(self) -> dict[str, Any]:
        return {"order": 2, "source": self.source,
                "initial": np.round(self.initial, 6).tolist(),
                "transitions": np.round(self.transitions, 6).tolist()}


# ----------------------------------------------------------------------------------------------
# Inputs: FASTA records and motifs


@dataclass(frozen=True)
class Records:
    """Sequences of one FASTA file: names, letters (one int8 array of 0..3 per record), and the
    names of records dropped for non-ACGT letters (``drop_non_acgt``)."""

    path: str
    names: list[str]
    tokens: list[np.ndarray]
    dropped: list[str]


_CODES = np.full(256, -1, dtype=np.int8)
for _i, _base in enumerate(ALPHABET):
    _CODES[ord(_base)] = _CODES[ord(_base.lower())] = _i


def read_fasta(path: str | os.PathLike, drop_non_acgt: bool = False,
               equal_length: bool = True) -> Records:
    """Read a FASTA file of ACGT sequences (lower case allowed), all of one length when
    ``equal_length``. Missing or empty files, text before the first header, records without
    sequence, non-ACGT letters (unless ``drop_non_acgt``) and unequal lengths raise
    :class:`UserError` naming the record."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such FASTA file")
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not a plain-text (ASCII) FASTA file ({err})") from None
    if not any(line.strip() for line in lines):
        raise UserError(f"{path}: the FASTA file is empty")
    records: list[tuple[str, int, list[str]]] = []  # (name, header line, sequence lines)
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if line.startswith(">"):
            name = line[1:].split(maxsplit=1)[0] if line[1:].strip() else f"(unnamed, line {number})"
            records.append((name, number, []))
        elif line:
            if not records:
                raise UserError(f"{path}:{number}: sequence before the first '>' header "
                                "(not a FASTA file?)")
            records[-1][2].append(line)
    if not records:
        raise UserError(f"{path}: no FASTA records (no line starts with '>')")
    names, rows, dropped = [], [], []
    for name, number, parts in records:
        text = "".join(parts)
        if not text:
            raise UserError(f"{path}:{number}: record {name} has no sequence")
        codes = _CODES[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
        bad = np.nonzero(codes < 0)[0]
        if len(bad):
            if drop_non_acgt:
                dropped.append(name)
                continue
            raise UserError(
                f"{path}:{number}: record {name} has {text[bad[0]]!r} at position {bad[0] + 1} "
                f"({len(bad)} non-ACGT letter(s) in all); sequences must be A, C, G, T only "
                "(drop such records with --drop-non-acgt)")
        if equal_length and rows and len(codes) != rows[0].shape[0]:
            raise UserError(f"{path}:{number}: record {name} is {len(codes)} bp but record "
                            f"{names[0]} is {rows[0].shape[0]} bp; all sequences must have the "
                            "same length (e.g. fixed-width windows around peak summits)")
        names.append(name)
        rows.append(codes)
    if not rows:
        raise UserError(f"{path}: all {len(dropped)} record(s) have non-ACGT letters; none left")
    return Records(str(path), names, rows, dropped)


# A record named by its region: "chr1:100-500", bedtools getfasta's "-s" "chr1:100-500(+)" and
# "-name" "peak7::chr1:100-500" forms.
_REGION = re.compile(r"(?:.*::)?([^:\s]+):(\d+)-(\d+)(?:\([+.-]\))?")


def record_chromosome(name: str) -> str | None:
    """The chromosome of a FASTA record named by its region ("chr1:100-500"), else None."""
    found = _REGION.fullmatch(name)
    return found.group(1) if found else None


def chromosome_splits(chroms: Sequence[str], valid_chroms: Sequence[str],
                      test_chroms: Sequence[str]) -> dict[str, np.ndarray]:
    """Rows on ``test_chroms`` -> test, on ``valid_chroms`` -> valid, the rest -> train. A
    chromosome listed twice, or on no row, raises :class:`UserError`."""
    both = sorted(set(valid_chroms) & set(test_chroms))
    if both:
        raise UserError(f"chromosome(s) {', '.join(both)} are both validation and test")
    absent = [c for c in sorted(set(valid_chroms) | set(test_chroms)) if c not in set(chroms)]
    if absent:
        raise UserError(f"split chromosome(s) {', '.join(absent)} match no record; the records "
                        f"are on {', '.join(sorted(set(chroms))[:20])}")
    chroms = np.asarray(chroms)
    valid, test = np.isin(chroms, list(valid_chroms)), np.isin(chroms, list(test_chroms))
    return {"train": np.nonzero(~valid & ~test)[0], "valid": np.nonzero(valid)[0],
            "test": np.nonzero(test)[0]}


def _record_chromosomes(records: Records) -> list[str]:
    chroms = [record_chromosome(n) for n in records.names]
    if None in chroms:
        name = records.names[chroms.index(None)]
        raise UserError(f"{records.path}: record {name} is not named by its region "
                        "(chrom:start-end), so it cannot be split by chromosome")
    return chroms


def load_motifs(spec: str) -> dict[str, np.ndarray]:
    """Motifs as name -> (W, 4) probabilities from ``spec``: a MEME file, ``jaspar:RELEASE``
    (JASPAR CORE vertebrates, latest versions, offline from pyjaspar) or
    ``jaspar:RELEASE:ID,ID,...`` (those matrices)."""
    if not spec.startswith("jaspar:"):
        from benchmark_rc.interpret.filters import read_meme

        return read_meme(spec)
    from pyjaspar import jaspar_releases

    parts = spec.split(":")
    if len(parts) not in (2, 3) or parts[1] not in jaspar_releases:
        raise UserError(f"motifs {spec!r}: expected jaspar:RELEASE or jaspar:RELEASE:ID,ID,... "
                        f"with RELEASE one of {sorted(jaspar_releases)}")
    if len(parts) == 2:
        from benchmark_rc.interpret.filters import jaspar_vertebrates

        return jaspar_vertebrates(parts[1])
    from benchmark_rc.data.simulation import jaspar_pwm

    ids = [i.strip() for i in parts[2].split(",") if i.strip()]
    if not ids:
        raise UserError(f"motifs {spec!r}: no JASPAR matrix IDs after the release")
    return dict(jaspar_pwm(i, parts[1]) for i in ids)


# ----------------------------------------------------------------------------------------------
# Scanning and implanting


def scan(tokens: np.ndarray, pwms: Mapping[str, np.ndarray], threshold: float) -> list[Instance]:
    """FIMO (memelite, both strands) hits at p < ``threshold`` of ``pwms`` (name -> (W, 4)) in
    ``tokens`` (N, L) letters 0..3, as instances (row, 0-based start, exclusive end, motif, +1 /
    -1 for the motif / its reverse complement), sorted."""
    import pandas as pd
    from memelite import fimo

    if not len(tokens) or not pwms:
        return []
    one_hot = np.eye(4, dtype=np.uint8)[tokens].transpose(0, 2, 1)  # (N, 4, L) as memelite reads
    frames = [f for f in fimo({n: np.asarray(p, np.float64).T for n, p in pwms.items()},
                              np.ascontiguousarray(one_hot), threshold=threshold) if len(f)]
    if not frames:
        return []
    hits = pd.concat(frames, ignore_index=True)
    return sorted((Instance(int(s), int(a), int(b), str(m), 1 if d == "+" else -1)
                   for s, a, b, m, d in zip(hits["sequence_name"], hits["start"], hits["end"],
                                            hits["motif_name"], hits["strand"], strict=True)),
                  key=_ORDER)


def _by_row(hits: Sequence[Instance], num_rows: int) -> list[list[Instance]]:
    rows: list[list[Instance]] = [[] for _ in range(num_rows)]
    for hit in hits:
        rows[hit.seq].append(hit)
    return rows


def paste_hits(background: np.ndarray, source: np.ndarray,
               hits: Sequence[Instance]) -> np.ndarray:
    """``background`` (L,) with the bases of ``source`` (L,) at every hit's [start, end): the
    hit keeps its coordinates and strand. Overlaps: the later hit overwrites."""
    out = np.array(background, copy=True)
    for hit in hits:
        out[hit.start:hit.end] = source[hit.start:hit.end]
    return out


def select_motifs(pos_hits: Sequence[Instance], neg_hits: Sequence[Instance], num_pos: int,
                  num_neg: int, length: int, min_pos_hits: int,
                  min_enrichment: float) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Prakash's motif filter (module docstring, step 3): the kept motif names (sorted) and, per
    motif, its positive hits and centre-weighted enrichment (inf when no negative hit)."""
    half = length / 2
    hits: dict[str, list[list[float]]] = {}  # motif -> (weights in positives, in negatives)
    for side, table in enumerate((pos_hits, neg_hits)):
        for h in table:
            hits.setdefault(h.name, [[], []])[side].append((half - abs(half - h.start)) ** 2)
    stats: dict[str, dict[str, float]] = {}
    for name in sorted(n for n, (pos, _) in hits.items() if pos):
        pos, neg = hits[name]
        ratio = (float("inf") if not num_neg or not sum(neg)
                 else (sum(pos) / num_pos) / (sum(neg) / num_neg))
        stats[name] = {"positive_hits": len(pos), "negative_hits": len(neg),
                       "enrichment": ratio}
    kept = [n for n, s in stats.items() if s["positive_hits"] >= min_pos_hits
            and (not num_neg or s["enrichment"] >= min_enrichment)]
    return kept, stats


def _sample_instance(rng: np.random.Generator, pwm: np.ndarray, strand: int) -> np.ndarray:
    cols = pwm if strand == 1 else pwm[::-1, ::-1]
    return np.minimum((rng.random((len(cols), 1)) > np.cumsum(cols, axis=1)).sum(axis=1), 3)


def _plant(rng: np.random.Generator, seqs: np.ndarray, pwms: Mapping[str, np.ndarray],
           counts: np.ndarray, centred: bool) -> None:
    """Write counts[i] PWM samples into row i of ``seqs`` in place (offline sources)."""
    names = list(pwms)
    length = seqs.shape[1]
    for row, k in zip(seqs, counts, strict=True):
        for _ in range(int(k)):
            pwm = np.asarray(pwms[names[rng.integers(len(names))]])
            room = length - len(pwm)
            start = (int(np.clip(np.rint(rng.normal(room / 2, CENTRE_SD * length)), 0, room))
                     if centred else int(rng.integers(room + 1)))
            strand = 1 if rng.random() < 0.5 else -1
            row[start:start + len(pwm)] = _sample_instance(rng, pwm, strand)


# ----------------------------------------------------------------------------------------------
# The simulation


@dataclass
class RealisticSimulation:
    """The simulated sequences before writing: final letters (N, L), labels (N,), the source
    row of each final row's pasted hits (``source`` (N,), into the positive or negative sources
    by label; -1 for negatives without real negatives), the positive source whose shuffle is its
    background (``background`` (N,)), the hits pasted into each row, the ground truth (re-scan)
    per row, the kept motifs and the counts for ``params``."""

    tokens: np.ndarray
    labels: np.ndarray
    source: np.ndarray
    background: np.ndarray
    pasted: list[list[Instance]]
    truth: list[list[Instance]]
    motifs: dict[str, np.ndarray]
    counts: dict[str, Any]


def build(pos: np.ndarray, neg: np.ndarray | None, pwms: Mapping[str, np.ndarray],
          rng: np.random.Generator, threshold: float = 1e-4, min_pos_hits: int = 1,
          min_enrichment: float = 0.0, negative_hit_fraction: float = 0.25,
          implant_negatives: bool = True) -> RealisticSimulation:
    """Steps 2-6 of the module docstring on source letters ``pos`` (P, L) and ``neg`` (M, L) or
    None."""
    length = pos.shape[1]
    # Rounded as the file stores them (motif_pwms), so that a re-scan of the file is exact.
    pwms = {n: np.round(np.asarray(p, np.float64), 8) for n, p in pwms.items()}
    long = [n for n, p in pwms.items() if len(p) > length]
    if long:
        raise UserError(f"motif(s) {', '.join(long)} are longer than the {length}-bp sequences")
    num_neg = 0 if neg is None else len(neg)
    pos_hits = scan(pos, pwms, threshold)
    neg_hits = [] if neg is None else scan(neg, pwms, threshold)
    kept, stats = select_motifs(pos_hits, neg_hits, len(pos), num_neg, length, min_pos_hits,
                                min_enrichment)
    if not kept:
        shown = dict(list(stats.items())[:10])
        raise UserError(f"no motif passes the filter (at least {min_pos_hits} FIMO hit(s) at "
                        f"p < {threshold} in the positives and enrichment >= {min_enrichment}); "
                        f"{len(stats)} motif(s) have positive hits"
                        + (f", e.g. {shown}" if shown else ""))
    keep = set(kept)
    pos_rows = _by_row([h for h in pos_hits if h.name in keep], len(pos))
    with_hit = [i for i, hits in enumerate(pos_rows) if hits]
    if not with_hit:
        raise UserError("no positive has a hit of the kept motifs; nothing to simulate")
    tokens, labels, source, origin, pasted = [], [], [], [], []
    for i in with_hit:
        tokens.append(paste_hits(dinucleotide_shuffle(pos[i], rng), pos[i], pos_rows[i]))
        labels.append(1)
        source.append(i)
        origin.append(i)
        pasted.append(pos_rows[i])
    if neg is not None:
        neg_rows = _by_row([h for h in neg_hits if h.name in keep], num_neg)
        for j in range(num_neg):
            origin.append(with_hit[rng.integers(len(with_hit))])
            background = dinucleotide_shuffle(pos[origin[-1]], rng)
            hits = neg_rows[j] if implant_negatives else []
            tokens.append(paste_hits(background, neg[j], hits))
            labels.append(0)
            source.append(j)
            pasted.append(hits)
    else:
        pool = [h for i in with_hit for h in pos_rows[i]]
        rate = negative_hit_fraction * len(pool) / len(with_hit) if implant_negatives else 0.0
        for _ in range(len(with_hit)):
            origin.append(with_hit[rng.integers(len(with_hit))])
            background = dinucleotide_shuffle(pos[origin[-1]], rng)
            hits = []
            for _ in range(int(rng.poisson(rate))):
                hit = pool[rng.integers(len(pool))]
                start = int(rng.integers(length - (hit.end - hit.start) + 1))
                background[start:start + hit.end - hit.start] = pos[hit.seq][hit.start:hit.end]
                hits.append(Instance(len(tokens), start, start + hit.end - hit.start, hit.name,
                                     hit.strand))
            tokens.append(background)
            labels.append(0)
            source.append(-1)
            pasted.append(hits)
    final = np.stack(tokens)
    motifs = {n: pwms[n] for n in kept}
    truth = _by_row(scan(final, motifs, threshold), len(final))
    counts = {
        "source_positives": len(pos), "source_negatives": num_neg,
        "positives_without_kept_hit_dropped": len(pos) - len(with_hit),
        "positives": len(with_hit), "negatives": len(final) - len(with_hit),
        "hits_pasted_positives": sum(len(p) for p, y in zip(pasted, labels, strict=True) if y),
        "hits_pasted_negatives": sum(len(p) for p, y in zip(pasted, labels, strict=True)
                                     if not y),
        "ground_truth_hits": sum(len(t) for t in truth),
        "motifs_scanned": len(pwms), "motifs_kept": len(kept),
        "motif_filter": {n: {k: (None if v == float("inf") else v) for k, v in s.items()}
                         for n, s in stats.items()},
    }
    return RealisticSimulation(final, np.asarray(labels), np.asarray(source),
                               np.asarray(origin), pasted, truth, motifs, counts)


def simulate_realistic(out: str | os.PathLike, positives: str | os.PathLike | None = None,
                       negatives: str | os.PathLike | None = None,
                       motifs: str = DEFAULT_MOTIFS, seed: int = 1234, threshold: float = 1e-4,
                       num_seqs: int = 2000, length: int = 400,
                       background: str | os.PathLike | None = None, mean_motifs: float = 2.0,
                       mean_negative_motifs: float = 0.5, min_pos_hits: int = 1,
                       min_enrichment: float = 0.0, negative_hit_fraction: float = 0.25,
                       implant_negatives: bool = True, drop_non_acgt: bool = False,
                       fractions: Sequence[float] = (0.7, 0.15, 0.15),
                       valid_chroms: str | Sequence[str] | None = None,
                       test_chroms: str | Sequence[str] | None = None) -> Path:
    """Write the realistic simulation (module docstring) to ``out``; returns the path.

    With ``positives`` (and optionally ``negatives``) FASTA files the sources are those
    sequences; ``num_seqs``, ``length``, ``background`` and the ``mean_*`` parameters then do not
    apply. Without, ``num_seqs`` positive and ``num_seqs`` negative sources of ``length`` bp are
    generated offline. ``motifs``: a MEME file or ``jaspar:RELEASE[:ID,...]``
    (:func:`load_motifs`). Split: random (``fractions``, ``seed``), or by chromosome when
    ``valid_chroms`` / ``test_chroms`` are given (lists or comma-separated), which needs FASTA
    records named by their region (``chr1:100-500``): a row belongs to the chromosome of its
    source record (a negative without real negatives: of the positive shuffled into its
    background).
    """
    valid_chroms, test_chroms = (
        [c.strip() for c in v.split(",") if c.strip()] if isinstance(v, str) else list(v or [])
        for v in (valid_chroms, test_chroms))
    by_chrom = bool(valid_chroms or test_chroms)
    if not 0 < threshold < 1:
        raise UserError(f"threshold must be a p-value in (0, 1), got {threshold}")
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-9:
        raise UserError(f"fractions must be three non-negative numbers summing to 1, got "
                        f"{list(fractions)}")
    if positives is None and negatives is not None:
        raise UserError("negatives need positives: give --positives too, or neither for the "
                        "offline Markov-2 simulation")
    if by_chrom and positives is None:
        raise UserError("a chromosome split needs --positives FASTA records named by their "
                        "region (chrom:start-end); the offline simulation splits at random")
    if positives is not None and background is not None:
        raise UserError("background fits the offline Markov-2 model; it does not apply with "
                        "--positives")
    pwms = load_motifs(str(motifs))
    rng = np.random.default_rng(seed)
    params: dict[str, Any] = {
        "generator": "simulate_realistic", "seed": seed, "threshold": threshold,
        "motifs": str(motifs), "min_pos_hits": min_pos_hits, "min_enrichment": min_enrichment,
        "implant_negatives": implant_negatives, "drop_non_acgt": drop_non_acgt,
        "negative_hit_fraction": negative_hit_fraction, "fractions": list(fractions),
        "labels": ["positive"], "shuffle": "dinucleotide (Altschul-Erickson)",
        "scanner": "FIMO (memelite), both strands",
        "ground_truth": "FIMO re-scan of the final sequences with the kept motifs",
        "split": ({"method": "chromosomes", "valid_chroms": valid_chroms,
                   "test_chroms": test_chroms} if by_chrom
                  else {"method": "random permutation", "seed": seed}),
    }
    if positives is None:
        if num_seqs < 1 or length < 1:
            raise UserError(f"num_seqs and length must be positive, got {num_seqs}, {length}")
        long = [n for n, p in pwms.items() if len(p) > length]
        if long:
            raise UserError(f"motif(s) {', '.join(long)} are longer than length {length}")
        files = ([] if background is None
                 else [read_fasta(background, drop_non_acgt, equal_length=False)])
        model = (MarkovBackground.fit(files[0].tokens, str(background)) if files
                 else MarkovBackground.default())
        pos, neg = model.sample(rng, num_seqs, length), model.sample(rng, num_seqs, length)
        _plant(rng, pos, pwms, np.maximum(rng.poisson(mean_motifs, num_seqs), 1), centred=True)
        _plant(rng, neg, pwms, rng.poisson(mean_negative_motifs, num_seqs), centred=False)
        params.update(source="offline Markov-2", num_seqs=num_seqs, length=length,
                      background=model.describe(), mean_motifs=mean_motifs,
                      mean_negative_motifs=mean_negative_motifs, centre_sd=CENTRE_SD)
    else:
        pos_records = read_fasta(positives, drop_non_acgt)
        neg_records = None if negatives is None else read_fasta(negatives, drop_non_acgt)
        pos = np.stack(pos_records.tokens)
        neg = None if neg_records is None else np.stack(neg_records.tokens)
        if neg is not None and neg.shape[1] != pos.shape[1]:
            raise UserError(f"{negatives}: sequences are {neg.shape[1]} bp but those of "
                            f"{positives} are {pos.shape[1]} bp; they must be equal")
        files = [r for r in (pos_records, neg_records) if r is not None]
        params.update(source="FASTA", positives=str(positives),
                      negatives=None if negatives is None else str(negatives),
                      length=int(pos.shape[1]))
    sim = build(pos, neg, pwms, rng, threshold=threshold, min_pos_hits=min_pos_hits,
                min_enrichment=min_enrichment, negative_hit_fraction=negative_hit_fraction,
                implant_negatives=implant_negatives)
    params["kept_motifs"] = list(sim.motifs)
    params["counts"] = {**sim.counts, "files": {
        r.path: {"records_read": len(r.names) + len(r.dropped),
                 "records_dropped_non_acgt": len(r.dropped), "dropped": r.dropped[:100]}
        for r in files}}
    x = np.eye(4, dtype=np.uint8)[sim.tokens]
    y = sim.labels.astype(np.float32)[:, None]
    truth = [[Instance(i, h.start, h.end, h.name, h.strand) for h in row]
             for i, row in enumerate(sim.truth)]
    if by_chrom:
        pos_chroms = _record_chromosomes(pos_records)
        neg_chroms = None if neg_records is None else _record_chromosomes(neg_records)
        chroms = [pos_chroms[s] if y_ else neg_chroms[s] if neg_chroms else pos_chroms[b]
                  for y_, s, b in zip(sim.labels, sim.source, sim.background, strict=True)]
        splits = chromosome_splits(chroms, valid_chroms, test_chroms)
    else:
        splits = _random_splits(len(x), fractions, seed)
    params["counts"]["rows"] = {k: int(len(v)) for k, v in splits.items()}
    return _write(out, x, y, truth, splits, params, sim.motifs)


def read_ground_truth(path: str | os.PathLike, split: str) -> list[Instance]:
    """The stored ground truth of ``split``, as sorted instances."""
    from benchmark_rc.data.hdf5 import read_split

    table = read_split(path, split, keys=("motifs",))["motifs"]
    return sorted((Instance(int(s), int(a), int(b), str(n), int(d)) for s, a, b, n, d in zip(
        table["seq"], table["start"], table["end"], table["name"], table["strand"], strict=True)),
        key=_ORDER)


def rescan(path: str | os.PathLike, split: str) -> list[Instance]:
    """A fresh FIMO scan of the stored sequences of ``split`` with the stored motifs at the stored
    threshold: what :func:`read_ground_truth` must equal."""
    from benchmark_rc.data.hdf5 import read_attrs, read_split
    from benchmark_rc.data.simulation import read_motif_pwms

    threshold = float(read_attrs(path)["params"]["threshold"])
    x = read_split(path, split, keys=("x",))["x"]
    if not len(x):
        return []
    if (x.sum(axis=-1) != 1).any():
        raise UserError(f"{path}: /{split}/x has non-ACGT positions; not a realistic simulation")
    return scan(x.argmax(axis=-1).astype(np.int8), read_motif_pwms(path), threshold)

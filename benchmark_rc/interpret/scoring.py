"""Attribution scores against simulated ground truth under Koo's and Prakash's definitions, the
RC-consistency of every attribution map, and their aggregation over the seeds of a sweep
(``benchmark-rc interpret --sweep DIR``; docs/interpret.md; spec/interpretation.md §3.1–3.3,
§3.7–3.9).

The pieces, each an object or a table rather than a test of names:

* **Ground truth** (:class:`GroundTruth`): what a dataset provides, looked up in
  :data:`GROUND_TRUTH` by the generator recorded in the file (``params.generator``).
  :class:`EmbeddedMotifs` (every simulation that stores its embedded instances and their PWMs:
  ``paper`` / sim200, ``koo-task1``, ``koo-task3``) gives Koo's IC > 0.01 positions of the
  generative model and Prakash's motif positions (the embedded instances); for ``realistic``
  the same object reads the motif hits re-scanned on the final sequences (Prakash's ground
  truth, spec §3.8) that the file stores in place of embedded instances.
* **Definitions** (:data:`DEFINITIONS`, :class:`Definition`): which ground truth, which
  per-position reduction (:func:`benchmark_rc.attribution.scoring.position_scores`) and which
  precision-recall area. Both report per-sequence ROC AUC and PR area, their mean over sequences
  with the SE (SD / sqrt(n)), the same two pooled over every position of every sequence, and the
  fraction of |score| on ground-truth positions.
* **Attributions** (:class:`AttributionJob`, :func:`attribution_jobs`): one job per registry
  method; a method that takes a ``layer`` (GradCAM) gives one job per convolution layer
  (:func:`conv_sites`) and per GradCAM ``variant`` (:data:`GRADCAM_VARIANTS`).
* **RC-consistency** of a map: attributions A(x) of the sequences and A(RC x) of their reverse
  complements (with reverse-complemented references), compared as RC(A(RC x)) against A(x):
  the mean per-sequence Pearson correlation of the (L, 4) maps
  (:func:`benchmark_rc.attribution.scoring.rc_consistency`, 1 = consistent) and the mean
  relative L2 distance (:func:`benchmark_rc.attribution.scoring.rc_relative_error`, 0 =
  identical).
* **Aggregation** (:func:`aggregate`): from the per-run rows to the tables, mean ± SE across
  seeds with n, seed-paired tests of each strategy against ``standard``, and the ranking of the
  methods (Prakash et al.'s method ranking) per strategy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from benchmark_rc.attribution.scoring import average_precision, sequence_metrics, trapezoid_pr
from benchmark_rc.errors import UserError
from benchmark_rc.metrics import mean_se

METRICS = ("auroc", "auprc", "rc_consistency")
KEYS = ("dataset", "arch", "activation", "strategy")
BASELINE = "standard"
# GradCAM variants (spec §3.7, §7.6): "textbook" (channel weights = gradient averaged over
# positions) and "position" (Prakash et al.'s code: gradient averaged over channels per position)
GRADCAM_VARIANTS = ("textbook", "position")
MIN_PAIRS = 5  # fewer seed pairs than this: the paired tests are flagged as underpowered


# ------------------------------------------------------------------------------- ground truth
def _rows_table(motifs: Any, rows: np.ndarray, n_split: int) -> dict[str, np.ndarray]:
    """The motif-table rows of the sequences ``rows`` (indices into the split), renumbered to
    0..len(rows)-1."""
    remap = -np.ones(n_split, np.int64)
    remap[rows] = np.arange(len(rows))
    seqs = np.asarray(motifs["seq"], np.int64)
    if len(seqs) and (seqs.min() < 0 or seqs.max() >= n_split):
        raise UserError(f"motif table rows refer to sequence {seqs.max()} of a split of "
                        f"{n_split} sequences")
    seqs = remap[seqs]
    keep = seqs >= 0
    table = {k: np.asarray(motifs[k])[keep] for k in ("start", "end", "name", "strand")}
    table["seq"] = seqs[keep]
    return table


class GroundTruth(Protocol):
    """What a dataset kind provides as ground truth for the evaluated sequences ``rows`` (indices
    into ``split``; ``n_split`` sequences of ``length`` bp in the split). Each method returns an
    (len(rows), length) bool mask, or None when the dataset cannot give it."""

    def information_content(self, path: str | os.PathLike, split: str, rows: np.ndarray,
                            n_split: int, length: int) -> np.ndarray | None:
        """Koo (spec §3.1): generative-model columns with IC > 0.01 bits."""

    def motif_positions(self, path: str | os.PathLike, split: str, rows: np.ndarray,
                        n_split: int, length: int, output: int) -> np.ndarray | None:
        """Prakash (spec §3.8): bases covered by a motif instance."""


@dataclass(frozen=True)
class EmbeddedMotifs:
    """Datasets whose ``motifs`` table (seq, start, end, name, strand) lists the motif positions
    and whose ``motif_pwms`` attribute holds the motifs' PWMs.

    Koo: IC > 0.01 of the generative model (0.25 background, each listed instance's PWM,
    reverse-complemented on the - strand; every listed motif). Prakash: every base of a listed
    instance; when the dataset names its tasks by motif (the paper simulation: task k = motif k)
    only the explained task's motif, as ``benchmark-rc attribute`` scores
    (:func:`benchmark_rc.attribution.runner.task_motifs`).

    The simulations of :mod:`benchmark_rc.data.simulation` list the embedded (sampled)
    instances. The realistic simulation lists the FIMO hits of the kept motifs re-scanned on the
    final sequences (Prakash's ground truth, chance hits included), so its Koo ground truth is
    the IC of the kept motif's PWM over each hit: the pasted bases come from real (or Markov)
    sequences, not from a generative PWM model, and near-uniform motif columns drop out as in
    Koo."""

    def _table(self, path: str | os.PathLike, split: str) -> Any:
        from benchmark_rc.data.hdf5 import read_motifs

        try:
            return read_motifs(path, split)
        except (KeyError, OSError, UserError) as err:
            raise UserError(f"{path}: no {split}/motifs table of motif positions (the ground "
                            f"truth): {err}") from None

    def information_content(self, path: str | os.PathLike, split: str, rows: np.ndarray,
                            n_split: int, length: int) -> np.ndarray | None:
        from benchmark_rc.data.simulation import read_motif_pwms
        from benchmark_rc.interpret.filters import ic_positions, model_matrix

        table = _rows_table(self._table(path, split), rows, n_split)
        return ic_positions(model_matrix(table, read_motif_pwms(path), len(rows), length))

    def motif_positions(self, path: str | os.PathLike, split: str, rows: np.ndarray,
                        n_split: int, length: int, output: int) -> np.ndarray | None:
        from benchmark_rc.attribution.runner import task_motifs
        from benchmark_rc.attribution.scoring import motif_mask
        from benchmark_rc.data.hdf5 import read_attrs

        table = task_motifs(self._table(path, split), read_attrs(path), output)
        return motif_mask(_rows_table(table, rows, n_split), len(rows), length)


EMBEDDED_MOTIFS = EmbeddedMotifs()
# generator recorded in a dataset file (params.generator) -> its ground truth; files of other
# generators get EMBEDDED_MOTIFS (which needs a motifs table). simulate_realistic's motifs table
# holds the re-scanned FIMO hits (benchmark_rc.data.simulation_realistic, step 6).
GROUND_TRUTH: dict[str, GroundTruth] = {
    "simulate_paper": EMBEDDED_MOTIFS,
    "simulate_koo_task1": EMBEDDED_MOTIFS,
    "simulate_koo_task3": EMBEDDED_MOTIFS,
    "simulate_realistic": EMBEDDED_MOTIFS,
}


def register_ground_truth(generator: str, truth: GroundTruth) -> GroundTruth:
    """Give the datasets of ``generator`` (their ``params.generator``) the ground truth
    ``truth``."""
    GROUND_TRUTH[generator] = truth
    return truth


def ground_truth_of(path: str | os.PathLike) -> GroundTruth:
    """The ground truth of a dataset file (:data:`GROUND_TRUTH` by its generator)."""
    from benchmark_rc.data.hdf5 import read_attrs

    params = read_attrs(path).get("params") or {}
    generator = params.get("generator") if isinstance(params, dict) else None
    return GROUND_TRUTH.get(str(generator), EMBEDDED_MOTIFS)


# -------------------------------------------------------------------------------- definitions
@dataclass(frozen=True)
class Definition:
    """One paper's definition of an attribution's accuracy (spec §3.9).

    Attributes:
        name: "koo" or "prakash" (the ``definition`` column of the tables).
        convention: the per-position reduction of
            :func:`benchmark_rc.attribution.scoring.position_scores`.
        pr_area: the precision-recall area of one sequence's (labels, scores).
        truth: the ground truth it reads from a dataset's :class:`GroundTruth`:
            ``truth(source, path, split, rows, n_split, length, output)``.
        summary: one line for the tables.
    """

    name: str
    convention: str
    pr_area: Callable[[np.ndarray, np.ndarray], float]
    truth: Callable[..., np.ndarray | None]
    summary: str = ""

    def score(self, attr: np.ndarray, x: np.ndarray, truth: np.ndarray,
              mutagenesis: bool = False) -> dict[str, float]:
        """:func:`sequence_metrics` of an (N, L, 4) map under this definition (``mutagenesis``:
        the map is an ISM map, reduced as this paper reduces ISM)."""
        from benchmark_rc.attribution.scoring import position_scores

        scores = position_scores(np.asarray(attr, np.float64), np.asarray(x), self.convention,
                                 ism=mutagenesis)
        return sequence_metrics(scores, truth, self.pr_area)


def _ic_truth(source: GroundTruth, path: Any, split: str, rows: np.ndarray, n_split: int,
              length: int, output: int) -> np.ndarray | None:
    return source.information_content(path, split, rows, n_split, length)


def _motif_truth(source: GroundTruth, path: Any, split: str, rows: np.ndarray, n_split: int,
                 length: int, output: int) -> np.ndarray | None:
    return source.motif_positions(path, split, rows, n_split, length, output)


DEFINITIONS: dict[str, Definition] = {
    "koo": Definition("koo", "koo", trapezoid_pr, _ic_truth,
                      "IC > 0.01 of the generative model; signed attribution at the observed "
                      "base (ISM: L2 norm over the bases); trapezoidal PR area"),
    "prakash": Definition("prakash", "prakash", average_precision, _motif_truth,
                          "bases of motif instances; |sum over the 4 channels| (ISM: |centred "
                          "value at the observed base|); average precision"),
}


def get_definition(name: str | Definition) -> Definition:
    """The definition of that name (a Definition is returned as it is)."""
    if isinstance(name, Definition):
        return name
    if name not in DEFINITIONS:
        raise UserError(f"unknown definition {name!r}; choose from {', '.join(DEFINITIONS)}")
    return DEFINITIONS[name]


@dataclass
class EvaluationSet:
    """The evaluated sequences of a dataset and their ground truth under each definition."""

    x: np.ndarray  # (n, L, 4) float32
    rows: np.ndarray  # their rows in the split
    truth: dict[str, np.ndarray] = field(default_factory=dict)  # definition -> (n, L) bool
    # definitions the dataset cannot give, or whose ground truth has no sequence with both
    # motif and background positions
    missing: list[str] = field(default_factory=list)


def evaluation_set(path: str | os.PathLike, split: str = "test", n_seqs: int = 500,
                   output: int = 0, definitions: Sequence[str | Definition] = ("koo",),
                   truth: GroundTruth | None = None) -> EvaluationSet:
    """The first ``n_seqs`` sequences of ``split`` positive for ``output`` (Koo: the first 500
    positive test sequences; Prakash: simulated positives) with the ground truth of each
    definition (``truth``: the dataset's, :func:`ground_truth_of`, unless given)."""
    from benchmark_rc.data.hdf5 import read_split

    arrays = read_split(path, split, keys=("x", "y"))
    x, y = np.asarray(arrays["x"]), np.asarray(arrays["y"])
    if y.ndim != 2 or not 0 <= output < y.shape[1]:
        raise UserError(f"{path}: output {output} outside its labels of shape {y.shape}")
    rows = np.nonzero(y[:, output] > 0.5)[0][:n_seqs]
    if not len(rows):
        raise UserError(f"{path}: no {split} sequence is positive for output {output}")
    source = truth if truth is not None else ground_truth_of(path)
    result = EvaluationSet(x[rows].astype(np.float32), rows)
    for d in (get_definition(d) for d in definitions):
        mask = d.truth(source, path, split, rows, len(x), x.shape[1], output)
        mask = None if mask is None else np.asarray(mask, bool)
        if mask is None or not (mask.any(axis=1) & ~mask.all(axis=1)).any():
            result.missing.append(d.name)  # nothing to score against: noted, not an error
        else:
            result.truth[d.name] = mask
    return result


# ------------------------------------------------------------------------------- attributions
@dataclass(frozen=True)
class ConvSite:
    """A convolution layer GradCAM is taken at.

    ``network`` is the model whose ``get_layer(name)`` finds it: the model itself, or the
    strand network a conjoined (or post-hoc conjoined) model applies to x and to RC(x)
    (``shared``). A shared site's map is the mean of the forward strand's map and the
    reverse-complemented map of RC(x), the two branches the conjoined model averages."""

    name: str
    network: Any
    shared: bool = False


def _is_conv(layer: Any) -> bool:
    import keras

    from benchmark_rc.layers import RevCompConv1D
    from benchmark_rc.layers.irrep import _EquivariantConv1D

    return isinstance(layer, keras.layers.Conv1D | RevCompConv1D | _EquivariantConv1D)


def _position_map(layer: Any) -> bool:
    """The layer's output is one (N, L', C) map (what GradCAM reads)."""
    try:
        out = layer.output
    except (AttributeError, ValueError):  # never called, or called more than once
        return False
    return hasattr(out, "shape") and len(out.shape) == 3


def conv_sites(model: Any) -> list[ConvSite]:
    """Every convolution layer of ``model`` with an (N, L', C) output, in layer order: Conv1D,
    RC-shared convolutions (RCPS: each filter and its RC are channel pairs of one map) and irrep
    convolutions at the top level; for a conjoined model (a nested network applied to both
    strands, RC-mapped by :class:`~benchmark_rc.layers.RCTransform`), those of the shared
    network, marked ``shared``."""
    import keras

    from benchmark_rc.layers import RCTransform

    conjoined = any(isinstance(layer, RCTransform) for layer in model.layers)
    sites = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            if conjoined:
                sites += [ConvSite(s.name, layer, True) for s in conv_sites(layer)
                          if not s.shared]
        elif _is_conv(layer) and _position_map(layer):
            sites.append(ConvSite(layer.name, model, False))
    return sites


@dataclass(frozen=True)
class AttributionJob:
    """One attribution map of the table: a registry method with fixed options (GradCAM: a
    layer and a variant)."""

    method: Any  # benchmark_rc.attribution.methods.AttributionMethod
    options: Mapping[str, Any] = field(default_factory=dict)
    site: ConvSite | None = None

    @property
    def label(self) -> str:
        """The ``method`` column: the method's name, GradCAM with its variant and layer
        (``gradcam@conv1``, ``gradcam-position@conv1``)."""
        variant = self.options.get("variant")
        name = self.method.name + ("" if variant in (None, GRADCAM_VARIANTS[0])
                                   else f"-{variant}")
        return f"{name}@{self.site.name}" if self.site is not None else name

    def __call__(self, model: Any, x: np.ndarray, references: np.ndarray | None, *,
                 output: int, batch_size: int | None, **shared: Any) -> np.ndarray:
        """The (N, L, 4) actual-score map of one-hot ``x``."""
        from benchmark_rc.sequence import reverse_complement

        options = {**self.method.accepted(shared), **self.options}
        refs = references if self.method.needs_references else None
        if self.site is None:
            return self.method.attribute(model, x, x, output=output, references=refs,
                                         batch_size=batch_size, **options)[0]
        options["layer"] = self.site.name
        network = self.site.network
        forward = self.method.attribute(network, x, x, output=output, references=refs,
                                        batch_size=batch_size, **options)[0]
        if not self.site.shared:
            return forward
        rc_x = reverse_complement(x)
        back = self.method.attribute(network, rc_x, rc_x, output=output,
                                     references=None if refs is None
                                     else reverse_complement(refs),
                                     batch_size=batch_size, **options)[0]
        return 0.5 * (forward + reverse_complement(back))


def attribution_jobs(model: Any, methods: Sequence[Any]) -> list[AttributionJob]:
    """One job per method; a method that takes a ``layer`` (GradCAM): one per
    :func:`conv_sites` entry and, if it takes a ``variant``, per :data:`GRADCAM_VARIANTS`."""
    from benchmark_rc.attribution.methods import get_method

    jobs = []
    for method in (get_method(m) for m in methods):
        if "layer" not in method.options:
            jobs.append(AttributionJob(method))
            continue
        sites = conv_sites(model)
        if not sites:
            raise UserError(f"model {model.name!r} has no convolution layer for "
                            f"{method.name!r}")
        variants = GRADCAM_VARIANTS if "variant" in method.options else (None,)
        for variant in variants:
            opts = {} if variant is None else {"variant": variant}
            jobs += [AttributionJob(method, opts, site) for site in sites]
    return jobs


def _position_references(x: np.ndarray, n_refs: int, seed: int) -> np.ndarray:
    from benchmark_rc.interpret.koo import position_shuffles

    return position_shuffles(x, n_refs, seed)


def _dinucleotide_references(x: np.ndarray, n_refs: int, seed: int) -> np.ndarray:
    from benchmark_rc.attribution.references import dinuc_shuffle_references

    return dinuc_shuffle_references(x, n_refs, seed)


# the references of methods that take them (--references): fn(x, n_refs, seed) -> (N, R, L, 4);
# Koo's position permutations (mononucleotide shuffles) or Prakash's dinucleotide shuffles
REFERENCES: dict[str, Callable[[np.ndarray, int, int], np.ndarray]] = {
    "position": _position_references,
    "dinucleotide": _dinucleotide_references,
}


def score_model(model: Any, data: EvaluationSet, methods: Sequence[Any], *,
                definitions: Sequence[str | Definition] = tuple(DEFINITIONS),
                output: int = 0, logits: bool = True, references: str = "position",
                n_refs: int = 10, seed: int = 0, steps: int = 20, rc: bool = True,
                batch_size: int | None = None) -> list[dict[str, Any]]:
    """One row per attribution job (:func:`attribution_jobs`) and definition with a ground
    truth in ``data``: method (the job's label), base_method, layer, definition, the metrics of
    :func:`sequence_metrics` and, with ``rc``, rc_consistency and rc_error of the map."""
    from benchmark_rc.attribution.scoring import rc_consistency, rc_relative_error
    from benchmark_rc.sequence import reverse_complement

    if references not in REFERENCES:
        raise UserError(f"references must be one of {list(REFERENCES)}, got {references!r}")
    chosen = [get_definition(d) for d in definitions if get_definition(d).name in data.truth]
    jobs = attribution_jobs(model, methods)
    refs = None
    if any(j.method.needs_references for j in jobs):
        refs = REFERENCES[references](data.x, n_refs, seed)
    shared = {"logits": logits, "steps": steps}
    rows = []
    for job in jobs:
        attr = np.asarray(job(model, data.x, refs, output=output, batch_size=batch_size,
                              **shared), np.float64)
        base: dict[str, Any] = {"method": job.label, "base_method": job.method.name,
                                "layer": job.site.name if job.site else ""}
        if rc:
            attr_rc = np.asarray(job(model, reverse_complement(data.x),
                                     None if refs is None else reverse_complement(refs),
                                     output=output, batch_size=batch_size, **shared),
                                 np.float64)
            base["rc_consistency"] = rc_consistency(attr, attr_rc)
            base["rc_error"] = rc_relative_error(attr, attr_rc)
        for d in chosen:
            rows.append({**base, "definition": d.name,
                         **d.score(attr, data.x, data.truth[d.name], job.method.mutagenesis)})
    return rows


# -------------------------------------------------------------------------------- aggregation
def paired_test(values: Any, baseline: Any) -> dict[str, Any]:
    """Seed-paired comparison of two equally long sequences of per-seed values (NaN pairs
    dropped): n pairs, mean_diff (values - baseline), the two-sided paired t-test p (t_p) and
    Wilcoxon signed-rank p (wilcoxon_p; NaN when every difference is 0), and a note when n is
    below :data:`MIN_PAIRS` or too small for the Wilcoxon test to reach p < 0.05 (its smallest
    two-sided p is 2 / 2^n: 0.0625 at n = 5)."""
    from scipy.stats import ttest_rel, wilcoxon

    a, b = np.asarray(values, np.float64), np.asarray(baseline, np.float64)
    if a.shape != b.shape:
        raise UserError(f"paired values {a.shape} and baseline {b.shape} differ in length")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    diff = a - b
    out = {"n": n, "mean_diff": float(diff.mean()) if n else float("nan"),
           "t_p": float("nan"), "wilcoxon_p": float("nan"), "note": ""}
    if n >= 2 and np.ptp(diff) > 0:
        out["t_p"] = float(ttest_rel(a, b).pvalue)
    elif n >= 2 and np.any(diff != 0):  # the same non-zero difference for every seed
        out["t_p"] = 0.0
    if n >= 1 and np.any(diff != 0):
        out["wilcoxon_p"] = float(wilcoxon(diff).pvalue)
    notes = []
    if n < MIN_PAIRS:
        notes.append(f"underpowered: {n} seed pair(s) < {MIN_PAIRS}")
    if n and 2.0 / 2 ** n >= 0.05:
        notes.append(f"Wilcoxon cannot reach p < 0.05 with {n} pairs")
    out["note"] = "; ".join(notes)
    return out


def summarise(frame: Any, keys: Sequence[str] = KEYS) -> Any:
    """Mean ± SE across seeds of every metric per keys x definition x method (columns
    ``<metric>_mean``, ``_se``, ``_sd``, ``_n``), from per-run rows."""
    import pandas as pd

    rows = []
    group = [*keys, "definition", "method"]
    for key, g in frame.groupby(group, sort=False):
        row = dict(zip(group, key, strict=True))
        for metric in METRICS:
            if metric in g:
                row.update({f"{metric}_{k}": v for k, v in mean_se(g[metric]).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def paired_tests(frame: Any, keys: Sequence[str] = KEYS, baseline: str = BASELINE) -> Any:
    """Every strategy against ``baseline``, paired by seed, per metric, definition and method
    (:func:`paired_test`); empty when the baseline was not run."""
    import pandas as pd

    context = [k for k in keys if k != "strategy"]
    rows = []
    for key, g in frame.groupby([*context, "definition", "method"], sort=False):
        base = g[g["strategy"] == baseline]
        if base.empty:
            continue
        for strategy in dict.fromkeys(g["strategy"]):
            if strategy == baseline:
                continue
            other = g[g["strategy"] == strategy]
            seeds = sorted(set(base["seed"]) & set(other["seed"]), key=str)
            for metric in METRICS:
                if metric not in g:
                    continue
                a = other.set_index("seed")[metric]
                b = base.set_index("seed")[metric]
                test = paired_test([a[s] for s in seeds], [b[s] for s in seeds])
                rows.append({**dict(zip([*context, "definition", "method"], key, strict=True)),
                             "metric": metric, "strategy": strategy, "baseline": baseline,
                             **test})
    return pd.DataFrame(rows)


def method_ranking(summary: Any, keys: Sequence[str] = KEYS) -> Any:
    """Prakash et al.'s ranking: per keys x definition and metric (auroc, auprc), the methods
    ordered by their mean across seeds, best first (rank 1)."""
    import pandas as pd

    rows = []
    for key, g in summary.groupby([*keys, "definition"], sort=False):
        for metric in ("auroc", "auprc"):
            ordered = g.sort_values(f"{metric}_mean", ascending=False, kind="stable")
            for rank, (_, r) in enumerate(ordered.iterrows(), start=1):
                rows.append({**dict(zip([*keys, "definition"], key, strict=True)),
                             "metric": metric, "rank": rank, "method": r["method"],
                             "mean": r[f"{metric}_mean"], "se": r[f"{metric}_se"],
                             "n": r[f"{metric}_n"]})
    return pd.DataFrame(rows)


def format_cell(mean: float, se: float, n: int) -> str:
    """``mean ± se (n=N)`` (``mean (n=1)``; blank without values)."""
    if not n or not np.isfinite(mean):
        return ""
    return f"{mean:.3f} ± {se:.3f} (n={n})" if np.isfinite(se) else f"{mean:.3f} (n={n})"


def _p(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.3g}"


def aggregate(attr: Any, keys: Sequence[str] = KEYS, title: str = "Attribution scores",
              preamble: Sequence[str] = ()) -> dict[str, str]:
    """The tables from per-run rows (one per run x method x definition, with ``keys``, seed and
    the metrics): file name -> text of ``summary.csv`` (mean ± SE across seeds),
    ``paired_tests.csv`` (each strategy vs standard), ``ranking.csv`` (methods by mean AUROC /
    AUPRC) and ``attribution.md`` (all three as markdown)."""
    if not len(attr):
        return {"attribution.md": f"# {title}\n\nNo scored run.\n"}
    summary = summarise(attr, keys)
    tests = paired_tests(attr, keys)
    ranking = method_ranking(summary, keys)
    lines = [f"# {title}", "", *preamble,
             "Each cell: mean ± SE across seeds (SE = sample SD / sqrt(n), n = seeds); the "
             "per-run values are in attribution.csv, the aggregates in summary.csv.", ""]
    methods = list(dict.fromkeys(attr["method"]))
    head = "| " + " | ".join(keys) + " | " + " | ".join(methods) + " |"
    rule = "|" + "---|" * (len(keys) + len(methods))
    for definition in dict.fromkeys(summary["definition"]):
        sub = summary[summary["definition"] == definition]
        d = DEFINITIONS.get(definition)
        for metric in ("auroc", "auprc"):
            lines += [f"## Attribution {metric.upper()} ({definition.capitalize()})", "",
                      f"{d.summary if d else definition}.", "", head, rule]
            for key, g in sub.groupby(list(keys), sort=False):
                by = g.set_index("method")
                cells = [format_cell(by.at[m, f"{metric}_mean"], by.at[m, f"{metric}_se"],
                               by.at[m, f"{metric}_n"]) if m in by.index else ""
                         for m in methods]
                lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(cells) + " |")
            lines.append("")
    if "rc_consistency_mean" in summary:
        first = summary[summary["definition"] == summary["definition"].iloc[0]]
        lines += ["## RC-consistency of the attribution maps", "",
                  "Mean per-sequence Pearson correlation of A(x) with RC(A(RC x)) over the "
                  "(L, 4) maps (1 = the map follows the sequence onto the other strand).", "",
                  head, rule]
        for key, g in first.groupby(list(keys), sort=False):
            by = g.set_index("method")
            cells = [format_cell(by.at[m, "rc_consistency_mean"], by.at[m, "rc_consistency_se"],
                           by.at[m, "rc_consistency_n"]) if m in by.index else ""
                     for m in methods]
            lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(cells) + " |")
        lines.append("")
    if len(ranking):
        lines += ["## Method ranking (Prakash et al.)", "",
                  "Methods by mean across seeds, best first.", "",
                  "| " + " | ".join(keys) + " | definition | metric | ranking |",
                  "|" + "---|" * (len(keys) + 3)]
        for key, g in ranking.groupby([*keys, "definition", "metric"], sort=False):
            order = " > ".join(f"{r.method} ({r.mean:.3f})" for r in g.itertuples())
            lines.append("| " + " | ".join(map(str, key)) + f" | {order} |")
        lines.append("")
    if len(tests):
        lines += [f"## Paired tests against {BASELINE} (per seed)", "",
                  "Δ = mean over seeds of (strategy − standard); p: two-sided paired t-test / "
                  "Wilcoxon signed-rank.", "",
                  "| " + " | ".join(k for k in keys if k != "strategy")
                  + " | definition | method | metric | strategy | n | Δ | t p | Wilcoxon p | "
                  "note |",
                  "|" + "---|" * (len(keys) + 9)]
        for r in tests.itertuples(index=False):
            row = r._asdict()
            ctx = [str(row[k]) for k in keys if k != "strategy"]
            lines.append("| " + " | ".join(ctx) + f" | {row['definition']} | {row['method']} | "
                         f"{row['metric']} | {row['strategy']} | {row['n']} | "
                         f"{row['mean_diff']:+.4f} | {_p(row['t_p'])} | "
                         f"{_p(row['wilcoxon_p'])} | {row['note']} |")
        lines.append("")
    return {"summary.csv": summary.to_csv(index=False),
            "paired_tests.csv": tests.to_csv(index=False),
            "ranking.csv": ranking.to_csv(index=False),
            "attribution.md": "\n".join(lines)}

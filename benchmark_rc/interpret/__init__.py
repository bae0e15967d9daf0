"""Interpretability of trained models against simulated ground truth (spec/interpretation.md §3):
first-layer filters as motifs (:mod:`~benchmark_rc.interpret.filters`: activation-aligned PWMs,
TomTom matches, motif localisation); attribution AUROC / AUPRC under Koo & Ploenzke's and
Prakash et al.'s definitions, the RC-consistency of attribution maps and their aggregation over
seeds (:mod:`~benchmark_rc.interpret.scoring`), run over a sweep by
:mod:`~benchmark_rc.interpret.koo`. Used by ``benchmark-rc filters`` and ``benchmark-rc
interpret`` (docs/interpret.md)."""

"""Interpretability of trained models against simulated ground truth (spec/interpretation.md §3):
first-layer filters as motifs (:mod:`~benchmark_rc.interpret.filters`: activation-aligned PWMs,
TomTom matches, motif localisation) and Koo & Ploenzke's attribution AUROC / AUPR with
information-content ground truth over a sweep (:mod:`~benchmark_rc.interpret.koo`).
Used by ``benchmark-rc filters`` and ``benchmark-rc interpret``."""

"""`benchmark-rc interpret --sweep DIR`: interpretability scores of every run of a trained sweep
(docs/interpret.md): attribution AUROC / AUPRC of every attribution method (saliency, grad x
input, integrated gradients, DeepSHAP, ISM, GradCAM at each convolution layer) against the
simulated ground truth under Koo's and Prakash's definitions, the RC-consistency of every
attribution map, first-layer filter statistics, and the tables across seeds (mean ± SE, paired
tests against standard, method ranking); resumable."""

from __future__ import annotations

import argparse


def _methods(text: str) -> list[str]:
    from benchmark_rc.attribution.methods import method_names

    methods = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in methods if m not in method_names()]
    if bad or not methods:
        raise argparse.ArgumentTypeError(f"unknown method(s) {bad}; choose from "
                                         f"{', '.join(method_names())}")
    return methods


def _definitions(text: str) -> list[str]:
    from benchmark_rc.interpret.scoring import DEFINITIONS

    names = [d.strip() for d in text.split(",") if d.strip()]
    bad = [d for d in names if d not in DEFINITIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown definition(s) {bad}; choose from "
                                         f"{', '.join(DEFINITIONS)}")
    return names


def configure(parser: argparse.ArgumentParser) -> None:
    from benchmark_rc.interpret.scoring import REFERENCES

    parser.add_argument("--sweep", required=True, help="sweep directory (results.csv, runs/)")
    parser.add_argument("--out", help="output directory (default DIR/interpret)")
    parser.add_argument("--methods", type=_methods,
                        help="comma-separated attribution methods (default: every registered "
                             "method but those computing another's values, e.g. ism_fast; "
                             "gradcam is taken at every convolution layer)")
    parser.add_argument("--definitions", type=_definitions, default=["koo", "prakash"],
                        help="comma-separated scoring definitions: koo, prakash (default both)")
    parser.add_argument("--n-seqs", type=int, default=500,
                        help="first N positive test sequences attributed (default 500, Koo)")
    parser.add_argument("--output", type=int, default=0, help="explained output (default 0)")
    parser.add_argument("--probability", action="store_true",
                        help="explain the sigmoid probability (Koo) instead of the logit")
    parser.add_argument("--references", choices=tuple(REFERENCES), default="position",
                        help="references of deepshap / integrated gradients: position "
                             "permutations (Koo, default) or dinucleotide shuffles (Prakash)")
    parser.add_argument("--n-refs", type=int, default=10,
                        help="references per sequence (default 10, Koo)")
    parser.add_argument("--steps", type=int, default=20, help="integrated-gradients steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffles")
    parser.add_argument("--batch-size", type=int, help="rows per forward pass")
    parser.add_argument("--no-rc", action="store_true",
                        help="skip the RC-consistency of the maps (halves the attribution time)")
    parser.add_argument("--filter-seqs", type=int,
                        help="test sequences for the filter analysis (default all)")
    parser.add_argument("--no-filters", action="store_true", help="skip the filter analysis")
    parser.add_argument("--distal", action="store_true",
                        help="long-range sweeps (enformer): score the promoter-track attribution "
                             "of the distal enhancers by reach instead (docs/interpret.md)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from benchmark_rc.attribution.methods import method_names
    from benchmark_rc.errors import UserError
    from benchmark_rc.interpret.koo import interpret_sweep

    for name in ("n_seqs", "n_refs", "steps", "batch_size", "filter_seqs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    out = Path(args.out) if args.out else Path(args.sweep) / "interpret"
    if args.distal:
        from benchmark_rc.interpret.long_range import DISTAL_METHODS, distal_sweep

        path = distal_sweep(args.sweep, out, methods=args.methods or DISTAL_METHODS,
                            n_seqs=args.n_seqs, n_refs=args.n_refs, seed=args.seed,
                            steps=args.steps, batch_size=args.batch_size)
        print(path.read_text())
        return 0
    path = interpret_sweep(args.sweep, out,
                           methods=args.methods or list(method_names(distinct=True)),
                           definitions=args.definitions, n_seqs=args.n_seqs,
                           filters=not args.no_filters, filter_seqs=args.filter_seqs,
                           output=args.output, logits=not args.probability,
                           references=args.references, n_refs=args.n_refs, seed=args.seed,
                           steps=args.steps, rc=not args.no_rc, batch_size=args.batch_size)
    print(path.read_text())
    print(f"wrote {path} and, in {path.parent}: attribution.csv, filters.csv, summary.csv, "
          "paired_tests.csv, ranking.csv, runs/")
    return 0

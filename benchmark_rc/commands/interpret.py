"""`benchmark-rc interpret --sweep DIR`: Koo & Ploenzke's interpretability scores of every run
of a trained sweep: attribution AUROC / AUPR against information-content ground truth
(saliency, grad x input, integrated gradients, DeepSHAP, ISM) and first-layer filter statistics
(match fraction, coverage, localisation AUROC); resumable (docs/filters.md)."""

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


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sweep", required=True, help="sweep directory (results.csv, runs/)")
    parser.add_argument("--out", help="output directory (default DIR/interpret)")
    parser.add_argument("--methods", type=_methods,
                        default=["saliency", "input_x_gradient", "integrated_gradients",
                                 "deepshap", "ism"],
                        help="comma-separated attribution methods (default: Koo's five)")
    parser.add_argument("--n-seqs", type=int, default=500,
                        help="first N positive test sequences attributed (default 500, Koo)")
    parser.add_argument("--output", type=int, default=0, help="explained output (default 0)")
    parser.add_argument("--probability", action="store_true",
                        help="explain the sigmoid probability (Koo) instead of the logit")
    parser.add_argument("--n-refs", type=int, default=10,
                        help="position-shuffled references per sequence (default 10, Koo)")
    parser.add_argument("--steps", type=int, default=20, help="integrated-gradients steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffles")
    parser.add_argument("--batch-size", type=int, help="rows per forward pass")
    parser.add_argument("--filter-seqs", type=int,
                        help="test sequences for the filter analysis (default all)")
    parser.add_argument("--no-filters", action="store_true", help="skip the filter analysis")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from benchmark_rc.errors import UserError
    from benchmark_rc.interpret.koo import interpret_sweep

    for name in ("n_seqs", "n_refs", "steps", "batch_size", "filter_seqs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    out = Path(args.out) if args.out else Path(args.sweep) / "interpret"
    path = interpret_sweep(args.sweep, out, methods=args.methods, n_seqs=args.n_seqs,
                           filters=not args.no_filters, filter_seqs=args.filter_seqs,
                           output=args.output, logits=not args.probability,
                           n_refs=args.n_refs, seed=args.seed, steps=args.steps,
                           batch_size=args.batch_size)
    print(path.read_text())
    print(f"wrote {path}, {path.parent / 'attribution.csv'}, {path.parent / 'filters.csv'}")
    return 0

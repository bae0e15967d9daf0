"""`benchmark-rc filters`: a model's first-layer filters as motifs (activation-aligned PPMs,
TomTom against JASPAR 2016 + the dataset's ground truth, match fraction and coverage, motif
localisation AUROC vs a PWM scan, logos and a markdown report; docs/filters.md)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="model file (.keras / .h5) or a run directory")
    parser.add_argument("--data", required=True, help="simulated HDF5 dataset (motif table + "
                                                      "motif_pwms)")
    parser.add_argument("--out", help="output directory (default: RUN/filters, or "
                                      "<model>.filters next to a model file)")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"))
    parser.add_argument("--max-seqs", type=int, help="use the first N sequences (default all)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="align windows where the activation exceeds this fraction of the "
                             "filter's maximum (default 0.5, Koo)")
    parser.add_argument("--motifs", help="ground-truth motifs as a MEME file (default: the "
                                         "dataset's own motifs)")
    parser.add_argument("--database", default="jaspar2016",
                        help="other TomTom targets: jaspar2016 (default: JASPAR 2016 CORE "
                             "vertebrates), none, or a MEME file")
    parser.add_argument("--no-localisation", action="store_true",
                        help="skip the motif localisation AUROC")
    parser.add_argument("--no-logos", action="store_true", help="do not draw logos")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from benchmark_rc.errors import UserError
    from benchmark_rc.interpret import filters as flt
    from benchmark_rc.registry import load_model

    if args.max_seqs is not None and args.max_seqs < 2:
        raise UserError(f"--max-seqs must be >= 2, got {args.max_seqs}")
    if not 0 < args.threshold < 1:
        raise UserError(f"--threshold must lie in (0, 1), got {args.threshold}")
    if not Path(args.data).is_file():
        raise UserError(f"{args.data}: no such dataset file")
    truth = flt.read_meme(args.motifs) if args.motifs else None
    database = ({} if args.database == "none" else None if args.database == "jaspar2016"
                else flt.read_meme(args.database))
    model = load_model(args.model, compile=False)
    report = flt.analyse_filters(model, args.data, split=args.split, max_seqs=args.max_seqs,
                                 threshold=args.threshold, truth=truth, database=database,
                                 localisation=not args.no_localisation)
    model_path = Path(args.model)
    out = Path(args.out) if args.out else (model_path / "filters" if model_path.is_dir()
                                           else model_path.with_suffix(".filters"))
    path = flt.write_report(report, out, logos=not args.no_logos,
                            title=f"First-layer filters of {args.model}")
    print(path.read_text())
    print(f"wrote {path}")
    return 0

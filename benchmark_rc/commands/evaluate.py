"""`benchmark-rc evaluate`: test metrics and RC divergence of a saved model."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="model file (.keras / .h5) or a run directory with model.keras")
    parser.add_argument("--data", required=True, help="HDF5 dataset")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"))
    parser.add_argument("--batch-size", type=int, help="evaluation batch size")
    parser.add_argument("--max-rows", type=int, help="evaluate only the first N rows")
    parser.add_argument("--out", help="also write the metrics as JSON to this file")


def run(args: argparse.Namespace) -> int:
    import json

    from benchmark_rc.fileio import atomic_write_text
    from benchmark_rc.registry import load_model
    from benchmark_rc.training import evaluate_model

    model = load_model(args.model, compile=False)
    scores = evaluate_model(model, args.data, args.split, batch_size=args.batch_size,
                            max_rows=args.max_rows)
    text = json.dumps(scores, indent=2)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    print(text)
    return 0

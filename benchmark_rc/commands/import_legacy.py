"""`benchmark-rc import-legacy`: convert a Keras 2 / keras-genomics .h5 model (the original
benchmark's stack) into a Keras 3 model of registered layers (docs/legacy.md)."""

from __future__ import annotations

import argparse

SUFFIXES = (".keras", ".h5")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="IN.h5",
                        help="Keras 2 model file (model.save of Keras 2.x with TensorFlow, e.g. "
                             "written by the original benchmark's code)")
    parser.add_argument("--out", required=True, metavar="OUT.keras",
                        help="converted model, .keras (recommended) or .h5; written through a "
                             "temporary file, so a failed run leaves no partial file")


def run(args: argparse.Namespace) -> int:
    from collections import Counter
    from pathlib import Path

    from benchmark_rc.errors import UserError
    from benchmark_rc.legacy import load_legacy_model
    from benchmark_rc.training import save_model_atomic

    out = Path(args.out)
    if out.suffix not in SUFFIXES:
        raise UserError(f"--out {out}: expected a file ending in {' or '.join(SUFFIXES)}")
    model = load_legacy_model(args.model)
    save_model_atomic(model, out)
    kinds = Counter(type(layer).__name__ for layer in model.layers)
    summary = ", ".join(f"{n} {name}" for name, n in sorted(kinds.items()))
    print(f"imported {args.model} -> {out}: {len(model.layers)} layers ({summary})")
    return 0

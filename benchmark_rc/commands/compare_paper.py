"""`benchmark-rc compare-paper DIR`: our sweep results next to the paper's simulated figures."""

from __future__ import annotations

import argparse

# Needs neither Keras nor TensorFlow: the command line skips registering the layers.
USES_KERAS = False


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="RESULTS_DIR", help="sweep directory holding results.csv")


def run(args: argparse.Namespace) -> int:
    from benchmark_rc.paper import compare_paper

    result = compare_paper(args.dir)
    print(result["text"], end="")
    print(f"written: {result['markdown']}")
    return 0

"""`benchmark-rc report DIR`: markdown report with figures of a sweep directory."""

from __future__ import annotations

import argparse

# Needs neither Keras nor TensorFlow: the command line skips registering the layers.
USES_KERAS = False


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="sweep directory holding results.csv")


def run(args: argparse.Namespace) -> int:
    from benchmark_rc.report import build_report

    manifest = build_report(args.dir)
    print(f"report: {manifest['markdown']} ({len(manifest['figures'])} figures)")
    return 0

"""`benchmark-rc report DIR`: markdown report with figures of a sweep directory."""

from __future__ import annotations

import argparse

# Needs neither Keras nor TensorFlow: the command line skips registering the layers.
USES_KERAS = False


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="sweep directory holding results.csv")
    parser.add_argument("--compare-with", metavar="OTHER", action="append", default=[],
                        help="another sweep directory: its runs on this sweep's datasets and "
                             "seeds are reported beside this sweep's (repeatable)")


def run(args: argparse.Namespace) -> int:
    from benchmark_rc.report import build_report

    manifest = build_report(args.dir, compare_with=args.compare_with)
    print(f"report: {manifest['markdown']} ({len(manifest['figures'])} figures)")
    return 0

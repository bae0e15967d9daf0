"""Console-script entry point of ``benchmark-rc``.

It lives outside the ``benchmark_rc`` package on purpose: it runs before the package's
``__init__`` does. ``import benchmark_rc`` registers every custom Keras layer (a public contract),
which imports Keras and TensorFlow (seconds); ``--help``, ``--version`` and ``prepare`` need
neither. So the launcher asks the package to defer that registration while the command line
starts, sets TensorFlow's logging environment before TensorFlow can load
(:mod:`benchmark_rc.startup`), and :func:`benchmark_rc.cli.main` registers the layers before any
command that builds or loads models.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# Read by benchmark_rc/__init__.py: True only while the command line imports the package.
defer_layer_registration = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``benchmark-rc``; returns the exit status."""
    global defer_layer_registration
    defer_layer_registration = True
    try:
        from benchmark_rc import cli, startup
    finally:
        defer_layer_registration = False
    startup.configure_tensorflow_logging()
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())

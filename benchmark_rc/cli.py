"""`benchmark-rc` command line.

Each subcommand lives in its own module exposing ``configure(parser)`` and ``run(args) -> int``;
those modules import nothing heavy at top level so ``--help`` stays fast. A module that needs no
Keras sets ``USES_KERAS = False``; before any other command runs, the custom layers are
registered (the launcher, ``benchmark_rc_launcher``, defers that so start-up stays light;
:mod:`benchmark_rc.startup` keeps TensorFlow's native start-up lines off stderr). A
:class:`UserError` is printed as ``error: ...`` without a traceback and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from benchmark_rc._version import __version__
from benchmark_rc.errors import UserError

# name -> (module, one-line help). Order is the order shown by --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("benchmark_rc.commands.simulate", "generate a simulated dataset with ground truth"),
    "prepare": ("data_prep.cli", "build a dataset from a genome, peaks and bigWigs"),
    "train": ("benchmark_rc.commands.train", "train one architecture x strategy on a dataset"),
    "evaluate": ("benchmark_rc.commands.evaluate", "metrics and RC-consistency of a saved model"),
    "conjoin": ("benchmark_rc.commands.conjoin", "wrap a trained model into a post-hoc conjoined one"),
    "import-legacy": ("benchmark_rc.commands.import_legacy",
                      "convert a Keras 2 / keras-genomics .h5 model to a Keras 3 one"),
    "sweep": ("benchmark_rc.commands.sweep", "run a grid of datasets x strategies x seeds"),
    "report": ("benchmark_rc.commands.report", "markdown report and figures of a sweep"),
    "compare-paper": ("benchmark_rc.commands.compare_paper",
                      "a sweep's simulated results next to the paper's (mean, SD, orderings)"),
    "attribute": ("benchmark_rc.commands.attribute", "attribution scores (DeepSHAP, ISM, gradients)"),
    "motifs": ("benchmark_rc.commands.motifs", "TF-MoDISco patterns matched with TomTom"),
    "filters": ("benchmark_rc.commands.filters",
                "first-layer filters as motifs: TomTom matches, localisation, logos"),
    "interpret": ("benchmark_rc.commands.interpret",
                  "attribution AUROC/AUPRC (Koo, Prakash), RC-consistency and filter "
                  "statistics of every run of a sweep"),
    "doctor": ("benchmark_rc.commands.doctor", "versions, devices and a layer serialisation self-check"),
}


def _available_commands() -> dict[str, tuple[object, str]]:
    found = {}
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            # Only a missing command module hides the command; any other import error is a bug.
            if err.name != module_name:
                raise
            continue
        found[name] = (module, help_text)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmark-rc",
        description="Reverse-complement equivariant deep learning on DNA: simulate or prepare "
                    "data, train and evaluate every RC strategy, sweep, report and attribute.")
    parser.add_argument("--version", action="version", version=f"benchmark-rc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in _available_commands().items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(command_parser)
        command_parser.set_defaults(_run=module.run, _module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args._module, "USES_KERAS", True):
            from benchmark_rc.startup import register_layers_quietly

            register_layers_quietly()
        return int(args._run(args) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

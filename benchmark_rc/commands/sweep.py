"""`benchmark-rc sweep`: grid of datasets x strategies x seeds -> DIR/results.csv + report."""

from __future__ import annotations

import argparse

from benchmark_rc.commands.train import COMPAT_NAMES


def add_backend_arguments(parser: argparse.ArgumentParser, unit: str
                          ) -> argparse._ArgumentGroup:
    """--backend, --address, --cpus-per-run, --gpus-per-run (shared with `attribute`); returns
    their argument group."""
    group = parser.add_argument_group("backend (docs/scale.md)")
    group.add_argument("--backend", choices=("local", "ray"), default="local",
                       help=f"local (default): all in this process; ray: each {unit} a Ray "
                            "task on a local Ray or a cluster (pip install "
                            "'benchmark_rc[ray]')")
    group.add_argument("--address", help="Ray cluster address (with --backend ray; default: "
                                         "RAY_ADDRESS, else a cluster started on this machine "
                                         "with `ray start`, else a new local Ray)")
    group.add_argument("--cpus-per-run", type=float, default=1,
                       help=f"CPUs Ray reserves for each {unit}, also TensorFlow's threads "
                            "there (default 1)")
    group.add_argument("--gpus-per-run", type=float, default=None,
                       help=f"GPUs Ray reserves for each {unit} (default: 1 where the cluster "
                            "has GPUs, else 0)")
    return group


def backend_options(args: argparse.Namespace) -> dict:
    """The Ray options of the command line; an error when given without --backend ray."""
    from benchmark_rc.errors import UserError

    options = {"address": args.address, "cpus_per_run": args.cpus_per_run,
               "gpus_per_run": args.gpus_per_run}
    if args.backend != "ray":
        given = [f"--{k.replace('_', '-')}" for k, v in options.items()
                 if v is not None and not (k == "cpus_per_run" and v == 1)]
        if given:
            raise UserError(f"{', '.join(given)}: only with --backend ray")
        return {}
    from benchmark_rc.distributed import require_ray

    require_ray()
    return options


def configure(parser: argparse.ArgumentParser) -> None:
    from benchmark_rc.presets import PRESETS

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help=", ".join(PRESETS) + " (docs/sweep.md)")
    source.add_argument("--config", help="sweep config YAML (docs/sweep.md)")
    parser.add_argument("--out", required=True, help="sweep directory (created or resumed)")
    parser.add_argument("--data", action="append", default=[], metavar="NAME=FILE",
                        help="dataset file for a dataset of the sweep (repeatable)")
    parser.add_argument("--seeds", help="comma-separated seeds overriding the config's")
    parser.add_argument("--strategies", help="comma-separated strategies overriding the config's")
    parser.add_argument("--epochs", type=int, help="cap the epochs of every run")
    parser.add_argument("--compat", choices=COMPAT_NAMES,
                        help="layers of every run, replacing any compat of the config: "
                             "'default' or 'original' (the paper's Keras 2 / keras-genomics "
                             "layers; run ids get the suffix -original; docs/sweep.md), or an "
                             "ablation of 'original' (docs/models.md)")
    parser.add_argument("--shard", help="I/N: run only every N-th training job from the I-th")
    parser.add_argument("--distribute", choices=("mirrored",),
                        help="train each run on all local GPUs (tf.distribute.MirroredStrategy)")
    add_backend_arguments(parser, "run")
    parser.add_argument("--no-report", action="store_true", help="do not write the report")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from benchmark_rc.benchmark import (
        load_config,
        override_compat,
        parse_shard,
        run_sweep,
        summary_table,
    )
    from benchmark_rc.errors import UserError
    from benchmark_rc.presets import get_preset

    config = get_preset(args.preset) if args.preset else load_config(args.config)
    data_paths = {}
    for item in args.data:
        if "=" not in item:
            raise UserError(f"--data expects NAME=FILE, got {item!r}")
        name, path = item.split("=", 1)
        data_paths[name] = path
    if args.seeds:
        config["seeds"] = [int(s) for s in args.seeds.split(",")]
    if args.strategies:
        config["strategies"] = args.strategies.split(",")
    if args.epochs:
        config.setdefault("train", {})["epochs"] = args.epochs
    if args.compat:
        config = override_compat(config, args.compat)
    shard = parse_shard(args.shard)
    result = run_sweep(config, args.out, shard=shard, distribute=args.distribute,
                       progress=not args.no_progress, data_paths=data_paths,
                       backend=args.backend, backend_options=backend_options(args))
    print(f"\n{result['ok']} ok, {result['failed']} failed, {result['skipped']} already done "
          f"in {result['seconds']:.1f} s")
    print(summary_table(result["results"]))
    print(f"results: {result['results']}")
    if not args.no_report and Path(result["results"]).is_file():
        try:
            from benchmark_rc.report import build_report

            manifest = build_report(args.out)
            print(f"report: {manifest['markdown']}")
        except UserError as err:
            print(f"no report: {err}")
    return 1 if result["failed"] else 0

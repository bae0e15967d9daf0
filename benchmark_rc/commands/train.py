"""`benchmark-rc train`: train one architecture x strategy x seed with the paper's protocol."""

from __future__ import annotations

import argparse

# The registries' names, written out so that `--help` needs no Keras import (the launcher's
# promise); tests/test_cli.py checks them against ARCHITECTURES and PROTOCOLS.
ARCHITECTURE_NAMES = ("sim", "binary", "bpnet", "koo-cnn2", "koo-cnn50", "koo-cnn-deep",
                      "koo-cnn-local", "koo-cnn-dist", "enformer", "basset", "beluga")
PROTOCOL_NAMES = ("sim", "binary", "profile", "tracks", "koo-task1", "koo-task3", "prakash")
SELECT_NAMES = ("auroc", "auprc", "loss", "last")
COMPAT_NAMES = ("default", "original", "original-bn", "original-conv")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="HDF5 dataset (benchmark_rc schema)")
    parser.add_argument("--arch", required=True,
                        help="architecture: " + ", ".join(ARCHITECTURE_NAMES))
    parser.add_argument("--strategy", required=True,
                        help="strategy (standard, rcaug, conjoined, rcps, ...; posthoc ones are "
                             "made with `benchmark-rc conjoin` from an rcaug run)")
    parser.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    parser.add_argument("--out", required=True, help="run directory to create or resume")
    parser.add_argument("--protocol", choices=PROTOCOL_NAMES,
                        help="training protocol (default: from --arch)")
    parser.add_argument("--epochs", type=int, help="override the protocol's epochs")
    parser.add_argument("--batch-size", type=int, help="override the batch size")
    parser.add_argument("--steps-per-epoch", type=int, help="override steps per epoch")
    parser.add_argument("--patience", type=int,
                        help="early-stopping patience on val_loss (0: never stop early)")
    parser.add_argument("--select", choices=SELECT_NAMES,
                        help="weights kept: best val auROC, auPRC or loss, or the last epoch's")
    parser.add_argument("--jitter", type=int, help="profile jitter (bases, <= stored margin)")
    parser.add_argument("--upsample", type=float,
                        help="binary: target positive fraction of the stream (0: off)")
    parser.add_argument("--max-valid", type=int, help="use only the first N validation rows")
    parser.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE",
                        help="architecture hyper-parameter (repeatable), e.g. filters=32")
    parser.add_argument("--compat", choices=COMPAT_NAMES, default="default",
                        help="layers: 'default' (mathematically intended) or 'original' (as the "
                             "paper's TF 1.15 / Keras 2.2.4 / keras-genomics stack ran them: "
                             "affine RC batch norm without statistics, 2*conv RC convolutions, "
                             "zero-debiased batch-norm averages; docs/models.md); "
                             "'original-bn' and 'original-conv' switch on only its batch norms "
                             "or only its convolutions")
    parser.add_argument("--distribute", choices=("mirrored",),
                        help="train on all local GPUs with tf.distribute.MirroredStrategy")
    parser.add_argument("--restart", action="store_true",
                        help="discard a checkpoint or finished run in --out and start over")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_hparams(items: list[str]) -> dict:
    """KEY=VALUE strings -> dict, values parsed as YAML scalars (ints, floats, lists)."""
    import yaml

    from benchmark_rc.errors import UserError

    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--hparam expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def run(args: argparse.Namespace) -> int:
    import json

    from benchmark_rc.training import TrainConfig, train_run

    config = TrainConfig(
        data=args.data, arch=args.arch, strategy=args.strategy, seed=args.seed,
        protocol=args.protocol, batch_size=args.batch_size, epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch, patience=args.patience, select=args.select,
        upsample=args.upsample, jitter=args.jitter, max_valid=args.max_valid,
        hparams=parse_hparams(args.hparam), distribute=args.distribute, compat=args.compat)
    summary = train_run(config, args.out, progress=not args.no_progress, restart=args.restart,
                        desc=f"{args.arch}/{args.strategy}/s{args.seed}")
    print(json.dumps({k: summary[k] for k in ("best_epoch", "best_value", "selected_by",
                                              "epochs_run", "stopped_early", "train_seconds")}))
    print(f"model: {args.out}/model.keras and model.h5; config.json, history.csv")
    return 0

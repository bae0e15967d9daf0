"""`benchmark-rc conjoin`: wrap a trained single-strand model into a post-hoc conjoined one."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="trained model (.keras / .h5) or its run directory")
    parser.add_argument("--arch", help="architecture (default: from the run's config.json)")
    parser.add_argument("--mode", default="logit", choices=("logit", "prob", "max"),
                        help="average logits (CJ-posthoc, default), probabilities "
                             "(CJ-posthoc-postsigmoid) or take the max of the logits")
    parser.add_argument("--out", required=True,
                        help="output directory (model.keras + model.h5) or a .keras/.h5 file")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from benchmark_rc.errors import UserError
    from benchmark_rc.registry import conjoin, load_model
    from benchmark_rc.training import save_model_atomic, save_model_files

    source = Path(args.model)
    run_dir = source if source.is_dir() else source.parent
    arch, hparams = args.arch, {}
    config_path = run_dir / "config.json"
    if config_path.is_file():
        run_config = json.loads(config_path.read_text())
        # a trained run stores its summary at the top level; a post-hoc run under "base_config"
        summary = run_config if "config" in run_config else run_config.get("base_config", {})
        arch = arch or summary.get("config", {}).get("arch")
        hparams = dict(summary.get("model_hparams", {}))  # compile as the run was compiled
    if arch is None:
        raise UserError(f"{source}: no config.json with the architecture next to the model; "
                        "pass --arch")
    model = conjoin(load_model(source, compile=False), arch, args.mode, **hparams)
    out = Path(args.out)
    if out.suffix in (".keras", ".h5"):
        save_model_atomic(model, out)
    else:
        out.mkdir(parents=True, exist_ok=True)
        save_model_files(model, out)
    print(f"conjoined ({args.mode}) model of {source} written to {out}")
    return 0

"""`benchmark-rc attribute`: attribution scores of a saved model on a dataset split (DeepSHAP,
ISM, gradients, integrated gradients, GradCAM), TF-MoDISco inputs, ground-truth scoring, and
the method x strategy table of a trained sweep (``--sweep DIR --score``)."""

from __future__ import annotations

import argparse


def method_choices() -> tuple[str, ...]:
    """The names --methods accepts: the attribution registry's (read when asked, so a method
    registered before the command line runs is accepted)."""
    from benchmark_rc.attribution.methods import method_names

    return method_names()


def _methods(text: str) -> list[str]:
    choices = method_choices()
    methods = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in methods if m not in choices]
    if bad or not methods:
        raise argparse.ArgumentTypeError(
            f"unknown method(s) {bad}; choose from {', '.join(choices)}")
    return methods


def configure(parser: argparse.ArgumentParser) -> None:
    from benchmark_rc.attribution.rules import MAX_RULES

    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="model file (.keras / .h5) or a run directory")
    src.add_argument("--sweep", help="sweep directory (results.csv + runs/<run_id>/model.keras); "
                                     "use with --score")
    parser.add_argument("--data", help="HDF5 dataset (default with --sweep: DIR/data/<name>.h5)")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"))
    parser.add_argument("--methods", type=_methods, default=["deepshap"],
                        help=f"comma-separated, from {','.join(method_choices())} (default "
                             "deepshap)")
    parser.add_argument("--output", help="task index (default 0) or head name for bpnet "
                                         "(profile [default] or counts)")
    parser.add_argument("--probability", action="store_true",
                        help="explain the sigmoid probability instead of the logit")
    parser.add_argument("--n-shuffles", type=int, default=20,
                        help="dinucleotide-shuffled references per sequence (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffles")
    parser.add_argument("--steps", type=int, default=20, help="integrated-gradients steps")
    parser.add_argument("--maxpool-rule", default="continuous", choices=tuple(MAX_RULES),
                        help="DeepSHAP at max pooling: continuous (default; divides by any "
                             "non-zero input change), shap (shap.DeepExplainer's rule: 0 "
                             "below a change of 1e-7) or gradient (deeplift's default: "
                             "multipliers through the max-pool gradient at x; not additive)")
    parser.add_argument("--gradcam-layer", help="GradCAM layer name (default: first conv)")
    parser.add_argument("--gradcam-variant", default="textbook", choices=("textbook", "position"))
    parser.add_argument("--max-seqs", type=int, default=None,
                        help="attribute at most this many sequences (default: all; 200 with "
                             "--sweep)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows per forward pass (bounds memory; default 64 on CPU, 1024 on "
                             "GPU)")
    parser.add_argument("--score", action="store_true",
                        help="score against the dataset's motif table (AUROC/AUPRC, Koo and "
                             "Prakash conventions) and report RC-consistency")
    parser.add_argument("--no-rc", action="store_true", help="skip the RC-consistency pass")
    parser.add_argument("--out", help="output directory (default with --sweep: DIR/attribution)")
    from benchmark_rc.commands.sweep import add_backend_arguments

    backend = add_backend_arguments(parser, "chunk of sequences")
    backend.add_argument("--chunk-size", type=int, default=None,
                        help="sequences per Ray task (with --backend ray; default: the "
                             "sequences split evenly over the cluster's CPUs, or GPUs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from benchmark_rc.commands.sweep import backend_options
    from benchmark_rc.errors import UserError

    ray_options = backend_options(args)
    if args.chunk_size is not None and not ray_options:
        raise UserError("--chunk-size needs --backend ray")
    if args.chunk_size is not None and args.chunk_size < 1:
        raise UserError(f"--chunk-size must be >= 1, got {args.chunk_size}")
    if not ray_options:
        return _run(args, None)
    from benchmark_rc.distributed import ray_session

    with ray_session(ray_options.pop("address")):  # one session for every run of a --sweep
        return _run(args, ray_options)


def _run(args: argparse.Namespace, ray_options: dict | None) -> int:
    """The command; ``ray_options``: those of --backend ray (None: in this process)."""
    from pathlib import Path

    from benchmark_rc.attribution import runner
    from benchmark_rc.errors import UserError
    from benchmark_rc.registry import load_model
    from benchmark_rc.tasks import get_task

    for name in ("n_shuffles", "steps", "batch_size", "max_seqs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    options = {"n_shuffles": args.n_shuffles, "seed": args.seed, "steps": args.steps,
               "layer": args.gradcam_layer, "variant": args.gradcam_variant,
               "batch_size": args.batch_size, "logits": not args.probability,
               "rc": not args.no_rc, "maxpool_rule": args.maxpool_rule}
    attribute = None
    if ray_options is not None:
        import functools

        from benchmark_rc.distributed import attribute_on_ray

        work = Path(args.out) if args.out else Path(args.sweep or ".") / "attribution"
        attribute = functools.partial(attribute_on_ray, work_dir=work,
                                      chunk_size=args.chunk_size, **ray_options)
    if args.sweep:
        if not args.score:
            raise UserError("--sweep needs --score (it writes the method x strategy table)")
        out = Path(args.out) if args.out else Path(args.sweep) / "attribution"
        path = runner.score_sweep(args.sweep, out, methods=args.methods, data=args.data,
                                  split=args.split, max_seqs=args.max_seqs or 200,
                                  output=args.output, progress=not args.no_progress,
                                  attribute=attribute, **options)
        print(f"wrote {path} and {path.parent / 'attribution_table.md'}")
        print((path.parent / "attribution_table.md").read_text())
        return 0
    if not args.data:
        raise UserError("--data is required with --model")
    if not args.out:
        raise UserError("--out DIR is required with --model")
    from benchmark_rc.attribution import write_attribution_h5, write_modisco_npz

    out = Path(args.out)
    model = load_model(args.model, compile=False) if attribute is None else None
    from benchmark_rc.data.hdf5 import read_attrs

    output = runner.parse_output(args.output, read_attrs(args.data))
    inputs, motifs, attrs = runner.load_inputs(args.data, args.split, args.max_seqs,
                                               motifs_only=args.score, output=output)
    truth = motifs if args.score else None
    if args.score and truth is None:
        raise UserError(f"{args.data}: split {args.split!r} has no motif table to score against")
    if not args.score:
        options["rc"] = False
    if attribute is None:
        results, rows = runner.attribute_and_score(model, inputs, truth, args.methods, output,
                                                   task=get_task(attrs["task"]),
                                                   progress=not args.no_progress, **options)
    else:
        results, rows = attribute(args.model, inputs, truth, args.methods,
                                  output, task=get_task(attrs["task"]),
                                  progress=not args.no_progress, **options)
    seq = inputs["sequence"]
    for method, (attr, hyp) in results.items():
        if hyp is not None:
            write_modisco_npz(out, seq, hyp, prefix=method)
        write_attribution_h5(out / f"{method}.h5", seq, hyp if hyp is not None else attr, attr,
                             attrs={"method": method, "output": str(output),
                                    "hyp_scores_are_actual": hyp is None,
                                    **runner.reference_metadata([method], args.n_shuffles,
                                                                args.seed)})
    runner.write_params(out, {"model": args.model, "data": args.data, "split": args.split,
                              "methods": args.methods, "output": output, "n_seqs": len(seq),
                              **options, **runner.reference_metadata(args.methods,
                                                                     args.n_shuffles, args.seed)})
    if rows:
        import pandas as pd

        from benchmark_rc.fileio import atomic_write_text

        table = pd.DataFrame(rows)
        atomic_write_text(out / "scores.csv", table.to_csv(index=False))
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote attributions of {len(seq)} sequences to {out}")
    return 0

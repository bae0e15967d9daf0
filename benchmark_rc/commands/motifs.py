"""`benchmark-rc motifs`: TF-MoDISco (modisco-lite) patterns from hypothetical scores, matched
with TomTom (memelite) against the ground-truth motifs, with sequence logos (logomaker)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    from benchmark_rc.attribution.methods import method_names

    src = parser.add_argument_group("scores (one of)")
    src.add_argument("--scores", help="output directory of `benchmark-rc attribute` (reads "
                                      "<method>.ohe.npz and <method>.attr.npz)")
    src.add_argument("--method", default="deepshap", choices=method_names(hypothetical=True),
                     help="which method's files in --scores: one with hypothetical scores "
                          "(default deepshap)")
    src.add_argument("-s", "--sequences", help="one-hot .npz (N, 4, L), as modisco-lite reads")
    src.add_argument("-a", "--attributions", help="hypothetical scores .npz (N, 4, L)")
    truth = parser.add_argument_group("ground truth (one of)")
    truth.add_argument("--data", help="simulated HDF5 dataset (its motif_pwms attribute)")
    truth.add_argument("--motifs", help="MEME file of ground-truth motifs")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("-n", "--max-seqlets", type=int, default=2000,
                        help="max seqlets per metacluster (default 2000)")
    parser.add_argument("-w", "--window", type=int, help="central window to analyse "
                                                         "(default: whole sequence)")
    parser.add_argument("--min-metacluster-size", type=int, default=100,
                        help="modisco's minimum seqlets per metacluster (default 100)")
    parser.add_argument("--final-min-cluster-size", type=int, default=20,
                        help="modisco's minimum seqlets per pattern (default 20)")
    parser.add_argument("--q-threshold", type=float, default=0.05,
                        help="TomTom q-value below which a motif counts as recovered")
    parser.add_argument("--no-decoys", action="store_true",
                        help="match against the ground truth only (p-values less reliable)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from benchmark_rc.attribution import motifs as M
    from benchmark_rc.errors import UserError
    from benchmark_rc.fileio import atomic_write_text

    if args.scores:
        ohe = Path(args.scores) / f"{args.method}.ohe.npz"
        attr = Path(args.scores) / f"{args.method}.attr.npz"
    elif args.sequences and args.attributions:
        ohe, attr = args.sequences, args.attributions
    else:
        raise UserError("give --scores DIR, or both -s/--sequences and -a/--attributions")
    if bool(args.data) == bool(args.motifs):
        raise UserError("give exactly one of --data (simulated dataset) or --motifs (MEME file)")
    if args.data:
        from benchmark_rc.data.simulation import read_motif_pwms

        truth = read_motif_pwms(args.data)
    else:
        from memelite.io import read_meme

        if not Path(args.motifs).is_file():
            raise UserError(f"{args.motifs}: file not found")
        truth = {name.split()[0]: np.asarray(m).T for name, m in read_meme(args.motifs).items()}
        if not truth:
            raise UserError(f"{args.motifs}: no MOTIF entries found")
    one_hot, hyp = M.load_npz_scores(ohe, attr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    patterns = M.run_modisco(one_hot, hyp, max_seqlets=args.max_seqlets, window=args.window,
                             min_metacluster_size=args.min_metacluster_size,
                             final_min_cluster_size=args.final_min_cluster_size,
                             out_h5=out / "modisco_results.h5")
    decoys = None if args.no_decoys else M.background_motifs()
    table, recovered = M.match_patterns(patterns, truth, decoys, args.q_threshold)
    logos = out / "logos"
    for pattern in patterns:
        M.save_logo(pattern.cwm, logos / f"{pattern.name}.png",
                    f"{pattern.name} CWM ({pattern.n_seqlets} seqlets)")
    for name, pwm in truth.items():
        M.save_logo(M.ppm_to_bits(pwm), logos / f"truth_{name}.png", f"{name} (bits)")
    atomic_write_text(out / "patterns.csv", table.to_csv(index=False))
    atomic_write_text(out / "recovered.csv", recovered.to_csv(index=False))
    lines = ["# TF-MoDISco patterns vs ground truth", "",
             f"{len(one_hot)} sequences; {len(patterns)} patterns; TomTom (memelite) against "
             f"{len(truth)} ground-truth motifs" + ("" if decoys is None else
                                                    f" + {len(decoys)} ENCODE decoys") + ".", "",
             f"A motif is recovered when a pattern matches it with TomTom q < {args.q_threshold}"
             " (rank: its place among that pattern's matches, 1 = best).", "",
             "| motif | recovered | pattern | rank | p | E | q | logo |",
             "|---|---|---|---|---|---|---|---|"]
    for row in recovered.itertuples():
        rank = "" if pd.isna(row.rank) else int(row.rank)
        lines.append(f"| {row.motif} | {'yes' if row.recovered else 'no'} | {row.pattern} "
                     f"| {rank} | {row.p_value:.2e} | {row.e_value:.2e} | {row.q_value:.2e} | "
                     f"![](logos/truth_{row.motif}.png) |")
    lines += ["", "| pattern | seqlets | best match | p | E | q | best ground truth | p | q "
                  "| logo |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples():
        lines.append(f"| {row.pattern} | {row.n_seqlets} | {row.best_match} | {row.p_value:.2e} "
                     f"| {row.e_value:.2e} | {row.q_value:.2e} | {row.truth_match} "
                     f"| {row.truth_p_value:.2e} | {row.truth_q_value:.2e} "
                     f"| ![](logos/{row.pattern}.png) |")
    atomic_write_text(out / "motifs.md", "\n".join(lines) + "\n")
    print("\n".join(lines[:8 + len(recovered)]))
    print(f"wrote {out / 'motifs.md'}")
    return 0

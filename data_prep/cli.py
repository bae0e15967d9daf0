"""`benchmark-rc prepare binary|profile`: genome + peaks (+ bigWigs) -> HDF5 dataset.

Only argparse is imported at module level; the work is imported lazily in :func:`run`.
"""

from __future__ import annotations

import argparse

# Needs neither Keras nor TensorFlow: the command line skips registering the layers.
USES_KERAS = False


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``binary`` and ``profile`` sub-commands and their options."""
    sub = parser.add_subparsers(dest="prepare_task", metavar="TASK")
    sub.required = True

    binary = sub.add_parser(
        "binary", help="peaks vs background windows for binary classification (paper §3)",
        description="Positives: windows centred on peak summits (narrowPeak column 10) or "
                    "interval midpoints. Negatives: background windows overlapping no "
                    "positive, and/or GC-matched random windows. Splits by chromosome or by "
                    "position.")
    _common(binary, valid="chr1", test="chr2")
    binary.add_argument("--negatives", metavar="BED",
                        help="background regions (BED/narrowPeak, e.g. DNase peaks); windows "
                             "centred on them that overlap no peak become negatives")
    binary.add_argument("--gc-negatives", type=float, default=0.0, metavar="RATIO",
                        help="also draw RATIO random GC-matched negative windows per positive "
                             "(per split; default 0 = none)")
    binary.add_argument("--gc-bins", type=int, default=20,
                        help="number of GC-fraction bins for matching (default 20)")
    binary.add_argument("--window", type=int, default=1000, help="window length (default 1000)")
    binary.add_argument("--flank", type=int, default=0,
                        help="negatives must stay this many bp away from every peak and "
                             "positive window (default 0)")
    binary.add_argument("--seed", type=int, default=0,
                        help="seed of the random GC-matched negatives (default 0)")
    binary.set_defaults(chunk_size=4096)

    profile = sub.add_parser(
        "profile", help="BPNet-style base-resolution profile data (paper §4)",
        description="Sequence windows centred on peak summits, stranded target profiles, "
                    "strand-summed control with raw and smoothed channels, widened by a jitter "
                    "margin on each side. Splits by chromosome or by position.")
    _common(profile, valid="chr1,chr8,chr9", test="chr2,chr3,chr4")
    for flag, role in (("--plus", "target + strand"), ("--minus", "target - strand"),
                       ("--control-plus", "control + strand"),
                       ("--control-minus", "control - strand")):
        profile.add_argument(flag, required=True, metavar="BW", help=f"bigWig of the {role}")
    profile.add_argument("--sequence-length", type=int, default=1346,
                         help="model input length (default 1346)")
    profile.add_argument("--output-length", type=int, default=1000,
                         help="profile output length (default 1000)")
    profile.add_argument("--jitter-margin", type=int, default=200,
                         help="extra bases stored on each side for jitter by cropping "
                              "(default 200, the paper's ±200 bp jitter)")
    profile.add_argument("--smoothing-window", type=int, default=51,
                         help="moving-average window of the control's 2nd channel; odd "
                              "(default 51) is RC-symmetric, 50 reproduces the original "
                              "24/25 padding (see docs/prepare.md)")
    profile.set_defaults(chunk_size=1024)


def _common(parser: argparse.ArgumentParser, valid: str, test: str) -> None:
    parser.add_argument("--genome", required=True, metavar="FASTA",
                        help="genome FASTA, plain or bgzip (index built if missing)")
    parser.add_argument("--peaks", required=True, metavar="BED",
                        help="peaks: BED, narrowPeak, BED12, ..., plain or gzip")
    parser.add_argument("--peak-format", choices=("auto", "bed", "narrowPeak"), default="auto",
                        help="how to centre the peaks: narrowPeak = on the summit (column 10), "
                             "bed = on the interval midpoint; auto (default) = narrowPeak for "
                             "files of exactly 10 columns, else bed (BED12's column 10 is the "
                             "block count, not a summit)")
    parser.add_argument("--out", required=True, metavar="H5", help="output HDF5 dataset")
    parser.add_argument("--blacklist", metavar="BED",
                        help="drop windows overlapping these regions")
    parser.add_argument("--max-n", type=float, default=0.1,
                        help="drop windows with a larger fraction of N / non-ACGT bases "
                             "(default 0.1)")
    parser.add_argument("--chrom-aliases", metavar="auto|FILE",
                        help="map chromosome names of the peaks, negatives, blacklist, split "
                             "options (and bigWigs) to the FASTA's: 'auto' matches names that "
                             "differ by a 'chr' prefix or the mitochondrion's spelling (chrM, "
                             "M, MT); FILE has two columns, name used in your files and name "
                             "in the FASTA")
    splits = parser.add_argument_group(
        "splits", "whole chromosomes, and/or positions held out on the training chromosomes "
        "(for genomes with one or few chromosomes); windows across a split boundary are dropped")
    splits.add_argument("--valid-chroms",
                        help=f"comma-separated validation chromosomes (default {valid}, unless "
                             "--valid-regions or --holdout-fraction is given)")
    splits.add_argument("--test-chroms",
                        help=f"comma-separated test chromosomes (default {test}, unless "
                             "--test-regions or --holdout-fraction is given)")
    splits.add_argument("--train-chroms", default=None,
                        help="comma-separated training chromosomes (default: all others; "
                             "chromosomes in no list are dropped)")
    splits.add_argument("--valid-regions", metavar="CHROM:START-END,...",
                        help="validation positions, 0-based end-exclusive like BED, e.g. "
                             "chrIV:0-200000,chrX:0-50000")
    splits.add_argument("--test-regions", metavar="CHROM:START-END,...",
                        help="test positions, as --valid-regions")
    splits.add_argument("--holdout-fraction", metavar="VALID,TEST",
                        help="on every training chromosome, the last VALID fraction of its "
                             "length -> validation and the TEST fraction before it -> test, "
                             "e.g. 0.1,0.1")
    parser.add_argument("--chunk-size", type=int, help="windows per write chunk")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``prepare binary`` or ``prepare profile``; returns the exit status."""
    common = dict(
        genome=args.genome, peaks=args.peaks, out=args.out, blacklist=args.blacklist,
        max_n=args.max_n, valid_chroms=args.valid_chroms, test_chroms=args.test_chroms,
        train_chroms=args.train_chroms, valid_regions=args.valid_regions,
        test_regions=args.test_regions, holdout_fraction=args.holdout_fraction,
        peak_format=args.peak_format, chrom_aliases=args.chrom_aliases,
        chunk_size=args.chunk_size, progress=not args.no_progress)
    if args.prepare_task == "binary":
        from data_prep.binary import prepare_binary

        prepare_binary(negatives=args.negatives, gc_negatives=args.gc_negatives,
                       gc_bins=args.gc_bins, window=args.window, flank=args.flank,
                       seed=args.seed, **common)
    else:
        from data_prep.profile import prepare_profile

        prepare_profile(plus=args.plus, minus=args.minus, control_plus=args.control_plus,
                        control_minus=args.control_minus, sequence_length=args.sequence_length,
                        output_length=args.output_length, jitter_margin=args.jitter_margin,
                        smoothing_window=args.smoothing_window, **common)
    return 0

"""Named sweep configurations for ``benchmark-rc sweep --preset NAME`` (docs/sweep.md).

A sweep config is a plain dict (the same keys as a YAML file given with ``--config``):

``datasets``: list of ``{name, arch, path | simulate, hparams}``; ``simulate`` is
``{"kind": "paper" | "profile", ...keyword arguments of simulate_paper / simulate_profile}`` and
the file is generated once into ``OUT/data/<name>.h5``; a dataset without ``path`` nor
``simulate`` must be given on the command line (``--data NAME=FILE``), e.g. files made by
``benchmark-rc prepare``.
``strategies``: list of names or ``"all"``; ``seeds``: list of ints; ``train``: overrides of
:class:`benchmark_rc.training.TrainConfig` (epochs, batch_size, steps_per_epoch, patience,
max_valid, ...); ``evaluate``: ``{split, max_rows, batch_size}``.
"""

from __future__ import annotations

import copy
from typing import Any

from benchmark_rc.errors import UserError

PAPER_SEEDS = [1535, 1780, 2143, 3578, 4652, 6117, 6806, 7626, 9295, 9999]
# tiny bpnet for the smoke test: output length = input - 106 (first conv 20, profile conv 74,
# dilated convs 2 * (2 + 4))
_TINY_BPNET = {"filters": 4, "n_dilated": 2}
# tiny simulated profiles for it: 206-bp model inputs -> 100-bp profiles (input_length is taken
# from the file: stored length - 2 * jitter_margin), 10-bp jitter margin, motifs centred
_TINY_PROFILE = {"kind": "profile", "num_seqs": 150, "seq_len": 206, "out_len": 100,
                 "jitter_margin": 10, "sigma_pos": 50.0}

# Koo & Ploenzke (spec/interpretation.md §1, §2.1-2.2): one dataset entry per architecture x
# first-layer activation (each generates the same seeded simulation, a few seconds)
KOO_ACTIVATIONS = ("relu", "exponential", "sigmoid", "tanh", "softplus", "elu", "linear")
KOO_STRATEGIES = ["standard", "rcaug", "posthoc", "conjoined", "rcps"]


def _koo_datasets(kind: str, archs: tuple[str, ...], activations: tuple[str, ...] = KOO_ACTIVATIONS,
                  simulate: dict[str, Any] | None = None,
                  hparams: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``<kind>-<arch without koo->-<activation>`` datasets of simulation ``kind``."""
    return [{"name": f"{kind}-{arch.removeprefix('koo-')}-{act}", "arch": arch,
             "simulate": {"kind": kind, **(simulate or {})},
             "hparams": {"activation": act, **(hparams or {})}}
            for arch in archs for act in activations]


# enformer (issue 13): every strategy (list_strategies("enformer"); tests/test_enformer.py checks
# the two lists agree), the irrep ones since issue 14 gave them attention layers
ENFORMER_STRATEGIES = ["standard", "rcaug", "posthoc", "posthoc-prob", "conjoined",
                       "conjoined-max", "rcps", "rcps-avg", "rcps-weighted", "rcps-half",
                       "hybrid-early", "hybrid-later", "hybrid-all", "irrep", "irrep-kmer"]


def _long_range_datasets(simulate: dict[str, Any] | None = None,
                         hparams: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The long-range simulation (``simulate long-range``) for the full enformer and for its
    conv-only ablation (``n_transformer=0``: each bin sees only the conv tower's receptive
    field, 646 bp at the defaults); both entries generate the same seeded file."""
    sim = {"kind": "long-range", **(simulate or {})}
    return [{"name": "long-range", "arch": "enformer", "simulate": dict(sim),
             "hparams": dict(hparams or {})},
            {"name": "long-range-convonly", "arch": "enformer", "simulate": dict(sim),
             "hparams": {**(hparams or {}), "n_transformer": 0}}]


# The interpretability benchmark (issue 17 item 5; docs/interpret.md): the paper simulation
# (sim200), Koo's task 3 with CNN-dist (four conv layers for GradCAM) and Prakash et al.'s
# realistic simulation (`simulate realistic`, 400 bp, offline sources) with their Basset, then
# `benchmark-rc interpret --sweep OUT` scores every attribution method under Koo's and
# Prakash's definitions.
INTERPRET_STRATEGIES = ["standard", "rcaug", "posthoc", "conjoined", "rcps"]


# The realistic simulation of the interpret presets: at its defaults (2,000 sources per class,
# 2 motifs per positive source) Basset memorises the 2,709 training rows (val auROC 0.53 after
# 10 epochs); with 4x the sources and twice the motifs it reaches ~0.71 in 10 passes
# (results/interpret/README.md).
REALISTIC_INTERPRET = {"num_seqs": 8000, "mean_motifs": 4.0}


def _interpret_datasets(activations: tuple[str, ...], sim_train: dict[str, Any] | None = None,
                        koo_train: dict[str, Any] | None = None,
                        realistic_train: dict[str, Any] | None = None,
                        basset: dict[str, Any] | None = None,
                        realistic: dict[str, Any] | None = None,
                        beluga: bool = False) -> list[dict[str, Any]]:
    """sim200, koo-task3 x CNN-dist x ``activations`` and realistic x Basset, and with
    ``beluga`` also realistic x Beluga (``*_train``: per-dataset training overrides; ``basset``:
    Basset hyper-parameters; ``realistic``: parameters of ``simulate realistic``)."""
    sim = {"name": "sim200", "arch": "sim", "simulate": {"kind": "paper", "length": 200}}
    simulate = {"kind": "realistic", **(realistic or {})}
    prakash = [{"name": "realistic", "arch": "basset", "simulate": simulate,
                "hparams": dict(basset or {})}]
    if beluga:
        prakash.append({"name": "realistic-beluga", "arch": "beluga", "simulate": dict(simulate)})
    koo = _koo_datasets("koo-task3", ("koo-cnn-dist",), activations)
    return [dict(d, train=t) if t else d for d, t in (
        (sim, sim_train), *((d, koo_train) for d in koo),
        *((d, realistic_train) for d in prakash))]


PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {
        "description": "every strategy x {sim, bpnet} on tiny generated data, 1 seed, "
                       "2 short epochs (CI)",
        "datasets": [
            {"name": "smoke-sim", "arch": "sim",
             "simulate": {"kind": "paper", "length": 200, "num_seqs_per_motif": 40}},
            {"name": "smoke-profile", "arch": "bpnet", "simulate": _TINY_PROFILE,
             "hparams": _TINY_BPNET, "train": {"jitter": 10}},
        ],
        "strategies": "all",
        "seeds": [1],
        "train": {"epochs": 2, "batch_size": 32, "steps_per_epoch": 2, "patience": 0},
        "evaluate": {"split": "test"},
    },
    "quick": {
        "description": "sim200 (paper data) with 5 strategies, 1 seed, epochs capped (make demo)",
        "datasets": [
            {"name": "sim200", "arch": "sim",
             "simulate": {"kind": "paper", "length": 200}},
        ],
        "strategies": ["standard", "rcaug", "posthoc", "conjoined", "rcps"],
        "seeds": [1535],
        "train": {"epochs": 30},
        "evaluate": {"split": "test"},
    },
    "paper-sim": {
        "description": "sim200 + sim1000 x every strategy x the paper's 10 seeds, full protocol",
        "datasets": [
            {"name": "sim200", "arch": "sim", "simulate": {"kind": "paper", "length": 200}},
            {"name": "sim1000", "arch": "sim", "simulate": {"kind": "paper", "length": 1000}},
        ],
        "strategies": "all",
        "seeds": PAPER_SEEDS,
        "train": {},
        "evaluate": {"split": "test"},
    },
    "profile-sim": {
        "description": "simulated ChIP-nexus-like profiles x every strategy x 10 seeds (bpnet)",
        "datasets": [
            {"name": "profile-sim", "arch": "bpnet", "simulate": {"kind": "profile"}},
        ],
        "strategies": "all",
        "seeds": PAPER_SEEDS,
        "train": {},
        "evaluate": {"split": "test"},
    },
    "koo-task1": {
        "description": "Koo task 1 (12 JASPAR TFs, multi-label) x CNN-2/CNN-50/CNN-deep x 7 "
                       "first-layer activations x 5 strategies x 5 seeds, Koo protocol "
                       "(<= 100 epochs, patience 20)",
        "datasets": _koo_datasets("koo-task1", ("koo-cnn2", "koo-cnn50", "koo-cnn-deep")),
        "strategies": KOO_STRATEGIES,
        "seeds": PAPER_SEEDS[:5],
        "train": {},
        "evaluate": {"split": "test"},
    },
    "koo-task3": {
        "description": "Koo task 3 (regulatory code, binary) x CNN-local/CNN-dist x 7 "
                       "first-layer activations x 5 strategies x 5 seeds, Koo protocol",
        "datasets": _koo_datasets("koo-task3", ("koo-cnn-local", "koo-cnn-dist")),
        "strategies": KOO_STRATEGIES,
        "seeds": PAPER_SEEDS[:5],
        "train": {},
        "evaluate": {"split": "test"},
    },
    "koo-cpu": {
        "description": "reduced for a CPU (results/koo): CNN-dist (task 3, <= 12 epochs) and "
                       "CNN-deep (task 1, <= 6 epochs) x relu/exponential x standard/rcps/posthoc "
                       "x 3 seeds; Koo protocol otherwise (patience 20 is never reached)",
        "datasets": [dict(d, train={"epochs": 12}) for d in _koo_datasets(
            "koo-task3", ("koo-cnn-dist",), ("relu", "exponential"))]
        + [dict(d, train={"epochs": 6}) for d in _koo_datasets(
            "koo-task1", ("koo-cnn-deep",), ("relu", "exponential"))],
        "strategies": ["standard", "rcps", "posthoc"],
        "seeds": PAPER_SEEDS[:3],
        "train": {},
        "evaluate": {"split": "test"},
    },
    "koo-smoke": {
        "description": "every Koo architecture x every strategy on tiny Koo simulations, 1 seed, "
                       "1 short epoch, 4 first-layer filters (tests)",
        "datasets": (_koo_datasets("koo-task1", ("koo-cnn2", "koo-cnn50", "koo-cnn-deep"),
                                   ("exponential",), {"num_seqs": 60}, {"filters": 4})
                     + _koo_datasets("koo-task3", ("koo-cnn-local", "koo-cnn-dist"),
                                     ("exponential",), {"num_seqs": 60}, {"filters": 4})),
        "strategies": "all",
        "seeds": [1],
        "train": {"epochs": 1, "batch_size": 16, "steps_per_epoch": 1, "patience": 0},
        "evaluate": {"split": "test"},
    },
    "interpret": {
        "description": "interpretability benchmark (then `benchmark-rc interpret --sweep OUT`): "
                       "sim200, Koo task 3 x CNN-dist x relu/exponential and the realistic "
                       "simulation (8,000 sources per class, 4 motifs per positive source) x "
                       "Basset and Beluga x standard, rcaug, posthoc, conjoined, rcps x 5 "
                       "seeds, full protocols (GPU image)",
        "datasets": _interpret_datasets(("relu", "exponential"),
                                        realistic=REALISTIC_INTERPRET, beluga=True),
        "strategies": INTERPRET_STRATEGIES,
        "seeds": PAPER_SEEDS[:5],
        "train": {},
        "evaluate": {"split": "test"},
    },
    "interpret-cpu": {
        "description": "interpret reduced for a CPU: sim200 (sim protocol), Koo task 3 x "
                       "CNN-dist x exponential only (<= 12 epochs), realistic (8,000 sources "
                       "per class, 4 motifs per positive source) x Basset with 64 first-layer "
                       "filters (<= 10 passes over the training set) x the same 5 strategies x "
                       "3 seeds (paired tests underpowered: n = 3); interpret with --n-seqs 100",
        "datasets": _interpret_datasets(("exponential",), None, {"epochs": 12},
                                        {"epochs": 10, "steps_per_epoch": 36}, {"filters": 64},
                                        REALISTIC_INTERPRET),
        "strategies": INTERPRET_STRATEGIES,
        "seeds": PAPER_SEEDS[:3],
        "train": {},
        "evaluate": {"split": "test"},
    },
    "long-range": {
        "description": "long-range simulation (promoter driven by enhancers up to the full "
                       "4-kb window), 8,000 sequences, x enformer and its conv-only ablation "
                       "(n_transformer=0) x every enformer strategy x 3 seeds, tracks protocol "
                       "(GPU image)",
        # 8,000 sequences: at the simulation's default 2,000 both models overfit before they
        # learn the enhancer-driven promoter signal (results/long-range/README.md)
        "datasets": _long_range_datasets({"num_seqs": 8000}),
        "strategies": ENFORMER_STRATEGIES,
        "seeds": PAPER_SEEDS[:3],
        "train": {},
        "evaluate": {"split": "test"},
    },
    "long-range-cpu": {
        "description": "long-range reduced for a CPU: enformer + conv-only ablation x standard, "
                       "rcaug (+ posthoc from it), conjoined, rcps x 1 seed, <= 10 epochs",
        "datasets": _long_range_datasets(),
        "strategies": ["standard", "rcaug", "posthoc", "conjoined", "rcps"],
        "seeds": PAPER_SEEDS[:1],
        "train": {"epochs": 10},
        "evaluate": {"split": "test"},
    },
    "paper-binary": {
        "description": "GM12878 MAX/CTCF/SPI1 binary task (files from `benchmark-rc prepare "
                       "binary`, given with --data NAME=FILE) x every strategy x 10 seeds",
        "datasets": [{"name": tf, "arch": "binary"} for tf in ("MAX", "CTCF", "SPI1")],
        "strategies": "all",
        "seeds": PAPER_SEEDS,
        "train": {},
        "evaluate": {"split": "test"},
    },
    "paper-profile": {
        "description": "mESC ChIP-nexus OCT4/SOX2/NANOG/KLF4 profiles (files from `benchmark-rc "
                       "prepare profile`, --data NAME=FILE) x every strategy x 10 seeds",
        "datasets": [{"name": tf, "arch": "bpnet"} for tf in ("OCT4", "SOX2", "NANOG", "KLF4")],
        "strategies": "all",
        "seeds": PAPER_SEEDS,
        "train": {},
        "evaluate": {"split": "test"},
    },
}


def get_preset(name: str) -> dict[str, Any]:
    """A deep copy of the preset ``name``; unknown names raise UserError."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of {list(PRESETS)}")
    return copy.deepcopy(PRESETS[name])

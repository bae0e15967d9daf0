"""RC strategies: how a strategy turns an architecture into a logits network.

Every strategy works for every architecture (DESIGN.md: adding an architecture gives every
strategy for free). The public description of a strategy is the frozen :class:`Strategy`.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from benchmark_rc.architectures import (
    STANDARD_KIT,
    Architecture,
    build_network,
    conjoin_network,
    rc_kit,
)
from benchmark_rc.errors import UserError

CONJOIN_MODES = ("logit", "prob", "max")


@dataclass(frozen=True)
class Strategy:
    """One RC strategy.

    Attributes:
        name: registry name.
        paper_label: label in the paper's figures.
        rc_augment: train on RC-augmented data.
        posthoc: None, or the conjoin mode: the evaluated model is ``conjoin(trained rcaug model,
            arch, posthoc)``; ``build_model`` returns the standard model to train.
        equivariant: exact RC invariance / equivariance by construction (for posthoc: of the
            conjoined model).
        kind: "standard", "rcps", "conjoined" or "hybrid".
        readout: RC read-out of the classification head ("sum", "avg", "weighted").
        merge: conjoin mode of the conjoined strategies ("logit" or "max").
        filter_scale: multiplier of the filter count (0.5 for rcps-half).
        hybrid: hybrid variant ("early", "later", "all") -> the arch's conjoined blocks.
    """

    name: str
    paper_label: str
    rc_augment: bool
    posthoc: str | None
    equivariant: bool
    kind: str
    readout: str = "sum"
    merge: str | None = None
    filter_scale: float = 1.0
    hybrid: str | None = None


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("standard", "Standard-NoRCAug", False, None, False, "standard"),
        Strategy("rcaug", "Standard-RCAug", True, None, False, "standard"),
        Strategy("posthoc", "CJ-posthoc", True, "logit", True, "standard"),
        Strategy("posthoc-prob", "CJ-posthoc-postsigmoid", True, "prob", True, "standard"),
        Strategy("conjoined", "CJ-trained", False, None, True, "conjoined", merge="logit"),
        Strategy("conjoined-max", "CJ-trained-max", False, None, True, "conjoined", merge="max"),
        Strategy("rcps", "RCPS", False, None, True, "rcps", readout="sum"),
        Strategy("rcps-avg", "RCPS-Avg", False, None, True, "rcps", readout="avg"),
        Strategy("rcps-weighted", "RCWeight", False, None, True, "rcps", readout="weighted"),
        Strategy("rcps-half", "RCPS-half", False, None, True, "rcps", filter_scale=0.5),
        Strategy("hybrid-early", "CJRCPS-early", False, None, True, "hybrid", hybrid="early"),
        Strategy("hybrid-later", "CJRCPS-later", False, None, True, "hybrid", hybrid="later"),
        Strategy("hybrid-all", "CJRCPS-all", False, None, True, "hybrid", hybrid="all"),
    )
}


def get_strategy(name: str) -> Strategy:
    """The :class:`Strategy` registered as ``name``; unknown names raise UserError."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UserError(f"unknown strategy {name!r}; choose one of {list(STRATEGIES)}") from None


def merge_modes(arch: Architecture, mode: str) -> dict[str, str]:
    """StrandMerge mode per logits output for a conjoin ``mode`` ("logit", "prob", "max")."""
    if mode not in CONJOIN_MODES:
        raise UserError(f"conjoin mode must be one of {CONJOIN_MODES}, got {mode!r}")
    return arch.task.merge_modes(mode)


def build_logits_network(
    strategy: Strategy, arch: Architecture, hp: dict, name: str
) -> keras.Model:
    """The network of ``strategy`` on ``arch`` from the inputs to the logits (no sigmoid)."""
    n_blocks = len(arch.make_blocks(hp))
    if strategy.kind == "standard":
        return build_network(arch, hp, ["standard"] * n_blocks, STANDARD_KIT, name)
    if strategy.kind == "conjoined":
        g = build_network(arch, hp, ["standard"] * n_blocks, STANDARD_KIT, f"{name}_shared")
        return conjoin_network(g, arch, merge_modes(arch, strategy.merge or "logit"), name)
    if strategy.kind == "rcps":
        scaled = dict(hp, filters=max(1, int(round(int(hp["filters"]) * strategy.filter_scale))))
        return build_network(arch, scaled, ["rc"] * n_blocks, rc_kit(strategy.readout), name)
    if strategy.kind == "hybrid":
        wrapped = set(arch.hybrid_blocks[strategy.hybrid or "all"])
        plan = ["cj" if i in wrapped else "rc" for i in range(n_blocks)]
        return build_network(arch, hp, plan, rc_kit(strategy.readout), name)
    raise ValueError(f"strategy {strategy.name!r} has unknown kind {strategy.kind!r}")

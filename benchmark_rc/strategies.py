"""RC strategies: each one an object that owns its behaviour.

A strategy says how it builds the logits network of any architecture (:meth:`Strategy.build`),
whether its training data are RC-augmented (:attr:`Strategy.rc_augment`), which trained run it
reuses (:attr:`Strategy.trained_as`: itself, or ``rcaug`` for the post-hoc strategies) and what
happens to that trained model before it is evaluated (:meth:`Strategy.after_training`: nothing,
or post-hoc conjoining). The runner, the CLI and the registry ask the strategy; none of them
tests strategy names. Every strategy works for every architecture (DESIGN.md): adding a strategy
is one subclass (or one more instance) registered in :data:`STRATEGIES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras

from benchmark_rc.architectures import (
    STANDARD_KIT,
    Architecture,
    build_network,
    conjoin_network,
    rc_kit,
)
from benchmark_rc.architectures.irrep_kit import IrrepKit
from benchmark_rc.errors import UserError

CONJOIN_MODES = ("logit", "prob", "max")


@dataclass(frozen=True, kw_only=True)
class Strategy:
    """One RC strategy (an abstract base: subclasses implement :meth:`build`).

    Attributes:
        name: registry name.
        paper_label: label in the paper's figures.
        equivariant: exact RC invariance / equivariance by construction (of the evaluated model).
        rc_augment: train on RC-augmented data.
    """

    name: str
    paper_label: str
    equivariant: bool
    rc_augment: bool = False

    @property
    def trained_as(self) -> str:
        """Name of the strategy whose trained run this one is evaluated from (itself here)."""
        return self.name

    @property
    def posthoc(self) -> str | None:
        """The conjoin mode applied after training, or None (not a post-hoc strategy)."""
        return None

    @property
    def hparam_defaults(self) -> dict[str, Any]:
        """Hyper-parameters of this strategy (beside the architecture's) and their defaults."""
        return {}

    def build(self, arch: Architecture, hp: dict[str, Any], name: str) -> keras.Model:
        """The network from the architecture's inputs to its logits (no sigmoid)."""
        raise NotImplementedError

    def after_training(self, model: keras.Model, arch: Architecture,
                       hparams: Mapping[str, Any] | None = None) -> keras.Model:
        """The model to evaluate, from the trained model of :attr:`trained_as`."""
        return model


def _n_blocks(arch: Architecture, hp: dict[str, Any]) -> int:
    return len(arch.make_blocks(hp))


@dataclass(frozen=True, kw_only=True)
class Standard(Strategy):
    """An ordinary network (with or without RC-augmented training data)."""

    def build(self, arch: Architecture, hp: dict[str, Any], name: str) -> keras.Model:
        return build_network(arch, hp, ["standard"] * _n_blocks(arch, hp), STANDARD_KIT, name)


@dataclass(frozen=True, kw_only=True)
class PostHoc(Strategy):
    """The model of ``trains`` (RC-augmented standard by default) conjoined after training:
    merge(g(x), RC_out(g(RC_in x))) with ``mode`` "logit", "prob" or "max"."""

    mode: str
    trains: str = "rcaug"

    @property
    def trained_as(self) -> str:
        return self.trains

    @property
    def posthoc(self) -> str | None:
        return self.mode

    def build(self, arch: Architecture, hp: dict[str, Any], name: str) -> keras.Model:
        return get_strategy(self.trains).build(arch, hp, name)

    def after_training(self, model: keras.Model, arch: Architecture,
                       hparams: Mapping[str, Any] | None = None) -> keras.Model:
        from benchmark_rc.registry import conjoin

        return conjoin(model, arch, self.mode, **dict(hparams or {}))


@dataclass(frozen=True, kw_only=True)
class Conjoined(Strategy):
    """One shared standard network applied to x and RC(x), merged (trained conjoined)."""

    merge: str = "logit"

    def build(self, arch: Architecture, hp: dict[str, Any], name: str) -> keras.Model:
        g = build_network(arch, hp, ["standard"] * _n_blocks(arch, hp), STANDARD_KIT,
                          f"{name}_shared")
        return conjoin_network(g, arch, merge_modes(arch, self.merge), name)


@dataclass(frozen=True, kw_only=True)
class RCPS(Strategy):
    """RC parameter sharing throughout; ``readout`` merges the strands of the classification
    read-out ("sum", "avg", "weighted"); ``filter_scale`` scales the filter count (RCPS-half)."""

    readout: str = "sum"
    filter_scale: float = 1.0

    def build(self, arch: Architecture, hp: dict[str, Any], name: str) -> keras.Model:
        scaled = dict(hp, filters=max(1, int(round(int(hp["filters"]) * self.filter_scale))))
        return build_network(arch, scaled, ["rc"] * _n_blocks(arch, scaled),
                             rc_kit(self.readout), name)


@dataclass(frozen=True, kw_only=True)
class Hybrid(Strategy):
    """The CJ/RCPS continuum: the architecture's ``hybrid_blocks[variant]`` conjoined, the rest
    RC-shared."""

    variant: str
    readout: str = "sum"

    def build(self, arch: Architecture, hp: dict[str, Any], name: str) -> keras.Model:
        wrapped = set(arch.hybrid_blocks[self.variant])
        plan = ["cj" if i in wrapped else "rc" for i in range(_n_blocks(arch, hp))]
        return build_network(arch, hp, plan, rc_kit(self.readout), name)


@dataclass(frozen=True, kw_only=True)
class Irrep(Strategy):
    """Irreducible-representation layers throughout (Mallet & Vert): a fraction
    ``irrep_a_fraction`` of every map's channels of type +1, the rest -1, and a ``kmer``-mer
    input embedding (hyper-parameters; defaults: half and half, and this strategy's ``kmer``)."""

    kmer: int = 1

    @property
    def hparam_defaults(self) -> dict[str, Any]:
        return {"irrep_a_fraction": 0.5, "kmer": self.kmer}

    def build(self, arch: Architecture, hp: dict[str, Any], name: str) -> keras.Model:
        kit = IrrepKit(a_fraction=float(hp["irrep_a_fraction"]), kmer=int(hp["kmer"]))
        return build_network(arch, hp, ["rc"] * _n_blocks(arch, hp), kit, name)


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Standard(name="standard", paper_label="Standard-NoRCAug", equivariant=False),
        Standard(name="rcaug", paper_label="Standard-RCAug", equivariant=False, rc_augment=True),
        PostHoc(name="posthoc", paper_label="CJ-posthoc", equivariant=True, rc_augment=True,
                mode="logit"),
        PostHoc(name="posthoc-prob", paper_label="CJ-posthoc-postsigmoid", equivariant=True,
                rc_augment=True, mode="prob"),
        Conjoined(name="conjoined", paper_label="CJ-trained", equivariant=True, merge="logit"),
        Conjoined(name="conjoined-max", paper_label="CJ-trained-max", equivariant=True,
                  merge="max"),
        RCPS(name="rcps", paper_label="RCPS", equivariant=True),
        RCPS(name="rcps-avg", paper_label="RCPS-Avg", equivariant=True, readout="avg"),
        RCPS(name="rcps-weighted", paper_label="RCWeight", equivariant=True,
             readout="weighted"),
        RCPS(name="rcps-half", paper_label="RCPS-half", equivariant=True, filter_scale=0.5),
        Hybrid(name="hybrid-early", paper_label="CJRCPS-early", equivariant=True,
               variant="early"),
        Hybrid(name="hybrid-later", paper_label="CJRCPS-later", equivariant=True,
               variant="later"),
        Hybrid(name="hybrid-all", paper_label="CJRCPS-all", equivariant=True, variant="all"),
        Irrep(name="irrep", paper_label="Irrep", equivariant=True),
        Irrep(name="irrep-kmer", paper_label="Irrep-3mer", equivariant=True, kmer=3),
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
    return strategy.build(arch, hp, name)

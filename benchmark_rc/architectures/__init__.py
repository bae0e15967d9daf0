"""Architectures, each written once against a layer kit: sim, binary, bpnet, Koo &
Ploenzke's koo-cnn2, koo-cnn50, koo-cnn-deep, koo-cnn-local, koo-cnn-dist, enformer, and
Prakash et al.'s basset and beluga."""

from __future__ import annotations

from benchmark_rc.architectures.base import Architecture, build_network, conjoin_network
from benchmark_rc.architectures.basset import PRAKASH_ARCHITECTURES
from benchmark_rc.architectures.bpnet import BPNET
from benchmark_rc.architectures.conv_classifier import BINARY, SIM
from benchmark_rc.architectures.enformer import ENFORMER
from benchmark_rc.architectures.kit import STANDARD_KIT, LayerKit, rc_kit
from benchmark_rc.architectures.koo import KOO_ARCHITECTURES
from benchmark_rc.errors import UserError

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a for a in (SIM, BINARY, BPNET, *KOO_ARCHITECTURES, ENFORMER,
                         *PRAKASH_ARCHITECTURES)
}


def get_architecture(name: str) -> Architecture:
    """The :class:`Architecture` registered as ``name``; unknown names raise UserError."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UserError(
            f"unknown architecture {name!r}; choose one of {sorted(ARCHITECTURES)}"
        ) from None


__all__ = [
    "ARCHITECTURES",
    "STANDARD_KIT",
    "Architecture",
    "LayerKit",
    "build_network",
    "conjoin_network",
    "get_architecture",
    "rc_kit",
]

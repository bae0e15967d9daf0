"""Real genomic data (FASTA, BED/narrowPeak, bigWig) to benchmark_rc HDF5 datasets.

``prepare_binary`` (peaks vs background, paper §3) and ``prepare_profile`` (BPNet-style profiles,
paper §4) are the library entry points of ``benchmark-rc prepare binary|profile``; see
docs/prepare.md. They are imported lazily so ``import data_prep`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["prepare_binary", "prepare_profile"]


def __getattr__(name: str) -> Any:
    if name == "prepare_binary":
        from data_prep.binary import prepare_binary

        return prepare_binary
    if name == "prepare_profile":
        from data_prep.profile import prepare_profile

        return prepare_profile
    raise AttributeError(f"module 'data_prep' has no attribute {name!r}")

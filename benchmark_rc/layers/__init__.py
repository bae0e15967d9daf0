"""RC layers: parameter sharing (rcps), conjoining blocks (conjoin), activations, losses.

Importing this package registers every layer under the Keras package name ``benchmark_rc``.
"""

from benchmark_rc.layers.activations import Exponential
from benchmark_rc.layers.conjoin import RCTransform, StrandMerge
from benchmark_rc.layers.losses import MultinomialNLL
from benchmark_rc.layers.rcps import (
    RCGeometryError,
    RevCompAvgPool,
    RevCompConv1D,
    RevCompConv1DBatchNorm,
    RevCompSumPool,
    WeightedSum1D,
    check_rc_geometry,
)

__all__ = [
    "Exponential",
    "MultinomialNLL",
    "RCGeometryError",
    "RCTransform",
    "RevCompAvgPool",
    "RevCompConv1D",
    "RevCompConv1DBatchNorm",
    "RevCompSumPool",
    "StrandMerge",
    "WeightedSum1D",
    "check_rc_geometry",
]

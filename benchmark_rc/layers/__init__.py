"""RC layers: parameter sharing (rcps), irreducible representations (irrep), conjoining blocks
(conjoin), attention (Enformer, and RC-equivariant), activations, losses, and the emulation of the original Keras 2 / keras-genomics stack
(compat).

Importing this package registers every layer under the Keras package name ``benchmark_rc``.
"""

from benchmark_rc.layers.activations import Exponential
from benchmark_rc.layers.attention import (
    AttentionPooling1D,
    RelativeMultiHeadAttention,
    RevCompAttentionPooling1D,
    RevCompLayerNorm,
    RevCompMultiHeadAttention,
    StrandPairDense,
    StrandSymmetricDense,
    relative_position_features,
)
from benchmark_rc.layers.compat import (
    Keras2BatchNormalization,
    KerasGenomicsRevCompConv1D,
    KerasGenomicsRevCompConv1DBatchNorm,
)
from benchmark_rc.layers.conjoin import RCTransform, StrandMerge
from benchmark_rc.layers.irrep import (
    IrrepActivation,
    IrrepBatchNorm,
    IrrepConcatenate,
    IrrepToIrrepConv1D,
    IrrepToRegConv1D,
    KmerEmbedding,
    RegToIrrepConv1D,
)
from benchmark_rc.layers.irrep_attention import (
    IrrepAttentionPooling1D,
    IrrepLayerNorm,
    IrrepMultiHeadAttention,
    IrrepStrandPairDense,
    IrrepTrackDense,
)
from benchmark_rc.layers.irrep_pool import IrrepMaxPool1D
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
    "AttentionPooling1D",
    "Exponential",
    "IrrepActivation",
    "IrrepAttentionPooling1D",
    "IrrepBatchNorm",
    "IrrepConcatenate",
    "IrrepLayerNorm",
    "IrrepMaxPool1D",
    "IrrepMultiHeadAttention",
    "IrrepStrandPairDense",
    "IrrepToIrrepConv1D",
    "IrrepToRegConv1D",
    "IrrepTrackDense",
    "Keras2BatchNormalization",
    "KerasGenomicsRevCompConv1D",
    "KerasGenomicsRevCompConv1DBatchNorm",
    "KmerEmbedding",
    "MultinomialNLL",
    "RCGeometryError",
    "RCTransform",
    "RegToIrrepConv1D",
    "RelativeMultiHeadAttention",
    "RevCompAttentionPooling1D",
    "RevCompAvgPool",
    "RevCompConv1D",
    "RevCompConv1DBatchNorm",
    "RevCompLayerNorm",
    "RevCompMultiHeadAttention",
    "RevCompSumPool",
    "StrandMerge",
    "StrandPairDense",
    "StrandSymmetricDense",
    "WeightedSum1D",
    "check_rc_geometry",
    "relative_position_features",
]

"""Layer kits: the small vocabulary every architecture is written against, once.

An architecture asks its kit for a convolution, a batch norm, a classification read-out and the
profile / count heads. :data:`STANDARD_KIT` returns ordinary Keras layers; :func:`rc_kit` returns
the RC-shared (RCPS) layers of :mod:`benchmark_rc.layers`, whose feature maps have 2F channels for
F filters. Strategies pick the kit (or mix kits per block for the hybrids).

A kit also carries the ``compat`` mode (:data:`COMPAT_MODES`, the ``compat`` hyper-parameter that
:func:`~benchmark_rc.architectures.base.build_network` passes to every kit it uses):
``"default"`` builds the mathematically intended layers; ``"original"`` builds the layers of the
original TF 1.15 / Keras 2.2.4 / keras-genomics 0.1.2.1 stack where they change results
(:mod:`benchmark_rc.layers.compat`):

* every RevCompConv1D the RC kit makes is :class:`KerasGenomicsRevCompConv1D` (2·conv + bias):
  :meth:`LayerKit.conv` (sim RCPS: conv1; binary RCPS: conv1-conv3; bpnet RCPS: conv1 and
  dil_conv1-6; the RC blocks of the hybrids) and the RC heads of bpnet (``profile_prebias``,
  ``profile``, ``counts_conv``), because keras-genomics' layer is what the original RCPS and
  CJRCPS models used for each of them;
* every RC batch norm is :class:`KerasGenomicsRevCompConv1DBatchNorm` (per-pair affine map
  x·γ/√(1+ε) + β, no statistics, the same in training and inference);
* every ordinary batch norm (standard kit, also inside conjoined blocks) is
  :class:`Keras2BatchNormalization` (zero-debiased moving averages).

Plain Conv1D, Dense and the strand merges are the same in every mode (Keras 2 and 3 compute
them alike). Two ablation modes switch the quirks on separately, to say which of them changes a
result: ``"original-bn"`` (the two batch-norm quirks, intended RC convolutions) and
``"original-conv"`` (the 2·conv RC convolutions, intended batch norms).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import keras

from benchmark_rc.errors import UserError
from benchmark_rc.layers import (
    AttentionPooling1D,
    Keras2BatchNormalization,
    KerasGenomicsRevCompConv1D,
    KerasGenomicsRevCompConv1DBatchNorm,
    RCTransform,
    RelativeMultiHeadAttention,
    RevCompAttentionPooling1D,
    RevCompAvgPool,
    RevCompConv1D,
    RevCompConv1DBatchNorm,
    RevCompLayerNorm,
    RevCompMultiHeadAttention,
    RevCompSumPool,
    StrandPairDense,
    StrandSymmetricDense,
    WeightedSum1D,
    check_rc_geometry,
)

READOUTS = ("sum", "avg", "weighted")


@dataclass(frozen=True)
class CompatMode:
    """Which layers of the original stack a kit builds in place of the intended ones."""

    name: str
    doubled_rc_conv: bool = False  # KerasGenomicsRevCompConv1D: 2·conv + bias
    affine_rc_batch_norm: bool = False  # KerasGenomicsRevCompConv1DBatchNorm: no statistics
    debiased_batch_norm: bool = False  # Keras2BatchNormalization: zero-debiased averages


COMPAT = {mode.name: mode for mode in (
    CompatMode("default"),
    CompatMode("original", doubled_rc_conv=True, affine_rc_batch_norm=True,
               debiased_batch_norm=True),
    CompatMode("original-bn", affine_rc_batch_norm=True, debiased_batch_norm=True),
    CompatMode("original-conv", doubled_rc_conv=True),
)}
COMPAT_MODES = tuple(COMPAT)


def check_compat(value: str | None) -> str:
    """The compat mode named by ``value`` (None means "default"); others raise UserError."""
    mode = "default" if value is None else str(value)
    if mode not in COMPAT:
        raise UserError(f"compat must be one of {COMPAT_MODES} (or None), got {value!r}")
    return mode


@dataclass(frozen=True)
class LayerKit:
    """Factory of the layers an architecture needs.

    Attributes:
        rc: True for the RC-shared kit (maps are regular, 2F channels for F filters).
        readout: strand merge of the RC kit's classification read-out: "sum" (RevCompSumPool,
            paper RCPS), "avg" (RevCompAvgPool, RCPS-Avg) or "weighted" (WeightedSum1D).
        compat: a name of :data:`COMPAT`: "default" (the intended layers), "original" (the
            layers of the original Keras 2 / keras-genomics stack, see the module docstring) or
            one of its ablations.
    """

    rc: bool = False
    readout: str = "sum"
    compat: str = "default"

    def with_compat(self, compat: str | None) -> LayerKit:
        """This kit in another compat mode (None: "default")."""
        return dataclasses.replace(self, compat=check_compat(compat))

    @property
    def quirks(self) -> CompatMode:
        """The original-stack layers this kit's compat mode builds."""
        return COMPAT[self.compat]

    @property
    def _rc_conv(self) -> type:
        return KerasGenomicsRevCompConv1D if self.quirks.doubled_rc_conv else RevCompConv1D

    def conv(
        self,
        filters: int,
        kernel_size: int,
        *,
        dilation_rate: int = 1,
        activation: str | None = None,
        name: str | None = None,
    ) -> keras.layers.Layer:
        """Valid-padded 1-D convolution with F filters (F channels, or 2F for the RC kit)."""
        cls = self._rc_conv if self.rc else keras.layers.Conv1D
        return cls(
            filters, kernel_size, dilation_rate=dilation_rate, activation=activation, name=name
        )

    def embed(self, sequence: Any) -> Any:
        """The trunk's input map made from the one-hot sequence (here: the sequence itself)."""
        return sequence

    def activation(self, activation: str, name: str | None = None) -> Any:
        """Element-wise activation of a trunk map (regular maps allow any function)."""
        return keras.layers.Activation(activation, name=name)

    def max_pool(self, h: Any, pool_size: int, strides: int, name: str = "maxpool") -> Any:
        """Valid max pooling of a trunk map before the read-out. The RC kit checks that the
        windows are mirror-symmetric, which exact invariance of its read-out needs."""
        if self.rc:
            check_rc_geometry(int(h.shape[1]), pool_size, strides, "valid", 1)
        return keras.layers.MaxPooling1D(pool_size, strides, name=name)(h)

    def pad(self, h: Any, width: int, name: str | None = None) -> Any:
        """``width`` zero rows on both ends of a trunk map (a "same"-padded odd kernel is this
        then :meth:`conv`); symmetric, so it commutes with RC for every kit."""
        return keras.layers.ZeroPadding1D(int(width), name=name)(h)

    def pool(self, h: Any, pool_size: int, name: str = "pool") -> Any:
        """Max pooling *inside* the trunk (windows = stride = ``pool_size``, valid), between
        convolutions; the map stays a trunk map of its kit (the irrep kit does not symmetrise
        here, unlike :meth:`max_pool` before a read-out). The RC kit checks that the windows
        are mirror-symmetric."""
        if self.rc:
            check_rc_geometry(int(h.shape[1]), pool_size, pool_size, "valid", 1)
        return keras.layers.MaxPooling1D(pool_size, pool_size, name=name)(h)

    def batch_norm(self, name: str | None = None) -> keras.layers.Layer:
        """Batch norm (RC kit: channel c and 2F-1-c share parameters and statistics)."""
        if self.rc:
            cls = KerasGenomicsRevCompConv1DBatchNorm if self.quirks.affine_rc_batch_norm \
                else RevCompConv1DBatchNorm
            return cls(name=name)
        if self.quirks.debiased_batch_norm:
            return Keras2BatchNormalization(name=name)
        return keras.layers.BatchNormalization(name=name)

    def classification_readout(self, h: Any, units: int, name: str = "logits") -> Any:
        """(B, L, C) pooled map -> (B, units) logits; the RC kit's logits are RC-invariant."""
        if self.rc and self.readout == "weighted":
            return WeightedSum1D(units, name=name)(h)
        if self.rc:
            merge = RevCompSumPool if self.readout == "sum" else RevCompAvgPool
            h = merge(name="strand_merge")(h)
        h = keras.layers.Flatten(name="flatten")(h)
        return keras.layers.Dense(units, name=name)(h)

    def profile_head(self, h: Any, control: Any, kernel_size: int) -> Any:
        """Trunk map (B, L, C) + control (B, L', 2) -> profile logits (B, L', 2) named "profile".

        Standard: Conv1D(2, k) "pre-bias" -> concat control -> Conv1D(2, 1). RC kit: the single
        RC filter pair gives (+, -) strands; the 1x1 RC conv sees [control channel-swapped,
        pre-bias, control], so the model is equivariant when the control is reversed along
        length only (paper spec §6.5).
        """
        if not self.rc:
            prebias = keras.layers.Conv1D(2, kernel_size, name="profile_prebias")(h)
            joined = keras.layers.Concatenate(name="profile_concat")([prebias, control])
            return keras.layers.Conv1D(2, 1, name="profile")(joined)
        prebias = self._profile_prebias(h, kernel_size)
        swapped = RCTransform("strands", name="control_swapped")(control)
        joined = keras.layers.Concatenate(name="profile_concat")([swapped, prebias, control])
        return self._rc_conv(1, 1, name="profile")(joined)

    def _profile_prebias(self, h: Any, kernel_size: int) -> Any:
        """RC kit: the (+, -) strand pre-bias profile, a regular map with 2 channels."""
        return self._rc_conv(1, kernel_size, name="profile_prebias")(h)

    def count_head(self, h: Any, control_logcount: Any) -> Any:
        """Trunk map (B, L, C) + control log count (B, 1) -> log counts (B, 2) named "counts"."""
        pooled = keras.layers.GlobalAveragePooling1D(name="counts_gap")(h)
        if not self.rc:
            joined = keras.layers.Concatenate(name="counts_concat")([pooled, control_logcount])
            return keras.layers.Dense(2, name="counts")(joined)
        joined = keras.layers.Concatenate(name="counts_concat")(
            [control_logcount, pooled, control_logcount]
        )
        width = int(joined.shape[-1])
        joined = keras.layers.Reshape((1, width), name="counts_as_map")(joined)
        out = self._rc_conv(1, 1, name="counts_conv")(joined)
        return keras.layers.Reshape((2,), name="counts")(out)

    # ---------------------------------------------------------------- attention (enformer)

    def attention_pool(self, h: Any, pool_size: int = 2, name: str | None = None) -> Any:
        """Enformer's softmax attention pooling (windows = stride = ``pool_size``); the RC kit's
        logits are RC-shared (the length must be a multiple of ``pool_size``)."""
        cls = RevCompAttentionPooling1D if self.rc else AttentionPooling1D
        return cls(pool_size, name=name)(h)

    def layer_norm(self, name: str | None = None) -> Any:
        """Layer norm over channels (RC kit: scale and offset tied across channel pairs)."""
        if self.rc:
            return RevCompLayerNorm(epsilon=1e-5, name=name)
        return keras.layers.LayerNormalization(epsilon=1e-5, name=name)

    def attention(self, filters: int, heads: int, key_size: int, *, position_features: int,
                  symmetric_positions: bool = False, attention_dropout: float = 0.0,
                  name: str | None = None) -> Any:
        """Multi-head self-attention with relative positions, ``filters`` output filters and
        value size filters // heads. RC kit: 2 x heads heads (RC partners h <-> 2H-1-h), 2F
        output channels, exactly equivariant (layers/attention.py)."""
        cls = RevCompMultiHeadAttention if self.rc else RelativeMultiHeadAttention
        return cls(heads, key_size, max(1, int(filters) // int(heads)), filters,
                   position_features=position_features, symmetric_positions=symmetric_positions,
                   attention_dropout=attention_dropout, output_initializer="zeros", name=name)

    def track_heads(self, h: Any, num_tracks: int, num_stranded: int) -> dict[str, Any]:
        """Per-bin softplus rates: "tracks" (B, bins, T) unstranded and "stranded_tracks"
        (B, bins, 2S) as (+, -) pairs; the RC kit's follow the RC rules "length" / "pairs"."""
        if self.rc:
            return {"tracks": StrandSymmetricDense(num_tracks, "softplus", name="tracks")(h),
                    "stranded_tracks": StrandPairDense(num_stranded, "softplus",
                                                       name="stranded_tracks")(h)}
        return {"tracks": keras.layers.Dense(num_tracks, "softplus", name="tracks")(h),
                "stranded_tracks": keras.layers.Dense(2 * num_stranded, "softplus",
                                                      name="stranded_tracks")(h)}


STANDARD_KIT = LayerKit(rc=False)


def rc_kit(readout: str = "sum") -> LayerKit:
    """The RC-shared kit with the given classification read-out (see :class:`LayerKit`)."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
    return LayerKit(rc=True, readout=readout)

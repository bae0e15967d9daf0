"""The irreducible-representation kit (Mallet & Vert, NeurIPS 2021): a third layer kit.

Every linear RC-equivariant layer maps between sums of "regular" channel pairs and irreducible
channels of type +1 ("a": RC reverses their length) and -1 ("b": RC reverses their length and
negates them). :class:`IrrepKit` writes an architecture's trunk on irrep maps:

* the sequence (one-hot, or the k-mer embedding for ``kmer`` > 1) is a regular map; the first
  convolution is :class:`~benchmark_rc.layers.RegToIrrepConv1D`, the later ones
  :class:`~benchmark_rc.layers.IrrepToIrrepConv1D`. A conv of F filters has 2F output channels
  (the channel count of the RC kit's conv), of which ``round(a_fraction * 2F)`` are of type a;
* with a k-mer embedding (width k) the first kernel is k - 1 taps shorter, so lengths and the
  receptive field stay those of the architecture;
* activations are :class:`~benchmark_rc.layers.IrrepActivation` (the architecture's function on
  a channels, an odd function, ``odd_activation``, on b channels); batch norm is
  :class:`~benchmark_rc.layers.IrrepBatchNorm` (b channels are scaled, never centred);
* the classification read-out symmetrises the map (:class:`~benchmark_rc.layers.IrrepConcatenate`)
  before pooling, so everything after it sees the same map for x and RC(x): invariant logits;
* profile and count heads map the irrep trunk back to regular maps
  (:class:`~benchmark_rc.layers.IrrepToRegConv1D`), then proceed as in the RC kit: equivariant;
* Enformer's attention pooling, layer norm, relative-position attention and track heads are
  their irrep versions (:mod:`benchmark_rc.layers.irrep_attention`).

The representation of each map is tracked by the kit while a network is built: the maps it made
regular (the embedded sequence) are remembered; every other trunk map is irrep with the kit's
a/b split of its channel count (architecture layers such as crops and residual sums keep it).
A kit therefore serves one network build: strategies make a fresh one per build. ``compat`` has
no effect on irrep layers (the original stack had none).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import keras

from benchmark_rc.architectures.kit import LayerKit
from benchmark_rc.errors import UserError
from benchmark_rc.layers import (
    IrrepActivation,
    IrrepAttentionPooling1D,
    IrrepBatchNorm,
    IrrepConcatenate,
    IrrepLayerNorm,
    IrrepMaxPool1D,
    IrrepMultiHeadAttention,
    IrrepStrandPairDense,
    IrrepToIrrepConv1D,
    IrrepToRegConv1D,
    IrrepTrackDense,
    KmerEmbedding,
    RegToIrrepConv1D,
    RevCompConv1D,
)

KMER_SIZES = (1, 2, 3)


@dataclass(frozen=True)
class IrrepKit(LayerKit):
    """Factory of irrep layers (see the module docstring).

    Attributes:
        a_fraction: fraction of each map's channels of type a (+1), in [0, 1].
        kmer: k of the k-mer input embedding (1: the one-hot sequence itself).
        odd_activation: the odd function applied to b channels ("tanh", "softsign", "linear").
    """

    rc: bool = True
    a_fraction: float = 0.5
    kmer: int = 1
    odd_activation: str = "tanh"
    _regular: dict[int, Any] = field(default_factory=dict, init=False, repr=False,
                                     compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.a_fraction) <= 1.0:
            raise UserError(f"irrep_a_fraction must lie in [0, 1], got {self.a_fraction!r}")
        if int(self.kmer) not in KMER_SIZES:
            raise UserError(f"kmer must be one of {KMER_SIZES}, got {self.kmer!r}")

    def with_compat(self, compat: str | None) -> IrrepKit:
        """A fresh kit with the same settings (``compat`` does not change irrep layers)."""
        return dataclasses.replace(self)

    def split(self, channels: int) -> tuple[int, int]:
        """(a, b) channel counts of an irrep map with ``channels`` channels."""
        a = int(round(float(self.a_fraction) * channels))
        return a, channels - a

    def _a(self, h: Any) -> int:
        return self.split(int(h.shape[-1]))[0]

    def _is_regular(self, h: Any) -> bool:
        return id(h) in self._regular

    def embed(self, sequence: Any) -> Any:
        """The k-mer embedding of the sequence (or the sequence for k = 1): a regular map."""
        h = KmerEmbedding(int(self.kmer), name="kmer_embedding")(sequence) \
            if int(self.kmer) > 1 else sequence
        self._regular[id(h)] = h  # holding h keeps its id unique during the build
        return h

    def conv(self, filters: int, kernel_size: int, *, dilation_rate: int = 1,
             activation: str | None = None, name: str | None = None) -> Any:
        """Conv of ``filters`` pairs' worth of channels (2F, split a/b), from a regular map
        (RegToIrrep, kernel shortened by k - 1 after a k-mer embedding) or an irrep map."""
        a_out, b_out = self.split(2 * int(filters))

        def apply(h: Any) -> Any:
            if self._is_regular(h):
                k = int(kernel_size) - (int(self.kmer) - 1)
                if k < 1 or (int(self.kmer) > 1 and int(dilation_rate) != 1):
                    raise UserError(
                        f"{name}: a {self.kmer}-mer embedding needs an undilated first kernel "
                        f"of at least {self.kmer} taps, got {kernel_size} (dilation "
                        f"{dilation_rate})")
                y = RegToIrrepConv1D(a_out, b_out, k, dilation_rate=dilation_rate, name=name)(h)
            else:
                y = IrrepToIrrepConv1D(self._a(h), a_out, b_out, kernel_size,
                                       dilation_rate=dilation_rate, name=name)(h)
            if activation is None:
                return y
            return self.activation(activation, name=f"{name}_activation")(y)

        return apply

    def activation(self, activation: str, name: str | None = None) -> Any:
        """``activation`` on a channels, the kit's odd function on b channels."""
        return lambda h: IrrepActivation(self._a(h), even_activation=activation,
                                         odd_activation=self.odd_activation, name=name)(h)

    def batch_norm(self, name: str | None = None) -> Any:
        """Irrep batch norm (a channels standardised, b channels only scaled)."""
        return lambda h: IrrepBatchNorm(self._a(h), name=name)(h)

    def max_pool(self, h: Any, pool_size: int, strides: int, name: str = "maxpool") -> Any:
        """Symmetrise (an RC-invariant map), then max-pool: any window layout is invariant."""
        h = IrrepConcatenate(self._a(h), name=f"{name}_symmetrise")(h)
        return keras.layers.MaxPooling1D(pool_size, strides, name=name)(h)

    def pad(self, h: Any, width: int, name: str | None = None) -> Any:
        """Zero padding; a padded regular map (the embedded sequence) stays regular."""
        out = keras.layers.ZeroPadding1D(int(width), name=name)(h)
        if self._is_regular(h):
            self._regular[id(out)] = out
        return out

    def pool(self, h: Any, pool_size: int, name: str = "pool") -> Any:
        """Trunk pooling of an irrep map (:class:`~benchmark_rc.layers.IrrepMaxPool1D`: max on
        a channels, signed max-magnitude on b channels), not symmetrised: the map stays irrep."""
        return IrrepMaxPool1D(self._a(h), pool_size, name=name)(h)

    def classification_readout(self, h: Any, units: int, name: str = "logits") -> Any:
        """Flatten -> Dense of the symmetrised, pooled map (already invariant)."""
        h = keras.layers.Flatten(name="flatten")(h)
        return keras.layers.Dense(units, name=name)(h)

    # ------------------------------------------------------------ attention (enformer)

    def attention_pool(self, h: Any, pool_size: int = 2, name: str | None = None) -> Any:
        """Softmax pooling with invariant logits [h_a, |h_b|] W (the map stays irrep)."""
        return IrrepAttentionPooling1D(self._a(h), pool_size, name=name)(h)

    def layer_norm(self, name: str | None = None) -> Any:
        """Layer norm over channels (a channels centred, b channels only scaled)."""
        return lambda h: IrrepLayerNorm(self._a(h), epsilon=1e-5, name=name)(h)

    def attention(self, filters: int, heads: int, key_size: int, *, position_features: int,
                  symmetric_positions: bool = False, attention_dropout: float = 0.0,
                  name: str | None = None) -> Any:
        """Irrep self-attention at the RC kit's size: 2 x heads heads of value size
        filters // heads, 2F output channels; queries, keys, values and output split a/b by the
        kit's fraction (layers/irrep_attention.py)."""
        value_size = max(1, int(filters) // int(heads))
        units = 2 * int(filters)
        return lambda h: IrrepMultiHeadAttention(
            2 * int(heads), key_size, value_size, units, a=self._a(h),
            key_a=self.split(int(key_size))[0], value_a=self.split(value_size)[0],
            units_a=self.split(units)[0], position_features=position_features,
            symmetric_positions=symmetric_positions, attention_dropout=attention_dropout,
            output_initializer="zeros", name=name)(h)

    def track_heads(self, h: Any, num_tracks: int, num_stranded: int) -> dict[str, Any]:
        """Unstranded tracks from the a channels (bins reversed under RC) and stranded (+, -)
        pairs (bins reversed and strands swapped under RC)."""
        a = self._a(h)
        return {"tracks": IrrepTrackDense(num_tracks, a, "softplus", name="tracks")(h),
                "stranded_tracks": IrrepStrandPairDense(num_stranded, a, "softplus",
                                                        name="stranded_tracks")(h)}

    def _profile_prebias(self, h: Any, kernel_size: int) -> Any:
        return IrrepToRegConv1D(1, self._a(h), kernel_size, name="profile_prebias")(h)

    def count_head(self, h: Any, control_logcount: Any) -> Any:
        """Pooled irrep map -> regular (1, 2) by a 1x1 IrrepToReg conv, plus an RC 1x1 conv of
        the control pair [c, c]: log counts (B, 2), swapped under RC."""
        pooled = keras.layers.GlobalAveragePooling1D(name="counts_gap")(h)
        width = int(pooled.shape[-1])
        pooled = keras.layers.Reshape((1, width), name="counts_as_map")(pooled)
        from_trunk = IrrepToRegConv1D(1, self.split(width)[0], 1, name="counts_trunk")(pooled)
        control = keras.layers.Concatenate(name="counts_control_pair")(
            [control_logcount, control_logcount])
        control = keras.layers.Reshape((1, 2), name="counts_control_map")(control)
        from_control = RevCompConv1D(1, 1, name="counts_control")(control)
        out = keras.layers.Add(name="counts_sum")([from_trunk, from_control])
        return keras.layers.Reshape((2,), name="counts")(out)

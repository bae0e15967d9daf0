"""Enformer (Avsec et al., Nat Methods 2021), written once against a layer kit, scaled by
hyper-parameters. Task: binned tracks (:mod:`benchmark_rc.tasks.tracks`, Poisson loss).

Trunk (three blocks, so the hybrids conjoin a prefix):

* stem: Conv(F/2, ``stem_kernel``, same) -> residual conv block(F/2, 1) -> attention pool 2;
* tower: ``n_tower`` x [conv block(f_i, ``tower_kernel``) -> residual conv block(f_i, 1) ->
  attention pool 2], f_i growing geometrically from F/2 to F (rounded to ``channel_step``);
  a conv block is BatchNorm -> GELU -> Conv(same);
* transformer: ``n_transformer`` x [residual(LayerNorm -> multi-head attention with relative
  positions (``heads``, ``key_size``, value size F / heads, ``position_features`` Enformer basis
  features, ``symmetric_positions``, ``attention_dropout``) -> Dropout(``dropout``)); residual(
  LayerNorm -> pointwise 2F -> Dropout -> ReLU -> pointwise F -> Dropout)].

Head: crop to ``output_bins`` bins (centred) -> conv block(2F, 1) -> Dropout(``dropout`` / 8) ->
GELU -> softplus heads "tracks" (``num_tracks``) and "stranded_tracks" (``num_stranded`` (+, -)
pairs). Bins are 2^(n_tower + 1) bp. The defaults fit a CPU (4096 bp -> 32 bins of 128 bp,
cropped to 24; F = 64, 2 transformer blocks, 4 heads); the published model is
``input_length=196608, filters=1536, channel_step=128, n_transformer=11, heads=8, key_size=64,
position_features=192, output_bins=896`` (and ``num_tracks`` = its 5313 human tracks).

``n_transformer=0`` is the conv-only ablation: no attention, so each bin sees only the conv
tower's receptive field (:func:`conv_receptive_field`, 646 bp at the defaults, against the whole
4096-bp window with attention); the ``long-range`` preset trains it next to the full model.

Every strategy: the RC kit makes each block RC-shared, the attention exactly equivariant
(:mod:`benchmark_rc.layers.attention`); the irrep kit writes every block on irreducible
representations (:mod:`benchmark_rc.layers.irrep_attention`).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from benchmark_rc.architectures.base import Architecture, Block
from benchmark_rc.architectures.kit import LayerKit
from benchmark_rc.errors import UserError
from benchmark_rc.tasks import TRACKS


def tower_filters(hp: dict) -> list[int]:
    """Channels of each tower block (Enformer's exponential_linspace_int(F/2, F, n_tower,
    divisible_by=channel_step)): geometric from F/2 to F, rounded to multiples of the step."""
    filters, step, n = int(hp["filters"]), int(hp["channel_step"]), int(hp["n_tower"])
    start = filters // 2
    if n <= 1:
        return [filters] * n
    base = (filters / start) ** (1.0 / max(n - 1, 1))
    return [max(step, int(np.round(start * base**i / step) * step)) for i in range(n)]


def bin_size(hp: dict) -> int:
    return 2 ** (int(hp["n_tower"]) + 1)


def conv_receptive_field(hp: dict) -> int:
    """Receptive field in bp of one output bin of the conv stem + tower (the whole model when
    ``n_transformer=0``, the conv-only ablation): the stem conv adds ``stem_kernel`` - 1, each
    attention pooling (pool 2) at resolution r adds r, each tower conv of width k at resolution
    r adds (k - 1) r; pointwise convs add nothing. stem_kernel + 1 + tower_kernel (2^(n+1) - 2):
    646 bp at the defaults (a 128-bp bin sees 259 bp either side). With transformer blocks every
    bin sees the whole input."""
    n = int(hp["n_tower"])
    return int(hp["stem_kernel"]) + 1 + int(hp["tower_kernel"]) * (2 ** (n + 1) - 2)


def _check(hp: dict) -> None:
    length, size = int(hp["input_length"]), bin_size(hp)
    if length % size:
        raise UserError(f"enformer input_length {length} must be a multiple of the bin size "
                        f"{size} (2^(n_tower + 1): every attention pooling halves the length)")
    bins, out = length // size, int(hp["output_bins"])
    if not 0 < out <= bins or (bins - out) % 2:
        raise UserError(f"enformer output_bins {out} must be at most the {bins} bins of a "
                        f"{length}-bp input and leave an even crop (bins - output_bins)")
    filters, heads = int(hp["filters"]), int(hp["heads"])
    if filters < 2 or filters % 2:
        raise UserError(f"enformer filters must be even and >= 2, got {filters}")
    if filters % heads:
        raise UserError(f"enformer filters {filters} must be a multiple of heads {heads} "
                        "(value size = filters / heads)")
    if tower_filters(hp) and tower_filters(hp)[-1] != filters:
        raise UserError(f"enformer filters {filters} must be a multiple of channel_step "
                        f"{hp['channel_step']}")


def _conv_block(kit: LayerKit, h: Any, filters: int, width: int, name: str) -> Any:
    h = kit.batch_norm(name=f"{name}_bn")(h)
    h = kit.activation("gelu", name=f"{name}_gelu")(h)
    if width > 1:
        h = kit.pad(h, width // 2, name=f"{name}_pad")
    return kit.conv(filters, width, name=f"{name}_conv")(h)


def _residual_pointwise(kit: LayerKit, h: Any, filters: int, name: str) -> Any:
    return keras.layers.Add(name=f"{name}_add")([h, _conv_block(kit, h, filters, 1, name)])


def _stem(hp: dict) -> Block:
    def block(kit: LayerKit, h: Any) -> Any:
        half, width = int(hp["filters"]) // 2, int(hp["stem_kernel"])
        h = kit.pad(h, width // 2, name="stem_pad")
        h = kit.conv(half, width, name="stem_conv")(h)
        h = _residual_pointwise(kit, h, half, "stem_pointwise")
        return kit.attention_pool(h, 2, name="stem_pool")

    return block


def _tower(hp: dict) -> Block:
    def block(kit: LayerKit, h: Any) -> Any:
        for i, filters in enumerate(tower_filters(hp), start=1):
            h = _conv_block(kit, h, filters, int(hp["tower_kernel"]), f"tower{i}")
            h = _residual_pointwise(kit, h, filters, f"tower{i}_pointwise")
            h = kit.attention_pool(h, 2, name=f"tower{i}_pool")
        return h

    return block


def _transformer(hp: dict) -> Block:
    def block(kit: LayerKit, h: Any) -> Any:
        filters, rate = int(hp["filters"]), float(hp["dropout"])
        for i in range(1, int(hp["n_transformer"]) + 1):
            name = f"transformer{i}"
            a = kit.layer_norm(name=f"{name}_mha_norm")(h)
            a = kit.attention(filters, int(hp["heads"]), int(hp["key_size"]),
                              position_features=int(hp["position_features"]),
                              symmetric_positions=bool(hp["symmetric_positions"]),
                              attention_dropout=float(hp["attention_dropout"]),
                              name=f"{name}_mha")(a)
            a = keras.layers.Dropout(rate, name=f"{name}_mha_dropout")(a)
            h = keras.layers.Add(name=f"{name}_mha_add")([h, a])
            f = kit.layer_norm(name=f"{name}_ff_norm")(h)
            f = kit.conv(2 * filters, 1, name=f"{name}_ff_expand")(f)
            f = keras.layers.Dropout(rate, name=f"{name}_ff_dropout1")(f)
            f = kit.activation("relu", name=f"{name}_ff_relu")(f)
            f = kit.conv(filters, 1, name=f"{name}_ff_project")(f)
            f = keras.layers.Dropout(rate, name=f"{name}_ff_dropout2")(f)
            h = keras.layers.Add(name=f"{name}_ff_add")([h, f])
        return h

    return block


def _inputs(hp: dict) -> dict[str, Any]:
    _check(hp)
    return {"sequence": keras.Input(shape=(int(hp["input_length"]), 4), name="sequence")}


def _blocks(hp: dict) -> list[Block]:
    return [_stem(hp), _tower(hp), _transformer(hp)]


def _head(kit: LayerKit, h: Any, inputs: dict, hp: dict) -> dict[str, Any]:
    crop = (int(h.shape[1]) - int(hp["output_bins"])) // 2
    if crop:
        h = keras.layers.Cropping1D(crop, name="crop")(h)
    h = _conv_block(kit, h, 2 * int(hp["filters"]), 1, "final_pointwise")
    h = keras.layers.Dropout(float(hp["dropout"]) / 8, name="final_dropout")(h)
    h = kit.activation("gelu", name="final_gelu")(h)
    return kit.track_heads(h, int(hp["num_tracks"]), int(hp["num_stranded"]))


ENFORMER = Architecture(
    name="enformer",
    task=TRACKS,
    protocol="tracks",
    defaults={
        "input_length": 4096,
        "filters": 64,
        "channel_step": 2,
        "stem_kernel": 15,
        "tower_kernel": 5,
        "n_tower": 6,
        "n_transformer": 2,
        "heads": 4,
        "key_size": 16,
        "position_features": 24,
        "symmetric_positions": False,
        "dropout": 0.4,
        "attention_dropout": 0.05,
        "output_bins": 24,
        "num_tracks": 2,
        "num_stranded": 1,
    },
    make_inputs=_inputs,
    make_blocks=_blocks,
    head=_head,
    # blocks: 0 stem, 1 conv tower, 2 transformer stack; the head (crop, pointwise, track heads)
    # stays RC-shared in every hybrid
    hybrid_blocks={"early": (0,), "later": (0, 1), "all": (0, 1, 2)},
)

"""Basset and DeepSEA "Beluga" as Prakash et al. trained them: 400 bp in, one binary output per
cell line (spec/interpretation.md §1.8-1.10), each written once against the layer kit with the
helpers of :mod:`benchmark_rc.architectures.koo`; both train by the ``prakash`` protocol.

**basset** (§1.8, the spec's recommendation: the original widths). Three conv blocks "same"
zero padding -> conv -> batch norm -> ReLU -> max pool, 300/19 pool 3, 200/11 pool 4, 200/7
pool 4, no conv dropout (the last pool is the head's); head: the kit's read-out into
Dense(``dense_units`` = 1000) -> batch norm -> ReLU -> dropout 0.3, Dense(1000) -> batch norm ->
ReLU -> dropout 0.3, Dense(``num_tasks``) named ``logits``; the registry adds the sigmoid.

Padding and pooling: **"same" convs and pools that round up** (ceil, as the original's), the
variant the kit expresses exactly and equivariantly. Before each pool the map is zero-padded by
the same number of rows at both ends to a whole number of windows
(:func:`~benchmark_rc.architectures.koo.tile_for_pool`). Lengths at 400 bp: 400 -> pad 1+1 ->
402 -> pool 3 -> 134 -> pad 1+1 -> 136 -> pool 4 -> 34 -> pad 1+1 -> 36 -> pool 4 -> 9;
flatten 9 x 200 = 1800 (at 600 bp: 600 -> 200 -> 50 -> 13, the original's 2600). Torch's ceil
mode lets the last window run past the end (window i of pool 1 covers rows 3i..3i+2); here the
overhang is split (rows 3i-1..3i+1): as many windows, mirror-symmetric, so RC equivariance
holds; zero padding loses nothing because the pooled maps follow a ReLU. Input lengths whose
overhang is odd at some pool (e.g. 401) are refused with a UserError.

**beluga** (§1.9). Three blocks of two valid convs of width 8 with ReLU and no batch norm:
320, 320, dropout 0.2, max pool 4; 480, 480, dropout 0.2, max pool 4; 640, 640. Head: dropout
0.5 -> the kit's read-out (flatten) into Dense(``dense_units`` = 2003) -> ReLU ->
Dense(``num_tasks``) named ``logits``. The pools round down, as the original's, but the rows
left over are cropped evenly at both ends (Cropping1D) instead of being dropped at the end,
which keeps the windows mirror-symmetric: 400 bp: 393, 386 -> crop 1+1 -> 384 -> pool 96, 89,
82 -> crop 1+1 -> 80 -> pool 20, 13, 6: flatten 640 x 6 = 3840; 2000 bp: 1993, 1986 -> 1984 ->
496, 489, 482 -> 480 -> 120, 113, 106: flatten 640 x 106 = 67,840 (the spec's lengths). The
head has no pool; it calls the kit's ``max_pool`` with width 1 (the identity for the standard
and RC kits) because that is where the irrep kit symmetrises its map before a read-out.

Hyper-parameters: ``input_length`` (400; beluga also runs at the original 2000),
``num_tasks`` (1), ``filters`` (the first conv's width, 300 / 320; every deeper conv scales
with it, so ``rcps-half`` halves the whole network), ``dense_units`` (1000 / 2003).

Other differences from the originals: one output instead of 164 (Basset) / 2002 (Beluga);
Adam (the Prakash protocol) instead of Basset's RMSprop with max-norm clipping; the RC kit
merges the strands before the first Dense (the RCPS read-out, as for every architecture).
Hybrids (three blocks, like ``binary``): early = blocks 1-2, later = 2-3, all = 1-3.
"""

from __future__ import annotations

from typing import Any

import keras

from benchmark_rc.architectures.base import Architecture, Block
from benchmark_rc.architectures.kit import LayerKit
from benchmark_rc.architectures.koo import (
    ConvSpec,
    conv_block,
    scaled_widths,
    sequence_input,
    tile_for_pool,
)
from benchmark_rc.tasks import CLASSIFICATION

_THREE = {"early": (0, 1), "later": (1, 2), "all": (0, 1, 2)}

# ----------------------------------------------------------------------------------- basset

BASSET_CONVS = (ConvSpec(300, 19, "same", 0.0, 3, ceil_pool=True),
                ConvSpec(200, 11, "same", 0.0, 4, ceil_pool=True),
                ConvSpec(200, 7, "same", 0.0, 4, ceil_pool=True))
BASSET_DENSE_DROPOUT = 0.3


def _basset_blocks(hp: dict) -> list[Block]:
    w = scaled_widths("basset", [c.filters for c in BASSET_CONVS], hp["filters"])
    last = len(BASSET_CONVS) - 1
    return [conv_block(c, w[i], i + 1, "relu", i < last) for i, c in enumerate(BASSET_CONVS)]


def _bn_relu_dropout(h: Any, index: int) -> Any:
    h = keras.layers.BatchNormalization(name=f"dense{index}_bn")(h)
    h = keras.layers.Activation("relu", name=f"dense{index}_relu")(h)
    return keras.layers.Dropout(BASSET_DENSE_DROPOUT, name=f"dense{index}_dropout")(h)


def _basset_head(kit: LayerKit, h: Any, inputs: dict, hp: dict) -> Any:
    pool = int(BASSET_CONVS[-1].pool or 1)
    h = tile_for_pool(kit, h, pool, ceil=True, name="maxpool_pad")
    h = kit.max_pool(h, pool, pool, name="maxpool")
    units = int(hp["dense_units"])
    # the first hidden layer is the kit's read-out (strand merge first for RCPS); the second sees
    # an RC-invariant vector, so it is an ordinary Dense for every kit
    h = _bn_relu_dropout(kit.classification_readout(h, units, name="dense1"), 1)
    h = _bn_relu_dropout(keras.layers.Dense(units, name="dense2")(h), 2)
    return keras.layers.Dense(int(hp["num_tasks"]), name="logits")(h)


BASSET = Architecture(
    name="basset", task=CLASSIFICATION, protocol="prakash",
    defaults={"input_length": 400, "num_tasks": 1, "filters": BASSET_CONVS[0].filters,
              "dense_units": 1000},
    make_inputs=sequence_input, make_blocks=_basset_blocks, head=_basset_head,
    hybrid_blocks=_THREE)

# ----------------------------------------------------------------------------------- beluga

BELUGA_WIDTHS = (320, 480, 640)  # two convs each
BELUGA_KERNEL = 8
BELUGA_POOL = 4
BELUGA_CONV_DROPOUT = 0.2
BELUGA_HEAD_DROPOUT = 0.5


def _beluga_block(width: int, index: int, pool: bool) -> Block:
    """conv -> ReLU -> conv -> ReLU [-> dropout 0.2 -> even crop -> max pool 4]."""
    def block(kit: LayerKit, h: Any) -> Any:
        for j in (1, 2):
            h = kit.conv(width, BELUGA_KERNEL, name=f"conv{index}_{j}")(h)
            h = kit.activation("relu", name=f"relu{index}_{j}")(h)
        if pool:
            h = keras.layers.Dropout(BELUGA_CONV_DROPOUT, name=f"dropout{index}")(h)
            h = tile_for_pool(kit, h, BELUGA_POOL, ceil=False, name=f"pool{index}_crop")
            h = kit.pool(h, BELUGA_POOL, name=f"pool{index}")
        return h

    return block


def _beluga_blocks(hp: dict) -> list[Block]:
    w = scaled_widths("beluga", BELUGA_WIDTHS, hp["filters"])
    last = len(w) - 1
    return [_beluga_block(width, i + 1, i < last) for i, width in enumerate(w)]


def _beluga_head(kit: LayerKit, h: Any, inputs: dict, hp: dict) -> Any:
    h = keras.layers.Dropout(BELUGA_HEAD_DROPOUT, name="head_dropout")(h)
    h = kit.max_pool(h, 1, 1, name="readout_pool")  # identity; the irrep kit symmetrises here
    h = kit.classification_readout(h, int(hp["dense_units"]), name="dense")
    h = keras.layers.Activation("relu", name="dense_relu")(h)
    return keras.layers.Dense(int(hp["num_tasks"]), name="logits")(h)


BELUGA = Architecture(
    name="beluga", task=CLASSIFICATION, protocol="prakash",
    defaults={"input_length": 400, "num_tasks": 1, "filters": BELUGA_WIDTHS[0],
              "dense_units": 2003},
    make_inputs=sequence_input, make_blocks=_beluga_blocks, head=_beluga_head,
    hybrid_blocks=_THREE)

PRAKASH_ARCHITECTURES = (BASSET, BELUGA)

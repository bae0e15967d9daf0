"""Koo & Ploenzke's CNNs (Nat Mach Intell 2021; spec/interpretation.md §1.1–1.6), written once
against the layer kit: koo-cnn2, koo-cnn50, koo-cnn-deep (task 1, 12 outputs) and koo-cnn-local,
koo-cnn-dist (task 3, 1 output).

Every conv block is [zero padding for "same" convs] -> conv -> batch norm -> activation ->
dropout [-> trunk max pool]; the first block's activation is the hyper-parameter
``activation`` (:data:`KOO_ACTIVATIONS`), every later one ReLU. The head is the final max pool,
the kit's read-out into a hidden layer (``dense_units``, Flatten -> Dense for the standard kit,
strand merge first for the RC kit, symmetrised for the irrep kit) -> batch norm -> ReLU ->
dropout 0.5 -> Dense(num_tasks) named ``logits``; the registry adds the sigmoid.

Lengths (input 200): CNN-2 200 -> pool 2 -> 100 -> pool 50 -> 2; CNN-50 200 -> pool 50 -> 4 ->
pool 2 -> 2; CNN-deep / CNN-dist 200 -> pool 4 -> 50 -> conv k7 valid 44 -> pool 4 -> 11 ->
conv k3 valid 9 -> pool 3 -> 3; CNN-local 200 -> pool 50 -> 4 -> pool 2 -> 2. Every pool tiles its
input exactly, so Koo's "same" pools equal these valid ones.

Differences from the Keras code, none of which changes the function class: the kit's convs and
the hidden Dense carry a bias (Koo's have none), which the batch norm that follows absorbs; the
L2 penalty of 1e-6 on the kernels is not applied (the kit's layers take no regulariser).

Widths: ``filters`` is the first layer's filter count (32 for task 1, 24 for task 3); every
deeper conv width scales with it (``round(width * filters / default filters)``), so
``rcps-half`` halves every conv of the network, as it does for the paper's binary model.

RC strategies: the first-layer activation is element-wise, so RC-shared (RCPS) and conjoined
models stay exactly equivariant for every activation. The irrep kit applies the architecture's
activation to a (+1) channels only and an odd function (tanh) to b (-1) channels, so
``exponential`` (neither even nor odd) acts on a channels and b channels get tanh, which is
what equivariance allows; trunk pools of irrep maps use :class:`IrrepMaxPool1D`.

:class:`ConvSpec`, :func:`conv_block`, :func:`scaled_widths`, :func:`tile_for_pool` and
:func:`sequence_input` also build Basset and Beluga (:mod:`benchmark_rc.architectures.basset`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras

from benchmark_rc.architectures.base import Architecture, Block
from benchmark_rc.architectures.kit import LayerKit
from benchmark_rc.errors import UserError
from benchmark_rc.tasks import CLASSIFICATION

KOO_ACTIVATIONS = ("relu", "exponential", "sigmoid", "tanh", "softplus", "elu", "linear")


@dataclass(frozen=True)
class ConvSpec:
    """One conv block: width, kernel, padding ("same" | "valid"), dropout (0: no dropout
    layer), trunk pool after it (None: no pool; the last block's pool is the head's) and
    ``ceil_pool``: pad the map to a whole number of pool windows first (:func:`tile_for_pool`;
    Basset's pools round up, Koo's tile their input exactly)."""

    filters: int
    kernel: int
    padding: str
    dropout: float
    pool: int | None
    ceil_pool: bool = False


def check_activation(name: Any) -> str:
    """The first-layer activation ``name`` (one of :data:`KOO_ACTIVATIONS`); else UserError."""
    if not isinstance(name, str) or name.lower() not in KOO_ACTIVATIONS:
        raise UserError(f"activation must be one of {list(KOO_ACTIVATIONS)}, got {name!r}")
    return name.lower()


def scaled_widths(arch: str, widths: Sequence[int], filters: Any) -> list[int]:
    """Conv widths for the ``filters`` hyper-parameter: the first layer gets ``filters``, every
    deeper one ``round(width * filters / widths[0])`` (at least 1), so ``rcps-half`` halves the
    whole network. ``filters`` < 1 raises UserError naming ``arch``."""
    f = int(filters)
    if f < 1:
        raise UserError(f"{arch}: filters must be >= 1, got {f}")
    return [f] + [max(1, int(round(w * f / widths[0]))) for w in widths[1:]]


def tile_for_pool(kit: LayerKit, h: Any, pool_size: int, *, ceil: bool, name: str) -> Any:
    """``h`` padded (``ceil``) or cropped (floor) by the same number of rows at both ends to a
    whole number of ``pool_size`` windows; ``h`` itself when it tiles already.

    A pool whose windows do not tile its input leaves rows out at one end only, which breaks RC
    equivariance (the windows of RC(x) are not the mirrored windows of x); spreading the
    padding or cropping evenly keeps the windows mirror-symmetric, for every kit (so every
    strategy computes the same function class). Zero padding equals Torch's ceil mode (which
    pads one end with -inf) only up to window placement and only on non-negative maps (after a
    ReLU; the irrep kit's b channels pool by magnitude, where zero never wins either). An odd
    excess cannot be spread evenly: UserError."""
    length = int(h.shape[1])
    windows = -(-length // pool_size) if ceil else length // pool_size
    excess = abs(windows * pool_size - length)
    if excess == 0:
        return h
    if excess % 2 or windows < 1:
        way = "padded" if ceil else "cropped"
        raise UserError(
            f"{name}: a length-{length} map cannot be {way} evenly at both ends to a multiple of "
            f"the pool width {pool_size} (the RC-equivariant window layout needs an even excess, "
            f"here {excess}); choose another input_length")
    if ceil:
        return kit.pad(h, excess // 2, name=name)
    return keras.layers.Cropping1D(excess // 2, name=name)(h)


def sequence_input(hp: dict) -> dict[str, Any]:
    """The one input: one-hot DNA (N, ``input_length``, 4) named "sequence"."""
    return {"sequence": keras.Input(shape=(int(hp["input_length"]), 4), name="sequence")}


def conv_block(spec: ConvSpec, width: int, index: int, activation: str, pool: bool) -> Block:
    """The block of :class:`ConvSpec` ``spec`` with ``width`` filters, its layers numbered
    ``index``: [zero padding for "same"] -> conv -> batch norm -> ``activation`` [-> dropout]
    [-> ceil padding -> trunk pool, when ``pool`` and ``spec.pool``]."""
    def block(kit: LayerKit, h: Any) -> Any:
        if spec.padding == "same":
            h = kit.pad(h, (spec.kernel - 1) // 2, name=f"pad{index}")
        h = kit.conv(width, spec.kernel, name=f"conv{index}")(h)
        h = kit.batch_norm(name=f"bn{index}")(h)
        h = kit.activation(activation, name=f"act{index}")(h)
        if spec.dropout:
            h = keras.layers.Dropout(spec.dropout, name=f"dropout{index}")(h)
        if pool and spec.pool:
            if spec.ceil_pool:
                h = tile_for_pool(kit, h, spec.pool, ceil=True, name=f"pool{index}_pad")
            h = kit.pool(h, spec.pool, name=f"pool{index}")
        return h

    return block


def _make(name: str, task_outputs: int, convs: Sequence[ConvSpec], dense_units: int,
          hybrid_blocks: dict[str, tuple[int, ...]], protocol: str) -> Architecture:
    base_filters = convs[0].filters
    defaults = {"input_length": 200, "num_tasks": task_outputs, "activation": "relu",
                "filters": base_filters, "dense_units": dense_units}

    def make_blocks(hp: dict) -> list[Block]:
        first = check_activation(hp["activation"])
        w = scaled_widths(name, [c.filters for c in convs], hp["filters"])
        return [conv_block(c, w[i], i + 1, first if i == 0 else "relu", i < len(convs) - 1)
                for i, c in enumerate(convs)]

    def head(kit: LayerKit, h: Any, inputs: dict, hp: dict) -> Any:
        last = convs[-1].pool
        h = kit.max_pool(h, last, last, name="maxpool")
        h = kit.classification_readout(h, int(hp["dense_units"]), name="dense")
        h = keras.layers.BatchNormalization(name="dense_bn")(h)
        h = keras.layers.Activation("relu", name="dense_relu")(h)
        h = keras.layers.Dropout(0.5, name="dense_dropout")(h)
        return keras.layers.Dense(int(hp["num_tasks"]), name="logits")(h)

    return Architecture(name=name, task=CLASSIFICATION, protocol=protocol, defaults=defaults,
                        make_inputs=sequence_input, make_blocks=make_blocks, head=head,
                        hybrid_blocks=hybrid_blocks)


_TWO = {"early": (0,), "later": (1,), "all": (0, 1)}
_FOUR = {"early": (0, 1), "later": (2, 3), "all": (0, 1, 2, 3)}

KOO_CNN2 = _make("koo-cnn2", 12, [ConvSpec(32, 19, "same", 0.1, 2),
                                  ConvSpec(124, 5, "same", 0.1, 50)], 512, _TWO, "koo-task1")
KOO_CNN50 = _make("koo-cnn50", 12, [ConvSpec(32, 19, "same", 0.1, 50),
                                    ConvSpec(124, 5, "same", 0.1, 2)], 512, _TWO, "koo-task1")
KOO_CNN_DEEP = _make("koo-cnn-deep", 12, [ConvSpec(32, 19, "same", 0.1, None),
                                          ConvSpec(48, 7, "same", 0.2, 4),
                                          ConvSpec(96, 7, "valid", 0.3, 4),
                                          ConvSpec(128, 3, "valid", 0.4, 3)], 512, _FOUR,
                     "koo-task1")
KOO_CNN_LOCAL = _make("koo-cnn-local", 1, [ConvSpec(24, 19, "same", 0.1, 50),
                                           ConvSpec(48, 3, "same", 0.2, 2)], 96, _TWO,
                      "koo-task3")
KOO_CNN_DIST = _make("koo-cnn-dist", 1, [ConvSpec(24, 19, "same", 0.1, None),
                                         ConvSpec(32, 7, "same", 0.2, 4),
                                         ConvSpec(48, 7, "valid", 0.3, 4),
                                         ConvSpec(64, 3, "valid", 0.4, 3)], 96, _FOUR,
                     "koo-task3")

KOO_ARCHITECTURES = (KOO_CNN2, KOO_CNN50, KOO_CNN_DEEP, KOO_CNN_LOCAL, KOO_CNN_DIST)

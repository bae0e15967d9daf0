"""BPNet-style profile network (spec §4.3-4.4), written once against a layer kit.

Inputs: "sequence" (N, L, 4) (L = 1346), "control" (N, L - 346, 2) (strand-collapsed control:
raw, smoothed), "control_logcount" (N, 1). Trunk: Conv1D(F, 21, ReLU): L -> L - 20; then for
d = 2, 4, ..., 2^n: Conv1D(F, 3, dilation d, ReLU) added to the input centre-cropped by d each side
(1326 -> 1322 -> 1314 -> 1298 -> 1266 -> 1202 -> 1074). Heads (see LayerKit.profile_head /
count_head): profile logits (N, 1000, 2), log counts (N, 2). Task: stranded profiles
(:mod:`benchmark_rc.tasks.profile`: multinomial NLL on the profile, MSE on the counts weighted by
``counts_loss_weight``, 0 by default so val_loss is the profile MNLL).
"""

from __future__ import annotations

from typing import Any

import keras

from benchmark_rc.architectures.base import Architecture, Block
from benchmark_rc.architectures.kit import LayerKit
from benchmark_rc.tasks import PROFILE


def output_length(hp: dict) -> int:
    """Profile length: input - (first kernel - 1) - 2 * sum(dilations) - (profile kernel - 1)."""
    shrink = int(hp["first_kernel"]) - 1 + int(hp["profile_kernel"]) - 1
    shrink += sum(
        (int(hp["dilated_kernel"]) - 1) * 2**i for i in range(1, int(hp["n_dilated"]) + 1)
    )
    return int(hp["input_length"]) - shrink


def _inputs(hp: dict) -> dict[str, Any]:
    out_len = output_length(hp)
    if out_len < 1:
        raise ValueError(f"bpnet input_length {hp['input_length']} is too short")
    return {
        "sequence": keras.Input(shape=(int(hp["input_length"]), 4), name="sequence"),
        "control": keras.Input(shape=(out_len, 2), name="control"),
        "control_logcount": keras.Input(shape=(1,), name="control_logcount"),
    }


def _first_block(hp: dict) -> Block:
    def block(kit: LayerKit, h: Any) -> Any:
        return kit.conv(int(hp["filters"]), int(hp["first_kernel"]), activation="relu",
                        name="conv1")(h)

    return block


def _dilated_block(hp: dict, i: int) -> Block:
    dilation = 2**i
    crop = (int(hp["dilated_kernel"]) - 1) * dilation // 2

    def block(kit: LayerKit, h: Any) -> Any:
        conv = kit.conv(int(hp["filters"]), int(hp["dilated_kernel"]), dilation_rate=dilation,
                        activation="relu", name=f"dil_conv{i}")(h)
        cropped = keras.layers.Cropping1D(crop, name=f"crop{i}")(h)
        return keras.layers.Add(name=f"residual{i}")([conv, cropped])

    return block


def _blocks(hp: dict) -> list[Block]:
    return [_first_block(hp)] + [
        _dilated_block(hp, i) for i in range(1, int(hp["n_dilated"]) + 1)
    ]


def _head(kit: LayerKit, h: Any, inputs: dict, hp: dict) -> dict[str, Any]:
    return {
        "profile": kit.profile_head(h, inputs["control"], int(hp["profile_kernel"])),
        "counts": kit.count_head(h, inputs["control_logcount"]),
    }


BPNET = Architecture(
    name="bpnet",
    task=PROFILE,
    protocol="profile",
    defaults={
        "input_length": 1346,
        "filters": 64,
        "first_kernel": 21,
        "n_dilated": 6,
        "dilated_kernel": 3,
        "profile_kernel": 75,
        "counts_loss_weight": 0.0,
    },
    make_inputs=_inputs,
    make_blocks=_blocks,
    head=_head,
    # Residual blocks need equal channel counts, so the conjoined part is a prefix of the trunk:
    # early = first conv + 2 dilated layers, later = first conv + 4, all = whole trunk (paper
    # "Hybrid CJ/RCPS": conjoined trunk, RCPS heads).
    hybrid_blocks={"early": (0, 1, 2), "later": (0, 1, 2, 3, 4), "all": (0, 1, 2, 3, 4, 5, 6)},
)

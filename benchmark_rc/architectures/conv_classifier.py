"""The paper's classification networks (sim and binary), written once as a conv-stack classifier.

Trunk: n blocks Conv1D(filters, k_i) -> BatchNorm -> ReLU (valid padding). Head: MaxPool1D(pool,
stride) -> read-out (standard: Flatten -> Dense(T); RC kit: strand merge -> Flatten -> Dense(T), or
WeightedSum1D) -> logits (N, T). The registry adds the sigmoid.

* sim (spec §2.2): Conv1D(20, 21) -> BN -> ReLU -> MaxPool(20, 20) -> Dense(3); input 200 or 1000
  (lengths 180 -> 9, 980 -> 49).
* binary (spec §3.4): 3 x [Conv1D(16, k) -> BN -> ReLU], k = 15, 14, 14 -> MaxPool(40, 20) ->
  Dense(1); lengths 1000 -> 986 -> 973 -> 960 -> 47.
"""

from __future__ import annotations

from typing import Any

import keras

from benchmark_rc.architectures.base import Architecture, Block
from benchmark_rc.architectures.kit import LayerKit
from benchmark_rc.tasks import CLASSIFICATION


def _conv_bn_relu(filters: int, kernel_size: int, index: int) -> Block:
    def block(kit: LayerKit, h: Any) -> Any:
        h = kit.conv(filters, kernel_size, name=f"conv{index}")(h)
        h = kit.batch_norm(name=f"bn{index}")(h)
        return kit.activation("relu", name=f"relu{index}")(h)

    return block


def _inputs(hp: dict) -> dict[str, Any]:
    return {"sequence": keras.Input(shape=(int(hp["input_length"]), 4), name="sequence")}


def _blocks(hp: dict) -> list[Block]:
    filters = int(hp["filters"])
    return [
        _conv_bn_relu(filters, int(k), i + 1) for i, k in enumerate(hp["kernel_sizes"])
    ]


def _head(kit: LayerKit, h: Any, inputs: dict, hp: dict) -> Any:
    h = kit.max_pool(h, int(hp["pool_size"]), int(hp["pool_stride"]), name="maxpool")
    return kit.classification_readout(h, int(hp["num_tasks"]), name="logits")


def _make(name: str, defaults: dict, hybrid_blocks: dict) -> Architecture:
    return Architecture(
        name=name,
        task=CLASSIFICATION,
        protocol=name,  # the paper trains sim and binary by different protocols
        defaults=defaults,
        make_inputs=_inputs,
        make_blocks=_blocks,
        head=_head,
        hybrid_blocks=hybrid_blocks,
    )


SIM = _make(
    "sim",
    {
        "input_length": 200,
        "filters": 20,
        "kernel_sizes": (21,),
        "pool_size": 20,
        "pool_stride": 20,
        "num_tasks": 3,
    },
    # A single conv block: every hybrid conjoins it (the model is then CJ trunk + RCPS read-out).
    {"early": (0,), "later": (0,), "all": (0,)},
)

BINARY = _make(
    "binary",
    {
        "input_length": 1000,
        "filters": 16,
        "kernel_sizes": (15, 14, 14),
        "pool_size": 40,
        "pool_stride": 20,
        "num_tasks": 1,
    },
    # Paper CJRCPS-early = blocks 1,2 conjoined; -later = blocks 2,3; -all = 1,2,3.
    {"early": (0, 1), "later": (1, 2), "all": (0, 1, 2)},
)

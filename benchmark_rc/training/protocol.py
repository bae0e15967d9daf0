"""Training protocols (the table in :mod:`benchmark_rc.training`), run parameters and seeds.

A :class:`Protocol` says how one task is trained: batch size, epochs, early stopping, which
weights are kept and how the training data is drawn. :data:`PROTOCOLS` holds the paper's three;
a :class:`TrainConfig` names one (by default the architecture's) and may override its fields
(:meth:`TrainConfig.resolved_protocol`).

Determinism: :func:`set_determinism` calls ``keras.utils.set_random_seed`` and
``tf.config.experimental.enable_op_determinism``: with the same seed two runs give bit-identical
weights on CPU (keras3_notes §5).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from benchmark_rc.errors import UserError
from benchmark_rc.tasks import CLASSIFICATION, PROFILE, TRACKS, Task


@dataclass(frozen=True)
class Protocol:
    """How one task is trained (see the table in :mod:`benchmark_rc.training`)."""

    name: str
    task: Task
    batch_size: int
    epochs: int
    steps_per_epoch: int | None  # None: one pass over the training split
    patience: int | None  # early stopping on val_loss; None: never stop early
    select: str  # weights kept: "auroc" (max val auROC) | "loss" (min val_loss)
    upsample: float | None
    jitter: int
    rc_mode: str  # how RC augmentation is realised: "doubled" set or "within" batch
    eval_batch_size: int
    # early stopping (and the LR plateau) watch this: "val_loss" (lower is better), "val_auroc"
    # or "val_auprc" (higher is better)
    monitor: str = "val_loss"
    # (factor, patience, min_lr): multiply the learning rate by factor after patience epochs
    # without improvement of ``monitor`` (Keras ReduceLROnPlateau, min_delta 1e-4); None: never
    lr_plateau: tuple[float, int, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field, the task by name (for config.json)."""
        return dict(dataclasses.asdict(self), task=self.task.name)


PROTOCOLS: dict[str, Protocol] = {
    "sim": Protocol("sim", CLASSIFICATION, 500, 200, None, 10, "auroc", None, 0, "doubled",
                    1000),
    "binary": Protocol("binary", CLASSIFICATION, 100, 160, 50, None, "auroc", 0.2, 0, "within",
                       1000),
    "profile": Protocol("profile", PROFILE, 64, 200, None, 10, "loss", None, 200, "within", 64),
    # binned tracks (enformer): Poisson loss, kept by validation loss; small batches (long
    # inputs); no jitter unless the file stores a margin (then --jitter <= margin)
    "tracks": Protocol("tracks", TRACKS, 8, 100, None, 10, "loss", None, 0, "within", 16),
    # Koo & Ploenzke (spec/interpretation.md §1.7): Adam 1e-3, batch 100, <= 100 epochs, early
    # stopping (patience 20) and LR plateau (x0.2 after 5, min 1e-7) on val auPRC (task 1) or
    # val auROC (task 3). Koo keeps the last epoch's weights; here the best by the monitored
    # metric are kept (spec §7.5; select="last" gives Koo's).
    "koo-task1": Protocol("koo-task1", CLASSIFICATION, 100, 100, None, 20, "auprc", None, 0,
                          "doubled", 1000, monitor="val_auprc", lr_plateau=(0.2, 5, 1e-7)),
    "koo-task3": Protocol("koo-task3", CLASSIFICATION, 100, 100, None, 20, "auroc", None, 0,
                          "doubled", 1000, monitor="val_auroc", lr_plateau=(0.2, 5, 1e-7)),
    # Prakash et al. (spec/interpretation.md §1.10; basset, beluga): Adam 1e-3, batch 300, binary
    # cross-entropy, early stopping, at most 30,000 batches = 30 epochs of 1000 batches. The
    # patience and the monitored metric are not in the spec: here 10 epochs (10,000 batches)
    # without a better val auROC, and the weights of the best val auROC are kept.
    "prakash": Protocol("prakash", CLASSIFICATION, 300, 30, 1000, 10, "auroc", None, 0,
                        "doubled", 1000, monitor="val_auroc"),
}
SELECTS = ("auroc", "auprc", "loss", "last")
MONITORS = ("val_loss", "val_auroc", "val_auprc")
_OVERRIDABLE = ("batch_size", "epochs", "steps_per_epoch", "patience", "select", "upsample",
                "jitter", "eval_batch_size")


@dataclass
class TrainConfig:
    """Every parameter of one training run. ``None`` fields take the protocol default."""

    data: str
    arch: str
    strategy: str
    seed: int = 0
    protocol: str | None = None  # default: from the architecture (sim, binary, bpnet->profile)
    batch_size: int | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    patience: int | None = None
    select: str | None = None
    upsample: float | None = None
    jitter: int | None = None
    eval_batch_size: int | None = None
    max_valid: int | None = None  # use only the first N validation rows (tests, quick presets)
    hparams: dict[str, Any] = field(default_factory=dict)
    distribute: str | None = None  # None | "mirrored"
    # "default" | "original": the layers of the original Keras 2 / keras-genomics stack
    # (architectures/kit.py); passed to build_model as the ``compat`` hyper-parameter
    compat: str = "default"

    def __post_init__(self) -> None:
        """A ``compat`` given among ``hparams`` moves to :attr:`compat` (one home); a conflict
        with a non-default :attr:`compat` raises UserError; None means "default"."""
        from benchmark_rc.architectures.kit import check_compat

        compat = check_compat(self.compat)
        if "compat" in self.hparams:
            self.hparams = dict(self.hparams)
            given = check_compat(self.hparams.pop("compat"))
            if compat != "default" and given != compat:
                raise UserError(f"compat {compat!r} conflicts with hyper-parameter compat "
                                f"{given!r}; give it once")
            compat = given
        self.compat = compat

    def resolved_protocol(self) -> Protocol:
        """The protocol with this config's overrides applied."""
        from benchmark_rc.architectures import get_architecture

        name = self.protocol or get_architecture(self.arch).protocol
        if name not in PROTOCOLS:
            raise UserError(f"no training protocol {name!r} (arch {self.arch!r}); choose one of "
                            f"{list(PROTOCOLS)}")
        base = PROTOCOLS[name]
        overrides = {k: getattr(self, k) for k in _OVERRIDABLE if getattr(self, k) is not None}
        if "patience" in overrides and overrides["patience"] <= 0:
            overrides["patience"] = None  # 0 / negative on the command line: no early stopping
        if "upsample" in overrides and overrides["upsample"] <= 0:
            overrides["upsample"] = None
        proto = dataclasses.replace(base, **overrides)
        if proto.select not in SELECTS:
            raise UserError(f"select must be one of {SELECTS}, got {proto.select!r}")
        if proto.monitor not in MONITORS:
            raise UserError(f"monitor must be one of {MONITORS}, got {proto.monitor!r}")
        if (proto.select in ("auroc", "auprc") or proto.monitor != "val_loss") \
                and proto.task.selection != "auroc":
            raise UserError(f"{proto.task.name} models are selected by validation loss "
                            "(select='loss')")
        return proto

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def set_determinism(seed: int) -> None:
    """Seed Python, numpy and TensorFlow and turn on TF op determinism (bit-identical on CPU)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()

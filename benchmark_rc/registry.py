"""Model registry: build_model / list_* / conjoin / logits_model / load_model (the public API of
DESIGN.md).

Every sim/binary model ends with a layer named ``logits`` (N, T) followed by a sigmoid layer
``probabilities``; bpnet models output a dict of logits ``profile`` (N, 1000, 2) and log counts
``counts`` (N, 2). Models are compiled with Adam(learning_rate) and loss objects (string losses
break .h5 loading, keras3_notes §1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras

from benchmark_rc.architectures import ARCHITECTURES, Architecture, get_architecture
from benchmark_rc.architectures.base import conjoin_network
from benchmark_rc.errors import UserError
from benchmark_rc.strategies import STRATEGIES, build_logits_network, get_strategy, merge_modes


def list_architectures() -> list[str]:
    """Registered architecture names."""
    return list(ARCHITECTURES)


def list_strategies(arch: str | None = None) -> list[str]:
    """Registered strategy names (DESIGN.md order); with ``arch``, those it supports (an
    architecture may refuse some: :attr:`Architecture.unsupported`)."""
    if arch is None:
        return list(STRATEGIES)
    refused = get_architecture(arch).unsupported
    return [name for name in STRATEGIES if name not in refused]


def load_model(path: str | os.PathLike, compile: bool = True) -> keras.Model:
    """Load a model saved by benchmark_rc: a .keras or .h5 file, or a run directory (its
    model.keras).

    Every custom layer and loss is registered first (importing this module does it), and the file
    is read with Keras' default ``safe_mode=True``: no pickled code runs. ``compile=False`` skips
    restoring the optimizer and losses, for prediction only. Raises :class:`UserError` naming the
    file when it is missing or is not a loadable Keras model.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise UserError(f"{path}: no such model file (expected a .keras or .h5 file or a run "
                        "directory holding model.keras)")
    try:
        return keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as err:  # Keras raises ValueError, TypeError, OSError, KeyError, ...
        raise UserError(f"{path}: cannot be loaded as a Keras model ({err})") from err


def _finalize(net: keras.Model, arch: Architecture, hp: dict[str, Any]) -> keras.Model:
    """The task's user-facing model (e.g. a sigmoid on classification logits), compiled."""
    model = arch.task.finalize(net)
    loss, weights = arch.task.make_loss(hp)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(hp["learning_rate"])),
        loss=loss,
        loss_weights=weights,
    )
    return model


def build_model(arch: str, strategy: str, **hparams: Any) -> keras.Model:
    """Build and compile ``strategy`` on ``arch``.

    Args:
        arch: one of :func:`list_architectures`.
        strategy: one of :func:`list_strategies`. For the post-hoc strategies this returns the
            model to train (that of ``get_strategy(strategy).trained_as``, with RC
            augmentation); ``get_strategy(strategy).after_training(trained, arch)`` conjoins it.
        **hparams: architecture hyper-parameters (e.g. ``input_length`` for sim, ``filters``),
            plus ``learning_rate`` (1e-3) and ``seed`` (None: keras.utils.set_random_seed(seed)
            is called before building when given), plus the strategy's own
            (``get_strategy(strategy).hparam_defaults``, e.g. ``irrep_a_fraction`` and ``kmer``
            of the irrep strategies).

    Returns:
        A compiled keras.Model. sim/binary: (N, L, 4) -> sigmoid probabilities (N, T).
        bpnet: dict inputs "sequence", "control", "control_logcount" -> dict "profile" (logits),
        "counts".
    """
    spec = get_architecture(arch)
    strat = get_strategy(strategy)
    spec.check_strategy(strategy)
    hp = spec.hparams(hparams, strat.hparam_defaults)
    if hp["seed"] is not None:
        keras.utils.set_random_seed(int(hp["seed"]))
    net = build_logits_network(strat, spec, hp, name=f"{arch}_{strategy}".replace("-", "_"))
    return _finalize(net, spec, hp)


def logits_model(model: keras.Model) -> keras.Model:
    """Model with the same inputs giving the pre-sigmoid logits (bpnet: the model itself).

    Works on models freshly loaded from .h5 / .keras: it looks up the layer named ``logits``.
    """
    names = {layer.name for layer in model.layers}
    if "logits" in names:
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        return keras.Model(inputs, model.get_layer("logits").output, name=f"{model.name}_logits")
    if {"profile", "counts"} <= names or {"tracks", "stranded_tracks"} <= names:
        return model  # profile logits / track rates: the outputs themselves
    raise UserError(
        f"model {model.name!r} has no layer named 'logits' (sim/binary) nor 'profile'/'counts' "
        "outputs (bpnet); it was not built by benchmark_rc"
    )


def conjoin(model: keras.Model, arch: str | Architecture, mode: str = "logit",
            **hparams: Any) -> keras.Model:
    """Post-hoc conjoined model f(x) = merge(g(x), RC_out(g(RC x))) of a trained model.

    Args:
        model: a single-strand model of ``arch`` (built by :func:`build_model`, possibly loaded
            from .h5 / .keras).
        arch: its architecture name (or :class:`Architecture`).
        mode: "logit" (average logits, CJ-posthoc), "prob" (average probabilities:
            sigmoids for sim/binary, per-strand softmax profiles for bpnet; counts averaged),
            "max" (element-wise max of logits).
        **hparams: the hyper-parameters ``model`` was built with, for compiling the result the
            same way (e.g. ``counts_loss_weight``); the learning rate defaults to that of the
            model's optimizer when it is compiled.

    Returns:
        A compiled model with the same inputs and outputs as ``model``. For bpnet the RC branch
        gets the sequence RC'd, the control reversed along length only and the control log count
        unchanged; its profile is mapped back (reverse positions, swap strands) and its counts
        swapped before merging.
    """
    spec = _architecture(arch)
    merges = merge_modes(spec, mode)
    g = logits_model(model)
    net = conjoin_network(g, spec, merges, name=f"{model.name}_conjoined_{mode}")
    if getattr(model, "optimizer", None) is not None and "learning_rate" not in hparams:
        hparams["learning_rate"] = float(keras.ops.convert_to_numpy(
            model.optimizer.learning_rate))
    hp = spec.hparams(hparams)
    return _finalize(net, spec, hp)


def rc_inputs(arch: str | Architecture, x: Any) -> Any:
    """RC of model inputs of ``arch`` by its task's rules: the sequence array alone for
    one-input models, or a dict by input name (bpnet: sequence RC'd, control reversed along
    length only, control log count unchanged). numpy arrays or tensors."""
    return _architecture(arch).task.rc_inputs(x)


def rc_outputs(arch: str | Architecture, y: Any) -> Any:
    """RC map of logits outputs of ``arch`` by its task's rules: (N, T) logits of one-output
    models unchanged; a dict for bpnet (profile reversed + strands swapped, counts swapped)."""
    return _architecture(arch).task.rc_outputs(y)


def _architecture(arch: str | Architecture) -> Architecture:
    return arch if isinstance(arch, Architecture) else get_architecture(arch)

"""Per-weight options of the RC layers, exposed as Keras' own layers expose them.

A layer's weights form groups (``kernel``, ``bias``, ``gamma``, ...); each group has the attributes
``<group>_initializer``, ``<group>_regularizer`` and ``<group>_constraint`` (Keras' batch norm
gives its moving statistics an initializer only). :func:`set_weight_options` standardises them
with ``keras.initializers/regularizers/constraints.get``, :func:`add_group_weight` hands them to
``add_weight`` and :func:`weight_config` serialises them for ``get_config``;
:class:`WeightGroupsLayer` does all of it for a layer that takes the options as keyword arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

OPTION_KINDS = ("initializer", "regularizer", "constraint")
_MODULES = {
    "initializer": keras.initializers,
    "regularizer": keras.regularizers,
    "constraint": keras.constraints,
}


def set_weight_options(
    layer: keras.layers.Layer,
    group: str,
    initializer: Any = None,
    regularizer: Any = None,
    constraint: Any = None,
) -> None:
    """Set ``<group>_initializer / _regularizer / _constraint`` on ``layer`` (Keras ``get``)."""
    for kind, value in zip(OPTION_KINDS, (initializer, regularizer, constraint), strict=True):
        setattr(layer, f"{group}_{kind}", _MODULES[kind].get(value))


def weight_config(
    layer: keras.layers.Layer, groups: tuple[str, ...], kinds: tuple[str, ...] = OPTION_KINDS
) -> dict[str, Any]:
    """The serialised ``<group>_<kind>`` option of each group, for ``get_config``."""
    return {
        f"{group}_{kind}": _MODULES[kind].serialize(getattr(layer, f"{group}_{kind}"))
        for group in groups
        for kind in kinds
    }


def add_group_weight(
    layer: keras.layers.Layer, name: str, shape: tuple, group: str, **kwargs: Any
) -> Any:
    """``layer.add_weight`` with the group's initializer and, where it has them, its regularizer
    and constraint (extra keyword arguments, e.g. ``trainable``, pass through)."""
    return layer.add_weight(
        name=name,
        shape=shape,
        initializer=getattr(layer, f"{group}_initializer"),
        regularizer=getattr(layer, f"{group}_regularizer", None),
        constraint=getattr(layer, f"{group}_constraint", None),
        **kwargs,
    )


class WeightGroupsLayer(keras.layers.Layer):
    """A layer whose weight groups (:attr:`weight_groups`) take ``<group>_initializer /
    _regularizer / _constraint`` keyword arguments, standardised once here and written back by
    ``get_config``. A subclass passes its groups' default initializers to ``__init__``; they are
    built before any option is standardised, in the order given, so unseeded random initializers
    draw their seeds in a fixed order."""

    weight_groups: tuple[str, ...] = ()

    def __init__(self, default_initializers: Mapping[str, Any], **kwargs: Any) -> None:
        for group, initializer in default_initializers.items():
            kwargs.setdefault(f"{group}_initializer", initializer)
        options = {f"{group}_{kind}": _MODULES[kind].get(kwargs.pop(f"{group}_{kind}", None))
                   for group in self.weight_groups for kind in OPTION_KINDS}
        super().__init__(**kwargs)
        for name, value in options.items():
            setattr(self, name, value)

    def get_config(self) -> dict:
        return {**super().get_config(), **weight_config(self, self.weight_groups)}

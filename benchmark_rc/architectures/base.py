"""Architecture description + the two generic builders (per-block kit plan, conjoined wrapper).

An :class:`Architecture` is written once: its task, its inputs, its trunk as a list of blocks
``block(kit, h) -> h``, and a head ``head(kit, h, inputs, hp) -> logits``. The task
(:mod:`benchmark_rc.tasks`) says everything that is not the network: input and output names and
their RC rules, the loss, the evaluation. :func:`build_network`
assembles it under a per-block plan (``"standard"``, ``"rc"`` or ``"cj"``: a run of consecutive
"cj" blocks becomes one shared standard sub-network g applied to h and RC(h) and concatenated as
[g(h), RC(g(RC h))], which is a regular map). :func:`conjoin_network` wraps a whole logits model
g as merge(g(x), RC_out(g(RC_in x))).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras

from benchmark_rc.architectures.kit import STANDARD_KIT, LayerKit, check_compat
from benchmark_rc.errors import UserError
from benchmark_rc.layers import RCTransform, StrandMerge
from benchmark_rc.tasks import Task

Block = Callable[[LayerKit, Any], Any]

# compat: "default" (the intended layers) or "original" (the layers of the original Keras 2 /
# keras-genomics stack where they change results; architectures/kit.py says which)
COMMON_DEFAULTS: dict[str, Any] = {"learning_rate": 1e-3, "seed": None, "compat": "default"}
PLAN_KINDS = ("standard", "rc", "cj")


@dataclass(frozen=True)
class Architecture:
    """One network, written once against a :class:`LayerKit`.

    Attributes:
        name: registry name ("sim", "binary", "bpnet").
        task: the :class:`~benchmark_rc.tasks.Task` it solves (input and output names, RC rules,
            loss, evaluation).
        protocol: name of its default training protocol (``benchmark_rc.training.PROTOCOLS``).
        defaults: hyper-parameters and their defaults (``learning_rate``, ``seed`` and ``compat``
            are common: :data:`COMMON_DEFAULTS`).
        make_inputs: hp -> dict name -> keras.Input, in the documented order; the names are the
            task's model inputs and "sequence" is the DNA input.
        make_blocks: hp -> list of trunk blocks ``block(kit, h) -> h``.
        head: (kit, h, inputs, hp) -> logits: a tensor for a single-output task (a layer named
            as the task's one output), else a dict by the task's output names.
        hybrid_blocks: hybrid variant ("early", "later", "all") -> indices of conjoined blocks.
        unsupported: strategy name -> why this architecture refuses it (``build_model`` raises
            UserError with the reason; ``list_strategies(arch)`` leaves it out).
    """

    name: str
    task: Task
    protocol: str
    defaults: Mapping[str, Any]
    make_inputs: Callable[[dict], dict[str, Any]]
    make_blocks: Callable[[dict], list[Block]]
    head: Callable[[LayerKit, Any, dict, dict], Any]
    hybrid_blocks: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    unsupported: Mapping[str, str] = field(default_factory=dict)

    def check_strategy(self, strategy: str) -> None:
        """Raise UserError when this architecture refuses ``strategy`` (:attr:`unsupported`)."""
        if strategy in self.unsupported:
            raise UserError(f"architecture {self.name!r} does not support strategy "
                            f"{strategy!r}: {self.unsupported[strategy]}")

    def hparams(self, overrides: Mapping[str, Any],
                extra_defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults (with ``extra_defaults``, e.g. a strategy's own hyper-parameters) updated
        with ``overrides``; unknown names raise :class:`UserError`.

        ``compat`` is checked and None normalised to "default"."""
        known = {**COMMON_DEFAULTS, **self.defaults, **(extra_defaults or {})}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise UserError(
                f"unknown hyper-parameter(s) {unknown} for architecture {self.name!r}; "
                f"known: {sorted(known)}"
            )
        hp = {**known, **overrides}
        hp["compat"] = check_compat(hp["compat"])
        return hp


def _model_io(inputs: dict[str, Any], outputs: Any) -> tuple[Any, Any]:
    """Model inputs: the one input alone, or a list in the documented order (``make_inputs``'
    order, e.g. sequence, control, control_logcount) so that callers may pass a list in that
    order or a dict by name; a dict of inputs would make Keras sort them by name."""
    return (next(iter(inputs.values())) if len(inputs) == 1 else list(inputs.values())), outputs


def build_network(
    arch: Architecture,
    hp: dict[str, Any],
    plan: Sequence[str],
    head_kit: LayerKit,
    name: str,
) -> keras.Model:
    """Build the logits network of ``arch`` under a per-block ``plan``.

    ``plan[i]`` in {"standard", "rc", "cj"} picks the kit of trunk block i ("rc" uses
    ``head_kit``, which must then be RC). Every kit used (``head_kit`` and the standard kit of
    "standard" and "cj" blocks) is put in the compat mode ``hp["compat"]`` (absent: "default").
    Returns a model from the arch inputs to the logits (classification: (N, T) tensor from the
    layer named "logits"; profile: dict "profile", "counts").
    """
    head_kit = head_kit.with_compat(hp.get("compat"))
    standard_kit = STANDARD_KIT.with_compat(hp.get("compat"))
    inputs = arch.make_inputs(hp)
    if list(inputs) != list(arch.task.model_inputs):
        raise ValueError(f"{arch.name}: inputs {list(inputs)} differ from its task's "
                         f"{list(arch.task.model_inputs)}")
    blocks = arch.make_blocks(hp)
    if len(plan) != len(blocks) or any(p not in PLAN_KINDS for p in plan):
        raise ValueError(f"plan {plan!r} must give one of {PLAN_KINDS} per block ({len(blocks)})")
    h = (head_kit if plan[0] == "rc" else standard_kit).embed(inputs["sequence"])
    i = 0
    while i < len(blocks):
        if plan[i] != "cj":
            kit = standard_kit if plan[i] == "standard" else head_kit
            h = blocks[i](kit, h)
            i += 1
            continue
        j = i
        while j < len(blocks) and plan[j] == "cj":
            j += 1
        sub_in = keras.Input(shape=tuple(h.shape[1:]), name=f"cj_in_{i}_{j - 1}")
        t = sub_in
        for k in range(i, j):
            t = blocks[k](standard_kit, t)
        g = keras.Model(sub_in, t, name=f"conjoined_blocks_{i}_{j - 1}")
        fwd = g(h)
        rev = g(RCTransform("regular", name=f"cj_rc_in_{i}_{j - 1}")(h))
        rev = RCTransform("regular", name=f"cj_rc_out_{i}_{j - 1}")(rev)
        h = keras.layers.Concatenate(name=f"cj_concat_{i}_{j - 1}")([fwd, rev])
        i = j
    logits = arch.head(head_kit, h, inputs, hp)
    return keras.Model(*_model_io(inputs, logits), name=name)


def _as_output_dict(g: keras.Model, out: Any) -> dict[str, Any]:
    if isinstance(out, dict):
        return dict(out)
    if isinstance(out, list | tuple):
        return dict(zip(g.output_names, out, strict=True))
    return {g.output_names[0]: out}


def conjoin_network(
    g: keras.Model, arch: Architecture, merges: Mapping[str, str], name: str
) -> keras.Model:
    """merge(g(x), RC_out(g(RC_in x))) with one shared ``g`` (a logits model of ``arch``).

    ``merges`` maps each logits output name to a :class:`StrandMerge` mode; the inputs and
    outputs are RC-mapped by the rules of ``arch.task`` (DNA regular RC, a profile control
    reversed along length only, scalars unchanged; invariant logits unchanged, profiles reversed
    with strands swapped, counts swapped).
    """
    task = arch.task
    inputs = {
        t.name: keras.Input(shape=tuple(t.shape[1:]), name=t.name, dtype=t.dtype)
        for t in g.inputs
    }
    rc_inputs = {
        key: RCTransform(task.input_rules[key], name=f"rc_input_{key}")(t)
        for key, t in inputs.items()
    }
    fwd = _as_output_dict(g, g(_model_io(inputs, None)[0]))
    rev = _as_output_dict(g, g(_model_io(rc_inputs, None)[0]))
    merged = {}
    for key, mode in merges.items():
        back = RCTransform(task.output_rules[key], name=f"rc_output_{key}")(rev[key])
        merged[key] = StrandMerge(mode, axis=1, name=key)([fwd[key], back])
    outputs = next(iter(merged.values())) if len(merged) == 1 else merged
    return keras.Model(*_model_io(inputs, outputs), name=name)

"""Import Keras 2 / keras-genomics .h5 models (the original benchmark's stack: TensorFlow 1.x,
Keras 2.2.4, keras-genomics 0.1.2.1) as Keras 3 models made of registered layers.

:func:`load_legacy_model` reads the file with h5py only: the ``model_config`` JSON attribute and
the ``model_weights`` groups. Nothing in the file is executed, unpickled or unmarshalled, so the
result loads with ``keras.models.load_model`` in the default safe mode. Layer mapping
(docs/legacy.md):

* Keras 2 layers -> the same Keras 3 layers with the stored weights: InputLayer, Conv1D, Dense,
  BatchNormalization (its moving statistics as stored), Activation, MaxPooling1D,
  AveragePooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D, Flatten, Dropout, Reshape,
  Permute, Cropping1D, ZeroPadding1D, Concatenate, Add, Subtract, Multiply, Average, Maximum,
  Minimum, and nested Sequential / functional models.
* keras-genomics ``RevCompConv1D`` -> :class:`~benchmark_rc.layers.KerasGenomicsRevCompConv1D`
  with the stored kernel and bias: it computes keras-genomics' 2·conv + bias in the same order,
  so outputs agree and the file's weights are kept as they are; and a fine-tuned model trains as
  the original did (folding the factor 2 into the kernel would give the same outputs but half
  the effective step size of the original under Adam).
* ``RevCompConv1DBatchNorm`` -> :class:`~benchmark_rc.layers.KerasGenomicsRevCompConv1DBatchNorm`
  with gamma, beta and the stored moving statistics: the layer always normalises with them, as
  the original did under Keras 2.2.4 in training and inference (spec/paper.md §6.2).
* The paper's ``RevCompSumPool`` -> :class:`~benchmark_rc.layers.RevCompSumPool`.
* ``WeightedSum1D(input_is_revcomp_conv=True)`` + the Dense after it, and
  ``DenseAfterRevcompConv1D`` -> :class:`~benchmark_rc.layers.WeightedSum1D` (RC-tied read-out;
  the Dense weights folded in), then, for a non-zero bias, a Dense with an identity kernel that
  carries the bias, then the activation.
* Lambda layers, recognised by their place in the graph (their code is never read):
  the Siamese RC of a sequence input (its output and the input feed the same shared layer) ->
  :class:`~benchmark_rc.layers.RCTransform` ("regular") and the Average of the two branches ->
  :class:`~benchmark_rc.layers.StrandMerge` ("mean"); a residual centre crop (explicit
  ``output_shape``, added to a convolution of the same tensor) -> ``Cropping1D`` with the
  original's split (w // 2 left, the rest right); the channel reversal that heads the symmetric
  concatenation ``[lambda_of_c, ..., c]`` of the RCPS BPNet heads -> RCTransform ("strands").

Names: a single-output model ending in a sigmoid gets benchmark_rc's "logits" (an Identity on
the pre-sigmoid tensor) and "probabilities" layers, and its single one-hot input is named
"sequence"; a BPNet-shaped model (inputs (L, 4), (P, 2), (1,); outputs (P, 2) and (2,)) gets the
inputs "sequence", "control", "control_logcount" in that order and the outputs "profile" and
"counts", so :func:`benchmark_rc.conjoin` and :mod:`benchmark_rc.attribution` take the imported
models like their own. Anything else is refused with a :class:`UserError` naming the file, the
layer and what is supported.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from benchmark_rc.errors import UserError
from benchmark_rc.layers import (
    KerasGenomicsRevCompConv1D,
    KerasGenomicsRevCompConv1DBatchNorm,
    RCTransform,
    RevCompSumPool,
    StrandMerge,
    WeightedSum1D,
)

# Activations whose Keras 2.2.4 and Keras 3 definitions agree (hard_sigmoid does not).
ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus",
               "softsign", "exponential")
MODEL_CLASSES = ("Sequential", "Model", "Functional")
MERGE_LAYERS = {"Add": keras.layers.Add, "Subtract": keras.layers.Subtract,
                "Multiply": keras.layers.Multiply, "Average": keras.layers.Average,
                "Maximum": keras.layers.Maximum, "Minimum": keras.layers.Minimum}
CONV_CLASSES = ("Conv1D", "RevCompConv1D")
# Settings that only shape training; weights come from the file, so initialisers are dropped
# silently and these with a warning.
TRAINING_ONLY = ("kernel_constraint", "bias_constraint", "beta_constraint", "gamma_constraint",
                 "activity_regularizer")
LAMBDA_PATTERNS = (
    "the Siamese RC of a sequence input (a Lambda of x and x feed the same shared layer or model)",
    "a residual centre crop (Lambda with output_shape, added to a convolution of its input)",
    "the channel reversal heading a symmetric concatenation [lambda_of_c, ..., c] (RCPS BPNet)",
)


@dataclass(frozen=True)
class _Ref:
    """Output ``tensor`` of call ``node`` of layer ``layer`` (node = position in its calls)."""

    layer: str
    node: int
    tensor: int


@dataclass(eq=False)  # identity: layers and graphs are compared as objects
class _Layer:
    """One Keras 2 layer of a (possibly nested) model: its calls and stored weights."""

    name: str
    class_name: str
    config: dict[str, Any]
    nodes: list[list[_Ref]] = field(default_factory=list)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    graph: _Graph | None = None  # nested Sequential / functional model


@dataclass(eq=False)  # identity: layers and graphs are compared as objects
class _Graph:
    """A Keras 2 model: layers by name (config order), inputs and outputs, consumers by call."""

    name: str
    layers: dict[str, _Layer]
    inputs: list[_Ref]
    outputs: list[_Ref]
    consumers: dict[tuple[str, int], list[tuple[str, int]]] = field(default_factory=dict)

    def producer(self, ref: _Ref) -> _Layer:
        return self.layers[ref.layer]

    def uses(self, ref: _Ref) -> list[tuple[_Layer, int]]:
        """The (layer, call) pairs whose inputs include any output of ``ref``'s call."""
        return [(self.layers[name], node)
                for name, node in self.consumers.get((ref.layer, ref.node), [])]


# ---------------------------------------------------------------------------------------------
# reading the file
# ---------------------------------------------------------------------------------------------
def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes | np.bytes_) else str(value)


def _split_weight_name(name: str, group: str) -> tuple[str, str]:
    """'conv1d_1/kernel:0' -> ('conv1d_1', 'kernel'): the owning layer and the weight."""
    parts = name.split(":")[0].split("/")
    return (parts[-2] if len(parts) > 1 else group), parts[-1]


def _read_file(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, dict[str, np.ndarray]]]]:
    """The model_config JSON and the weights: top-level layer group -> owning layer -> weight."""
    import h5py

    if not path.is_file():
        raise UserError(f"{path}: no such file (expected a Keras 2 .h5 model)")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise UserError(f"{path}: not an HDF5 file ({err}); expected a Keras 2 model saved with "
                        "model.save('....h5')") from err
    with handle as f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise UserError(f"{path}: no 'model_config' attribute: not a whole Keras model (a "
                            "weights-only file from save_weights, or a dataset?); expected a "
                            "Keras 2 model saved with model.save('....h5')")
        version = _text(f.attrs.get("keras_version", ""))
        if version and not version.startswith("2."):
            raise UserError(f"{path}: saved by Keras {version}, not Keras 2; load it with "
                            "benchmark_rc.load_model or keras.models.load_model")
        backend = _text(f.attrs.get("backend", "tensorflow"))
        if backend != "tensorflow":
            raise UserError(f"{path}: saved with the {backend!r} backend; only TensorFlow-backend "
                            "Keras 2 files are supported (other backends store convolution "
                            "kernels flipped)")
        try:
            config = json.loads(_text(raw))
        except ValueError as err:
            raise UserError(f"{path}: the model_config attribute is not valid JSON ({err})") \
                from err
        root = f["model_weights"] if "model_weights" in f else f
        weights: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        for group_name, group in root.items():
            if not isinstance(group, h5py.Group):
                continue
            owners: dict[str, dict[str, np.ndarray]] = {}
            for weight_name in (_text(n) for n in group.attrs.get("weight_names", [])):
                data = group[weight_name]
                if data.dtype.kind != "f":
                    raise UserError(f"{path}: weight {group_name}/{weight_name} has dtype "
                                    f"{data.dtype}; expected floating point")
                owner, short = _split_weight_name(weight_name, group_name)
                owners.setdefault(owner, {})[short] = np.asarray(data)
            weights[group_name] = owners
    if not isinstance(config, dict) or config.get("class_name") not in MODEL_CLASSES:
        found = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise UserError(f"{path}: model_config describes a {found!r}; expected one of "
                        f"{', '.join(MODEL_CLASSES)}")
    return config, weights


# ---------------------------------------------------------------------------------------------
# parsing the configuration into a graph
# ---------------------------------------------------------------------------------------------
def _parse_graph(path: Path, model: dict[str, Any],
                 weights: Callable[[str], dict[str, np.ndarray]]) -> _Graph:
    """A Sequential or functional Keras 2 model config as a :class:`_Graph`; ``weights(name)``
    gives the stored weights of a (non-model) layer."""
    kind, config = model["class_name"], model.get("config")
    if kind == "Sequential":
        entries = config if isinstance(config, list) else config.get("layers", [])
        name = "sequential" if isinstance(config, list) else config.get("name", "sequential")
        return _parse_sequential(path, name, entries, weights)
    if not isinstance(config, dict) or "layers" not in config:
        raise UserError(f"{path}: model {kind} has no layer list in its configuration")
    graph = _Graph(config.get("name", "model"), {}, [], [])
    for entry in config["layers"]:
        layer = _parse_layer(path, entry, weights)
        layer.nodes = [[_Ref(r[0], int(r[1]), int(r[2])) for r in _check_call(path, layer, call)]
                       for call in entry.get("inbound_nodes", [])]
        graph.layers[layer.name] = layer
    graph.inputs = [_Ref(r[0], int(r[1]), int(r[2])) for r in config.get("input_layers", [])]
    graph.outputs = [_Ref(r[0], int(r[1]), int(r[2])) for r in config.get("output_layers", [])]
    for layer in graph.layers.values():
        if layer.class_name == "InputLayer":
            layer.nodes = [[]]
        layer.nodes = [[_resolve(path, graph, ref) for ref in call] for call in layer.nodes]
    graph.inputs = [_resolve(path, graph, ref) for ref in graph.inputs]
    graph.outputs = [_resolve(path, graph, ref) for ref in graph.outputs]
    return _with_consumers(graph)


def _parse_sequential(path: Path, name: str, entries: list[dict[str, Any]],
                      weights: Callable[[str], dict[str, np.ndarray]]) -> _Graph:
    """A Sequential model as a chain; its input is its InputLayer or a synthetic one named after
    the model, shaped by the first layer's batch_input_shape (None: the caller's tensor)."""
    if not entries:
        raise UserError(f"{path}: Sequential model {name!r} has no layers")
    layers = [_parse_layer(path, entry, weights) for entry in entries]
    if layers[0].class_name != "InputLayer":
        shape = layers[0].config.get("batch_input_shape")
        layers.insert(0, _Layer(f"{name}_input", "InputLayer", {"batch_input_shape": shape}))
    graph = _Graph(name, {}, [_Ref(layers[0].name, 0, 0)], [_Ref(layers[-1].name, 0, 0)])
    previous: list[_Ref] = []
    for layer in layers:
        layer.nodes = [previous]
        graph.layers[layer.name] = layer
        previous = [_Ref(layer.name, 0, 0)]
    return _with_consumers(graph)


def _parse_layer(path: Path, entry: dict[str, Any],
                 weights: Callable[[str], dict[str, np.ndarray]]) -> _Layer:
    class_name, config = entry.get("class_name"), entry.get("config")
    if not isinstance(class_name, str) or not isinstance(config, dict):
        raise UserError(f"{path}: a layer entry without class_name/config: {str(entry)[:200]}")
    name = entry.get("name") or config.get("name")
    if class_name in MODEL_CLASSES:
        nested = _parse_graph(path, entry, weights)
        return _Layer(name or nested.name, class_name, config, graph=nested)
    if not name:
        raise UserError(f"{path}: a {class_name} layer without a name")
    return _Layer(name, class_name, config, weights=weights(name))


def _check_call(path: Path, layer: _Layer, call: list[Any]) -> list[Any]:
    for ref in call:
        kwargs = ref[3] if len(ref) > 3 else {}
        if kwargs and set(kwargs) - {"training"}:
            raise UserError(f"{path}: layer {layer.name!r} ({layer.class_name}) is called with "
                            f"arguments {sorted(kwargs)}; only plain calls are supported")
    return call


def _resolve(path: Path, graph: _Graph, ref: _Ref) -> _Ref:
    """Keras 2.2 counts a nested model's own first call in node indices (its saved calls start
    at 1); map every reference to the position in the saved call list and check it exists."""
    layer = graph.layers.get(ref.layer)
    if layer is None:
        raise UserError(f"{path}: model {graph.name!r} refers to a layer {ref.layer!r} it does "
                        "not define")
    node = ref.node - 1 if layer.graph is not None else ref.node
    if not 0 <= node < len(layer.nodes):
        raise UserError(f"{path}: model {graph.name!r} refers to call {ref.node} of layer "
                        f"{ref.layer!r}, which has {len(layer.nodes)} saved call(s)")
    return _Ref(ref.layer, node, ref.tensor)


def _with_consumers(graph: _Graph) -> _Graph:
    for layer in graph.layers.values():
        for node, call in enumerate(layer.nodes):
            for ref in call:
                users = graph.consumers.setdefault((ref.layer, ref.node), [])
                if (layer.name, node) not in users:
                    users.append((layer.name, node))
    return graph


def _assign_weights(graph: _Graph,
                    owners: dict[str, dict[str, dict[str, np.ndarray]]]) -> None:
    """Nested models' weights live in their top-level group, one owner per inner layer."""
    for layer in graph.layers.values():
        if layer.graph is not None:
            group = owners.get(layer.name, {})
            _assign_nested(layer.graph, group)


def _assign_nested(graph: _Graph, group: dict[str, dict[str, np.ndarray]]) -> None:
    for layer in graph.layers.values():
        if layer.graph is not None:
            _assign_nested(layer.graph, group)
        else:
            layer.weights = group.get(layer.name, {})


# ---------------------------------------------------------------------------------------------
# conversion
# ---------------------------------------------------------------------------------------------
class _Importer:
    """Builds the Keras 3 model of one parsed file; every error names the file and layer."""

    def __init__(self, path: Path, graph: _Graph) -> None:
        self.path = path
        self.graph = graph
        self.made: dict[tuple[int, str], Any] = {}  # (graph id, layer name) -> Keras 3 object
        self.absorbed: set[tuple[int, str]] = set()  # Dense layers folded into a read-out
        self.used = set(_all_names(graph))
        self.sigmoid_output: str | None = None  # the layer whose sigmoid becomes "probabilities"
        self.names: dict[str, str] = {}  # top-level legacy name -> Keras 3 name

    # -- errors and names -----------------------------------------------------------------
    def fail(self, layer: _Layer, message: str) -> UserError:
        return UserError(f"{self.path}: layer {layer.name!r} ({layer.class_name}): {message}")

    def unique(self, name: str) -> str:
        candidate, i = name, 1
        while candidate in self.used:
            candidate, i = f"{name}_{i}", i + 1
        self.used.add(candidate)
        return candidate

    def name_of(self, graph: _Graph, layer: _Layer) -> str:
        if graph is self.graph and layer.name in self.names:
            return self.names[layer.name]
        return layer.name

    # -- the model ------------------------------------------------------------------------
    def convert(self) -> keras.Model:
        graph = self.graph
        roles = self.plan_names()
        inputs = {ref.layer: self.make_input(graph, graph.layers[ref.layer], None)
                  for ref in graph.inputs}
        outputs = self.run_graph(graph, inputs)
        if roles == "profile":
            by_name = dict(zip([self.names[r.layer] for r in graph.outputs], outputs,
                               strict=True))
            ins = [inputs[self._legacy(n)] for n in ("sequence", "control", "control_logcount")]
            return keras.Model(ins, {k: by_name[k] for k in ("profile", "counts")},
                               name=graph.name)
        ins = [inputs[ref.layer] for ref in graph.inputs]
        return keras.Model(ins[0] if len(ins) == 1 else ins,
                           outputs[0] if len(outputs) == 1 else outputs, name=graph.name)

    def _legacy(self, new_name: str) -> str:
        return next(old for old, new in self.names.items() if new == new_name)

    def plan_names(self) -> str | None:
        """benchmark_rc's input / output names where the model's shape tells its task;
        returns "profile", "classification" or None."""
        graph = self.graph
        ins = [graph.layers[r.layer] for r in graph.inputs]
        shapes = [tuple(layer.config.get("batch_input_shape") or ())[1:] for layer in ins]
        outs = [graph.layers[r.layer] for r in graph.outputs]
        if len(ins) == 3 and len(outs) == 2:
            roles = _profile_roles(shapes, [self.output_shape_hint(layer) for layer in outs])
            if roles is not None:
                in_roles, out_roles = roles
                for layer, role in [*zip(ins, in_roles, strict=True),
                                    *zip(outs, out_roles, strict=True)]:
                    self.claim(role, layer.name)
                return "profile"
        if len(ins) == 1 and len(shapes[0]) == 2 and shapes[0][-1] == 4:
            self.claim("sequence", ins[0].name)
        if len(outs) == 1 and _final_activation(outs[0]) == "sigmoid":
            self.sigmoid_output = outs[0].name
            self.claim("logits")
            self.claim("probabilities")
            return "classification"
        return None

    def output_shape_hint(self, layer: _Layer) -> tuple[Any, ...] | None:
        """Rank and last dimension of an output, from its layer's configuration."""
        cfg = layer.config
        if layer.class_name == "Reshape":
            return tuple(cfg.get("target_shape", ()))
        if layer.class_name in CONV_CLASSES:
            width = int(cfg.get("filters", 0)) * (2 if layer.class_name == "RevCompConv1D" else 1)
            return (None, width)
        if layer.class_name == "Dense":
            return (int(cfg.get("units", 0)),)
        return None

    def claim(self, new: str, holder: str | None = None) -> None:
        """Reserve the name ``new`` for top-level layer ``holder`` (None: for a layer the import
        adds); a legacy layer already called ``new`` is renamed ``new_N``."""
        for other in self.graph.layers:
            if other != holder and self.names.get(other, other) == new:
                self.names[other] = self.unique(new)
        if holder is not None:
            self.names[holder] = new
        self.used.add(new)

    # -- running a graph ------------------------------------------------------------------
    def run_graph(self, graph: _Graph, inputs: dict[str, Any]) -> list[Any]:
        """Apply every call of ``graph`` in dependency order; returns its output tensors."""
        done: dict[tuple[str, int], list[Any]] = {(name, 0): [t] for name, t in inputs.items()}
        pending = [(layer, node) for layer in graph.layers.values()
                   for node in range(len(layer.nodes)) if (layer.name, node) not in done]
        while pending:
            ready = [(layer, node) for layer, node in pending
                     if all((r.layer, r.node) in done for r in layer.nodes[node])]
            if not ready:
                names = sorted({layer.name for layer, _ in pending})
                raise UserError(f"{self.path}: layers {names} of model {graph.name!r} are not "
                                "connected to its inputs")
            for layer, node in ready:
                args = [done[(r.layer, r.node)][r.tensor] for r in layer.nodes[node]]
                out = self.apply(graph, layer, node, args)
                done[(layer.name, node)] = out if isinstance(out, list) else [out]
                pending.remove((layer, node))
        return [done[(r.layer, r.node)][r.tensor] for r in graph.outputs]

    def make_input(self, graph: _Graph, layer: _Layer, like: Any) -> Any:
        shape = layer.config.get("batch_input_shape")
        if shape is None:
            if like is None:
                raise self.fail(layer, "the input shape is not stored (no batch_input_shape)")
            shape = (None, *like.shape[1:])
        dtype = layer.config.get("dtype", "float32")
        return keras.Input(shape=tuple(shape[1:]), dtype=dtype,
                           name=self.name_of(graph, layer))

    def apply(self, graph: _Graph, layer: _Layer, node: int, args: list[Any]) -> Any:
        """The Keras 3 computation of one call of ``layer`` on tensors ``args``."""
        key = (id(graph), layer.name)
        if key in self.absorbed:
            return args[0]
        if layer.graph is not None:
            return self.apply_nested(graph, layer, args)
        if layer.class_name == "Lambda":
            return self.apply_lambda(graph, layer, node, args)
        if layer.class_name == "Average" and self.is_siamese_merge(graph, layer, node):
            return self.shared(key, lambda: StrandMerge(
                "mean", name=self.name_of(graph, layer)))(args)
        if layer.class_name in ("WeightedSum1D", "DenseAfterRevcompConv1D"):
            return self.apply_readout(graph, layer, node, args)
        build = BUILDERS.get(layer.class_name)
        if build is None:
            raise self.fail(layer, f"not supported; supported layers: {supported_layers()}")
        split = graph is self.graph and layer.name == self.sigmoid_output
        if split and layer.class_name == "Activation":
            return self.split_sigmoid(args[0])
        made = self.made.get(key)
        fresh = made is None
        if fresh:
            made = self.made[key] = build(self, graph, layer, split)
        out = made(args if layer.class_name in MERGES else args[0])
        if fresh:  # built by its first call: now the stored weights fit
            self.load(layer, made)
        return self.split_sigmoid(out) if split else out

    def shared(self, key: tuple[int, str], factory: Callable[[], Any]) -> Any:
        if key not in self.made:
            self.made[key] = factory()
        return self.made[key]

    def apply_nested(self, graph: _Graph, layer: _Layer, args: list[Any]) -> Any:
        key = (id(graph), layer.name)
        sub = self.made.get(key)
        if sub is None:
            nested = layer.graph
            assert nested is not None
            if len(nested.inputs) != len(args):
                raise self.fail(layer, f"called with {len(args)} tensors, takes "
                                       f"{len(nested.inputs)}")
            inputs = {ref.layer: self.make_input(nested, nested.layers[ref.layer], like)
                      for ref, like in zip(nested.inputs, args, strict=True)}
            outputs = self.run_graph(nested, inputs)
            ins = [inputs[ref.layer] for ref in nested.inputs]
            sub = keras.Model(ins[0] if len(ins) == 1 else ins,
                              outputs[0] if len(outputs) == 1 else outputs,
                              name=self.name_of(graph, layer))
            self.made[key] = sub
        return sub(args[0] if len(args) == 1 else args)

    @staticmethod
    def split_sigmoid(pre_sigmoid: Any) -> Any:
        """The sigmoid output as benchmark_rc names it: an Identity "logits" on the pre-sigmoid
        tensor, then Activation "probabilities" (both names claimed by plan_names)."""
        logits = keras.layers.Identity(name="logits")(pre_sigmoid)
        return keras.layers.Activation("sigmoid", name="probabilities")(logits)

    def load(self, layer: _Layer, made: Any) -> None:
        """Set the Keras 3 layer's weights from the stored ones, by name, checking shapes and
        that every stored weight is used."""
        values = dict(layer.weights)
        for variable in made.weights:
            if variable.name not in values:
                raise self.fail(layer, f"the file stores no weight {variable.name!r} (stored: "
                                       f"{sorted(values) or 'none'})")
            value = values.pop(variable.name)
            if tuple(value.shape) != tuple(variable.shape):
                raise self.fail(layer, f"weight {variable.name!r} has shape {value.shape}, "
                                       f"expected {tuple(variable.shape)}")
            variable.assign(value.astype(variable.dtype))
        if values:
            raise self.fail(layer, f"stored weights {sorted(values)} are not used by its "
                                   "conversion; this variant of the layer is not supported")

    # -- Lambda patterns ------------------------------------------------------------------
    def apply_lambda(self, graph: _Graph, layer: _Layer, node: int, args: list[Any]) -> Any:
        """A Lambda recognised by its place in the graph (LAMBDA_PATTERNS); its code is never
        read."""
        cfg = layer.config
        if len(layer.nodes) != 1 or len(args) != 1 or cfg.get("arguments") \
                or cfg.get("output_shape_type", "raw") != "raw":  # else: a shape function
            raise self.lambda_error(layer)
        (source,) = layer.nodes[node]
        out_shape = cfg.get("output_shape")
        x = args[0]
        name = self.name_of(graph, layer)
        key = (id(graph), layer.name)
        if out_shape is not None and tuple(out_shape) != tuple(x.shape[1:]):
            width = self.residual_crop(graph, layer, source, x, out_shape)
            crop = self.shared(key, lambda: keras.layers.Cropping1D(
                (width // 2, width - width // 2), name=name))
            return crop(x)
        if self.is_siamese_rc(graph, layer, source, x):
            return self.shared(key, lambda: RCTransform("regular", name=name))(x)
        if self.heads_symmetric_concat(graph, layer, source):
            return self.shared(key, lambda: RCTransform("strands", name=name))(x)
        raise self.lambda_error(layer)

    def lambda_error(self, layer: _Layer) -> UserError:
        return self.fail(layer, "not one of the Lambda patterns recognised without running its "
                                f"code: {'; '.join(LAMBDA_PATTERNS)}. Lambda code stored in a "
                                "file is never executed, so no other Lambda can be imported")

    def is_siamese_rc(self, graph: _Graph, layer: _Layer, source: _Ref, x: Any) -> bool:
        """A Lambda layer applied to x, a one-hot sequence input, fed (only) to layers that also take x."""
        if graph.producer(source).class_name != "InputLayer" or len(x.shape) != 3 \
                or x.shape[-1] != 4:
            return False
        users = graph.uses(_Ref(layer.name, 0, 0))
        return bool(users) and all(
            any(call == [source] for call in user.nodes) for user, _ in users)

    def is_siamese_merge(self, graph: _Graph, layer: _Layer, node: int) -> bool:
        """Average of the two calls of one shared layer, on x and on its Siamese RC."""
        call = layer.nodes[node]
        if len(call) != 2 or call[0].layer != call[1].layer:
            return False
        shared = graph.producer(call[0])
        fed = [shared.nodes[ref.node] for ref in call]
        if any(len(f) != 1 for f in fed):
            return False
        rc = [f[0] for f in fed if graph.producer(f[0]).class_name == "Lambda"]
        plain = [f[0] for f in fed if graph.producer(f[0]).class_name == "InputLayer"]
        return len(rc) == 1 and len(plain) == 1 and graph.producer(rc[0]).nodes[0] == plain

    def residual_crop(self, graph: _Graph, layer: _Layer, source: _Ref, x: Any,
                      out_shape: list[Any]) -> int:
        """Width of a residual centre crop (Lambda with output_shape (L', C) whose output is
        added to a convolution of the same tensor), or a UserError."""
        length, channels = x.shape[1], x.shape[-1]
        if len(x.shape) != 3 or len(out_shape) != 2 or length is None \
                or out_shape[1] != channels or not 0 < int(out_shape[0]) < length:
            raise self.lambda_error(layer)
        users = graph.uses(_Ref(layer.name, 0, 0))
        if len(users) != 1 or users[0][0].class_name not in ("Add", "Average"):
            raise self.lambda_error(layer)
        merge, merge_node = users[0]
        others = [ref for ref in merge.nodes[merge_node] if ref.layer != layer.name]
        if not others or not all(graph.producer(ref).class_name in CONV_CLASSES
                                 and graph.producer(ref).nodes[ref.node] == [source]
                                 for ref in others):
            raise self.lambda_error(layer)
        return length - int(out_shape[0])

    def heads_symmetric_concat(self, graph: _Graph, layer: _Layer, source: _Ref) -> bool:
        """A Lambda of c is the first and c the last input of its only consumer, a Concatenate on
        the last axis: the RCPS BPNet heads' [reversed control, features, control]."""
        users = graph.uses(_Ref(layer.name, 0, 0))
        if len(users) != 1 or users[0][0].class_name != "Concatenate":
            return False
        concat, node = users[0]
        call = concat.nodes[node]
        axis = int(concat.config.get("axis", -1))
        rank = len(graph.layers[source.layer].config.get("batch_input_shape") or ()) \
            if graph.producer(source).class_name == "InputLayer" else None
        last_axis = axis == -1 or (rank is not None and axis == rank - 1)
        return last_axis and len(call) >= 3 and call[0].layer == layer.name \
            and call[-1] == source

    # -- RC read-outs ---------------------------------------------------------------------
    def apply_readout(self, graph: _Graph, layer: _Layer, node: int, args: list[Any]) -> Any:
        """WeightedSum1D (+ the Dense after it) or DenseAfterRevcompConv1D -> benchmark_rc's
        RC-tied WeightedSum1D, a bias-carrying Dense if the bias is not zero, the activation."""
        key = (id(graph), layer.name)
        if key in self.made or len(layer.nodes) != 1:
            raise self.fail(layer, "shared read-out layers (called more than once) are not "
                                   "supported")
        x = args[0]
        if len(x.shape) != 3 or x.shape[1] is None or x.shape[-1] is None or x.shape[-1] % 2:
            raise self.fail(layer, f"expects an RC feature map (N, L, 2F), got {x.shape}")
        length, half = int(x.shape[1]), int(x.shape[-1]) // 2
        if layer.class_name == "WeightedSum1D":
            dense = self.folded_dense(graph, layer)
            self.absorbed.add((id(graph), dense.name))
            kernel = self.weighted_sum_kernel(layer, dense, length, half)
            final = dense  # the Dense carries the bias and the activation
        else:
            final = layer
            units = int(layer.config["units"])
            stored = self.weight(layer, "kernel", (length * half, units))
            kernel = stored.reshape(length, half, units)
        cfg, units = final.config, kernel.shape[-1]
        self.only_weights(final, ("kernel", "bias"))
        bias = self.weight(final, "bias", (units,)) if cfg.get("use_bias", True) else None
        readout = WeightedSum1D(units, name=self.name_of(graph, layer))
        self.made[key] = readout
        out = readout(x)
        readout.kernel.assign(kernel.astype("float32"))
        if bias is not None and np.any(bias != 0):
            carry = keras.layers.Dense(units, name=self.unique(f"{final.name}_bias"))
            out = carry(out)
            carry.kernel.assign(np.eye(units, dtype="float32"))
            carry.bias.assign(bias.astype("float32"))
        activation = self.activation(final, cfg.get("activation", "linear"))
        if graph is self.graph and final.name == self.sigmoid_output:
            return self.split_sigmoid(out)
        if activation != "linear":
            out = keras.layers.Activation(activation,
                                          name=self.unique(f"{final.name}_activation"))(out)
        return out

    def folded_dense(self, graph: _Graph, layer: _Layer) -> _Layer:
        """The Dense that reads WeightedSum1D's per-channel sums (its only consumer)."""
        users = graph.uses(_Ref(layer.name, 0, 0))
        if len(users) != 1 or users[0][0].class_name != "Dense" or len(users[0][0].nodes) != 1:
            raise self.fail(layer, "must be followed by exactly one Dense layer (as in the "
                                   "paper's RCWeight model), which the import folds into "
                                   "benchmark_rc's WeightedSum1D")
        return users[0][0]

    def weighted_sum_kernel(self, layer: _Layer, dense: _Layer, length: int,
                            half: int) -> np.ndarray:
        """(L, F, units) kernel of benchmark_rc's WeightedSum1D equal to keras-genomics'
        WeightedSum1D followed by the Dense V: K[p, c, u] = W[p, c] * V[c, u], valid when V's
        rows c and 2F-1-c are equal (otherwise the pair is not RC-invariant)."""
        cfg = layer.config
        if not cfg.get("input_is_revcomp_conv", False) or cfg.get("bias", False):
            raise self.fail(layer, "only input_is_revcomp_conv=True without bias is supported "
                                   "(the RC-tied read-out of the paper's RCWeight model)")
        stored = self.single_weight(layer)
        if cfg.get("symmetric", False):
            odd = length % 2
            stored = np.concatenate([stored, stored[::-1][odd:]], axis=0)
        if stored.shape != (length, half):
            raise self.fail(layer, f"weight has shape {stored.shape}, expected {(length, half)}")
        units = int(dense.config.get("units", 0))
        v = self.weight(dense, "kernel", (2 * half, units))
        if not np.array_equal(v, v[::-1]):
            raise self.fail(dense, "its kernel rows c and 2F-1-c differ, so WeightedSum1D + "
                                   "Dense is not RC-invariant and cannot be imported as "
                                   "benchmark_rc's WeightedSum1D")
        return stored[:, :, None] * v[None, :half, :]

    def single_weight(self, layer: _Layer) -> np.ndarray:
        if len(layer.weights) != 1:
            raise self.fail(layer, f"expected one stored weight, found {sorted(layer.weights)}")
        return next(iter(layer.weights.values()))

    def weight(self, layer: _Layer, name: str, shape: tuple[int, ...]) -> np.ndarray:
        value = layer.weights.get(name)
        if value is None:
            raise self.fail(layer, f"the file stores no weight {name!r} (stored: "
                                   f"{sorted(layer.weights) or 'none'})")
        if tuple(value.shape) != shape:
            raise self.fail(layer, f"weight {name!r} has shape {value.shape}, expected {shape}")
        return value

    def only_weights(self, layer: _Layer, allowed: tuple[str, ...]) -> None:
        extra = set(layer.weights) - set(allowed)
        if extra:
            raise self.fail(layer, f"stored weights {sorted(extra)} are not used by its "
                                   "conversion; this variant of the layer is not supported")

    # -- layer options --------------------------------------------------------------------
    def activation(self, layer: _Layer, name: Any) -> str:
        if not isinstance(name, str) or name not in ACTIVATIONS:
            raise self.fail(layer, f"activation {name!r} is not supported (supported: "
                                   f"{', '.join(ACTIVATIONS)})")
        return name

    def channels_last(self, layer: _Layer) -> None:
        fmt = layer.config.get("data_format", "channels_last")
        if fmt not in (None, "channels_last"):
            raise self.fail(layer, f"data_format={fmt!r}; only channels_last is supported")

    def regularizer(self, layer: _Layer, key: str) -> Any:
        """Keras 2 L1L2 regularisers are kept (they shape fine-tuning); others are refused."""
        spec = layer.config.get(key)
        if spec is None:
            return None
        if isinstance(spec, dict) and spec.get("class_name") == "L1L2":
            cfg = spec.get("config", {})
            return keras.regularizers.L1L2(l1=float(cfg.get("l1", 0.0)),
                                           l2=float(cfg.get("l2", 0.0)))
        raise self.fail(layer, f"{key} {spec!r} is not supported (only L1L2)")

    def warn_training_only(self, layer: _Layer) -> None:
        dropped = [k for k in TRAINING_ONLY if layer.config.get(k) is not None]
        if dropped:
            warnings.warn(f"{self.path}: layer {layer.name!r}: {', '.join(dropped)} dropped "
                          "(training-only settings that benchmark_rc's layers do not take)",
                          UserWarning, stacklevel=3)


def _all_names(graph: _Graph) -> list[str]:
    names = []
    for layer in graph.layers.values():
        names.append(layer.name)
        if layer.graph is not None:
            names.extend(_all_names(layer.graph))
    return names


def _final_activation(layer: _Layer) -> str | None:
    if layer.class_name == "Activation":
        return layer.config.get("activation")
    if layer.class_name in ("Dense", "DenseAfterRevcompConv1D", *CONV_CLASSES):
        return layer.config.get("activation")
    return None


def _profile_roles(in_shapes: list[tuple[Any, ...]], out_hints: list[Any]
                   ) -> tuple[list[str], list[str]] | None:
    """Input and output roles of a BPNet-shaped model: inputs (L, 4), (P, 2), (1,) and outputs
    (P, 2) and (2,) in any order; None for any other shape."""
    in_roles: list[str] = []
    for shape in in_shapes:
        if len(shape) == 2 and shape[-1] == 4:
            in_roles.append("sequence")
        elif len(shape) == 2 and shape[-1] == 2:
            in_roles.append("control")
        elif len(shape) == 1 and shape[0] == 1:
            in_roles.append("control_logcount")
        else:
            return None
    out_roles: list[str] = []
    for hint in out_hints:
        if hint is None:
            return None
        if len(hint) == 2 and hint[-1] == 2:
            out_roles.append("profile")
        elif len(hint) == 1 and hint[0] in (2, -1):
            out_roles.append("counts")
        else:
            return None
    if sorted(in_roles) != ["control", "control_logcount", "sequence"] \
            or sorted(out_roles) != ["counts", "profile"]:
        return None
    return in_roles, out_roles


# ---------------------------------------------------------------------------------------------
# builders of the plain layers: (importer, graph, layer, split_sigmoid) -> Keras 3 layer
# ---------------------------------------------------------------------------------------------
def _single(value: Any) -> int:
    return int(value[0]) if isinstance(value, list | tuple) else int(value)


def _kernel_activation(imp: _Importer, layer: _Layer, split: bool) -> str:
    act = imp.activation(layer, layer.config.get("activation", "linear"))
    return "linear" if split else act


def _conv1d(imp: _Importer, graph: _Graph, layer: _Layer, split: bool) -> Any:
    cfg = layer.config
    imp.channels_last(layer)
    imp.warn_training_only(layer)
    cls = KerasGenomicsRevCompConv1D if layer.class_name == "RevCompConv1D" \
        else keras.layers.Conv1D
    kwargs = dict(strides=_single(cfg.get("strides", 1)), padding=cfg.get("padding", "valid"),
                  dilation_rate=_single(cfg.get("dilation_rate", 1)),
                  activation=_kernel_activation(imp, layer, split),
                  use_bias=bool(cfg.get("use_bias", True)),
                  kernel_regularizer=imp.regularizer(layer, "kernel_regularizer"),
                  bias_regularizer=imp.regularizer(layer, "bias_regularizer"),
                  name=imp.name_of(graph, layer), trainable=bool(cfg.get("trainable", True)))
    try:
        return cls(int(cfg["filters"]), _single(cfg["kernel_size"]), **kwargs)
    except UserError as err:  # RCGeometryError: a window layout that cannot be equivariant
        raise imp.fail(layer, str(err)) from err


def _dense(imp: _Importer, graph: _Graph, layer: _Layer, split: bool) -> Any:
    cfg = layer.config
    imp.warn_training_only(layer)
    return keras.layers.Dense(
        int(cfg["units"]), activation=_kernel_activation(imp, layer, split),
        use_bias=bool(cfg.get("use_bias", True)),
        kernel_regularizer=imp.regularizer(layer, "kernel_regularizer"),
        bias_regularizer=imp.regularizer(layer, "bias_regularizer"),
        name=imp.name_of(graph, layer), trainable=bool(cfg.get("trainable", True)))


def _batch_norm(imp: _Importer, graph: _Graph, layer: _Layer, split: bool) -> Any:
    cfg = layer.config
    imp.warn_training_only(layer)
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    options = dict(momentum=float(cfg.get("momentum", 0.99)),
                   epsilon=float(cfg.get("epsilon", 1e-3)), center=bool(cfg.get("center", True)),
                   scale=bool(cfg.get("scale", True)), name=imp.name_of(graph, layer),
                   trainable=bool(cfg.get("trainable", True)))
    if layer.class_name == "RevCompConv1DBatchNorm":
        if axis not in (-1, 2):
            raise imp.fail(layer, f"axis={axis}; only the channel axis (-1) is supported")
        return KerasGenomicsRevCompConv1DBatchNorm(**options)
    if not isinstance(axis, int):
        raise imp.fail(layer, f"axis={axis!r}; only a single axis is supported")
    return keras.layers.BatchNormalization(axis=axis, **options)


def _activation(imp: _Importer, graph: _Graph, layer: _Layer, split: bool) -> Any:
    act = imp.activation(layer, layer.config.get("activation"))
    return keras.layers.Activation(act, name=imp.name_of(graph, layer))


def _pool(cls: Any) -> Callable[..., Any]:
    def build(imp: _Importer, graph: _Graph, layer: _Layer, split: bool) -> Any:
        cfg = layer.config
        imp.channels_last(layer)
        size = _single(cfg.get("pool_size", 2))
        strides = cfg.get("strides")
        return cls(pool_size=size, strides=size if strides is None else _single(strides),
                   padding=cfg.get("padding", "valid"), name=imp.name_of(graph, layer))

    return build


def _simple(factory: Callable[[dict[str, Any]], dict[str, Any]], cls: Any,
            channels: bool = False) -> Callable[..., Any]:
    """A layer whose Keras 3 arguments are read straight from its Keras 2 configuration."""
    def build(imp: _Importer, graph: _Graph, layer: _Layer, split: bool) -> Any:
        if channels:
            imp.channels_last(layer)
        try:
            return cls(**factory(layer.config), name=imp.name_of(graph, layer))
        except (KeyError, TypeError, ValueError) as err:
            raise imp.fail(layer, f"configuration not understood ({err})") from err

    return build


def _merge(cls: Any) -> Callable[..., Any]:
    return _simple(lambda cfg: {}, cls)


BUILDERS: dict[str, Callable[..., Any]] = {
    "Conv1D": _conv1d,
    "RevCompConv1D": _conv1d,
    "Dense": _dense,
    "BatchNormalization": _batch_norm,
    "RevCompConv1DBatchNorm": _batch_norm,
    "Activation": _activation,
    "MaxPooling1D": _pool(keras.layers.MaxPooling1D),
    "AveragePooling1D": _pool(keras.layers.AveragePooling1D),
    "GlobalAveragePooling1D": _simple(lambda cfg: {}, keras.layers.GlobalAveragePooling1D, True),
    "GlobalMaxPooling1D": _simple(lambda cfg: {}, keras.layers.GlobalMaxPooling1D, True),
    "Flatten": _simple(lambda cfg: {}, keras.layers.Flatten, True),
    "Dropout": _simple(lambda cfg: {"rate": float(cfg["rate"]), "seed": cfg.get("seed"),
                                    "noise_shape": cfg.get("noise_shape")},
                       keras.layers.Dropout),
    "Reshape": _simple(lambda cfg: {"target_shape": tuple(cfg["target_shape"])},
                       keras.layers.Reshape),
    "Permute": _simple(lambda cfg: {"dims": tuple(cfg["dims"])}, keras.layers.Permute),
    "Cropping1D": _simple(lambda cfg: {"cropping": tuple(cfg["cropping"])},
                          keras.layers.Cropping1D),
    "ZeroPadding1D": _simple(lambda cfg: {"padding": tuple(cfg["padding"])},
                             keras.layers.ZeroPadding1D),
    "Concatenate": _simple(lambda cfg: {"axis": int(cfg.get("axis", -1))},
                           keras.layers.Concatenate),
    "RevCompSumPool": _simple(lambda cfg: {}, RevCompSumPool),
    **{name: _merge(cls) for name, cls in MERGE_LAYERS.items()},
}
MERGES = (*MERGE_LAYERS, "Concatenate")
SPECIAL = ("InputLayer", "Lambda", "WeightedSum1D", "DenseAfterRevcompConv1D", *MODEL_CLASSES)


def supported_layers() -> str:
    """The Keras 2 / keras-genomics class names the importer maps, for error messages."""
    return ", ".join(sorted({*BUILDERS, *SPECIAL} - {"Functional"}))


def load_legacy_model(path: str | Path) -> keras.Model:
    """A Keras 2 / keras-genomics .h5 model as a Keras 3 model of registered layers.

    Args:
        path: an .h5 file written by Keras 2 (``model.save``; keras_version 2.x, TensorFlow
            backend), e.g. by the original benchmark's code.

    Returns:
        An uncompiled ``keras.Model`` whose outputs equal the original's (inference mode) to
        float32 rounding; it saves and reloads with ``keras.models.load_model`` in safe mode.

    Raises:
        UserError: not an HDF5 / Keras 2 model file, or a layer (or Lambda pattern) that is not
        supported; the message names the file, the layer and what is supported.
    """
    path = Path(path)
    config, owners = _read_file(path)

    def weights(name: str) -> dict[str, np.ndarray]:
        merged: dict[str, np.ndarray] = {}
        for values in owners.get(name, {}).values():
            merged.update(values)
        return merged

    graph = _parse_graph(path, config, weights)
    _assign_weights(graph, owners)
    for layer in graph.layers.values():
        if layer.class_name == "InputLayer" and not layer.config.get("batch_input_shape"):
            raise UserError(f"{path}: input {layer.name!r} has no stored shape")
    return _Importer(path, graph).convert()

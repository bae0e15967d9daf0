"""Restricted in-silico mutagenesis: recompute only what a mutation can reach (fastISM).

Nair et al. (2022, "fastISM") observe that in a convolutional network a substitution at input
position i changes only the positions of each feature map whose receptive field holds i. This
module splits a model's graph (nested models inlined) into

* a position-local **trunk**: every layer reachable from the sequence whose output position q
  reads a fixed window of input positions (convolutions, pooling, padding and cropping,
  batch norms, activations, dropout, element-wise merges and channel concatenations of such
  maps, and the RC transform that reverses a map: the second pass of conjoined models);
* the **head**: everything else (Flatten, Dense, global pooling, strand merges, ...), run as it
  is on the full maps.

The trunk runs once on the reference sequences and every trunk map is cached. For a batch of
mutants each trunk layer recomputes only a fixed-width slice of its output that covers the
positions the mutation reaches (found by propagating [lo, hi) ranges through the layers'
kernel / stride / dilation / padding geometry), from a window of its input gathered out of the
cache with the input's recomputed slice written over it; positions outside a map (padding) get
the layer's pad value (0 for convolutions, -inf for max pooling). Padding and cropping layers
pass their input's slice on, moved; position-wise layers take it as their window. A linear
convolution (Keras Conv1D + bias, stride 1) whose input changed on a slice much narrower than
its window is updated instead of recomputed: its cached output plus the convolution of the
input's change (:func:`_linear_update`). The head then runs on the cached maps with the
recomputed slices spliced in. The values equal plain ISM up to float32 summation order.

A model without a trunk (its sequence feeds a mixing layer at once), or whose head attends over
positions (attention layers: every position after them depends on every input position, so the
head would be recomputed in full anyway), raises :class:`NotRestrictable`;
:func:`benchmark_rc.attribution.ism` then warns (:class:`RestrictedISMFallback`) and runs plain
ISM.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark_rc.attribution.batching import traced_per_model
from benchmark_rc.attribution.targets import (
    ModelSpec,
    input_signature,
    reduce_head,
    select_head,
)
from benchmark_rc.errors import UserError


class NotRestrictable(UserError):
    """The model has no position-local trunk that restricted ISM could exploit (the message
    says which layer stops it)."""


class RestrictedISMFallback(UserWarning):
    """Restricted ISM was asked for but plain ISM ran (the message says why)."""


# ----------------------------------------------------------------------------------------------
# geometry of position-local layers
# ----------------------------------------------------------------------------------------------
def _empty(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo >= hi


@dataclass(frozen=True)
class Window:
    """A layer whose output position q reads input positions s*q - pad_left + t*dilation,
    t < kernel (pad_left < 0: a crop). Out-of-range input positions hold ``pad_value``.
    :meth:`apply` computes the layer on a window holding exactly the inputs of its outputs."""

    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    pad_left: int = 0
    pad_value: float = 0.0
    # True: the output's recomputed slice is the input's, moved by pad_left (no computation)
    aliases_input = False
    # True: a linear convolution (stride 1, no activation) with a ``kernel`` (k, C_in, C_out):
    # its slice may be updated from the input's change alone (:func:`_linear_update`)
    linear: bool = False

    @property
    def span(self) -> int:
        return (self.kernel - 1) * self.dilation + 1

    def affected(self, lo: np.ndarray, hi: np.ndarray, length_in: int,
                 length_out: int) -> tuple[np.ndarray, np.ndarray]:
        """Output positions [lo', hi') whose window meets input positions [lo, hi)."""
        s, p = self.stride, self.pad_left
        out_lo = np.clip(-((-(lo + p - self.span + 1)) // s), 0, length_out)
        out_hi = np.clip((hi - 1 + p) // s + 1, 0, length_out)
        empty = _empty(lo, hi) | _empty(out_lo, out_hi)
        return np.where(empty, 0, out_lo), np.where(empty, 0, out_hi)

    def needed(self, start: Any, width: int, length_in: int) -> tuple[Any, int]:
        """(first input position, number of input positions) read by outputs
        [start, start + width)."""
        return start * self.stride - self.pad_left, (width - 1) * self.stride + self.span

    def apply(self, call: Callable[..., Any], windows: list, width: int) -> Any:
        """The layer on its input window(s): its output positions [start, start + width)."""
        return call(windows)


@dataclass(frozen=True)
class Shift(Window):
    """Zero padding / cropping: output q is input q + ... - pad_left; its recomputed slice is
    its input's, moved (no computation; :attr:`aliases_input`)."""

    aliases_input = True


@dataclass(frozen=True)
class SameWindow(Window):
    """A stride-1 "same"-padded layer: run as it is on a window that already holds its padding,
    then keep the ``width`` outputs whose inputs lie in the window."""

    def apply(self, call: Callable[..., Any], windows: list, width: int) -> Any:
        out = call(windows)
        return out[:, self.pad_left:self.pad_left + width]


@dataclass(frozen=True)
class ValidMaxPool(Window):
    """A strided "same" max pool (TensorFlow pads the end it needs with -inf): a valid max pool
    of a window that holds that padding."""

    def apply(self, call: Callable[..., Any], windows: list, width: int) -> Any:
        from keras import ops

        return ops.max_pool(windows[0], self.kernel, self.stride, padding="valid")


@dataclass(frozen=True)
class Mirror:
    """A layer that reverses the length axis (RC of a map): output q is input L-1-q."""

    pad_value: float = 0.0  # never read: a mirror reads only positions inside its input
    aliases_input = False
    linear = False

    def affected(self, lo: np.ndarray, hi: np.ndarray, length_in: int,
                 length_out: int) -> tuple[np.ndarray, np.ndarray]:
        empty = _empty(lo, hi)
        return np.where(empty, 0, length_in - hi), np.where(empty, 0, length_in - lo)

    def needed(self, start: Any, width: int, length_in: int) -> tuple[Any, int]:
        return length_in - start - width, width

    def apply(self, call: Callable[..., Any], windows: list, width: int) -> Any:
        return call(windows)


Geometry = Window | Mirror
POSITIONWISE = Window()


def _int(value: Any) -> int:
    return int(value[0]) if isinstance(value, list | tuple) else int(value)


def _padded(kernel: int, stride: int, dilation: int, padding: str, length: int,
            pad_value: float, max_pool: bool) -> Geometry | None:
    """The geometry of a conv / pool with Keras padding ``padding`` on an input of ``length``."""
    if padding == "valid":
        return Window(kernel, stride, dilation)
    if padding != "same":
        return None  # causal, ...
    span = (kernel - 1) * dilation + 1
    if stride == 1:
        return SameWindow(kernel, 1, dilation, (span - 1) // 2, pad_value)
    if max_pool and dilation == 1:
        # TensorFlow's "same": (out - 1) * s + k - L pad positions, the smaller half first
        total = max((math.ceil(length / stride) - 1) * stride + span - length, 0)
        return ValidMaxPool(kernel, stride, 1, total // 2, pad_value)
    return None  # a strided "same" conv / average pool: not reproduced on windows


def _conv(layer: Any, lengths: Sequence[int]) -> Geometry | None:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return None
    return _padded(_int(layer.kernel_size), _int(getattr(layer, "strides", 1)),
                   _int(getattr(layer, "dilation_rate", 1)),
                   str(getattr(layer, "padding", "valid")).lower(), lengths[0], 0.0, False)


def _keras_conv(layer: Any, lengths: Sequence[int]) -> Geometry | None:
    """A Keras Conv1D; marked linear when it is conv + bias alone (stride 1, one group, no
    activation), whose change is the convolution of its input's change."""
    import keras

    geometry = _conv(layer, lengths)
    if (geometry is None or geometry.stride != 1 or getattr(layer, "groups", 1) != 1
            or layer.activation not in (None, keras.activations.linear)):
        return geometry
    return dataclasses.replace(geometry, linear=True)


def _pool(layer: Any, lengths: Sequence[int], max_pool: bool) -> Geometry | None:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return None
    padding = str(layer.padding).lower()
    if padding == "same" and not max_pool:
        return None  # "same" average pools divide by the count of real positions
    return _padded(_int(layer.pool_size), _int(layer.strides), 1, padding, lengths[0],
                   -np.inf, max_pool)


def _kmer(layer: Any, lengths: Sequence[int]) -> Geometry:
    return Window(int(layer.k))


def _irrep_pool(layer: Any, lengths: Sequence[int]) -> Geometry:
    return Window(layer.pool_size, layer.pool_size)


def _zero_padding(layer: Any, lengths: Sequence[int]) -> Geometry | None:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return None
    return Shift(pad_left=_int(layer.padding))


def _cropping(layer: Any, lengths: Sequence[int]) -> Geometry:
    return Shift(pad_left=-_int(layer.cropping))


def _positionwise(layer: Any, lengths: Sequence[int]) -> Geometry:
    return POSITIONWISE


def _channel_axis(layer: Any, lengths: Sequence[int]) -> Geometry | None:
    """Normalisations / softmax acting over the channel axis only."""
    axis = layer.axis
    axes = list(axis) if isinstance(axis, list | tuple) else [axis]
    return POSITIONWISE if axes in ([-1], [2]) else None


def _concatenate(layer: Any, lengths: Sequence[int]) -> Geometry | None:
    return POSITIONWISE if layer.axis in (-1, 2) else None


def _rc_transform(layer: Any, lengths: Sequence[int]) -> Geometry:
    # "regular" / "length" / "pairs" reverse the length axis; "strands" / "none" do not
    return POSITIONWISE if layer.rule in ("strands", "none") else Mirror()


def _dense(layer: Any, lengths: Sequence[int]) -> Geometry:
    return POSITIONWISE  # only reached for rank-3 inputs: Dense acts on the channel axis


Table = tuple[tuple[tuple[type, ...], Callable[[Any, Sequence[int]], Geometry | None]], ...]


@functools.cache
def geometries() -> Table:
    """Layer classes -> their geometry function (the first match counts); made on first use, so
    importing this module does not import Keras."""
    import keras

    from benchmark_rc import layers as rc

    return (
        ((rc.RevCompConv1D, rc.RegToIrrepConv1D, rc.IrrepToIrrepConv1D, rc.IrrepToRegConv1D),
         _conv),
        ((keras.layers.Conv1D,), _keras_conv),
        ((keras.layers.MaxPooling1D,), functools.partial(_pool, max_pool=True)),
        ((keras.layers.AveragePooling1D,), functools.partial(_pool, max_pool=False)),
        ((rc.KmerEmbedding,), _kmer),
        ((rc.IrrepMaxPool1D,), _irrep_pool),
        ((keras.layers.ZeroPadding1D,), _zero_padding),
        ((keras.layers.Cropping1D,), _cropping),
        ((keras.layers.BatchNormalization, keras.layers.LayerNormalization,
          keras.layers.Softmax), _channel_axis),
        ((keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU,
          keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.GaussianNoise,
          keras.layers.GaussianDropout, keras.layers.AlphaDropout, keras.layers.Identity,
          rc.Exponential, rc.IrrepActivation, rc.IrrepBatchNorm, rc.RevCompConv1DBatchNorm,
          keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply, keras.layers.Average,
          keras.layers.Maximum, keras.layers.Minimum), _positionwise),
        ((keras.layers.Concatenate,), _concatenate),
        ((rc.RCTransform,), _rc_transform),
        ((keras.layers.Dense,), _dense),
    )


@functools.cache
def global_mixing() -> tuple[type, ...]:
    """Layers after which every position depends on every input position (attention):
    restricted ISM would recompute everything after them for every mutant, so it declines."""
    import keras

    from benchmark_rc import layers as rc

    return (rc.RelativeMultiHeadAttention, keras.layers.MultiHeadAttention,
            keras.layers.Attention)


def layer_geometry(layer: Any, lengths: Sequence[int]) -> Geometry | None:
    """The geometry of ``layer`` on rank-3 inputs of the given lengths, or None when it mixes
    positions (or is not known to this module, which is treated the same way)."""
    for classes, geometry in geometries():
        if isinstance(layer, classes):
            return geometry(layer, lengths)
    return None


# ----------------------------------------------------------------------------------------------
# the model as a flat list of layer calls
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One layer call of the flattened graph: ``layer`` on values ``inputs`` (the ids of the
    call's KerasTensors are ``keys``, to fill its recorded arguments) giving value ``outputs``."""

    layer: Any
    node: Any
    keys: tuple[int, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def __call__(self, values: Sequence[Any]) -> Any:
        args, kwargs = self.node.arguments.fill_in(dict(zip(self.keys, values, strict=True)))
        if getattr(self.layer, "_call_has_training_arg", False):
            kwargs["training"] = False
        return self.layer(*args, **kwargs)


def _functional(model: Any) -> Any:
    """The functional graph of a model (a Sequential's inner one), or None."""
    inner = getattr(model, "_functional", None)
    graph = inner if inner is not None else model
    return graph if hasattr(graph, "_nodes_by_depth") else None


class Graph:
    """A model's layer calls in execution order, nested functional models inlined (a model
    called twice, as the shared network of a conjoined model, appears twice)."""

    def __init__(self, model: Any) -> None:
        graph = _functional(model)
        if graph is None:
            raise NotRestrictable(f"model {model.name!r} is not a functional / sequential Keras "
                                  "model; restricted ISM needs its layer graph")
        self.steps: list[Step] = []
        self.shapes: list[tuple] = []
        self.inputs = [self._new(t) for t in graph.inputs]
        self.outputs = self._inline(graph, self.inputs)
        self.output_struct = graph._outputs_struct

    def _new(self, tensor: Any) -> int:
        self.shapes.append(tuple(tensor.shape))
        return len(self.shapes) - 1

    def _inline(self, graph: Any, inputs: list[int]) -> list[int]:
        import keras

        ids = {id(t): v for t, v in zip(graph.inputs, inputs, strict=True)}
        for depth in sorted(graph._nodes_by_depth, reverse=True):
            for node in graph._nodes_by_depth[depth]:
                if not node.operation or node.is_input:
                    continue
                if any(id(t) not in ids for t in node.input_tensors):
                    continue  # not connected to these inputs (as Keras skips it)
                values = [ids[id(t)] for t in node.input_tensors]
                sub = (_functional(node.operation) if isinstance(node.operation, keras.Model)
                       else None)  # nested models are inlined
                if sub is not None:
                    outputs = self._inline(sub, values)
                else:
                    outputs = [self._new(t) for t in node.outputs]
                    self.steps.append(Step(node.operation, node,
                                           tuple(id(t) for t in node.input_tensors),
                                           tuple(values), tuple(outputs)))
                for t, v in zip(node.outputs, outputs, strict=True):
                    ids[id(t)] = v
        return [ids[id(t)] for t in graph.outputs]


# ----------------------------------------------------------------------------------------------
# the plan: trunk, head, and each trunk map's recomputed slice per mutated position
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrunkMap:
    """One trunk map (a layer output, or the sequence itself): ``length`` positions; a mutation
    at input position i changes positions [lo[i], hi[i]) (empty: lo == hi); the recomputed slice
    is [start[i], start[i] + width) (that of a padded or cropped map is its input's, moved: it
    may reach outside the map, where it is not read)."""

    name: str
    length: int
    lo: np.ndarray
    hi: np.ndarray
    start: np.ndarray
    width: int


@dataclass(frozen=True)
class TrunkStep:
    """A trunk layer call; per input: ``direct``: its recomputed slice is exactly the window
    the layer needs (a position-wise layer on a map with the same slices), so no window is
    assembled from the cache; ``padded``: some window reaches outside the input map (those
    positions get the pad value); ``update``: a linear convolution whose recomputed slice is
    its cached output plus the convolution of its input's change (:func:`_linear_update`;
    cheaper when the input's slice is much narrower than the window a recomputation reads)."""

    step: Step
    geometry: Geometry
    direct: tuple[bool, ...]
    padded: tuple[bool, ...]
    update: bool = False


# linear convolutions are updated from their input's change (rather than recomputed) when the
# input has at least this many channels and its changed slice at most this fraction of the
# output slice's width (measured on beluga / basset, bench/ism.py)
UPDATE_MIN_CHANNELS = 32
UPDATE_MAX_FRACTION = 0.75


class RestrictedPlan:
    """How restricted ISM runs one model (see the module docstring).

    Attributes:
        maps: value id -> :class:`TrunkMap` of every trunk map (the sequence included).
        trunk: the trunk layer calls in execution order, with their geometry.
        head: the other layer calls, in execution order.
        cached: value ids of the maps the reference pass caches (trunk layer inputs and the
            maps the head reads).
        frontier: value ids of trunk maps the head (or the output) reads.
    """

    def __init__(self, model: Any, spec: ModelSpec) -> None:
        graph = Graph(model)
        self.graph = graph
        self.spec = spec
        seq = graph.inputs[spec.seq_index]
        length = graph.shapes[seq][1]
        if length is None:
            raise NotRestrictable("the sequence input has no fixed length")
        self.length = int(length)
        self.seq = seq
        self.others = {name: v for name, v in zip(spec.input_names, graph.inputs, strict=True)
                       if v != seq}
        positions = np.arange(self.length)
        self.maps: dict[int, TrunkMap] = {seq: self._map("sequence", seq, positions,
                                                          positions + 1)}
        self.trunk: list[TrunkStep] = []
        self.head: list[Step] = []
        for step in graph.steps:
            geometry = self._trunk_geometry(step)
            if geometry is None:
                self.head.append(step)
                continue
            lengths = [self.maps[v].length for v in step.inputs]
            out_length = int(graph.shapes[step.outputs[0]][1])
            ranges = [geometry.affected(self.maps[v].lo, self.maps[v].hi, n, out_length)
                      for v, n in zip(step.inputs, lengths, strict=True)]
            lo, hi = _envelope(ranges)
            if geometry.aliases_input:
                src = self.maps[step.inputs[0]]
                out = TrunkMap(step.layer.name, out_length, lo, hi,
                               src.start + np.int32(geometry.pad_left), src.width)
            else:
                out = self._map(step.layer.name, step.outputs[0], lo, hi)
            self.maps[step.outputs[0]] = out
            direct = tuple(geometry == POSITIONWISE and self.maps[v].width == out.width
                           and np.array_equal(self.maps[v].start, out.start)
                           for v in step.inputs)
            padded = []
            for v in step.inputs:
                first, span = geometry.needed(out.start.astype(np.int64), out.width,
                                              self.maps[v].length)
                padded.append(bool(first.min() < 0 or first.max() + span > self.maps[v].length))
            self.trunk.append(TrunkStep(step, geometry, direct, tuple(padded),
                                        self._updates(step, geometry, out)))
        if not self.trunk:
            first = next((s.layer for s in self.head if seq in s.inputs), None)
            what = f"{first.name!r} ({type(first).__name__})" if first is not None else "none"
            raise NotRestrictable(f"no position-local layer reads the sequence (first layer: "
                                  f"{what}), so every mutant needs the whole network")
        mixing = [s.layer for s in self.head if isinstance(s.layer, global_mixing())]
        if mixing:
            raise NotRestrictable(
                f"layer {mixing[0].name!r} ({type(mixing[0]).__name__}) attends over all "
                "positions: every map after it depends on every base, so each mutant would "
                "recompute the network from there on")
        read_by_head = {v for s in self.head for v in s.inputs} | set(graph.outputs)
        self.frontier = [v for v in self.maps if v in read_by_head]
        read = {v for t in self.trunk for v in t.step.inputs} | read_by_head
        read |= {t.step.outputs[0] for t in self.trunk if t.update}
        self.cached = [v for v in self.maps if v in read]

    def _updates(self, step: Step, geometry: Geometry, out: TrunkMap) -> bool:
        """Whether a linear convolution is updated from its input's change: worth it when the
        input's slice is well under the ``out.width`` positions a recomputation runs its kernel
        at (and has enough channels for the matrix product to dominate), possible when that
        slice lies inside the input map."""
        if not geometry.linear or len(step.inputs) != 1:
            return False
        src = self.maps[step.inputs[0]]
        channels = self.graph.shapes[step.inputs[0]][2]
        inside = bool((src.start >= 0).all() and (src.start + src.width <= src.length).all())
        return inside and channels >= UPDATE_MIN_CHANNELS and \
            src.width <= UPDATE_MAX_FRACTION * out.width

    def _trunk_geometry(self, step: Step) -> Geometry | None:
        if len(step.outputs) != 1 or not step.inputs:
            return None
        if any(v not in self.maps for v in step.inputs):
            return None  # reads something besides trunk maps
        shape = self.graph.shapes[step.outputs[0]]
        if len(shape) != 3 or shape[1] is None:
            return None
        return layer_geometry(step.layer, [self.maps[v].length for v in step.inputs])

    def _map(self, name: str, value: int, lo: np.ndarray, hi: np.ndarray) -> TrunkMap:
        length = int(self.graph.shapes[value][1])
        width = max(1, int((hi - lo).max()))
        start = np.where(_empty(lo, hi), 0, np.clip(lo, 0, length - width))
        return TrunkMap(name, length, lo.astype(np.int64), hi.astype(np.int64),
                        start.astype(np.int32), width)

    def map_named(self, name: str) -> TrunkMap:
        """The trunk map output by the layer ``name`` (its first call)."""
        for trunk_map in self.maps.values():
            if trunk_map.name == name:
                return trunk_map
        raise KeyError(f"no trunk map named {name!r}; trunk: "
                       f"{[m.name for m in self.maps.values()]}")

    def describe(self) -> dict[str, Any]:
        """Trunk and head layer names, the maps the head reads and their recomputed widths."""
        return {"trunk": [t.step.layer.name for t in self.trunk],
                "head": [s.layer.name for s in self.head],
                "frontier": [{"map": self.maps[v].name, "length": self.maps[v].length,
                              "width": self.maps[v].width} for v in self.frontier]}


def _envelope(ranges: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Per position, the smallest range holding every non-empty range."""
    big = np.iinfo(np.int64).max
    lo = np.min([np.where(_empty(a, b), big, a) for a, b in ranges], axis=0)
    hi = np.max([np.where(_empty(a, b), -1, b) for a, b in ranges], axis=0)
    empty = lo >= hi
    return np.where(empty, 0, lo), np.where(empty, 0, hi)


# ----------------------------------------------------------------------------------------------
# execution
# ----------------------------------------------------------------------------------------------
def _window(cache: Any, rows: Any, first: Any, width: int, pad_value: float | None,
            changed: Any, changed_start: Any) -> Any:
    """(B, width, C): positions first[b] + j of map ``cache`` (N, L, C) at row rows[b], out-of-
    range positions ``pad_value`` (None: there are none), positions inside the recomputed slice
    ``changed`` (B, w, C) at ``changed_start`` taken from it."""
    import tensorflow as tf

    length = tf.shape(cache)[1]
    at = first[:, None] + tf.range(width)[None, :]  # (B, width)
    clipped = at if pad_value is None else tf.clip_by_value(at, 0, length - 1)
    index = tf.stack([tf.broadcast_to(rows[:, None], tf.shape(at)), clipped], axis=-1)
    w = changed.shape[1]
    offset = at - changed_start[:, None]
    hit = (offset >= 0) & (offset < w)
    new = tf.gather(changed, tf.clip_by_value(offset, 0, w - 1), batch_dims=1)
    values = tf.where(hit[..., None], new, tf.gather_nd(cache, index))
    if pad_value is None:
        return values
    # outside the map: the pad value (also where a cropped map's slice, its input's, reaches)
    inside = (at >= 0) & (at < length)
    return tf.where(inside[..., None], values, tf.cast(pad_value, cache.dtype))


def _rows_slice(cache: Any, rows: Any, first: Any, width: int) -> Any:
    """(B, width, C): positions first[b] .. first[b] + width - 1 (inside the map) of row
    rows[b] of ``cache`` (N, L, C)."""
    import tensorflow as tf

    at = first[:, None] + tf.range(width)[None, :]
    index = tf.stack([tf.broadcast_to(rows[:, None], tf.shape(at)), at], axis=-1)
    return tf.gather_nd(cache, index)


def _linear_update(geometry: Window, kernel: Any, cache_in: Any, cache_out: Any, rows: Any,
                   changed: Any, changed_start: Any, start: Any, width: int) -> Any:
    """The slice [start, start + width) of a linear stride-1 convolution's output (kernel
    (k, C_in, C_out)) after its input changed to ``changed`` (B, w, C_in) at ``changed_start``:
    the cached output plus the convolution of the change. Output q reads input
    q - pad_left + t * dilation, so input position p reaches q = p + pad_left - t * dilation;
    the products of the change with every tap are one matrix product (B * w, C_in) x
    (C_in, k * C_out), then each output sums the k products that reach it."""
    import tensorflow as tf

    w = changed.shape[1]
    k, dilation = geometry.kernel, geometry.dilation
    change = changed - _rows_slice(cache_in, rows, changed_start, w)
    taps = tf.einsum("bpc,tco->bpto", change, tf.cast(kernel, change.dtype))  # (B, w, k, C)
    flat = tf.reshape(taps, [tf.shape(taps)[0], w * k, tf.shape(taps)[-1]])
    # output j of the slice takes tap t of input position j - offset + t * dilation (relative)
    offset = changed_start - start + geometry.pad_left
    rel = (tf.range(width)[None, :, None] - offset[:, None, None]
           + tf.range(k)[None, None, :] * dilation)  # (B, width, k)
    hit = (rel >= 0) & (rel < w)
    index = tf.clip_by_value(rel, 0, w - 1) * k + tf.range(k)[None, None, :]
    picked = tf.gather(flat, tf.reshape(index, [tf.shape(index)[0], width * k]), batch_dims=1)
    picked = tf.reshape(picked, [tf.shape(picked)[0], width, k, tf.shape(flat)[-1]])
    delta = tf.reduce_sum(tf.where(hit[..., None], picked, 0.0), axis=2)
    return _rows_slice(cache_out, rows, start, width) + delta


class RestrictedMutants:
    """Restricted ISM of one model and target: :meth:`prepare` caches the trunk maps of a chunk
    of sequences; calling it gives the target of mutants (rows, pos, base) of that chunk, as
    :func:`benchmark_rc.attribution.ism.mutant_function` does for plain ISM."""

    def __init__(self, model: Any, spec: ModelSpec, output: Any, logits: bool) -> None:
        import keras
        import tensorflow as tf

        plan = RestrictedPlan(model, spec)
        self.plan = plan
        seq_sig, others_sig = input_signature(spec)
        cache_sig = [tf.TensorSpec((None, plan.maps[v].length, plan.graph.shapes[v][2]),
                                   tf.float32) for v in plan.cached]
        idx_sig = tf.TensorSpec((None,), tf.int32)
        starts = {v: tf.constant(m.start) for v, m in plan.maps.items()}

        def target(values: dict[int, Any]) -> Any:
            outputs = keras.tree.pack_sequence_as(plan.graph.output_struct,
                                                  [values[v] for v in plan.graph.outputs])
            head, kind = select_head(outputs, output, logits)
            return reduce_head(head, kind)

        @tf.function(input_signature=[seq_sig, others_sig], autograph=False)
        def reference(seq, others):
            values = {plan.seq: seq}
            for t in plan.trunk:
                values[t.step.outputs[0]] = t.step([values[v] for v in t.step.inputs])
            return [values[v] for v in plan.cached]

        @tf.function(input_signature=[cache_sig, others_sig, idx_sig, idx_sig, idx_sig],
                     autograph=False)
        def mutants(caches, others, rows, pos, base):
            cache = dict(zip(plan.cached, caches, strict=True))
            # recomputed slice of every trunk map, starting with the mutated base itself
            changed = {plan.seq: tf.one_hot(base, 4, dtype=tf.float32)[:, None, :]}
            start = {v: tf.gather(starts[v], pos) for v in plan.maps}
            for t in plan.trunk:
                out = t.step.outputs[0]
                if t.geometry.aliases_input:
                    changed[out] = changed[t.step.inputs[0]]
                    continue
                width = plan.maps[out].width
                if t.update:
                    v = t.step.inputs[0]
                    changed[out] = _linear_update(t.geometry, t.step.layer.kernel, cache[v],
                                                  cache[out], rows, changed[v], start[v],
                                                  start[out], width)
                    continue
                windows = []
                for v, direct, padded in zip(t.step.inputs, t.direct, t.padded, strict=True):
                    if direct:
                        windows.append(changed[v])
                        continue
                    first, span = t.geometry.needed(start[out], width, plan.maps[v].length)
                    pad = t.geometry.pad_value if padded else None
                    windows.append(_window(cache[v], rows, first, span, pad, changed[v],
                                           start[v]))
                changed[out] = t.geometry.apply(t.step, windows, width)
            values = {v: tf.gather(others[name], rows) for name, v in plan.others.items()}
            zero = tf.zeros_like(pos)
            for v in plan.frontier:
                values[v] = _window(cache[v], rows, zero, plan.maps[v].length, None,
                                    changed[v], start[v])
            for step in plan.head:
                result = step([values[v] for v in step.inputs])
                for v, r in zip(step.outputs, keras.tree.flatten(result), strict=True):
                    values[v] = r
            return target(values)

        self.reference = reference
        self.mutants = mutants

    def prepare(self, seq: np.ndarray, others: dict[str, np.ndarray]) -> tuple:
        """The state for a chunk of sequences: the cached trunk maps and the other inputs."""
        import tensorflow as tf

        others_t = {k: tf.constant(v) for k, v in others.items()}
        return self.reference(tf.constant(seq), others_t), others_t

    def __call__(self, state: tuple, rows: np.ndarray, pos: np.ndarray,
                 base: np.ndarray) -> np.ndarray:
        caches, others = state
        return self.mutants(caches, others, rows, pos, base).numpy()


@traced_per_model
def restricted_mutants(model: Any, spec: ModelSpec, output: Any,
                       logits: bool) -> RestrictedMutants:
    """The :class:`RestrictedMutants` of ``model`` (made once per model and target); raises
    :class:`NotRestrictable` for a model without a usable trunk."""
    return RestrictedMutants(model, spec, output, logits)

"""What every attribution method explains: where the sequence enters the model (:class:`ModelSpec`,
:func:`split_inputs`), which output head is explained and how it becomes one scalar per example
(:func:`select_head`, :func:`reduce_head`), and the traced forward / gradient functions of that
scalar (:func:`target_function`, :func:`gradient_function`, :func:`predict_target`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark_rc.attribution.batching import (
    check_batch_size,
    chunks,
    device_scope,
    traced_per_model,
)
from benchmark_rc.errors import UserError


@dataclass(frozen=True)
class ModelSpec:
    """Where the sequence enters the model and how its other inputs are named/shaped."""

    seq_name: str
    seq_index: int
    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int | None, ...], ...]
    dict_inputs: bool

    @property
    def seq_shape(self) -> tuple[int | None, ...]:
        return self.input_shapes[self.seq_index]


def model_spec(model: Any) -> ModelSpec:
    """Find the (N, L, 4) sequence input of ``model`` (named "sequence" if there are several)."""
    inputs = list(model.inputs)
    names = tuple(getattr(t, "name", f"input_{i}").split(":")[0] for i, t in enumerate(inputs))
    shapes = tuple(tuple(t.shape) for t in inputs)
    if len(inputs) == 1:
        idx = 0
    elif "sequence" in names:
        idx = names.index("sequence")
    else:
        raise UserError(f"model has {len(inputs)} inputs {list(names)}; cannot tell which one is "
                        "the DNA sequence (expected one named 'sequence')")
    if len(shapes[idx]) != 3 or shapes[idx][-1] != 4:
        raise UserError(f"model input {names[idx]!r} has shape {shapes[idx]}; expected "
                        "(N, L, 4) one-hot DNA")
    dict_inputs = isinstance(getattr(model, "_inputs_struct", None), dict) or len(inputs) > 1
    return ModelSpec(names[idx], idx, names, shapes, dict_inputs)


def check_one_hot(x: np.ndarray, name: str, length: int | None) -> np.ndarray:
    """Validate (N, L, 4) one-hot (all-zero rows allowed for N); returns float32."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[-1] != 4:
        raise UserError(f"{name}: expected one-hot DNA of shape (N, L, 4), got {x.shape}")
    if length is not None and x.shape[1] != length:
        raise UserError(f"{name}: the model expects sequences of length {length}, "
                        f"got length {x.shape[1]}")
    if x.dtype.kind not in "biuf":
        raise UserError(f"{name}: expected a numeric one-hot array, got dtype {x.dtype}")
    xf = x.astype(np.float32, copy=False)
    bad = ~((xf == 0) | (xf == 1))
    rows = xf.sum(-1)
    if bad.any() or (rows > 1).any():
        where = np.argwhere(bad.any(-1) | (rows > 1))[0]
        raise UserError(f"{name}: not one-hot at sequence {where[0]}, position {where[1]} "
                        f"(values {xf[where[0], where[1]].tolist()}); expected 0/1 entries with "
                        "at most one 1 per position")
    return xf


def split_inputs(model: Any, x: Any, spec: ModelSpec) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Accept an (N, L, 4) array or a dict with the sequence and (optionally) the other inputs;
    other inputs that are missing are filled with zeros."""
    if isinstance(x, dict):
        if spec.seq_name not in x:
            raise UserError(f"input dict lacks the sequence input {spec.seq_name!r}; "
                            f"keys: {sorted(x)}")
        seq = x[spec.seq_name]
        others_in = {k: v for k, v in x.items() if k != spec.seq_name}
    else:
        seq, others_in = x, {}
    seq = check_one_hot(seq, "x", spec.seq_shape[1])
    n = seq.shape[0]
    others = {}
    for name, shape in zip(spec.input_names, spec.input_shapes, strict=True):
        if name == spec.seq_name:
            continue
        if name in others_in:
            arr = np.asarray(others_in[name], dtype=np.float32)
            if arr.shape != (n, *shape[1:]):
                raise UserError(f"input {name!r}: expected shape {(n, *shape[1:])}, "
                                f"got {arr.shape}")
        else:
            arr = np.zeros((n, *shape[1:]), dtype=np.float32)
        others[name] = arr
    unknown = set(others_in) - set(spec.input_names)
    if unknown:
        raise UserError(f"unknown model inputs {sorted(unknown)}; the model takes "
                        f"{list(spec.input_names)}")
    return seq, others


def call_model(model: Any, spec: ModelSpec, seq: Any, others: dict) -> Any:
    """``model`` in inference mode on the sequence tensor and the other inputs, fed the way the
    model takes them (a tensor, a dict or a list)."""
    if len(spec.input_names) == 1:
        return model(seq, training=False)
    feed = dict(others)
    feed[spec.seq_name] = seq
    if spec.dict_inputs and isinstance(getattr(model, "_inputs_struct", None), dict):
        return model(feed, training=False)
    return model([feed[name] for name in spec.input_names], training=False)


def input_signature(spec: ModelSpec) -> tuple[Any, dict[str, Any]]:
    """tf.TensorSpec of the sequence and of each other input (any batch size)."""
    import tensorflow as tf

    seq = tf.TensorSpec((None, *spec.seq_shape[1:]), tf.float32)
    others = {name: tf.TensorSpec((None, *shape[1:]), tf.float32)
              for name, shape in zip(spec.input_names, spec.input_shapes, strict=True)
              if name != spec.seq_name}
    return seq, others


def strip_sigmoid(t: Any) -> Any:
    """Pre-sigmoid logits of a tensor produced by a Sigmoid (through Identity ops)."""
    node = t
    while node.op.type in ("Identity", "IdentityN") and len(node.op.inputs) >= 1:
        node = node.op.inputs[node.value_index if node.op.type == "IdentityN" else 0]
    if node.op.type == "Sigmoid":
        return node.op.inputs[0]
    return t


@dataclass(frozen=True)
class TrackTarget:
    """Explain a binned-track head (the tracks task, e.g. enformer's "tracks") as the sum of its
    predicted rates over bins: ``track`` (a channel index; None: the mean over the head's
    channels) summed over the central ``bins`` bins (None: all bins). Pass it as ``output`` to
    any method, e.g. ``deepshap(model, x, output=TrackTarget("tracks", 0, bins=2))`` explains
    the promoter track at the two central bins of the long-range simulation.

    A rate sum is an ordinary function of the input, so integrated gradients are complete for
    it; and it is RC-invariant for an RC-equivariant model when the channel is unstranded (or
    the mean over a stranded head's pairs) and the bins are centred. (The bare head name,
    ``output="tracks"``, the task's default, explains BPNet's profile target of that head
    instead: the shape of the track, sum_i l_i softmax(l)_i of the mean-centred rates.)"""

    head: str = "tracks"
    track: int | None = None
    bins: int | None = None

    def __post_init__(self) -> None:
        if self.track is not None and (not isinstance(self.track, int | np.integer)
                                       or self.track < 0):
            raise UserError(f"TrackTarget track must be a channel index >= 0, got {self.track!r}")
        if self.bins is not None and (not isinstance(self.bins, int | np.integer)
                                      or self.bins < 1):
            raise UserError(f"TrackTarget bins must be a positive integer, got {self.bins!r}")

    def check(self, head: Any) -> None:
        """Raise UserError unless ``head`` is (N, bins, channels) and the choice fits it."""
        if len(head.shape) != 3:
            raise UserError(f"TrackTarget: head {self.head!r} has shape {tuple(head.shape)}, "
                            "expected binned tracks (N, bins, channels)")
        total, channels = head.shape[1], head.shape[2]
        if self.track is not None and self.track >= channels:
            raise UserError(f"TrackTarget track {self.track} out of range: head {self.head!r} "
                            f"has {channels} channels")
        if self.bins is not None and total is not None and (
                self.bins > total or (total - self.bins) % 2):
            raise UserError(f"TrackTarget bins {self.bins}: head {self.head!r} has {total} "
                            "bins; choose at most that many, leaving an even number to crop "
                            "(centred)")

    def reduce(self, head: Any) -> Any:
        """(N, B, C) -> (N,): the sum over the chosen bins of the chosen channel(s)."""
        import tensorflow as tf

        if self.bins is not None:
            crop = (int(head.shape[1]) - self.bins) // 2
            head = head[:, crop:crop + self.bins]
        values = (tf.reduce_mean(head, axis=-1) if self.track is None
                  else head[:, :, self.track])
        return tf.reduce_sum(values, axis=-1)


def select_head(outputs: Any, output: Any, logits: bool):
    """Choose the explained head tensor and how it is reduced to one scalar per example.

    Returns (head tensor, kind) with kind in {"profile", "mean", ("column", j), a
    :class:`TrackTarget`}.
    """
    if isinstance(output, TrackTarget):
        if not isinstance(outputs, dict) or output.head not in outputs:
            heads = sorted(outputs) if isinstance(outputs, dict) else "one unnamed head"
            raise UserError(f"TrackTarget head {output.head!r}: the model's heads are {heads}")
        head = outputs[output.head]
        output.check(head)
        return head, output
    if isinstance(outputs, dict):
        keys = sorted(outputs)
        name, col = (output if isinstance(output, tuple) else (output, None))
        if name is None and len(keys) == 1:
            name = keys[0]
        if name not in outputs:
            raise UserError(f"output={output!r}: choose one of the model's heads {keys}")
        head = outputs[name]
    elif isinstance(outputs, list | tuple) and len(outputs) > 1:
        if not isinstance(output, tuple) or not isinstance(output[0], int):
            raise UserError(f"model has {len(outputs)} outputs; pass output=(head, task)")
        head, col = outputs[output[0]], output[1]
    else:
        head = outputs[0] if isinstance(outputs, list | tuple) else outputs
        col = output
        if col is None:
            if len(head.shape) == 2 and head.shape[-1] == 1:
                col = 0
            elif len(head.shape) == 2:
                raise UserError(f"the model has {head.shape[-1]} tasks; choose one with "
                                f"output=<task index 0..{head.shape[-1] - 1}>")
        if col is not None and not isinstance(col, int | np.integer):
            raise UserError(f"output={output!r}: expected a task index for this model")
    if logits:
        head = strip_sigmoid(head)
    rank = len(head.shape)
    if rank == 3:
        return head, "profile"
    if rank != 2:
        raise UserError(f"cannot explain an output of shape {tuple(head.shape)}")
    if col is None:
        return head, "mean"
    if not 0 <= int(col) < head.shape[-1]:
        raise UserError(f"output task {col} out of range: the head has {head.shape[-1]} columns")
    return head, ("column", int(col))


def centred(head: Any) -> Any:
    """A profile head (n, L, S) flattened to (n, L*S) and mean-centred per example."""
    import tensorflow as tf

    flat = tf.reshape(head, [tf.shape(head)[0], -1])
    return flat - tf.reduce_mean(flat, axis=-1, keepdims=True)


def reduce_head(head: Any, kind: Any, *, product: Callable[[Any], Any] | None = None) -> Any:
    """One scalar per example: a column, the mean over columns, or BPNet's profile target
    sum_i l_i softmax(l)_i of the mean-centred logits l.

    ``product(l)`` forms the profile target's terms ``l * softmax(l)`` from the centred logits;
    the default stops the gradient through the softmax weights (BPNet's explained quantity). The
    DeepLIFT trace passes the rescale rule of that product
    (:func:`benchmark_rc.attribution.rules.rescale_product_target`)."""
    import tensorflow as tf

    if isinstance(kind, TrackTarget):
        return kind.reduce(head)
    if kind == "profile":
        lc = centred(head)
        if product is not None:
            prod = product(lc)
        else:
            prod = lc * tf.stop_gradient(tf.nn.softmax(lc, axis=-1))
        return tf.reduce_sum(prod, axis=-1)
    if kind == "mean":
        return tf.reduce_mean(head, axis=-1)
    return head[:, kind[1]]


def explained_target(model: Any, spec: ModelSpec, seq: Any, others: dict, output: Any,
                     logits: bool) -> Any:
    """The scalar target per example of ``model`` on (seq, others), inside a trace."""
    head, kind = select_head(call_model(model, spec, seq, others), output, logits)
    return reduce_head(head, kind)


@traced_per_model
def target_function(model: Any, spec: ModelSpec, output: Any, logits: bool) -> Callable:
    """Traced fn(seq, others) -> scalar target per example (forward only)."""
    import tensorflow as tf

    seq_sig, others_sig = input_signature(spec)

    @tf.function(input_signature=[seq_sig, others_sig], autograph=False)
    def fn(seq, others):
        return explained_target(model, spec, seq, others, output, logits)

    return fn


@traced_per_model
def gradient_function(model: Any, spec: ModelSpec, output: Any, logits: bool) -> Callable:
    """Traced fn(seq, others) -> (d target / d seq, target)."""
    import tensorflow as tf

    seq_sig, others_sig = input_signature(spec)

    @tf.function(input_signature=[seq_sig, others_sig], autograph=False)
    def fn(seq, others):
        with tf.GradientTape() as tape:
            tape.watch(seq)
            t = explained_target(model, spec, seq, others, output, logits)
            total = tf.reduce_sum(t)
        return tape.gradient(total, seq), t

    return fn


def predict_target(model: Any, x: Any, output: Any = None, *, logits: bool = True,
                   batch_size: int | None = None) -> np.ndarray:
    """The scalar every method explains, one per sequence: (N,).

    ``x``: (N, L, 4) one-hot or a dict of model inputs. ``output``: task index for single-head
    models, head name for dict outputs ("profile": BPNet's sum of mean-centred logits weighted by
    their softmax; "counts": mean over strands; ("counts", j): strand j). ``logits``: explain the
    pre-sigmoid logit when the output ends in a sigmoid.
    """
    spec = model_spec(model)
    seq, others = split_inputs(model, x, spec)
    fn = target_function(model, spec, output, logits)
    batch_size = check_batch_size(batch_size)
    out = np.empty(seq.shape[0], dtype=np.float32)
    with device_scope():
        for sl in chunks(seq.shape[0], batch_size):
            out[sl] = fn(seq[sl], {k: v[sl] for k, v in others.items()}).numpy()
    return out

"""Gradient methods: saliency, gradient x input, integrated gradients, GradCAM."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmark_rc.attribution.batching import (
    check_batch_size,
    chunks,
    device_scope,
    progress_bar,
    traced_per_model,
)
from benchmark_rc.attribution.deeplift import combine_multipliers
from benchmark_rc.attribution.references import check_references, dinuc_shuffle_references
from benchmark_rc.attribution.targets import (
    ModelSpec,
    call_model,
    gradient_function,
    input_signature,
    model_spec,
    reduce_head,
    select_head,
    split_inputs,
)
from benchmark_rc.errors import UserError


def _gradients(model: Any, seq: np.ndarray, others: dict, output: Any, logits: bool,
               batch_size: int, progress: bool, desc: str) -> np.ndarray:
    fn = gradient_function(model, model_spec(model), output, logits)
    out = np.empty(seq.shape, dtype=np.float32)
    with device_scope(), progress_bar(seq.shape[0], desc, progress) as bar:
        for sl in chunks(seq.shape[0], batch_size):
            out[sl] = fn(seq[sl], {k: v[sl] for k, v in others.items()})[0].numpy()
            bar.update(sl.stop - sl.start)
    return out


def saliency(model: Any, x: Any, output: Any = None, *, logits: bool = True,
             batch_size: int | None = None, progress: bool = False) -> np.ndarray:
    """Gradient of the target with respect to the one-hot input: (N, L, 4)."""
    spec = model_spec(model)
    seq, others = split_inputs(model, x, spec)
    return _gradients(model, seq, others, output, logits, check_batch_size(batch_size),
                      progress, "saliency")


def input_x_gradient(model: Any, x: Any, output: Any = None, *, logits: bool = True,
                     batch_size: int | None = None, progress: bool = False) -> np.ndarray:
    """Gradient x input (zero reference): (N, L, 4), non-zero only at observed bases."""
    spec = model_spec(model)
    seq, others = split_inputs(model, x, spec)
    grads = _gradients(model, seq, others, output, logits, check_batch_size(batch_size),
                       progress, "input_x_gradient")
    return grads * seq


def integrated_gradients(model: Any, x: Any, references: np.ndarray | None = None,
                         n_shuffles: int = 10, seed: int = 0, steps: int = 20,
                         hypothetical: bool = False, output: Any = None, *,
                         logits: bool = True, batch_size: int | None = None,
                         progress: bool = False) -> np.ndarray:
    """Integrated gradients from dinucleotide-shuffled (or given (N, R, L, 4)) baselines.

    Midpoint rule with ``steps`` intervals (alpha = (i + 0.5) / steps, Prakash et al.); the mean
    gradient ``g`` along each path is combined with ``x - ref`` and averaged over references,
    with the same conventions as :func:`deepshap`: actual scores put ``sum_c g_c (x_c - ref_c)``
    on the observed base; ``hypothetical=True`` gives ``g_b - sum_c g_c ref_c``. (N, L, 4).
    """
    spec = model_spec(model)
    seq, others = split_inputs(model, x, spec)
    batch_size = check_batch_size(batch_size)
    if not isinstance(steps, int | np.integer) or steps < 1:
        raise UserError(f"steps must be a positive integer, got {steps!r}")
    refs = (check_references(references, seq) if references is not None
            else dinuc_shuffle_references(seq, n_shuffles, seed))
    n, r = refs.shape[:2]
    alphas = ((np.arange(steps) + 0.5) / steps).astype(np.float32)
    fn = gradient_function(model, spec, output, logits)
    result = np.empty(seq.shape, dtype=np.float32)
    per_seq = r * steps
    with device_scope(), progress_bar(n, "integrated_gradients", progress) as bar:
        for i in range(n):
            # points (R, S, L, 4) along the straight paths ref -> x
            diff = seq[i][None] - refs[i]
            pts = (refs[i][:, None] + alphas[None, :, None, None] * diff[:, None]).reshape(
                per_seq, *seq.shape[1:])
            grads = np.empty_like(pts)
            for sl in chunks(per_seq, batch_size):
                feed = {k: np.repeat(v[i:i + 1], sl.stop - sl.start, axis=0)
                        for k, v in others.items()}
                grads[sl] = fn(pts[sl], feed)[0].numpy()
            mean_grad = grads.reshape(r, steps, *seq.shape[1:]).mean(axis=1)
            result[i] = combine_multipliers(mean_grad[None], seq[i:i + 1], refs[i:i + 1],
                                            hypothetical)[0]
            bar.update(1)
    return result


def _upsample(cam: np.ndarray, length: int) -> np.ndarray:
    """Conv-resolution scores (N, Lc) -> base resolution (N, L).

    Each base gets the mean score of the conv outputs whose receptive field covers it, with the
    window inferred as L - Lc + 1 (Prakash et al.; stride-1 layers). Strided/pooled layers
    (Lc < L / 2) are upsampled by nearest bins instead, sampled at the centre of each base so
    that the mapping commutes with reversal (an RC-equivariant map stays RC-consistent).
    """
    n, lc = cam.shape
    if lc == length:
        return cam
    if 2 * lc >= length:
        w = length - lc + 1
        csum = np.concatenate([np.zeros((n, 1)), np.cumsum(cam, axis=1)], axis=1)
        pos = np.arange(length)
        lo = np.clip(pos - w + 1, 0, lc)
        hi = np.clip(pos + 1, 0, lc)
        return ((csum[:, hi] - csum[:, lo]) / np.maximum(hi - lo, 1)).astype(np.float32)
    idx = np.minimum(((2 * np.arange(length) + 1) * lc) // (2 * length), lc - 1)
    return cam[:, idx]


@traced_per_model
def gradcam_function(model: Any, spec: ModelSpec, layer: str, variant: str, output: Any,
                     logits: bool) -> Callable:
    """Traced fn(seq, others) -> ReLU'd GradCAM map (n, L') at the conv layer named ``layer``."""
    import keras
    import tensorflow as tf

    chosen = model.get_layer(layer)
    sub = keras.Model(getattr(model, "_inputs_struct", model.inputs),
                      [chosen.output, getattr(model, "_outputs_struct", model.outputs)])
    seq_sig, others_sig = input_signature(spec)

    @tf.function(input_signature=[seq_sig, others_sig], autograph=False)
    def fn(s, o):
        with tf.GradientTape() as tape:
            act, outs = call_model(sub, spec, s, o)
            outs = outs[0] if isinstance(outs, list | tuple) and len(outs) == 1 else outs
            head, kind = select_head(outs, output, logits)
            total = tf.reduce_sum(reduce_head(head, kind))
        g = tape.gradient(total, act)
        if variant == "textbook":
            cam = tf.reduce_sum(tf.reduce_mean(g, axis=1, keepdims=True) * act, axis=-1)
        else:
            cam = tf.reduce_mean(g, axis=-1) * tf.reduce_sum(act, axis=-1)
        return tf.nn.relu(cam)

    return fn


def gradcam(model: Any, x: Any, layer: str | None = None, output: Any = None, *,
            variant: str = "textbook", logits: bool = True, batch_size: int | None = None,
            progress: bool = False) -> np.ndarray:
    """GradCAM at a conv layer (default: the first Conv1D), returned as (N, L, 4) with the
    base-resolution score on the observed base.

    ``variant="textbook"``: channel weights = gradients averaged over positions,
    cam = ReLU(sum_c w_c A_c). ``variant="position"``: Prakash et al.'s implementation, weights
    averaged over channels at each position, cam_p = ReLU(w_p sum_c A_pc).
    """
    if variant not in ("textbook", "position"):
        raise UserError(f"variant must be 'textbook' or 'position', got {variant!r}")
    spec = model_spec(model)
    seq, others = split_inputs(model, x, spec)
    batch_size = check_batch_size(batch_size)
    convs = [lay for lay in model.layers if "conv" in type(lay).__name__.lower()]
    if layer is None:
        if not convs:
            raise UserError("gradcam: the model has no top-level convolution layer; pass layer=")
        chosen = convs[0]
    else:
        try:
            chosen = model.get_layer(layer)
        except ValueError as err:
            raise UserError(f"gradcam: no layer named {layer!r} in the model; conv layers: "
                            f"{[lay.name for lay in convs]}") from err
    if len(chosen.output.shape) != 3:
        raise UserError(f"gradcam: layer {chosen.name!r} output {chosen.output.shape} is not "
                        "(N, L', C)")
    fn = gradcam_function(model, spec, chosen.name, variant, output, logits)
    cams = []
    with device_scope(), progress_bar(seq.shape[0], "gradcam", progress) as bar:
        for sl in chunks(seq.shape[0], batch_size):
            cams.append(fn(seq[sl], {k: v[sl] for k, v in others.items()}).numpy())
            bar.update(sl.stop - sl.start)
    cam = _upsample(np.concatenate(cams), seq.shape[1])
    return (cam[:, :, None] * seq).astype(np.float32)

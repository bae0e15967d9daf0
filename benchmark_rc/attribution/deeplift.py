"""DeepLIFT (rescale rule) / DeepSHAP: multipliers averaged over references, with hypothetical
contributions, natively in TensorFlow and batched.

How it works (no global TensorFlow state is touched):

* One traced ``tf.function`` (:func:`rescale_function`) evaluates the model on the stacked batch
  ``[x (n); refs (n*R)]`` (references grouped by sequence, R per sequence). The forward
  activations of ``x`` are therefore computed once per sequence, not once per reference.
* Inside that trace the reference branch is built under ``Graph.gradient_override_map``: every
  non-linear op type with an entry in the rules table (:mod:`benchmark_rc.attribution.rules`:
  Relu, Sigmoid, Exp, MaxPool, Max, Maximum, ...) gets a gradient that returns its DeepLIFT
  multiplier for each (sequence, reference) pair, with the activation of ``x`` broadcast over its
  R references. Element-wise ops use the *rescale* rule ``(f(a_x) - f(a_r)) / (a_x - a_r)`` with
  the ordinary gradient where ``|a_x - a_r| < 1e-6`` (as shap does); max-like ops route the
  output difference to the maxima and divide by the input change (``MaxRule``: continuous, or
  shap's thresholded rule), or pass the multipliers through their gradient at x (deeplift's rule,
  ``GradientMaxRule``). Linear ops (convolutions, BN in inference, flips, concatenations,
  the RC layers written with ``keras.ops``) keep their ordinary gradients.
* ``tf.gradients`` of the summed reference-half targets then gives, for each pair, the
  multipliers ``m`` on the input; contributions are ``m * (x - ref)``.
* Before tracing the override, the ops between the sequence input and the explained head are
  checked: an op type that is neither linear nor in the rules table raises :class:`UserError`,
  instead of silently returning gradients. The override map is a context manager of one
  FuncGraph, so a failing call leaves TensorFlow exactly as it was (training keeps working).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from benchmark_rc.attribution import rules as R
from benchmark_rc.attribution.batching import (
    check_batch_size,
    chunks,
    device_scope,
    pad_rows,
    progress_bar,
    traced_per_model,
)
from benchmark_rc.attribution.references import (
    block_sequences,
    check_references,
    dinuc_shuffle_references,
)
from benchmark_rc.attribution.targets import (
    ModelSpec,
    call_model,
    centred,
    input_signature,
    model_spec,
    reduce_head,
    select_head,
    split_inputs,
)
from benchmark_rc.errors import UserError


@traced_per_model
def rescale_function(model: Any, spec: ModelSpec, output: Any, logits: bool, r: int,
                     division: R.MaxPoolRule = R.CONTINUOUS, fuse: bool = True) -> Callable:
    """Traced fn(x (n,L,4), refs (n*R,L,4), others) -> (hypothetical (n,L,4) averaged over
    references, per-position summed contributions (n,L), t_x (n,), t_ref (n*R,)).
    ``division``: the max-pool rule of the max-like ops; ``fuse``: the rules' element-wise math
    as XLA kernels."""
    import tensorflow as tf

    seq_sig, others_sig = input_signature(spec)
    rules = R.deeplift_rules(division)  # through the module: tests swap the table

    @tf.function(input_signature=[seq_sig, seq_sig, others_sig], autograph=False)
    def fn(x, refs, others):
        graph = tf.compat.v1.get_default_graph()
        trace = R.DeepLiftTrace(references=r, rules=rules, fuse=fuse)
        with R.attach(graph, trace):
            start = len(graph.get_operations())
            head_x, kind = select_head(call_model(model, spec, x, others), output, logits)
            other_refs = {k: tf.repeat(v, r, axis=0) for k, v in others.items()}
            middle = len(graph.get_operations())  # the reference branch's model call from here
            with trace.override(graph):
                head_r, _ = select_head(call_model(model, spec, refs, other_refs), output,
                                        logits)
                ops = graph.get_operations()
                trace.partner = R.pair_ops(ops[start:middle], ops[middle:], rules)
                trace.dependent = R.check_supported_ops(refs, head_r, rules)
                t_r = reduce_head(head_r, kind, product=lambda l_ref: R.rescale_product_target(
                    l_ref, centred(head_x), r))
            t_x = reduce_head(head_x, kind)
            mult = tf.gradients(tf.reduce_sum(t_r), refs)[0]
        n = tf.shape(x)[0]
        shape = tf.concat([[n, r], tf.shape(x)[1:]], axis=0)
        mult = tf.reshape(mult, shape)
        refs4 = tf.reshape(refs, shape)
        hyp = tf.reduce_mean(mult - tf.reduce_sum(mult * refs4, -1, keepdims=True), axis=1)
        pos_sum = tf.reduce_mean(tf.reduce_sum(mult * (x[:, None] - refs4), -1), axis=1)
        return hyp, pos_sum, t_x, t_r

    fn.get_concrete_function()  # trace now: unsupported ops raise here, before any work
    return fn


def combine_multipliers(mult: np.ndarray, x: np.ndarray, refs: np.ndarray,
                        hypothetical: bool) -> np.ndarray:
    """Turn multipliers into scores, averaged over references.

    mult, refs: (N, R, L, 4); x: (N, L, 4). Hypothetical score of base b at a position:
    ``m[b] - sum_c m[c] ref[c]`` (the contribution had the base been b). Actual scores
    (``hypothetical=False``) put the per-position sum ``sum_c m[c] (x[c] - ref[c])`` on the
    observed base (= hypothetical x one-hot); at all-zero (N) rows that sum is spread evenly over
    the four channels so that summation-to-delta still holds. Returns (N, L, 4) float32.
    """
    hyp = (mult - np.sum(mult * refs, axis=-1, keepdims=True)).mean(axis=1)
    if hypothetical:
        return hyp.astype(np.float32, copy=False)
    pos_sum = np.sum(mult * (x[:, None] - refs), axis=-1).mean(axis=1)
    return project(hyp, pos_sum, x)


def project(hyp: np.ndarray, pos_sum: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Actual scores from hypothetical ones: hyp x one-hot; at all-zero (N) rows the per-position
    sum ``pos_sum`` (N, L) is spread evenly over the four channels. Returns (N, L, 4) float32."""
    out = hyp * x
    empty = x.sum(-1) == 0
    if empty.any():
        out[empty] = (pos_sum[empty] / 4.0)[:, None]
    return out.astype(np.float32, copy=False)


def delta_tolerance(delta: np.ndarray, t_x: np.ndarray, t_r: np.ndarray, pos_sum: np.ndarray,
                    rtol: float) -> np.ndarray:
    """How far ``pos_sum.sum(1)`` may be from ``delta`` = t_x - mean_r t_r, per sequence (N,).

    ``rtol * |delta|`` (the check proper) plus a float32 rounding budget: the targets f(x),
    f(ref) and the sum of the per-position contributions are float32 results whose rounding
    error scales with their magnitude, not with ``delta`` (for an RC-invariant model and
    reference RC(x), delta is 0 up to rounding while |f| may be 30). The budget is the
    random-walk bound of a float32 sum of 4L terms, eps32 * sqrt(4L), times the magnitude at
    play: |f(x)| + mean_r |f(ref_r)| + sum_l |pos_sum_l|. Measured errors on registry models are
    about eps32 times that magnitude, so the budget leaves a margin of sqrt(4L) (28 at 200 bp,
    63 at 1 kb) while staying far below a real violation (a wrong multiplier moves the sum by
    a fraction of the contributions themselves).

    delta, t_x: (N,); t_r: (N, R); pos_sum: (N, L).
    """
    eps = np.finfo(np.float32).eps
    magnitude = np.abs(t_x) + np.abs(t_r).mean(1) + np.abs(pos_sum).sum(1)
    return rtol * np.abs(delta) + eps * np.sqrt(4 * pos_sum.shape[1]) * magnitude


def deepshap(model: Any, x: Any, references: np.ndarray | None = None, n_shuffles: int = 20,
             seed: int = 0, hypothetical: bool = False, output: Any = None, *,
             logits: bool = True, batch_size: int | None = None, progress: bool = False,
             check_delta: float | None = 1e-3,
             maxpool_rule: str | R.MaxPoolRule = "continuous") -> np.ndarray:
    """DeepSHAP scores (DeepLIFT rescale averaged over references): (N, L, 4) float32.

    Args:
        model: keras model, input (N, L, 4) one-hot (or several inputs, one named "sequence").
        x: (N, L, 4) one-hot (all-zero rows for N), or a dict of model inputs; non-sequence inputs
            are held fixed (same value for x and its references).
        references: optional (N, R, L, 4) references; default ``n_shuffles`` dinucleotide shuffles
            of each sequence (:func:`benchmark_rc.attribution.dinuc_shuffle_references`, seeded
            per sequence content).
        hypothetical: return hypothetical contributions (for TF-MoDISco) instead of actual ones.
        output: task index, or head name for dict outputs (see
            :func:`benchmark_rc.attribution.targets.predict_target`).
        logits: explain the pre-sigmoid logit when the output ends in a sigmoid.
        batch_size: rows (sequences + references) per forward pass; bounds memory. Every pass
            has the same number of rows (the last chunk is padded), so a model is compiled once
            per batch size and R, whatever the number of sequences.
        progress: show a tqdm progress bar.
        check_delta: warn when ``|scores.sum() - delta|`` exceeds ``check_delta * |delta|`` plus
            the float32 rounding budget of the computation (:func:`delta_tolerance`); None: no
            check. Skipped under a max-pool rule that is not additive ("gradient").
        maxpool_rule: the rule of max pooling, global max pooling and element-wise
            maximum/minimum, a name of :data:`benchmark_rc.attribution.rules.MAX_RULES` or a
            :class:`~benchmark_rc.attribution.rules.MaxPoolRule`. "continuous" (default) and
            "shap" are shap's DeepLIFT rule: x's excess over the reference goes to x's argmax,
            the reference's excess to the reference's argmax, and each input divides what it
            received by its change; "continuous" divides wherever the change is non-zero (the
            gradient limit at exactly zero), "shap" (shap.DeepExplainer's rule) gives multiplier
            0 where the change is below 1e-7, so scores jump at that threshold and hypothetical
            scores vanish where x and a reference coincide over a receptive field (actual scores
            differ between the two only where some max input changes by less than 1e-7).
            "gradient" is deeplift's default (MaxPoolDeepLiftMode.gradient): the multipliers
            pass through the max op's gradient at x, to x's argmax of each window whatever the
            reference; it reproduces the original deeplift package's scores, but is not
            additive (scores need not sum to f(x) - f(ref) where the reference's maximum lies
            elsewhere).

    Actual scores carry, at the observed base, the per-position sum of the per-channel
    contributions, so ``scores.sum((1, 2)) == f(x) - mean_r f(ref_r)`` (for the additive max-pool
    rules).
    """
    spec = model_spec(model)
    seq, others = split_inputs(model, x, spec)
    batch_size = check_batch_size(batch_size)
    if references is not None:
        refs_all = check_references(references, seq)
        n_refs = refs_all.shape[1]
    else:
        if not isinstance(n_shuffles, int | np.integer) or n_shuffles < 1:
            raise UserError(f"n_shuffles must be a positive integer, got {n_shuffles!r}")
        refs_all, n_refs = None, int(n_shuffles)
    rule = R.max_rule(maxpool_rule)
    if not rule.additive:
        check_delta = None  # scores do not sum to delta by design
    fn = rescale_function(model, spec, output, logits, n_refs, rule)
    n, length = seq.shape[:2]
    per = max(1, batch_size // (n_refs + 1))
    # references are made a block of whole chunks at a time, in the background: the vectorised
    # shuffle is fast on many sequences at once and slow on the few of one chunk. The first
    # block is one chunk, so that the first pass waits for its own references only.
    block = per * -(-block_sequences(n_refs) // per)
    result = np.empty(seq.shape, dtype=np.float32)
    bad: list[tuple[float, float]] = []  # (error, tolerance) of failing sequences

    def refs_for(sl: slice) -> np.ndarray:
        if refs_all is not None:
            return refs_all[sl]
        return dinuc_shuffle_references(seq[sl], n_refs, seed)

    blocks = [slice(0, min(n, per))] if n else []
    blocks += [slice(per + sl.start, per + sl.stop) for sl in chunks(max(0, n - per), block)]
    with ThreadPoolExecutor(max_workers=1) as pool, device_scope(), \
            progress_bar(n, "deepshap", progress) as bar:
        pending = pool.submit(refs_for, blocks[0]) if blocks else None
        for i, outer in enumerate(blocks):
            block_refs = pending.result()
            if i + 1 < len(blocks):
                pending = pool.submit(refs_for, blocks[i + 1])
            for inner in chunks(outer.stop - outer.start, per):
                sl = slice(outer.start + inner.start, outer.start + inner.stop)
                m = sl.stop - sl.start
                # every call has `per` sequences (a short chunk is padded): one batch shape, so
                # the fused XLA kernels compile once, not once per chunk size
                refs = pad_rows(block_refs[inner], per).reshape(per * n_refs, length, 4)
                hyp, pos_sum, t_x, t_r = fn(pad_rows(seq[sl], per), refs,
                                            {k: pad_rows(v[sl], per) for k, v in others.items()})
                hyp, pos_sum = hyp.numpy()[:m], pos_sum.numpy()[:m]
                result[sl] = hyp if hypothetical else project(hyp, pos_sum, seq[sl])
                if check_delta is not None:
                    t_x, t_r = t_x.numpy()[:m], t_r.numpy().reshape(per, n_refs)[:m]
                    delta = t_x - t_r.mean(1)
                    err = np.abs(pos_sum.sum(1) - delta)
                    tol = delta_tolerance(delta, t_x, t_r, pos_sum, check_delta)
                    bad.extend(zip(err[err > tol].tolist(), tol[err > tol].tolist(),
                                   strict=True))
                bar.update(m)
    if bad:
        err, tol = max(bad, key=lambda pair: pair[0] / pair[1])
        warnings.warn(f"DeepLIFT summation-to-delta fails in {len(bad)} sequence(s): "
                      f"|sum(scores) - delta| up to {err:.2e} where {tol:.2e} is tolerated "
                      f"({check_delta:g} x |delta| + float32 rounding); the model may contain an "
                      "op the DeepLIFT rules approximate", RuntimeWarning, stacklevel=2)
    return result

"""tf.data input pipelines: HDF5 dataset (or arrays) -> batches for ``model.fit``.

The split is loaded into memory once and held as CPU tensors; the dataset streams *batches of
row indices* and every transformation (gather, uint8 -> float32, reverse complement, random
strand, jitter crop, log counts) is a vectorised TensorFlow op on a whole batch: no Python runs
per example (or per batch) while training.

Determinism: every random choice comes from ``seed``. Shuffling uses ``Dataset.shuffle(seed=...)``
with a new order on each pass (each epoch when ``repeat=False`` and Keras re-iterates the dataset,
each repetition when ``repeat=True``); strand flips and jitter offsets use stateless random ops
whose seeds come from ``Dataset.random(seed=...)``; the upsampling stream uses stateless shuffles
seeded by ``(seed, pass)``. TensorFlow combines op seeds with its global seed, so for bit-identical
runs call ``keras.utils.set_random_seed(run_seed)`` (or nothing at all) *before* ``make_dataset``
and, on GPUs, ``tf.config.experimental.enable_op_determinism()`` for the model's own ops. The
pipeline's ops are deterministic on CPU; ``options.deterministic`` is set.

Augmentation rules (../shared/DESIGN.md conventions):

* ``rc_augment="within"`` (the paper's Standard-RCAug): each batch of ``batch_size`` examples is
  followed, inside the same yielded batch, by its reverse complement, so batches hold
  ``2 * batch_size`` rows (originals first) and labels are duplicated. Profile targets are
  reversed and strand-swapped, the control track is reversed along length only, the control
  log-count is unchanged.
* ``rc_augment="random"``: each example is replaced by its reverse complement with probability 1/2
  (batch size unchanged).
* ``upsample=f`` (binary task, spec/paper.md §3.2): endless stream; pass k takes every s-th
  negative starting at offset k mod s, s = ceil(N_neg * (f / (1 - f)) / N_pos); positives and the
  selected negatives are shuffled (seeded by ``seed`` and k) and interleaved evenly; batches of
  ``batch_size`` consecutive examples are cut across pass boundaries. See :func:`upsampling_plan`.
* ``jitter=j`` (profile task): files store windows widened by ``attrs["jitter_margin"]`` = J on
  each side; each example is cropped at a uniform random shift in [-j, j] (j <= J), the same shift
  for sequence, targets and control; without jitter the centre is cropped. RC augmentation is
  applied to the widened windows first, so the RC copies get their own shifts (as the paper).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmark_rc.errors import DatasetError, UserError
from benchmark_rc.tasks import Task, get_task, task_of_arrays

RC_MODES = ("none", "within", "random")


def upsample_stride(n_pos: int, n_neg: int, fraction: float) -> int:
    """s = ceil(N_neg * (f / (1 - f)) / N_pos), at least 1 (spec/paper.md §3.2)."""
    if not 0.0 < fraction < 1.0:
        raise UserError(f"upsample fraction must be in (0, 1), got {fraction}")
    if n_pos <= 0 or n_neg <= 0:
        raise UserError(f"upsampling needs positives and negatives, got {n_pos} positive and "
                        f"{n_neg} negative examples")
    return max(1, math.ceil(n_neg * (fraction / (1.0 - fraction)) / n_pos))


def upsampling_plan(y: np.ndarray, fraction: float, batch_size: int) -> dict[str, Any]:
    """What the upsampled stream of binary labels ``y`` (N,) or (N, 1) looks like.

    Returns ``stride`` s, ``n_pos``, ``n_neg``, ``pass_sizes`` (examples in passes 0..s-1; the
    pattern repeats), ``positive_fraction`` (realised over s passes: s·N_pos / Σ pass sizes),
    ``examples_per_pass`` and ``steps_per_pass`` (mean over the s passes, batches of
    ``batch_size`` originals; Keras ``steps_per_epoch`` for "one pass per epoch").
    """
    labels = _binary_labels(np.asarray(y), "y")
    n_pos = int(labels.sum())
    n_neg = int(len(labels) - n_pos)
    stride = upsample_stride(n_pos, n_neg, fraction)
    sizes = [n_pos + len(range(offset, n_neg, stride)) for offset in range(stride)]
    total = sum(sizes)
    return {"stride": stride, "n_pos": n_pos, "n_neg": n_neg, "pass_sizes": sizes,
            "positive_fraction": stride * n_pos / total,
            "examples_per_pass": total / stride,
            "steps_per_pass": math.ceil(total / stride / batch_size)}


def _binary_labels(y: np.ndarray, where: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UserError(f"{where}: upsampling needs one binary task, got labels of shape "
                        f"{y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise UserError(f"{where}: upsampling needs 0/1 labels, found values "
                        f"{np.unique(y)[:5].tolist()}")
    return y.astype(bool)


def _load(source: str | os.PathLike | Mapping[str, Any], split: str,
          jitter_margin: int | None) -> tuple[dict[str, np.ndarray], Task, int, str]:
    """Arrays of the split, its task, jitter margin and a name for messages."""
    from benchmark_rc.data.hdf5 import SPLITS, read_attrs, read_split

    if split not in SPLITS:
        raise UserError(f"split must be one of {SPLITS}, got {split!r}")
    if isinstance(source, Mapping):
        where = f"<arrays of split {split}>"
        data = {k: v for k, v in source.items() if isinstance(v, np.ndarray)}
        if "x" not in data:
            raise DatasetError(f"{where}: no x array")
        task = task_of_arrays(data, where)
        margin = 0 if jitter_margin is None else int(jitter_margin)
    else:
        where = f"{os.fspath(source)}: /{split}"
        attrs = read_attrs(source)
        task = get_task(attrs.get("task"), f"{os.fspath(source)}: attribute task")
        data = read_split(source, split, keys=tuple(task.arrays))
        margin = int(attrs.get("jitter_margin", 0)) if jitter_margin is None else jitter_margin
    x = np.asarray(data["x"])
    if x.ndim != 3 or x.shape[-1] != 4:
        raise DatasetError(f"{where}/x has shape {x.shape}, expected (N, L, 4)")
    for name, spec in task.arrays.items():
        shape = np.shape(data[name])
        spec.check_shape(f"{where}/{name}", shape)
        if shape[0] != len(x):
            raise DatasetError(f"{where}/{name} has {shape[0]} rows, /x has {len(x)}")
    task.check_split(where, {name: np.shape(data[name]) for name in task.arrays}, 0)
    windows = [np.shape(data[name])[1] for name, spec in task.arrays.items() if spec.windowed]
    if margin < 0 or (margin and min(windows) <= 2 * margin):
        raise DatasetError(f"{where}: jitter margin {margin} does not fit windows of length "
                           f"{min(windows)}")
    arrays = {k: np.asarray(data[k], dtype=np.float32) for k in list(task.arrays)[1:]}
    arrays["x"] = x  # uint8: augmented before the 4x wider float32 cast
    return arrays, task, margin, where


def make_dataset(source: str | os.PathLike | Mapping[str, Any], split: str, *, batch_size: int,
                 shuffle: bool = False, seed: int = 0, rc_augment: str = "none",
                 upsample: float | None = None, jitter: int = 0, repeat: bool = False,
                 jitter_margin: int | None = None, prefetch: bool = True) -> Any:
    """A ``tf.data.Dataset`` of batches of one split, ready for ``model.fit``.

    ``source``: HDF5 path or a dict from :func:`benchmark_rc.data.hdf5.read_split` (for a dict,
    ``jitter_margin`` gives the widening of profile windows, default 0; for a file it comes from
    the file attrs). Yields, per batch of B rows (2·``batch_size`` with ``rc_augment="within"``):

    * classification: ``(x float32 (B, L, 4), y float32 (B, T))``;
    * profile: ``({"sequence": (B, Lx, 4), "control": (B, P, 2), "control_logcount": (B, 1)},
      {"profile": counts (B, P, 2), "counts": log(1 + total per strand) (B, 2)})`` with
      Lx, P the stored lengths minus 2·margin.

    ``upsample`` (binary classification only) gives an endless stream (``repeat`` is implied,
    ``shuffle`` is irrelevant); ``jitter`` (profile only) must not exceed the margin.
    """
    import tensorflow as tf

    if not isinstance(batch_size, int | np.integer) or batch_size <= 0:
        raise UserError(f"batch_size must be a positive integer, got {batch_size!r}")
    if rc_augment not in RC_MODES:
        raise UserError(f"rc_augment must be one of {RC_MODES}, got {rc_augment!r}")
    data, task, margin, where = _load(source, split, jitter_margin)
    if jitter and not margin:
        raise UserError(f"{where}: jitter applies to profile datasets only (windows stored with "
                        "a jitter margin); this one has none")
    if not 0 <= jitter <= margin:
        raise UserError(f"{where}: jitter {jitter} must be between 0 and the stored jitter "
                        f"margin {margin} (re-create the dataset with a larger margin)")
    n = len(data["x"])
    if n == 0:
        raise DatasetError(f"{where} has no rows")

    with tf.device("/CPU:0"):
        tensors = {k: tf.constant(v) for k, v in data.items()}
    if upsample is not None:
        if "y" not in data:
            raise UserError(f"{where}: upsampling applies to binary classification datasets "
                            "only")
        indices = _upsampled_indices(data["y"], float(upsample), seed, where).batch(batch_size)
    else:
        indices = tf.data.Dataset.range(n)
        if shuffle:
            indices = indices.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        indices = indices.batch(batch_size)
        if repeat:
            indices = indices.repeat()
    randomness = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
    batches = tf.data.Dataset.zip((indices, randomness))
    fn = _batch_function(task, tensors, rc_augment, margin, jitter)
    ds = batches.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE) if prefetch else ds


def _upsampled_indices(y: np.ndarray, fraction: float, seed: int, where: str) -> Any:
    """Endless stream of row indices: the paper's every-s-th-negative upsampling."""
    import tensorflow as tf

    labels = _binary_labels(y, where)
    pos = np.flatnonzero(labels).astype(np.int64)
    neg = np.flatnonzero(~labels).astype(np.int64)
    stride = upsample_stride(len(pos), len(neg), fraction)
    pos_t, neg_t = tf.constant(pos), tf.constant(neg)
    n_pos = len(pos)

    def one_pass(k: Any) -> Any:
        offset = k % stride
        selected = tf.gather(neg_t, tf.range(offset, len(neg), stride, dtype=tf.int64))
        shuffled_pos = tf.random.experimental.stateless_shuffle(
            pos_t, seed=tf.stack([tf.cast(seed, tf.int64), 2 * k]))
        shuffled_neg = tf.random.experimental.stateless_shuffle(
            selected, seed=tf.stack([tf.cast(seed, tf.int64), 2 * k + 1]))
        n_sel = tf.shape(selected, out_type=tf.int64)[0]
        # Even interleaving: element i of a list of m sits at (i + 0.5) / m; stable sort.
        keys = tf.concat([(tf.range(n_pos, dtype=tf.float64) + 0.5) / n_pos,
                          (tf.range(n_sel, dtype=tf.float64) + 0.5)
                          / tf.cast(n_sel, tf.float64)], axis=0)
        order = tf.argsort(keys, stable=True)
        merged = tf.gather(tf.concat([shuffled_pos, shuffled_neg], axis=0), order)
        return tf.data.Dataset.from_tensor_slices(merged)

    return tf.data.Dataset.range(2**62).flat_map(one_pass)


def _reverse_length(x: Any) -> Any:
    import tensorflow as tf

    return tf.reverse(x, axis=[-2])


def _reverse_length_and_channels(x: Any) -> Any:
    import tensorflow as tf

    return tf.reverse(x, axis=[-2, -1])


def _reverse_channels(x: Any) -> Any:
    import tensorflow as tf

    return tf.reverse(x, axis=[-1])


def _reverse_length_swap_pairs(x: Any) -> Any:
    import tensorflow as tf

    from benchmark_rc.sequence import _pair_swap_index

    return tf.gather(tf.reverse(x, axis=[-2]), _pair_swap_index(int(x.shape[-1])), axis=-1)


# The RC rules (layers.conjoin.RC_RULE_FUNCTIONS) in plain TF ops: tf.data maps must stay
# TensorFlow graphs whatever the Keras backend, while the shared helpers dispatch through
# keras.ops. Which rule applies to which array is the task's (Task.arrays). "none" is absent:
# such arrays are left as they are.
_TF_RC_RULES = {"regular": _reverse_length_and_channels, "length": _reverse_length,
                "strands": _reverse_channels, "pairs": _reverse_length_swap_pairs}


def _flip_rows(rseed: Any, count: Any) -> Any:
    """Row indices into concat([batch, transformed batch]): i, or count + i with probability
    1/2 (a gather is ~3x faster than a broadcast tf.where on (B, L, 4))."""
    import tensorflow as tf

    seed = tf.stack([rseed, tf.constant(0, tf.int64)])
    flip = tf.cast(tf.random.stateless_uniform([count], seed=seed) < 0.5, tf.int32)
    return tf.range(count) + count * flip


def _pick(x: Any, transformed: Any, rows: Any) -> Any:
    import tensorflow as tf

    return tf.gather(tf.concat([x, transformed], axis=0), rows)


def _batch_function(task: Task, t: Mapping[str, Any], rc_augment: str, margin: int,
                    jitter: int) -> Any:
    """Map of (row indices, random seed) -> one batch: gather the task's arrays, RC-augment
    each by its rule, crop the windowed ones at the jitter offsets, hand them to the task."""
    import tensorflow as tf

    rules = {name: _TF_RC_RULES.get(spec.rc_rule) for name, spec in task.arrays.items()}
    lengths = {name: int(t[name].shape[1]) - 2 * margin
               for name, spec in task.arrays.items() if spec.windowed}

    def fn(idx: Any, rseed: Any) -> tuple[Any, Any]:
        arrays = {name: tf.gather(t[name], idx) for name in task.arrays}
        if rc_augment == "within":
            arrays = {name: tf.concat([a, a if rules[name] is None else rules[name](a)], axis=0)
                      for name, a in arrays.items()}
        elif rc_augment == "random":
            picked = _flip_rows(rseed, tf.shape(arrays["x"])[0])
            arrays = {name: a if rules[name] is None else _pick(a, rules[name](a), picked)
                      for name, a in arrays.items()}
        if margin:
            rows = tf.shape(arrays["x"])[0]
            if jitter:
                offsets = margin + tf.random.stateless_uniform(
                    [rows], seed=tf.stack([rseed, tf.constant(1, tf.int64)]),
                    minval=-jitter, maxval=jitter + 1, dtype=tf.int32)
            else:
                offsets = tf.fill([rows], margin)
            arrays.update({name: _crop(arrays[name], offsets, length)
                           for name, length in lengths.items()})
        return task.model_batch(arrays, jittered=bool(jitter))

    return fn


def _crop(x: Any, offsets: Any, length: int) -> Any:
    """x[b, offsets[b] : offsets[b] + length] for every row b, as one gather."""
    import tensorflow as tf

    positions = offsets[:, None] + tf.range(length, dtype=offsets.dtype)[None, :]
    return tf.gather(x, positions, axis=1, batch_dims=1)

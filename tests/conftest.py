"""Shared test set-up: quiet TensorFlow, a deterministic CPU-only Keras backend, and the float32
tolerance every numerical comparison of the suite uses (:func:`f32_rtol`, :func:`assert_f32_close`).

Project standard: tolerances follow from float32 arithmetic and the size of the computation
(relative, with a floor); exactness is asserted only where the mathematics is exact in floating
point (permutations, copies and flips of stored values, integer data, one correctly rounded
operation on identical operands, or the very same computation repeated on the same machine).
"""

import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

F32_EPS = float(np.finfo(np.float32).eps)  # 2**-23 = 1.19e-7, twice the unit round-off u


def f32_rtol(*n_terms: int) -> float:
    """Relative tolerance for float32 results that accumulate ``sum(n_terms)`` rounded operations.

    Derivation. Adding n float32 terms in any order has an error of at most
    gamma_n * sum|terms|, gamma_n = n*u / (1 - n*u) ~ n*u, u = eps/2 (Higham, Accuracy and Stability
    of Numerical Algorithms, 2nd ed., §4.2). Two evaluations that add the same terms in different
    orders (another thread split, oneDNN vs Eigen, another SIMD width or CPU, a flipped RC kernel)
    therefore differ by at most 2*gamma_n*sum|terms| ~ n*eps*sum|terms|, which is what this returns
    per unit of scale. A chain of layers adds the first-order errors of its stages, so pass one
    count per stage: conv = kernel x input channels, dense = fan-in, mean = length, and one term
    per element-wise rounding; an element-wise transcendental (exp, log1p, sigmoid, softplus)
    counts as a few terms, its vectorised implementations being accurate to a few ulp.

    The bound is relative to sum|terms|, which a test does not know; :func:`assert_f32_close`
    scales it by max|expected| instead (the floor). That is not rigorous under cancellation, but
    round-off errors are not aligned in practice: they grow like sqrt(n)*eps, and the errors this
    suite observes are 1-20 eps of the output scale, so n*eps keeps a margin of about sqrt(n) or
    more while staying orders of magnitude below a real defect (an RC layer with the wrong flip,
    a lost weight), which shows as an O(1e-2 .. 1) relative error; the tests that loosen a bar
    check that a control still fails it by that margin.
    """
    return max(1, int(sum(n_terms))) * F32_EPS


def assert_f32_close(actual, expected, *, rtol: float, floor=None, err_msg: str = "") -> None:
    """Element-wise ``|actual - expected| <= rtol * |expected| + floor``.

    ``floor`` (scalar or broadcastable array) defaults to ``rtol * max|expected|``: the round-off
    of an entry follows the scale of the computation that produced it, not its own value, which
    may have cancelled to nearly 0. Pass it explicitly when the scale is known otherwise, e.g. the
    size of the summed terms for a scalar result, or per element when entries differ in scale.
    Take ``rtol`` from :func:`f32_rtol`.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"shape {a.shape} != expected {e.shape}. {err_msg}"
    if floor is None:
        floor = rtol * float(np.max(np.abs(e), initial=0.0))
    bound = rtol * np.abs(e) + np.asarray(floor, dtype=np.float64)
    diff = np.abs(a - e)
    bad = ~(diff <= bound)  # NaN fails
    if bad.any():
        ratio = np.where(np.isnan(diff), np.inf, diff / np.maximum(bound, np.finfo(float).tiny))
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), diff.shape))
        raise AssertionError(
            f"float32 tolerance exceeded at {int(bad.sum())} of {bad.size} entries "
            f"(rtol={rtol:.3g}, max floor={np.max(floor):.3g}); worst at {worst}: actual "
            f"{a[worst]:.9g}, expected {e[worst]:.9g}, |diff| {diff[worst]:.3g} > bound "
            f"{np.broadcast_to(bound, diff.shape)[worst]:.3g} ({ratio[worst]:.3g} x). {err_msg}"
        )


def model_terms(model) -> int:
    """Rounded float32 operations a Keras model accumulates from input to output (for f32_rtol).

    An upper bound on any input -> output path: per layer with a kernel its fan-in (conv: kernel x
    input channels, dense: inputs, WeightedSum1D: positions x channels), per global average pool
    the input length, and 8 per layer for element-wise steps (bias, batch norm, activation,
    merges); nested models (conjoined, post-hoc wrappers) are entered, shared layers counted once.
    """
    import keras

    length = max((int(t.shape[1]) for t in model.inputs if len(t.shape) == 3), default=1)
    total, seen, stack = 0, set(), list(model.layers)
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, keras.Model):
            stack.extend(layer.layers)
            continue
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            fan_in = int(np.prod(kernel.shape[:-1]))
            # WeightedSum1D stores one half of its RC-tied weight
            total += 2 * fan_in if type(layer).__name__ == "WeightedSum1D" else fan_in
        if isinstance(layer, keras.layers.GlobalAveragePooling1D):
            total += length
        total += 8
    return total


def tiny_conv_model(length: int, seed: int = 0):
    """Conv (top level, named "conv", for GradCAM) -> ReLU -> max-pool -> dense, 2 tasks, input
    "sequence", N(0, 0.5) weights from ``seed``: small enough for exact attribution checks and
    exercising the rules with fused kernels (ReLU, max)."""
    import keras

    inp = keras.Input((length, 4), name="sequence")
    h = keras.layers.Conv1D(3, 5, activation="relu", name="conv")(inp)
    h = keras.layers.Flatten()(keras.layers.MaxPooling1D(2)(h))
    model = keras.Model(inp, keras.layers.Dense(2)(h))
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.normal(0, 0.5, w.shape).astype("float32"))
    return model

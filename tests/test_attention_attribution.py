"""Attribution through attention (issue 13 item 4): DeepSHAP's rules for softmax attention
(attention weights as fixed multipliers of the values, the weights' change through the exact
softmax rule), products of two sequence-dependent tensors, layer norm and GELU, on tiny enformer
models (standard and rcps) with the tracks task's target; every method on them; RC-consistency.

Oracles written here: f(x) - mean f(ref) from plain forward passes; a linear model's
contributions W (x - ref); the RC maps (DNA a[:, ::-1, ::-1], attribution maps likewise).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from test_enformer import randomize

from benchmark_rc import build_model
from benchmark_rc.attribution import (
    METHODS,
    TrackTarget,
    deepshap,
    dinuc_shuffle_references,
    integrated_gradients,
    predict_target,
)
from benchmark_rc.attribution.deeplift import delta_tolerance
from benchmark_rc.layers.attention import RelativeMultiHeadAttention, RevCompMultiHeadAttention
from benchmark_rc.tasks import TRACKS

# 128 bp, bins of 2^(2+1) = 8 bp: 16 bins cropped to 14; 8 filters, 2 heads (4 in rcps), no
# dropout (inference mode anyway)
TINY = {"input_length": 128, "n_tower": 2, "output_bins": 14, "filters": 8, "heads": 2,
        "key_size": 4, "position_features": 6, "num_tracks": 2, "num_stranded": 1,
        "dropout": 0.0, "attention_dropout": 0.0}
LENGTH = TINY["input_length"]
# the promoter-style target: track 0 summed over the 4 central bins (RC-invariant: unstranded,
# centred), and the task's default target (BPNet's profile target of the "tracks" head)
CENTRE = TrackTarget("tracks", 0, bins=4)
TARGETS = [TRACKS.default_output, CENTRE, TrackTarget("stranded_tracks")]


def dna(n: int, seed: int, length: int = LENGTH) -> np.ndarray:
    return np.eye(4, dtype=np.float32)[np.random.default_rng(seed).integers(0, 4, (n, length))]


@pytest.fixture(scope="module")
def models():
    out = {}
    for strategy in ("standard", "rcps", "irrep"):
        model = build_model("enformer", strategy, seed=1, **TINY)
        randomize(model, 3)  # attention output projections non-zero: attention is live
        out[strategy] = model
    return out


def rc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a[..., ::-1, ::-1])


@pytest.mark.parametrize("strategy", ["standard", "rcps", "irrep"])
def test_deepshap_sums_to_delta_through_attention(models, strategy):
    model = models[strategy]
    x = dna(3, 0)
    refs = dinuc_shuffle_references(x, 4, seed=1)
    # irrep: not the default target, which this random irrep model's unstranded head nearly
    # cancels (|f| ~ 2e-4, delta ~ 1e-5): its sums miss delta by 1e-9 to 2e-8, the same absolute
    # round-off as rcps's, but that is above 1e-4 of so small a delta
    for target in TARGETS[1:] if strategy == "irrep" else TARGETS:
        scores = deepshap(model, x, references=refs, output=target, check_delta=None)
        f_x = predict_target(model, x, output=target).astype(np.float64)
        f_r = predict_target(model, refs.reshape(-1, LENGTH, 4),
                             output=target).reshape(3, 4).astype(np.float64)
        delta = f_x - f_r.mean(1)
        pos_sum = scores.sum(-1).astype(np.float64)
        err = np.abs(pos_sum.sum(1) - delta)
        # 1e-4 relative, plus the float32 rounding floor of the sums (|f| and the summed
        # |contributions| times eps32 sqrt(4L)); a rule that dropped the change of the attention
        # weights, or the layer-norm mean, misses a fraction of delta itself
        tol = delta_tolerance(delta, f_x, f_r, pos_sum, 1e-4)
        assert np.abs(delta).min() > 20 * tol.max(), (target, delta, tol)  # not vacuous
        assert (err <= tol).all(), (strategy, target, err, tol)


def test_the_attention_rule_keeps_the_delta_a_fixed_weight_rule_loses(models, monkeypatch):
    """The rule's second half matters: with the softmax giving nothing (weights treated as
    constants, BPNet's stop-gradient at x), the sums miss part of delta."""
    from benchmark_rc.attribution import rules

    class NoSoftmax(rules.Rule):
        def gradient(self, op, grad):
            return [grad * 0.0]

    monkeypatch.setitem(rules.RULES, "Softmax", lambda division: NoSoftmax())
    model = build_model("enformer", "standard", seed=1, **TINY)
    randomize(model, 3)
    x = dna(3, 0)
    refs = dinuc_shuffle_references(x, 4, seed=1)
    scores = deepshap(model, x, references=refs, output=CENTRE, check_delta=None)
    f_r = predict_target(model, refs.reshape(-1, LENGTH, 4), output=CENTRE).reshape(3, 4)
    delta = predict_target(model, x, output=CENTRE) - f_r.mean(1)
    assert (np.abs(scores.sum((1, 2)) - delta) > 1e-2 * np.abs(delta)).any()


def _constant_logit_model(rc_shared: bool) -> keras.Model:
    """conv -> attention whose logits do not depend on the input (query and key kernels 0, so
    the logits are the relative-position term w . W_r phi(p' - p)) -> dense: a linear model."""
    inp = keras.Input((24, 4))
    h = keras.layers.Conv1D(6 if rc_shared else 5, 3, padding="same")(inp)
    cls = RevCompMultiHeadAttention if rc_shared else RelativeMultiHeadAttention
    layer = cls(2, 3, 2, 4, position_features=6, output_initializer="glorot_uniform")
    h = layer(h)
    rng = np.random.default_rng(2)
    for v in layer.weights:
        name = v.path.split("/")[-1]
        value = np.zeros(v.shape) if name in ("query_kernel", "key_kernel") else \
            rng.normal(0.0, 1.0, v.shape)
        v.assign(value.astype(np.float32))
    out = keras.layers.Dense(1)(keras.layers.Flatten()(h))
    return keras.Model(inp, out)


@pytest.mark.parametrize("rc_shared", [False, True])
def test_constant_attention_logits_deepshap_equals_integrated_gradients_exactly(rc_shared):
    """With input-free logits the model is linear: DeepLIFT, integrated gradients (any number of
    steps) and the linear oracle W (x - ref) agree exactly. This pins the value path (the
    weights as fixed multipliers) and the softmax rule at zero change of the logits."""
    model = _constant_logit_model(rc_shared)
    x = dna(2, 4, 24)
    refs = dinuc_shuffle_references(x, 3, seed=2)
    ds = deepshap(model, x, references=refs, output=0, hypothetical=True)
    ig = integrated_gradients(model, x, references=refs, output=0, steps=3, hypothetical=True)
    # linear oracle: the gradient at any point (the same everywhere) gives hyp = g - sum g ref
    g = np.stack([np.asarray(keras.ops.convert_to_numpy(_grad(model, x[i:i + 1])))[0]
                  for i in range(2)])
    oracle = (g[:, None] - (g[:, None] * refs).sum(-1, keepdims=True)).mean(1)
    scale = np.abs(oracle).max()
    assert scale > 1e-3
    # float32: every score is a sum over the ~24 x 4 x (few channels) products; 1e-5 of the
    # largest score is ~100 eps32
    np.testing.assert_allclose(ds, oracle, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(ig, oracle, rtol=0, atol=1e-5 * scale)


def _grad(model: keras.Model, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(t)
        y = tf.reduce_sum(model(t, training=False))
    return tape.gradient(y, t).numpy()


def test_softmax_rule_is_finite_and_exact_when_one_sum_of_exponentials_underflows():
    """Trained attention has large logits: where every logit of the reference lies ~100 below
    the input's largest (or the reverse), exp(l - max) sums to 0 in float32 for one of them. The
    rule's secant of log S must not become atanh(1) = inf there (it gave NaN scores on a trained
    enformer): the scores stay finite and sum to f(x) - f(ref), both ways round."""
    inp = keras.Input((5, 4))
    logits = keras.layers.Dense(3, use_bias=False)(inp)  # per position: a row of 3 logits
    weights = keras.layers.Softmax()(logits)
    model = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(weights)))
    model.layers[1].set_weights([np.array([[0.0, 1.0, 2.0], [-200.0, -205.0, -210.0],
                                           [0.0, 0.0, 0.0], [0.5, 0.0, -0.5]], np.float32)])
    dense = model.layers[-1]
    dense.set_weights([np.random.default_rng(0).normal(size=(15, 1)).astype(np.float32),
                       np.zeros(1, np.float32)])
    a, c = np.eye(4, dtype=np.float32)[[0]], np.eye(4, dtype=np.float32)[[1]]
    x = np.stack([np.repeat(a, 5, 0), np.repeat(c, 5, 0)])  # all A, all C
    refs = x[::-1, None]  # each one's reference is the other
    scores = deepshap(model, x, references=refs, output=0, check_delta=None)
    assert np.isfinite(scores).all()
    f = predict_target(model, x, output=0).astype(np.float64)
    delta = f - f[::-1]
    assert np.abs(delta).min() > 0.1  # the weights change: the softmax rule carries delta
    # float32: the logits change by ~200 while the weights change by O(1), so the logits'
    # multipliers cancel ~200-fold: round-off ~200 eps32 per term (measured 1.8e-5 relative),
    # plus the project's rounding floor of the sums (delta_tolerance)
    pos_sum = scores.sum(-1).astype(np.float64)
    tol = delta_tolerance(delta, f, f[::-1, None], pos_sum, 200 * 4 * np.finfo(np.float32).eps)
    assert (np.abs(pos_sum.sum(1) - delta) <= tol).all(), (pos_sum.sum(1), delta, tol)


@pytest.mark.parametrize("strategy", ["standard", "rcps"])
def test_deepshap_agrees_with_integrated_gradients_to_first_order(strategy):
    """DeepLIFT and integrated gradients both sum to delta and both reduce to gradient x
    (x - ref) when the activations barely change between reference and x; they differ by terms
    of the order of those changes (secants of each non-linearity vs gradients averaged along the
    path). Scaling the stem convolution by eps scales every activation change by eps (biases,
    batch-norm offsets and layer-norm statistics of the rest keep the operating point), so the
    relative L2 difference must shrink at least linearly in eps: bound 0.1 eps (measured about
    0.03 eps; at eps = 1 the two differ by 18-60 %, as DeepLIFT and IG do on any deep net).
    IG uses 64 midpoint steps: its own error, O(1/64^2), is far below the bound."""
    model = build_model("enformer", strategy, seed=1, **TINY)
    randomize(model, 3)
    stem = next(v for v in model.weights if v.path == "stem_conv/kernel")
    w0 = np.asarray(stem)
    x = dna(2, 0)
    refs = dinuc_shuffle_references(x, 3, seed=1)
    for eps in (0.1, 0.02):
        stem.assign(w0 * eps)
        ds = deepshap(model, x, references=refs, output=CENTRE)
        ig = integrated_gradients(model, x, references=refs, output=CENTRE, steps=64)
        gap = np.linalg.norm(ds - ig) / np.linalg.norm(ig)
        assert gap < 0.1 * eps, (strategy, eps, gap)


@pytest.mark.parametrize("method", ["deepshap", "integrated_gradients", "ism", "saliency",
                                    "input_x_gradient"])
def test_rcps_attributions_are_rc_consistent(models, method):
    """attribution(RC x, RC refs) == RC(attribution(x, refs)) for rcps with RC-invariant targets
    (the task default: a permutation-invariant function of the RC-permuted track; the centred
    promoter bins); the standard model is far from it (the check can fail)."""
    m = METHODS[method]
    x = dna(2, 5)
    refs = dinuc_shuffle_references(x, 2, seed=3)
    gaps = {}
    for strategy in ("rcps", "standard"):
        for target in (TRACKS.default_output, CENTRE):
            kw = {"references": refs} if m.needs_references else {}
            kw_rc = {"references": rc(refs)} if m.needs_references else {}
            if method == "integrated_gradients":
                kw["steps"] = kw_rc["steps"] = 8
            a = m(models[strategy], x, output=target, **kw)
            b = m(models[strategy], rc(x), output=target, **kw_rc)
            # relative to the largest score; floor: float32 rounding of the model's sums
            # (rcps computes the same products in another order)
            gaps[strategy, str(target)] = np.abs(rc(b) - a).max() / np.abs(a).max()
    for (strategy, target), gap in gaps.items():
        if strategy == "rcps":
            assert gap < 1e-3, (method, target, gap)
    assert max(g for (s, _), g in gaps.items() if s == "standard") > 0.05, gaps

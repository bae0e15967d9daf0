"""Attribution engine: DeepSHAP vs shap.DeepExplainer, summation-to-delta, ISM, IG, GradCAM,
RC-equivariance of attributions, ground-truth scoring, export, bad inputs."""

from __future__ import annotations

import contextlib
import warnings

import keras
import numpy as np
import pytest

import benchmark_rc as brc
from benchmark_rc.attribution import (
    deepshap,
    dinuc_shuffle_references,
    gradcam,
    input_x_gradient,
    integrated_gradients,
    ism,
    predict_target,
    rc_consistency,
    saliency,
    score_attributions,
    write_attribution_h5,
    write_modisco_npz,
)
from benchmark_rc.attribution import rules as E
from benchmark_rc.errors import UserError
from benchmark_rc.sequence import reverse_complement

# Float32 tolerances. Compared values come from different kernels (oneDNN on or off, thread
# counts, batch sizes) that sum in different orders, so no comparison may rely on an absolute
# number or on bitwise equality unless the mathematics is exact. RTOL = 1e-4 is about
# 8 * eps32 * sqrt(1e4): the random-walk rounding of float32 sums of up to ~1e4 terms (conv and
# dense fan-in through a few layers), with a safety factor; it is applied relative to the
# magnitude of the quantities actually computed (for a difference f(a) - f(b), the size of f, not
# of the difference). Measured discrepancies are ~1e-6 of that magnitude.
EPS32 = float(np.finfo(np.float32).eps)
RTOL = 1e-4


def assert_f32_close(actual, desired, scale: float | None = None, rtol: float = RTOL) -> None:
    """|actual - desired| <= rtol * (|desired| + scale): ``scale`` is the magnitude of the
    computed quantities (default max |desired|; pass it when ``desired`` is a difference of
    larger numbers)."""
    desired = np.asarray(desired, dtype=np.float64)
    scale = float(np.abs(desired).max()) if scale is None else float(scale)
    assert scale > 0, "degenerate comparison: nothing to compare"
    np.testing.assert_allclose(np.asarray(actual, np.float64), desired, rtol=rtol,
                               atol=rtol * scale)


def one_hot(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))]


def randomize(model: keras.Model, seed: int, scale: float = 0.3) -> keras.Model:
    """Non-trivial random weights (BN statistics included; variances kept positive)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        value = rng.normal(0, scale, w.shape).astype("float32")
        if "variance" in w.path or "gamma" in w.path:
            value = np.abs(value) + 0.5
        w.assign(value)
    return model


def posthoc(arch: str, seed: int, **hp) -> keras.Model:
    return brc.conjoin(randomize(brc.build_model(arch, "posthoc", **hp), seed), arch, "logit")


def targets(model, x, refs, output=None) -> tuple[np.ndarray, np.ndarray]:
    """f(x) (N,) and f(ref) (N, R) for dict or array inputs."""
    seq = x["sequence"] if isinstance(x, dict) else x
    n, r = refs.shape[:2]
    flat = refs.reshape(n * r, *seq.shape[1:])
    if isinstance(x, dict):
        feed = {k: np.repeat(v, r, axis=0) for k, v in x.items()}
        feed["sequence"] = flat
    else:
        feed = flat
    return predict_target(model, x, output), predict_target(model, feed, output).reshape(n, r)


def deltas(model, x, refs, output=None) -> np.ndarray:
    """f(x) - mean_r f(ref_r)."""
    f_x, f_r = targets(model, x, refs, output)
    return f_x - f_r.mean(1)


def assert_sums_to_delta(scores, model, x, refs, output=None) -> np.ndarray:
    """Summation-to-delta within float32 rounding. The rounding of the sum is proportional to
    what is summed and subtracted, |f(x)| + mean |f(ref)| + sum_l |per-position score|, not to
    delta (which may be 0 up to rounding). Returns delta."""
    f_x, f_r = targets(model, x, refs, output)
    d = f_x - f_r.mean(1)
    magnitude = np.abs(f_x) + np.abs(f_r).mean(1) + np.abs(scores.sum(-1)).sum(1)
    assert_f32_close(scores.sum((1, 2)), d, scale=magnitude.max())
    return d


@contextlib.contextmanager
def shap_patched():
    """shap.DeepExplainer with the dilated-conv handlers; TF's gradient recording restored."""
    from shap.explainers._deep import deep_tf
    from tensorflow.python.eager import backprop, execute

    saved = dict(deep_tf.op_handlers)
    deep_tf.op_handlers["SpaceToBatchND"] = deep_tf.passthrough
    deep_tf.op_handlers["BatchToSpaceND"] = deep_tf.passthrough
    try:
        yield
    finally:
        execute.record_gradient = backprop.record_gradient
        deep_tf.op_handlers.clear()
        deep_tf.op_handlers.update(saved)


def shap_position_sums(model, x, refs, task=0) -> np.ndarray:
    import shap

    logits = brc.logits_model(model)
    out = []
    with shap_patched():
        for i in range(len(x)):
            explainer = shap.DeepExplainer(logits, refs[i])
            values = np.asarray(explainer.shap_values(x[i:i + 1], check_additivity=False))
            out.append(values[0, ..., task].sum(-1))
    return np.stack(out)


# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch,strategy,length", [
    ("sim", "standard", 200), ("sim", "rcps", 200), ("binary", "standard", 1000),
])
def test_deepshap_agrees_with_shap(arch, strategy, length):
    rng = np.random.default_rng(1)
    hp = {"input_length": length} if arch == "sim" else {}
    model = randomize(brc.build_model(arch, strategy, **hp), 3)
    x = one_hot(rng, 2, length)
    refs = dinuc_shuffle_references(x, 4, seed=0)
    ours = deepshap(model, x, references=refs, output=0, maxpool_rule="shap").sum(-1)
    theirs = shap_position_sums(model, x, refs)
    assert np.abs(theirs).max() > 1e-3  # not a degenerate model
    assert_f32_close(ours, theirs)  # same rules, different kernels and op order


@pytest.mark.parametrize("arch,strategy,outputs", [
    ("sim", "conjoined-max", [0, 2]), ("sim", "posthoc-prob", [1]), ("sim", "hybrid-early", [0]),
    ("binary", "rcps", [0]), ("bpnet", "standard", ["profile", "counts"]),
    ("bpnet", "rcps", ["profile"]),
])
def test_summation_to_delta_registry(arch, strategy, outputs):
    rng = np.random.default_rng(2)
    hp = {"input_length": 200} if arch == "sim" else {}
    model = randomize(brc.build_model(arch, strategy, **hp), 4, 0.1 if arch == "bpnet" else 0.3)
    mode = brc.strategies.get_strategy(strategy).posthoc
    if mode:
        model = brc.conjoin(model, arch, mode)
    if arch == "bpnet":
        x = {"sequence": one_hot(rng, 2, 1346),
             "control": rng.random((2, 1000, 2)).astype("float32"),
             "control_logcount": rng.random((2, 1)).astype("float32")}
        seq = x["sequence"]
    else:
        x = seq = one_hot(rng, 3, 200 if arch == "sim" else 1000)
    refs = dinuc_shuffle_references(seq, 3, seed=1)
    for out in outputs:
        scores = deepshap(model, x, references=refs, output=out)
        d = assert_sums_to_delta(scores, model, x, refs, out)
        assert 1e-3 < np.abs(d).max() < 1e3  # a non-degenerate target
        # exact: actual scores are hypothetical ones times the one-hot x (0 * finite = 0)
        assert np.all(scores[seq == 0] == 0)


def test_summation_to_delta_global_maxpool_dilated_and_n_rows():
    rng = np.random.default_rng(3)
    inp = keras.Input((80, 4))
    h = keras.layers.Conv1D(6, 7, activation="relu")(inp)
    h = keras.layers.Conv1D(6, 3, dilation_rate=4, activation="elu")(h)
    h = keras.layers.MaxPooling1D(4, 2)(h)
    h = keras.layers.GlobalMaxPooling1D()(h)
    h = keras.layers.Dense(4, activation="tanh")(h)
    out = keras.layers.Activation("sigmoid")(keras.layers.Dense(2)(h))
    model = randomize(keras.Model(inp, out), 5)
    x = one_hot(rng, 4, 80)
    x[1, 10:15] = 0  # N bases
    refs = dinuc_shuffle_references(x, 5, seed=2)
    for task in (0, 1):
        scores = deepshap(model, x, references=refs, output=task)
        assert_sums_to_delta(scores, model, x, refs, task)


def test_hypothetical_on_linear_model_and_projection():
    rng = np.random.default_rng(4)
    inp = keras.Input((30, 4))
    out = keras.layers.Dense(1)(keras.layers.Flatten()(keras.layers.Conv1D(3, 5)(inp)))
    model = randomize(keras.Model(inp, out), 6)
    x = one_hot(rng, 3, 30)
    refs = dinuc_shuffle_references(x, 4, seed=0)
    hyp = deepshap(model, x, references=refs, hypothetical=True)
    actual = deepshap(model, x, references=refs)
    w = saliency(model, x)  # constant gradient = the multipliers of a linear model
    expected = w - np.mean(np.sum(w[:, None] * refs, -1), axis=1)[..., None]
    assert_f32_close(hyp, expected)
    assert_f32_close(actual, hyp * x)  # two calls: the same maths, possibly other kernels


def test_default_references_seeded_and_batch_invariant():
    rng = np.random.default_rng(5)
    model = randomize(brc.build_model("sim", "standard", input_length=200), 7)
    x = one_hot(rng, 5, 200)
    a = deepshap(model, x, n_shuffles=3, seed=11, output=1, batch_size=8)
    b = deepshap(model, x[::-1], n_shuffles=3, seed=11, output=1, batch_size=1000)[::-1]
    c = deepshap(model, x, n_shuffles=3, seed=12, output=1)
    assert_f32_close(a, b)  # batch sizes 8 and 1000 may pick different kernels
    assert np.abs(a - c).max() > 0.01 * np.abs(a).max()  # other seed: other references


def _rcps_sim(seed: int) -> keras.Model:
    return randomize(brc.build_model("sim", "rcps", input_length=200), seed)


def _delta_warnings(record: list) -> list:
    return [w for w in record if "summation-to-delta" in str(w.message)]


def test_summation_check_tolerates_rounding_of_large_targets():
    """RC-invariant model, reference RC(x): delta = f(x) - f(RC x) is 0 up to rounding while |f|
    is a few units, so the scores sum to delta only within ~eps32 |f|. The check used to allow
    1e-6 absolute below |delta| = 1e-3 and warned for most sequences."""
    rng = np.random.default_rng(30)
    model = _rcps_sim(31)
    x = one_hot(rng, 20, 200)
    refs = reverse_complement(x)[:, None]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        scores = deepshap(model, x, references=refs, output=0)
    f_x, f_r = targets(model, x, refs, 0)
    assert np.abs(f_x).max() > 1.0  # the scenario: large targets, delta at rounding level
    assert np.abs(f_x - f_r[:, 0]).max() < RTOL * np.abs(f_x).max()
    assert not _delta_warnings(record), [str(w.message) for w in record]
    assert_sums_to_delta(scores, model, x, refs, 0)


class _DoubledRescale(E.Rescale):
    """A deliberately wrong rule: twice the rescale multiplier."""

    def gradient(self, op, grad) -> list:
        return [None if g is None else 2.0 * g for g in super().gradient(op, grad)]


def test_summation_check_still_warns_on_a_wrong_multiplier(monkeypatch):
    rules = E.deeplift_rules
    monkeypatch.setattr(E, "deeplift_rules",
                        lambda division=E.CONTINUOUS: {**rules(division), "Relu": _DoubledRescale()})
    rng = np.random.default_rng(30)
    model = _rcps_sim(31)  # a fresh model: nothing traced with the real rules is cached
    x = one_hot(rng, 20, 200)
    with pytest.warns(RuntimeWarning, match="summation-to-delta fails in 20 sequence"):
        deepshap(model, x, references=dinuc_shuffle_references(x, 2, seed=0), output=0)


def _pool_threshold_model(change: float) -> tuple[keras.Model, keras.Model]:
    """x = ACG, ref = CAG. Conv (width 2) -> max-pool (2) over its two outputs. The first conv
    output, the maximum for x and ref, changes by ``change`` = 0.2 (base A at 0) - (0.2 - change)
    (base A at 1): large input effects that cancel. The second output (weight -5 on G at 1)
    never wins. Returns the model and its conv sub-model."""
    inp = keras.Input((3, 4))
    conv = keras.layers.Conv1D(1, 2, use_bias=False)
    model = keras.Model(inp, keras.layers.Flatten()(keras.layers.MaxPooling1D(2)(conv(inp))))
    w = np.zeros((2, 4, 1), np.float32)
    w[0, 0], w[1, 0], w[1, 2] = 0.2, 0.2 - change, -5.0
    conv.set_weights([w])
    return model, keras.Model(inp, conv.output)


SHAP_MAXPOOL_THRESHOLD = 1e-7  # shap's rule: multiplier 0 where the pool input changes less


def test_maxpool_rules_across_the_shap_threshold():
    x = np.eye(4, dtype=np.float32)[[[0, 1, 2]]]
    refs = np.eye(4, dtype=np.float32)[[[[1, 0, 2]]]]
    scores = {}
    for change in (5e-8, 1.5e-7):  # below and above shap's threshold
        model, conv = _pool_threshold_model(change)
        pooled = conv.predict(np.concatenate([x, refs[0]]), verbose=0)[:, 0, 0]
        # the scenario holds: the pool input changes by less than the threshold iff change does
        below = pooled[0] - pooled[1] < SHAP_MAXPOOL_THRESHOLD
        assert below == (change < SHAP_MAXPOOL_THRESHOLD)
        for rule in ("continuous", "shap"):
            scores[rule, change] = deepshap(model, x, references=refs, maxpool_rule=rule)
    # continuous: the change reaches the max through base A at 0 (+0.2) and A at 1 (-0.2 +
    # change) on both sides of the threshold
    want = np.array([[0.2, -0.2, 0.0]])
    for change in (5e-8, 1.5e-7):
        assert_f32_close(scores["continuous", change].sum(-1), want)
    assert_f32_close(scores["continuous", 5e-8], scores["continuous", 1.5e-7])
    # shap's rule jumps: nothing below the threshold, everything above
    assert np.all(scores["shap", 5e-8] == 0)  # exact: the multiplier is set to 0
    assert_f32_close(scores["shap", 1.5e-7].sum(-1), want)


def _max_only_model(kind: str) -> keras.Model:
    """Linear convolutions, then a max-like op (max pool 4/2, max pool 3/3 of TensorFlow's
    argmax kernels, global max pool, element-wise maximum of two convolutions), then a linear
    read-out: the max op is the model's only non-linearity."""
    inp = keras.Input((24, 4))
    h = keras.layers.Conv1D(3, 5)(inp)
    if kind == "pool":
        h = keras.layers.MaxPooling1D(4, 2)(h)
    elif kind == "pool-fallback":
        h = keras.layers.MaxPooling1D(3, 3)(h)
    elif kind == "global":
        h = keras.layers.GlobalMaxPooling1D()(h)
    else:
        h = keras.layers.Maximum()([h, keras.layers.Conv1D(3, 5)(inp)])
    return randomize(keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(h))), 5)


@pytest.mark.parametrize("kind", ["pool", "pool-fallback", "global", "maximum"])
def test_gradient_maxpool_rule_passes_the_gradient_at_x(kind):
    """deeplift's max-pool rule (maxpool_rule="gradient"): every multiplier is the gradient of
    the model at x whatever the reference, when the max op is the only non-linearity. So the
    hypothetical scores are g_b - mean_r sum_c g_c ref_c, with g the gradient at x; the default
    rule routes by the references' maxima too and gives other scores."""
    import tensorflow as tf

    rng = np.random.default_rng(4)
    model = _max_only_model(kind)
    x = one_hot(rng, 4, 24)
    refs = dinuc_shuffle_references(x, 3, seed=1)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = tf.reduce_sum(model(xt))
    g = tape.gradient(out, xt).numpy()[:, None]  # (N, 1, L, 4)
    want = (g - np.sum(g * refs, -1, keepdims=True)).mean(1)
    got = deepshap(model, x, references=refs, hypothetical=True, maxpool_rule="gradient")
    assert_f32_close(got, want, scale=float(np.abs(g).max()))
    default = deepshap(model, x, references=refs, hypothetical=True)
    assert np.abs(default - want).max() > 1e-2 * np.abs(want).max()


def _global_max_model() -> keras.Model:
    inp = keras.Input((200, 4))
    h = keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(8, 11, activation="relu")(inp))
    return randomize(keras.Model(inp, keras.layers.Dense(1)(h)), 33)


_SHARED_SEGMENT_MODELS = {
    name: (lambda name=name: randomize(brc.build_model("sim", name, input_length=200), 33))
    for name in ("standard", "rcps", "conjoined-max")
} | {"global-max": _global_max_model}


@pytest.mark.parametrize("name,shared,checked", [
    # conv 21 -> max-pool 20/20: every window a base < 80 feeds lies inside [0, 100)
    ("standard", 100, 80), ("rcps", 100, 80),
    # a StrandMerge maximum on top / a global max: the reference equals x everywhere
    ("conjoined-max", 200, 200), ("global-max", 200, 200),
])
def test_hypothetical_scores_where_references_share_a_segment_with_x(name, shared, checked):
    """TF-MoDISco inputs from references that coincide with x over a receptive field: there
    DeepLIFT's multipliers are the gradient (the continuous rule's limit), so the hypothetical
    scores are the gradient's, g_b - sum_c g_c x_c. shap's rule makes them 0."""
    rng = np.random.default_rng(32)
    model = _SHARED_SEGMENT_MODELS[name]()
    x = one_hot(rng, 3, 200)
    refs = np.repeat(x[:, None], 2, axis=1)
    refs[:, :, shared:] = dinuc_shuffle_references(x, 2, seed=1)[:, :, shared:]
    hyp = deepshap(model, x, references=refs, hypothetical=True, output=0)
    g = saliency(model, x, output=0)
    want = (g - np.sum(g * x, -1, keepdims=True))[:, :checked]
    assert np.abs(want).max() > 0.1  # not a dead region
    assert_f32_close(hyp[:, :checked], want)


def test_ism_matches_brute_force_loop():
    rng = np.random.default_rng(6)
    model = randomize(brc.build_model("sim", "rcps", input_length=200), 8)
    x = one_hot(rng, 2, 200)
    got = ism(model, x, output=2, batch_size=100)
    base = predict_target(model, x, output=2)
    for n in range(2):
        for p in (0, 57, 199):
            for b in range(4):
                mutant = x[n].copy()
                mutant[p] = np.eye(4)[b]
                f_mutant = predict_target(model, mutant[None], output=2)[0]
                # a difference of two forward passes (batches of 100 and 1): rounding scales
                # with |f|, not with the difference
                assert_f32_close(got[n, p, b], f_mutant - base[n],
                                 scale=abs(f_mutant) + abs(base[n]))
    # exact: the observed base is not evaluated, its entry is set to 0
    assert np.all(got[x == 1] == 0)


def test_integrated_gradients_linear_model_equals_gradient_times_delta():
    rng = np.random.default_rng(7)
    inp = keras.Input((40, 4))
    out = keras.layers.Dense(1)(keras.layers.Flatten()(keras.layers.Conv1D(2, 3)(inp)))
    model = randomize(keras.Model(inp, out), 9)
    x = one_hot(rng, 2, 40)
    refs = dinuc_shuffle_references(x, 3, seed=3)
    ig = integrated_gradients(model, x, references=refs, steps=4)
    g = saliency(model, x)
    want = np.mean(np.sum(g[:, None] * (x[:, None] - refs), -1), axis=1)[..., None] * x
    assert_f32_close(ig, want)
    assert_f32_close(input_x_gradient(model, x), g * x)


def test_integrated_gradients_completeness_nonlinear():
    rng = np.random.default_rng(8)
    model = randomize(brc.build_model("sim", "standard", input_length=200), 10)
    x = one_hot(rng, 1, 200)
    refs = dinuc_shuffle_references(x, 2, seed=0)
    ig = integrated_gradients(model, x, references=refs, steps=64, output=0, batch_size=128)
    f_x, f_r = targets(model, x, refs, 0)
    d = f_x - f_r.mean(1)
    # 5 % of delta: the error of a 64-step midpoint rule (not rounding); plus the float32 floor
    assert abs(ig.sum() - d[0]) < 0.05 * abs(d[0]) + RTOL * (abs(f_x[0]) + np.abs(f_r).mean())


def _equivariance_error(model, x, refs, output):
    a = deepshap(model, x, references=refs, output=output)
    b = deepshap(model, reverse_complement(x), references=reverse_complement(refs),
                 output=output)
    return np.abs(reverse_complement(b) - a).max() / np.abs(a).max(), a, b


def _train_briefly(model, x):
    y = (x[:, :, 0].mean(1, keepdims=True) > 0.25).astype("float32")
    model.fit(x, np.repeat(y, model.outputs[0].shape[-1], axis=1), epochs=2, batch_size=8,
              verbose=0)
    return model


@pytest.mark.parametrize("trained", [False, True])
def test_attributions_rc_equivariant_for_rcps_and_posthoc_not_standard(trained):
    rng = np.random.default_rng(9)
    x = one_hot(rng, 3, 200)
    refs = dinuc_shuffle_references(x, 3, seed=4)
    models = {}
    for strategy in ("rcps", "standard", "rcaug"):
        m = randomize(brc.build_model("sim", strategy, input_length=200), 11)
        if trained:
            _train_briefly(m, one_hot(rng, 16, 200))
        models[strategy] = m
    models["posthoc"] = brc.conjoin(models.pop("rcaug"), "sim", "logit")
    for name in ("rcps", "posthoc"):
        # relative to the size of the scores: RC'd inputs are summed in another order
        err, a, b = _equivariance_error(models[name], x, refs, 0)
        assert err < RTOL, name
        assert rc_consistency(a, b) > 0.9999  # a correlation: rounding moves it by ~RTOL**2
    err, a, b = _equivariance_error(models["standard"], x, refs, 0)
    assert err > 1e-2  # 100 x RTOL: really not equivariant
    assert rc_consistency(a, b) < 0.999
    # ISM and gradients are equivariant too (no references involved)
    m = models["rcps"]
    f_scale = np.abs(predict_target(m, x, output=1)).max()
    for method, scale in ((ism, f_scale), (saliency, 0.0)):
        a = method(m, x, output=1)
        b = method(m, reverse_complement(x), output=1)
        # ISM entries are differences of targets: rounding scales with |f| as well
        assert_f32_close(reverse_complement(b), a, scale=np.abs(a).max() + scale)


def _pwm_dataset(rng, n=24, length=120):
    motif = "TGACTCA"  # AP-1 like
    x = one_hot(rng, n, length)
    rows = {"seq": [], "start": [], "end": [], "name": [], "strand": []}
    for i in range(n):
        start = int(rng.integers(5, length - 15))
        x[i, start:start + 7] = np.eye(4, dtype=np.float32)[["ACGT".index(c) for c in motif]]
        for k, v in zip(rows, (i, start, start + 7, "AP1", 1), strict=True):
            rows[k].append(v)
    return x, rows, motif


def test_ground_truth_pwm_model_near_one_and_random_model_near_half():
    rng = np.random.default_rng(10)
    x, motifs, motif = _pwm_dataset(rng)
    pwm = np.eye(4, dtype=np.float32)[["ACGT".index(c) for c in motif]]
    inp = keras.Input((x.shape[1], 4))
    conv = keras.layers.Conv1D(1, 7, activation="relu")
    h = keras.layers.GlobalMaxPooling1D()(conv(inp))
    model = keras.Model(inp, keras.layers.Dense(1)(h))
    conv.set_weights([(2 * pwm - 1)[:, :, None], np.array([-4.0], np.float32)])
    model.layers[-1].set_weights([np.ones((1, 1), np.float32), np.zeros(1, np.float32)])
    random_model = randomize(brc.build_model("sim", "standard", input_length=x.shape[1]), 12)
    for convention in ("prakash", "koo"):
        good = score_attributions(deepshap(model, x, n_shuffles=5), x, motifs, convention)
        bad = score_attributions(deepshap(random_model, x, n_shuffles=5, output=0), x, motifs,
                                 convention)
        assert good["auroc"] > 0.95 and good["n"] == len(x)
        assert 0.35 < bad["auroc"] < 0.65
        assert good["auprc"] > bad["auprc"] + 0.3
    # ISM and gradcam find it too
    for convention in ("prakash", "koo"):
        assert score_attributions(ism(model, x), x, motifs, convention, ism=True)["auroc"] > 0.9
    assert score_attributions(gradcam(model, x), x, motifs, "koo")["auroc"] > 0.9
    assert score_attributions(gradcam(model, x, variant="position"), x, motifs)["auroc"] > 0.9


def test_scoring_reads_motif_table_from_dataset(tmp_path):
    from benchmark_rc.data.hdf5 import read_motifs, write_dataset

    rng = np.random.default_rng(11)
    x, motifs, _ = _pwm_dataset(rng, n=6, length=60)
    path = write_dataset(tmp_path / "d.h5", "classification",
                         {s: {"x": x.astype("uint8"), "y": np.ones((6, 1), "float32"),
                              "motifs": {**motifs, "seq": np.array(motifs["seq"])}}
                          for s in ("train", "valid", "test")}, params={})
    table = read_motifs(path, "test")
    attr = np.zeros_like(x)
    mask = np.zeros(x.shape[:2], bool)
    for s, a, b in zip(table["seq"], table["start"], table["end"], strict=True):
        mask[s, a:b] = True
    attr[mask] = x[mask]  # perfect scores
    result = score_attributions(attr, x, table, "prakash")
    # exact: a perfect ranking gives AUROC = AUPRC = 1 (ratios of equal counts), and the standard
    # error of identical values is 0
    assert result["auroc"] == 1.0 and result["auprc"] == 1.0 and result["auroc_se"] == 0.0


def test_modisco_export_roundtrip(tmp_path):
    import h5py

    rng = np.random.default_rng(12)
    x = one_hot(rng, 3, 50)
    hyp = rng.normal(size=x.shape).astype("float32")
    ohe, attr = write_modisco_npz(tmp_path, x, hyp)
    # exact: files store copies (transposed), no arithmetic
    np.testing.assert_array_equal(np.load(ohe)["arr_0"], x.transpose(0, 2, 1))
    np.testing.assert_array_equal(np.load(attr)["arr_0"], hyp.transpose(0, 2, 1))
    path = write_attribution_h5(tmp_path / "a.h5", x, hyp, hyp * x)
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["hyp_scores"][:], hyp)
        assert f["input_seqs"].dtype == np.int8 and f["coords_end"][0] == 50
    with pytest.raises(UserError, match="must both be"):
        write_modisco_npz(tmp_path, x, hyp[:, :10])


def test_bad_inputs_give_clear_errors():
    rng = np.random.default_rng(13)
    model = randomize(brc.build_model("sim", "standard", input_length=200), 13)
    x = one_hot(rng, 2, 200)
    with pytest.raises(UserError, match="not one-hot at sequence 1, position 3"):
        bad = x.copy()
        bad[1, 3] = [0.5, 0.5, 0, 0]
        deepshap(model, bad, output=0)
    with pytest.raises(UserError, match="length 200, got length 100"):
        ism(model, x[:, :100], output=0)
    with pytest.raises(UserError, match=r"references: expected shape \(N, R, L, 4\)"):
        deepshap(model, x, references=np.zeros((2, 3, 150, 4)), output=0)
    with pytest.raises(UserError, match="3 tasks; choose one"):
        saliency(model, x)
    with pytest.raises(UserError, match="out of range"):
        deepshap(model, x, n_shuffles=2, output=5)
    with pytest.raises(UserError, match="n_shuffles"):
        deepshap(model, x, n_shuffles=0, output=0)
    with pytest.raises(UserError, match="shape \\(N, L, 4\\)"):
        input_x_gradient(model, x[0], output=0)


def test_unsupported_op_is_a_clear_error_and_training_still_works():
    rng = np.random.default_rng(14)
    inp = keras.Input((30, 4))
    # arctan: no rule (GELU, refused here before, has its rules since attention, issue 13)
    h = keras.layers.Activation(keras.ops.arctan)(keras.layers.Conv1D(4, 5)(inp))
    model = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(h)))
    model.compile(optimizer="adam", loss=keras.losses.MeanSquaredError())
    x = one_hot(rng, 8, 30)
    with pytest.raises(UserError, match="of type Atan"):
        deepshap(model, x, n_shuffles=2)
    # shap failing mid-run must not break TF either, given our guard
    import shap

    with pytest.raises(Exception), shap_patched():  # noqa: B017
        shap.DeepExplainer(model, x[:2]).shap_values(np.zeros((1, 99, 4), np.float32))
    history = model.fit(x, np.ones((8, 1), "float32"), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][1] < history.history["loss"][0] + 1.0


def test_bpnet_profile_attributions_equivariant_for_rcps():
    from benchmark_rc.sequence import reverse_control

    rng = np.random.default_rng(15)
    x = {"sequence": one_hot(rng, 2, 1346),
         "control": rng.random((2, 1000, 2)).astype("float32"),
         "control_logcount": rng.random((2, 1)).astype("float32")}
    x_rc = {"sequence": reverse_complement(x["sequence"]),
            "control": reverse_control(x["control"]),
            "control_logcount": x["control_logcount"]}
    refs = dinuc_shuffle_references(x["sequence"], 2, seed=5)
    errors = {}
    for strategy in ("rcps", "standard"):
        model = randomize(brc.build_model("bpnet", strategy), 16, 0.1)
        a = deepshap(model, x, references=refs, output="profile")
        b = deepshap(model, x_rc, references=reverse_complement(refs), output="profile")
        errors[strategy] = np.abs(reverse_complement(b) - a).max() / np.abs(a).max()
    # The profile target's secants divide by |delta logit| >= 1e-3 (below it the engine switches
    # to derivatives, see rescale_product_target), and the two strands' logits differ in float32
    # round-off, so the error depends on how close some reference's logits come to the input's:
    # over reference seeds 0-5 measured 3.5e-5 to 8.5e-3 (rcps) against 1.1 to 34 (standard),
    # with the previous (deeplift) shuffles 1.3e-4 to 3.8e-3. Bounds with a 3x margin each side.
    assert errors["rcps"] < 3e-2
    assert errors["standard"] > 0.3


def test_dict_inputs_and_heads_for_every_method():
    rng = np.random.default_rng(17)
    s = keras.Input((30, 4), name="sequence")
    c = keras.Input((26, 2), name="control")
    h = keras.layers.Concatenate()([keras.layers.Conv1D(3, 5, activation="relu")(s), c])
    profile = keras.layers.Conv1D(2, 1, name="profile")(h)
    counts = keras.layers.Dense(2, name="counts")(keras.layers.GlobalAveragePooling1D()(h))
    model = randomize(keras.Model({"sequence": s, "control": c},
                                  {"profile": profile, "counts": counts}), 18)
    x = {"sequence": one_hot(rng, 2, 30), "control": rng.random((2, 26, 2)).astype("float32")}
    refs = dinuc_shuffle_references(x["sequence"], 3, seed=0)
    for out in ("profile", "counts", ("counts", 1)):
        got = ism(model, x, output=out)
        mutant = {k: v.copy() for k, v in x.items()}
        b = int((x["sequence"][1, 7].argmax() + 1) % 4)
        mutant["sequence"][1, 7] = np.eye(4)[b]
        f_mutant = predict_target(model, mutant, out)[1]
        f_x = predict_target(model, x, out)[1]
        assert_f32_close(got[1, 7, b], f_mutant - f_x, scale=abs(f_mutant) + abs(f_x))
        scores = deepshap(model, x, references=refs, output=out)
        assert_sums_to_delta(scores, model, x, refs, out)
        for method in (saliency, gradcam):
            assert method(model, x, output=out).shape == (2, 30, 4)
    with pytest.raises(UserError, match="choose one of the model's heads"):
        deepshap(model, x, n_shuffles=2)

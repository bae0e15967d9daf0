"""Restricted ISM (fastISM: recompute only what a mutation reaches) against plain ISM.

Acceptance (issue 17 item 4): restricted ISM equals plain ISM on every registered architecture,
for a representative set of strategies (an ordinary network, RC parameter sharing, the two-pass
conjoined model, irreducible representations, and a hybrid whose trunk reverses maps midway).
The two compute f(mutant) from the same weights by different sums (slices of each map instead of
whole maps), so they agree to float32 summation order: f32_rtol(model_terms) relative to the
scale of the explained output. A hand-written receptive-field check pins the geometry on a toy
Sequential model, and models restricted ISM cannot exploit fall back to plain ISM with a
warning that says why.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from conftest import assert_f32_close, f32_rtol, model_terms

from benchmark_rc import build_model, list_architectures, list_strategies
from benchmark_rc.architectures import get_architecture
from benchmark_rc.attribution import METHODS, fast_ism, ism, predict_target
from benchmark_rc.attribution.fast_ism import (
    NotRestrictable,
    RestrictedISMFallback,
    RestrictedPlan,
)
from benchmark_rc.attribution.targets import model_spec
from benchmark_rc.layers import RelativeMultiHeadAttention
from benchmark_rc.strategies import get_strategy

STRATEGIES = ("standard", "rcps", "conjoined", "irrep")
EXTRA = [("koo-cnn-deep", "hybrid-early"), ("binary", "hybrid-later"), ("sim", "irrep-kmer"),
         ("basset", "rcps-half")]
# few filters keep the tests fast; bpnet's input is shortened (its layers stay the same), as
# its 1000-long profile head runs in full for every mutant
SMALL = {"enformer": {"filters": 8, "heads": 2}, "bpnet": {"filters": 4, "input_length": 700}}


def small(arch: str) -> dict:
    """Few filters; the geometry (kernels, strides, dilations, padding) is the architecture's."""
    return dict(SMALL.get(arch, {"filters": 4}))


def _has_attention(model: keras.Model) -> bool:
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.Model):
            stack.extend(layer.layers)
        elif isinstance(layer, RelativeMultiHeadAttention):
            return True
    return False


def _one_hot(n: int, length: int, seed: int) -> np.ndarray:
    """Random one-hot DNA with a few N (all-zero) rows in every sequence."""
    rng = np.random.default_rng(seed)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))]
    x[rng.random((n, length)) < 0.01] = 0
    x[:, [0, length // 2, length - 1]] = 0  # N rows at both ends and in the middle
    return x


def _inputs(model: keras.Model, n: int, seed: int):
    """The model's inputs: the sequence alone, or a dict with non-negative other tracks."""
    rng = np.random.default_rng(seed + 1)
    feed = {}
    for t in model.inputs:
        shape = (n, *t.shape[1:])
        feed[t.name] = (_one_hot(n, shape[1], seed) if t.name == "sequence"
                        else rng.gamma(2.0, 1.0, shape).astype(np.float32))
    return feed["sequence"] if len(feed) == 1 else feed


def _output(model: keras.Model):
    """What to explain: the profile head of a profile model, else the last task."""
    if len(model.outputs) > 1:
        return "profile"
    return int(model.outputs[0].shape[-1]) - 1


def assert_same_as_plain(model: keras.Model, x, output=None, err_msg: str = "") -> np.ndarray:
    """Restricted ISM (no fallback allowed) equals plain ISM at float32 summation tolerance."""
    plain = ism(model, x, output)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RestrictedISMFallback)
        fast = ism(model, x, output, restricted=True)
    wild = predict_target(model, x, output)
    assert np.abs(plain).max() > 0, "plain ISM is all zero: nothing is compared"
    rtol = f32_rtol(model_terms(model))
    scale = max(float(np.abs(wild).max()), float(np.abs(plain).max()))
    assert_f32_close(fast, plain, rtol=rtol, floor=rtol * scale, err_msg=err_msg)
    seq = x["sequence"] if isinstance(x, dict) else x
    np.testing.assert_array_equal(fast[seq == 1], 0)  # the observed base is never evaluated
    return fast


CASES = [(a, s) for a in list_architectures() for s in STRATEGIES if s in list_strategies(a)]
CASES += [c for c in EXTRA if c[0] in list_architectures() and c[1] in list_strategies(c[0])]


@pytest.fixture
def update_small_convs(monkeypatch):
    """Linear convolutions of any width are updated from their input's change (the tests' tiny
    filter counts would otherwise always recompute them)."""
    monkeypatch.setattr(fast_ism, "UPDATE_MIN_CHANNELS", 1)


@pytest.mark.parametrize(("arch", "strategy"), CASES)
def test_restricted_ism_equals_plain_ism(arch, strategy, update_small_convs):
    model = build_model(arch, strategy, seed=3, **small(arch))
    if _has_attention(model):
        # the fallback of attention models is checked below; their plain ISM is too slow here
        with pytest.raises(NotRestrictable, match="attends over all positions"):
            RestrictedPlan(model, model_spec(model))
        return
    plan = RestrictedPlan(model, model_spec(model))
    # it is really restricted: some trunk map is recomputed on a slice shorter than the map
    assert any(m.width < m.length for m in plan.maps.values()), plan.describe()
    if strategy == "standard" and arch != "bpnet":  # (bpnet's convs carry their ReLU)
        # its Conv1Ds are linear (conv + bias): some are updated, not recomputed
        assert any(t.update for t in plan.trunk), plan.describe()
    assert_same_as_plain(model, _inputs(model, 2, seed=len(arch)), _output(model),
                         err_msg=f"{arch}/{strategy}")


def test_restricted_ism_of_a_profile_model_per_head(update_small_convs):
    """bpnet: both heads (the per-position profile, run in full after the trunk, and counts)."""
    model = build_model("bpnet", "rcps", seed=4, **small("bpnet"))
    x = _inputs(model, 1, seed=5)
    for output in ("profile", ("counts", 1)):
        assert_same_as_plain(model, x, output, err_msg=str(output))


def test_posthoc_conjoined_model(update_small_convs):
    """A post-hoc conjoined model nests the whole trained network twice (x and RC(x))."""
    posthoc = get_strategy("posthoc")
    trained = build_model("koo-cnn-deep", posthoc.trained_as, seed=6, **small("koo-cnn-deep"))
    model = posthoc.after_training(trained, get_architecture("koo-cnn-deep"))
    assert_same_as_plain(model, _inputs(model, 2, seed=7), output=3)


def _toy_model(length: int = 40) -> keras.Sequential:
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((length, 4)),
        keras.layers.ZeroPadding1D(2, name="pad"),
        keras.layers.Conv1D(3, 5, activation="relu", name="conv1"),
        keras.layers.MaxPooling1D(2, name="pool"),
        keras.layers.Conv1D(2, 3, dilation_rate=2, padding="same", name="conv2"),
        keras.layers.Cropping1D((1, 2), name="crop"),
        keras.layers.Conv1D(2, 3, strides=2, name="conv3"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(1, name="logits"),
    ])


def test_receptive_field_of_a_toy_sequential_model():
    """The positions a mutation at input i reaches, worked out by hand for each layer."""
    length = 40
    model = _toy_model(length)
    plan = RestrictedPlan(model, model_spec(model))
    i = np.arange(length)

    def clip(lo, hi, n):
        lo, hi = np.clip(lo, 0, n), np.clip(hi, 0, n)
        return np.where(lo < hi, lo, 0), np.where(lo < hi, hi, 0)

    # pad 2: 44 rows, row i + 2; conv1 (k 5, valid): 40, output q reads rows q .. q+4 = input
    # q-2 .. q+2; pool 2: 20, r reads conv1 2r, 2r+1; conv2 (k 3, dilation 2, same: 2 rows of
    # padding each side): 20, u reads pool u-2 .. u+2; crop (1, 2): 17, v is conv2 v+1;
    # conv3 (k 3, stride 2): 8, w reads crop 2w .. 2w+2
    expected = {}
    expected["pad"] = (i + 2, i + 3)
    expected["conv1"] = clip(i - 2, i + 3, 40)
    lo, hi = expected["conv1"]
    expected["pool"] = clip(lo // 2, (hi - 1) // 2 + 1, 20)
    lo, hi = expected["pool"]
    expected["conv2"] = clip(lo - 2, hi + 2, 20)
    lo, hi = expected["conv2"]
    expected["crop"] = clip(lo - 1, hi - 1, 17)
    lo, hi = expected["crop"]
    expected["conv3"] = clip(-((-(lo - 2)) // 2), (hi - 1) // 2 + 1, 8)
    for name, (lo, hi) in expected.items():
        got = plan.map_named(name)
        np.testing.assert_array_equal(got.lo, lo, err_msg=name)
        np.testing.assert_array_equal(got.hi, hi, err_msg=name)
        # the recomputed slice holds the reached positions
        assert (got.start <= np.where(lo < hi, lo, got.start)).all(), name
        assert (got.start + got.width >= hi).all(), name
    assert plan.describe()["head"] == ["flatten", "logits"]

    # the positions that really change lie inside the computed ranges (a max pool may hide a
    # change, so the ranges may be wider, never narrower)
    x = _one_hot(1, length, seed=1)
    x[0, 0] = 0
    names = list(expected)
    probe = keras.Model(model.inputs[0], [model.get_layer(n).output for n in names])
    ref = probe(x)
    for pos in (0, 1, 17, length - 1):
        mutant = x.copy()
        mutant[0, pos] = np.eye(4, dtype=np.float32)[(int(x[0, pos].argmax()) + 1) % 4]
        for name, a, b in zip(names, ref, probe(mutant), strict=True):
            changed = np.flatnonzero(np.abs(np.asarray(a) - np.asarray(b)).max(-1)[0] > 0)
            lo, hi = expected[name][0][pos], expected[name][1][pos]
            assert ((changed >= lo) & (changed < hi)).all(), (name, pos, changed, lo, hi)
    assert_same_as_plain(model, _one_hot(2, length, seed=2))


def test_wide_linear_convolutions_are_updated_from_the_change():
    """At the default thresholds: a wide linear conv whose input changes on a narrow slice is
    updated (its cached output + the convolution of the change), other convs recomputed."""
    keras.utils.set_random_seed(2)
    inp = keras.Input((60, 4), name="sequence")
    h = keras.layers.Conv1D(40, 5, activation="relu", name="conv1")(inp)  # not linear
    h = keras.layers.MaxPooling1D(2, name="pool1")(h)
    h = keras.layers.Conv1D(48, 7, dilation_rate=2, padding="same", name="conv2")(h)
    h = keras.layers.Activation("relu", name="relu2")(h)
    h = keras.layers.Conv1D(40, 3, name="conv3")(h)
    out = keras.layers.Dense(1, name="logits")(keras.layers.Flatten(name="flatten")(h))
    model = keras.Model(inp, out)
    plan = RestrictedPlan(model, model_spec(model))
    updated = {t.step.layer.name: t.update for t in plan.trunk}
    assert updated["conv1"] is False and updated["conv2"] is True, updated
    assert_same_as_plain(model, _one_hot(2, 60, seed=5))


def test_a_model_without_a_trunk_falls_back_with_a_warning():
    keras.utils.set_random_seed(1)
    inp = keras.Input((12, 4), name="sequence")
    h = keras.layers.Flatten(name="flatten")(inp)
    model = keras.Model(inp, keras.layers.Dense(1, name="logits")(h))
    with pytest.raises(NotRestrictable, match="no position-local layer"):
        RestrictedPlan(model, model_spec(model))
    x = _one_hot(2, 12, seed=3)
    with pytest.warns(RestrictedISMFallback, match="falls back to plain ISM.*'flatten'"):
        fast = ism(model, x, restricted=True)
    np.testing.assert_array_equal(fast, ism(model, x))  # the same computation: plain ISM


def test_ism_fast_is_registered_as_a_mutagenesis_method():
    method = METHODS["ism_fast"]
    assert method.mutagenesis and not method.needs_references
    assert not method.supports_hypothetical
    model = _toy_model(24)
    x = _one_hot(2, 24, seed=4)
    rtol = f32_rtol(model_terms(model))
    plain = METHODS["ism"](model, x, batch_size=32)
    assert_f32_close(method(model, x, batch_size=32), plain, rtol=rtol,
                     floor=rtol * float(np.abs(predict_target(model, x)).max()))

"""Attention layers (layers/attention.py): the Enformer layers against numpy oracles written here,
exact RC equivariance of the RC-shared versions for random weights and inputs (and its failure
for the standard ones and for a wrong position tie), and save / load in safe mode.

RC of a regular map (B, L, C) is written by hand: a[:, ::-1, ::-1]. Tolerances: float32 round-off
of the terms each output accumulates (conftest.f32_rtol), relative to the output's scale.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import assert_f32_close, f32_rtol
from scipy.special import softmax

import benchmark_rc.layers.attention as attention
from benchmark_rc.layers import (
    AttentionPooling1D,
    RCGeometryError,
    RelativeMultiHeadAttention,
    RevCompAttentionPooling1D,
    RevCompLayerNorm,
    RevCompMultiHeadAttention,
    StrandPairDense,
    StrandSymmetricDense,
    relative_position_features,
)

L, F = 12, 3  # 12 positions, 3 filter pairs (6 channels)
HEADS, DK, DV, UNITS, P = 2, 4, 3, 5, 12


def rc(a: np.ndarray) -> np.ndarray:
    return a[:, ::-1, ::-1]


def randomize(layer: keras.layers.Layer, seed: int) -> None:
    """Every weight random (also the ones Enformer initialises to 0 or I)."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(size=w.shape).astype(np.float32) * 0.5
                       for w in layer.get_weights()])


def regular_input(seed: int, length: int = L, channels: int = 2 * F) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(3, length, channels)).astype(np.float32)


def mha_terms(channels: int, heads: int) -> int:
    # q/k/v fan-in, q.k, position projection, softmax over L, weighted sum over L, output fan-in
    return channels + DK + P + 2 * L + heads * DV + 16


RC_LAYERS = {
    "pool": (lambda: RevCompAttentionPooling1D(2), 2 * F + 8),
    "pool3": (lambda: RevCompAttentionPooling1D(3), 2 * F + 8),
    "layer_norm": (lambda: RevCompLayerNorm(), 2 * 2 * F + 8),
    "mha": (lambda: RevCompMultiHeadAttention(HEADS, DK, DV, UNITS, position_features=P),
            mha_terms(2 * F, 2 * HEADS)),
    "mha_symmetric": (lambda: RevCompMultiHeadAttention(HEADS, DK, DV, UNITS, position_features=6,
                                                        symmetric_positions=True),
                      mha_terms(2 * F, 2 * HEADS)),
}
STANDARD_LAYERS = {
    "pool": lambda: AttentionPooling1D(2),
    "layer_norm": lambda: keras.layers.LayerNormalization(),
    "mha": lambda: RelativeMultiHeadAttention(HEADS, DK, DV, 2 * F, position_features=P),
}


def equivariance_error(layer, x, out_map=rc) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(layer(rc(x)), np.float64), out_map(np.asarray(layer(x), np.float64))


@pytest.mark.parametrize("name", list(RC_LAYERS))
@pytest.mark.parametrize("seed", [0, 1])
def test_rc_layers_are_exactly_equivariant(name, seed):
    make, terms = RC_LAYERS[name]
    layer = make()
    x = regular_input(seed)
    layer(x)
    randomize(layer, seed + 10)
    got, want = equivariance_error(layer, x)
    assert_f32_close(got, want, rtol=f32_rtol(terms))


@pytest.mark.parametrize("name", list(STANDARD_LAYERS))
def test_standard_layers_are_not_equivariant(name):
    layer = STANDARD_LAYERS[name]()
    x = regular_input(3)
    layer(x)
    randomize(layer, 13)
    got, want = equivariance_error(layer, x)
    with pytest.raises(AssertionError):
        assert_f32_close(got, want, rtol=100 * f32_rtol(mha_terms(2 * F, HEADS)))


def test_track_heads_follow_the_task_rules():
    x = regular_input(4)
    for layer, out_map in [
        (StrandSymmetricDense(3), lambda a: a[:, ::-1, :]),  # unstranded: reverse the bins
        (StrandPairDense(2), lambda a: a[:, ::-1, [1, 0, 3, 2]]),  # pairs: and swap strands
    ]:
        layer(x)
        randomize(layer, 5)
        got, want = equivariance_error(layer, x, out_map)
        assert_f32_close(got, want, rtol=f32_rtol(2 * F + 8))
        # and not by the regular rule (the pair layout is not the regular layout)
        if isinstance(layer, StrandPairDense):
            with pytest.raises(AssertionError):
                assert_f32_close(got, rc(np.asarray(layer(x), np.float64)), rtol=1e-3)


def test_a_position_tie_without_the_sign_breaks_equivariance(monkeypatch):
    """The sign-odd features must pair with a sign change: tying them like the symmetric ones
    (S = I) breaks equivariance; the symmetric-only layer has no odd features and is unaffected."""
    x = regular_input(6)
    monkeypatch.setattr(attention, "position_signs",
                        lambda n, symmetric: np.ones(n, np.float32))
    for symmetric, equivariant in ((False, False), (True, True)):
        layer = RevCompMultiHeadAttention(HEADS, DK, DV, UNITS, position_features=P,
                                          symmetric_positions=symmetric)
        layer(x)
        randomize(layer, 7)
        got, want = equivariance_error(layer, x)
        bar = f32_rtol(mha_terms(2 * F, 2 * HEADS))
        if equivariant:
            assert_f32_close(got, want, rtol=bar)
        else:
            with pytest.raises(AssertionError):
                assert_f32_close(got, want, rtol=100 * bar)


# --------------------------------------------------------------------------- numpy oracles


def features_oracle(length: int, n: int) -> np.ndarray:
    """Enformer's three basis families, written out per distance with Python floats."""
    import math

    rows = []
    for d in range(-(length - 1), length):
        a = abs(d)
        lo, hi = 3.0, math.log2(length)
        exp = [math.exp(-math.log(2) / 2 ** (lo + (hi - lo) * i / max(n - 1, 1)) * a)
               for i in range(n)]
        mask = [float(2 ** (i + 1) - 1 > a) for i in range(n)]
        sd = length / (2 * n)
        gam = []
        for i in range(n):
            mean = length / n + (length - length / n) * i / max(n - 1, 1)
            k, rate = (mean / sd) ** 2, mean / sd**2
            logp = (k - 1) * math.log(a) - rate * a if a else (-math.inf if k > 1 else 0.0)
            gam.append(math.exp(logp + k * math.log(rate) - math.lgamma(k)) + 1e-8)
        gmax = max(gam)
        row = exp + mask + [g / gmax for g in gam]
        rows.append(row + [math.copysign(1, d) * v if d else 0.0 for v in row])
    return np.array(rows)


def test_position_features_match_enformer_formulas():
    got = relative_position_features(20, 12)
    assert got.shape == (39, 12)
    assert_f32_close(got, features_oracle(20, 2), rtol=f32_rtol(32))
    half = got[:, :6]
    np.testing.assert_array_equal(half, half[::-1])  # symmetric in d (|d| computed exactly)
    np.testing.assert_array_equal(got[:, 6:], -got[::-1, 6:])  # odd in d
    assert relative_position_features(20, 6, symmetric=True).shape == (39, 6)
    with pytest.raises(ValueError, match="multiple of 6"):
        relative_position_features(20, 8)


def mha_oracle(layer: RelativeMultiHeadAttention, x: np.ndarray) -> np.ndarray:
    """The attention written with explicit loops over heads and position pairs (float64)."""
    w = {k: np.asarray(v, np.float64) for k, v in layer.full_weights().items()}
    heads, dk, dv = layer.total_heads, layer.key_size, layer.value_size
    length = x.shape[1]
    phi = relative_position_features(length, layer.position_features,
                                     layer.symmetric_positions).astype(np.float64)
    out = np.zeros((x.shape[0], length, heads * dv))
    for b in range(x.shape[0]):
        q = (x[b] @ w["query"]).reshape(length, heads, dk) / np.sqrt(dk)
        k = (x[b] @ w["key"]).reshape(length, heads, dk)
        v = (x[b] @ w["value"]).reshape(length, heads, dv)
        for h in range(heads):
            u = w["content_bias"].reshape(heads, dk)[h]
            r_bias = w["position_bias"].reshape(heads, dk)[h]
            wr = w["position"].reshape(-1, heads, dk)[:, h]
            logits = np.empty((length, length))
            for p in range(length):
                for p2 in range(length):
                    r = phi[p2 - p + length - 1] @ wr
                    logits[p, p2] = (q[p, h] + u) @ k[p2, h] + (q[p, h] + r_bias) @ r
            out[b, :, h * dv:(h + 1) * dv] = softmax(logits, axis=1) @ v[:, h]
    return out @ w["output"] + w["output_bias"]


@pytest.mark.parametrize("cls", [RelativeMultiHeadAttention, RevCompMultiHeadAttention])
def test_attention_matches_the_loop_oracle(cls):
    layer = cls(HEADS, DK, DV, UNITS, position_features=P)
    x = regular_input(8)
    layer(x)
    randomize(layer, 9)
    assert_f32_close(np.asarray(layer(x)), mha_oracle(layer, x.astype(np.float64)),
                     rtol=f32_rtol(mha_terms(2 * F, layer.total_heads)))


def test_attention_pooling_matches_the_oracle_and_starts_at_twice_identity():
    x = regular_input(10)
    for layer in (AttentionPooling1D(2), RevCompAttentionPooling1D(2)):
        layer(x)
        np.testing.assert_array_equal(np.asarray(layer.full_kernel()), 2 * np.eye(2 * F))
        randomize(layer, 11)
        kernel = np.asarray(layer.full_kernel(), np.float64)
        windows = x.astype(np.float64).reshape(3, L // 2, 2, 2 * F)
        weights = softmax(windows @ kernel, axis=2)
        assert_f32_close(np.asarray(layer(x)), (windows * weights).sum(axis=2),
                         rtol=f32_rtol(2 * F + 8))


def test_geometry_errors():
    with pytest.raises(RCGeometryError, match="multiple of pool_size"):
        RevCompAttentionPooling1D(2)(regular_input(0, length=11))
    with pytest.raises(RCGeometryError, match="even number of channels"):
        RevCompMultiHeadAttention(2, 4, 3, 5)(regular_input(0, channels=5))
    with pytest.raises(RCGeometryError, match="even number of channels"):
        RevCompLayerNorm()(regular_input(0, channels=5))


# --------------------------------------------------------------------------- save / load


def test_save_load_round_trip_in_safe_mode(tmp_path):
    inputs = keras.Input((L, 2 * F))
    h = RevCompAttentionPooling1D(2, name="rc_pool")(inputs)
    h = RevCompLayerNorm(name="rc_norm", gamma_regularizer="l2")(h)
    h = RevCompMultiHeadAttention(HEADS, DK, DV, F, position_features=6,
                                  symmetric_positions=True, attention_dropout=0.1,
                                  kernel_constraint="non_neg", name="rc_mha")(h)
    a = StrandSymmetricDense(2, activation="softplus", name="tracks")(h)
    b = StrandPairDense(1, activation="softplus", name="stranded_tracks")(h)
    s = AttentionPooling1D(2, name="pool")(inputs)
    s = RelativeMultiHeadAttention(HEADS, DK, DV, 4, position_features=P, name="mha")(s)
    model = keras.Model(inputs, {"tracks": a, "stranded_tracks": b, "standard": s})
    for layer in model.layers[1:]:
        randomize(layer, 12)
    x = regular_input(13)
    want = model(x)
    path = tmp_path / "attention.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    got = loaded(x)
    for key in want:  # the same weights through the same ops on the same machine
        np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(want[key]))
    for layer in model.layers[1:]:
        assert loaded.get_layer(layer.name).get_config() == layer.get_config()
    mha = loaded.get_layer("rc_mha")
    assert isinstance(mha.kernel_constraint, keras.constraints.NonNeg)
    assert mha.symmetric_positions and mha.attention_dropout == 0.1
    assert isinstance(loaded.get_layer("rc_norm").gamma_regularizer, keras.regularizers.L2)

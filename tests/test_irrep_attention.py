"""Enformer's layers on irrep maps (layers/irrep_attention.py): exact RC equivariance for random
weights and inputs at every a/b split (a = 0 and b = 0 included), the failure of the standard
layers and of a wrong position split on the same maps, weight options, configs and safe-mode
save / load.

RC of an irrep map with a channels of type +1 is written here: reverse the length, negate the
channels from a on. Track outputs: unstranded tracks reverse their bins; stranded (+, -) pairs
reverse their bins and swap each pair's strands. Tolerances: float32 round-off of the terms each
output accumulates (conftest.f32_rtol), relative to the output's scale.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import assert_f32_close, f32_rtol
from test_layers import assert_weight_options

import benchmark_rc.layers.irrep_attention as irrep_attention
from benchmark_rc.layers import (
    AttentionPooling1D,
    IrrepAttentionPooling1D,
    IrrepLayerNorm,
    IrrepMultiHeadAttention,
    IrrepStrandPairDense,
    IrrepTrackDense,
    RCGeometryError,
    RelativeMultiHeadAttention,
)

L, C = 12, 6  # 12 positions, 6 channels
HEADS, DK, DV, UNITS, P = 3, 4, 3, 5, 12


def rc_irrep(h: np.ndarray, a: int) -> np.ndarray:
    out = np.array(np.asarray(h, np.float64)[:, ::-1, :])
    out[..., a:] = -out[..., a:]
    return out


def rc_tracks(y: np.ndarray) -> np.ndarray:
    return np.asarray(y, np.float64)[:, ::-1, :]


def rc_pairs(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, np.float64)[:, ::-1, :]
    out = np.empty_like(y)
    out[..., 0::2], out[..., 1::2] = y[..., 1::2], y[..., 0::2]
    return out


def irrep_input(seed: int, channels: int = C) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(3, L, channels)).astype(np.float32)


def randomize(layer: keras.layers.Layer, seed: int) -> None:
    """Every weight random (also those initialised to 0, 1 or 2 I)."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(size=w.shape).astype(np.float32) * 0.5
                       for w in layer.get_weights()])


def mha_terms(channels: int, heads: int) -> int:
    # q/k/v fan-in, q.k, position projection, softmax over L, weighted sum over L, output fan-in
    return channels + DK + P + 2 * L + heads * DV + 16


def mha(a: int, key_a: int, value_a: int, units_a: int, symmetric: bool = False):
    return IrrepMultiHeadAttention(HEADS, DK, DV, UNITS, a=a, key_a=key_a, value_a=value_a,
                                   units_a=units_a, position_features=6 if symmetric else P,
                                   symmetric_positions=symmetric)


# name: (factory, input +1 channels, output map, terms)
LAYERS = {
    "pool a=3": (lambda: IrrepAttentionPooling1D(3, 2), 3, "same", C + 8),
    "pool a=0": (lambda: IrrepAttentionPooling1D(0, 2), 0, "same", C + 8),
    "pool a=6 pool3": (lambda: IrrepAttentionPooling1D(6, 3), 6, "same", C + 8),
    "norm a=2": (lambda: IrrepLayerNorm(2), 2, "same", 2 * C + 8),
    "norm a=0": (lambda: IrrepLayerNorm(0), 0, "same", 2 * C + 8),
    "norm a=6": (lambda: IrrepLayerNorm(6), 6, "same", 2 * C + 8),
    "mha mixed": (lambda: mha(3, 2, 1, 2), 3, 2, mha_terms(C, HEADS)),
    "mha symmetric": (lambda: mha(3, 2, 1, 2, symmetric=True), 3, 2, mha_terms(C, HEADS)),
    "mha all b": (lambda: mha(0, 0, 0, 0), 0, 0, mha_terms(C, HEADS)),
    "mha all a": (lambda: mha(6, DK, DV, UNITS), 6, UNITS, mha_terms(C, HEADS)),
    "mha b-only keys": (lambda: mha(4, 0, 2, 1), 4, 1, mha_terms(C, HEADS)),
    "tracks": (lambda: IrrepTrackDense(3, 2), 2, "tracks", C + 8),
    "pairs": (lambda: IrrepStrandPairDense(2, 2), 2, "pairs", C + 8),
    "pairs a=0": (lambda: IrrepStrandPairDense(2, 0), 0, "pairs", C + 8),
}


def output_map(kind, a: int):
    if kind == "tracks":
        return rc_tracks
    if kind == "pairs":
        return rc_pairs
    out_a = a if kind == "same" else kind
    return lambda y: rc_irrep(y, out_a)


def equivariance(layer, x: np.ndarray, a: int, kind) -> tuple[np.ndarray, np.ndarray]:
    got = np.asarray(layer(rc_irrep(x, a).astype(np.float32)), np.float64)
    return got, output_map(kind, a)(layer(x))


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("seed", [0, 1])
def test_irrep_layers_are_exactly_equivariant(name, seed):
    make, a, kind, terms = LAYERS[name]
    layer = make()
    x = irrep_input(seed)
    layer(x)
    randomize(layer, seed + 10)
    got, want = equivariance(layer, x, a, kind)
    assert np.std(want) > 0.1  # a live output: a misplaced bin or sign would show
    assert_f32_close(got, want, rtol=f32_rtol(terms))


# the standard layers on the same irrep maps, and the output rule each would have to follow
CONTROLS = {
    "pool": (lambda: AttentionPooling1D(2), 3, "same"),
    "norm": (lambda: keras.layers.LayerNormalization(), 3, "same"),
    "mha": (lambda: RelativeMultiHeadAttention(HEADS, DK, DV, C, position_features=P), 3, 3),
    "tracks": (lambda: keras.layers.Dense(3), 3, "tracks"),
}


@pytest.mark.parametrize("name", list(CONTROLS))
def test_standard_layers_on_irrep_maps_are_not_equivariant(name):
    make, a, kind = CONTROLS[name]
    layer = make()
    x = irrep_input(3)
    layer(x)
    randomize(layer, 13)
    got, want = equivariance(layer, x, a, kind)
    with pytest.raises(AssertionError):
        assert_f32_close(got, want, rtol=100 * f32_rtol(mha_terms(C, HEADS)))


def test_sign_odd_position_features_must_go_to_the_b_parts(monkeypatch):
    """Declaring every position feature symmetric sends the sign-odd ones to the a-parts, whose
    position term must be even in the distance: equivariance breaks. The symmetric-only layer
    has no odd features and is unaffected."""
    monkeypatch.setattr(irrep_attention, "position_signs",
                        lambda n, symmetric: np.ones(n, np.float32))
    x = irrep_input(6)
    bar = f32_rtol(mha_terms(C, HEADS))
    for symmetric, equivariant in ((False, False), (True, True)):
        layer = mha(3, 2, 1, 2, symmetric=symmetric)
        layer(x)
        randomize(layer, 7)
        got, want = equivariance(layer, x, 3, 2)
        if equivariant:
            assert_f32_close(got, want, rtol=bar)
        else:
            with pytest.raises(AssertionError):
                assert_f32_close(got, want, rtol=100 * bar)


def test_attention_free_weights_and_their_zero_blocks():
    """Free blocks only where equivariance allows a weight: a->a and b->b projections, symmetric
    features to the a-parts and odd ones to the b-parts, biases on a-parts; the full weights
    the parent layer runs have exact zeros everywhere else."""
    layer = mha(3, 2, 1, 2)
    layer(irrep_input(0))
    shapes = {w.path.split("/")[-1]: tuple(w.shape) for w in layer.weights}
    assert shapes == {
        "query_kernel_a": (3, HEADS * 2), "query_kernel_b": (3, HEADS * 2),
        "key_kernel_a": (3, HEADS * 2), "key_kernel_b": (3, HEADS * 2),
        "value_kernel_a": (3, HEADS * 1), "value_kernel_b": (3, HEADS * 2),
        "position_kernel_a": (P // 2, HEADS * 2), "position_kernel_b": (P // 2, HEADS * 2),
        "content_bias": (HEADS * 2,), "position_bias": (HEADS * 2,),
        "output_kernel_a": (HEADS * 1, 2), "output_kernel_b": (HEADS * 2, 3),
        "output_bias": (2,)}
    randomize(layer, 1)
    full = {k: np.asarray(v) for k, v in layer.full_weights().items()}
    a_cols = np.array([c % DK < 2 for c in range(HEADS * DK)])  # each head: 2 a, 2 b columns
    for key in ("query", "key"):
        assert not full[key][3:, a_cols].any() and not full[key][:3, ~a_cols].any()
        assert full[key][:3, a_cols].all() and full[key][3:, ~a_cols].all()
    assert not full["position"][P // 2:, a_cols].any()
    assert not full["position"][:P // 2, ~a_cols].any()
    for key in ("content_bias", "position_bias"):
        assert not full[key][~a_cols].any() and full[key][a_cols].all()
    value_a_rows = np.array([r % DV < 1 for r in range(HEADS * DV)])
    assert not full["output"][value_a_rows, 2:].any()
    assert not full["output"][~value_a_rows, :2].any()
    assert not full["output_bias"][2:].any() and full["output_bias"][:2].all()


@pytest.mark.parametrize(("make", "message"), [
    (lambda: mha(3, 5, 1, 2), "key_a=5"),
    (lambda: mha(3, 2, 4, 2), "value_a=4"),
    (lambda: mha(3, 2, 1, 6), "units_a=6"),
])
def test_attention_split_errors(make, message):
    with pytest.raises(RCGeometryError, match=message):
        make()


def test_split_larger_than_the_input_is_refused():
    for layer in (IrrepLayerNorm(7), IrrepAttentionPooling1D(7), mha(7, 2, 1, 2),
                  IrrepTrackDense(2, 7)):
        with pytest.raises(RCGeometryError, match="a=7"):
            layer(irrep_input(0))


@pytest.mark.parametrize(("make", "shape", "weights"), [
    (lambda **o: IrrepLayerNorm(2, **o), (2, 8, 5), {"gamma": "gamma", "beta": "beta"}),
    (lambda **o: IrrepAttentionPooling1D(2, **o), (2, 8, 5), {"kernel": "kernel"}),
    (lambda **o: IrrepMultiHeadAttention(HEADS, DK, DV, UNITS, a=3, key_a=2, value_a=1,
                                         units_a=2, position_features=P, **o),
     (2, 8, 6), {**{f"{w}_kernel_{p}": "kernel" for w in ("query", "key", "value")
                    for p in "ab"},
                 "position_kernel_a": "position", "position_kernel_b": "position",
                 "content_bias": "bias", "position_bias": "bias", "output_kernel_a": "output",
                 "output_kernel_b": "output", "output_bias": "output_bias"}),
    (lambda **o: IrrepStrandPairDense(2, 2, **o), (2, 8, 5),
     {"kernel": "kernel", "bias": "bias"}),
], ids=["layer_norm", "pool", "mha", "pairs"])
def test_weight_options_reach_every_free_weight(make, shape, weights):
    assert_weight_options(make, shape, weights)


def test_save_and_load_in_safe_mode(tmp_path):
    inputs = keras.Input((L, C))
    h = IrrepLayerNorm(3, name="norm")(inputs)
    h = mha(3, 2, 1, 3)(h)
    h = IrrepAttentionPooling1D(3, 2, name="pool")(h)
    model = keras.Model(inputs, {"tracks": IrrepTrackDense(2, 3, "softplus", name="tracks")(h),
                                 "pairs": IrrepStrandPairDense(1, 3, name="pairs")(h)})
    for layer in model.layers:
        if layer.weights:
            randomize(layer, 3)
    x = irrep_input(4)
    want = {k: np.asarray(v) for k, v in model(x).items()}
    for suffix in (".keras", ".h5"):
        path = str(tmp_path / f"model{suffix}")
        model.save(path)
        loaded = keras.models.load_model(path)  # default safe mode, no custom_objects
        for key, value in loaded(x).items():
            np.testing.assert_array_equal(np.asarray(value), want[key])  # same computation
        for layer in model.layers:
            assert loaded.get_layer(layer.name).get_config() == layer.get_config()

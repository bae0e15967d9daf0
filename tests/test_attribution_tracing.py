"""Attribution does not re-trace or re-compile per call: each method's traced function is traced
once per model and options, whatever the number of rows, and DeepSHAP feeds its fused XLA
kernels one batch shape (the last chunk padded), so they compile once."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import assert_f32_close, f32_rtol, model_terms, tiny_conv_model

from benchmark_rc.attribution import deeplift
from benchmark_rc.attribution.batching import _OWNER_ATTRIBUTE, _SHARED, pad_rows
from benchmark_rc.attribution.methods import METHODS

L = 24
ROWS = (5, 13, 64 + 7)  # a first call, a call of another size, several chunks and a short one


def tiny_model(seed: int = 0) -> keras.Model:
    return tiny_conv_model(L, seed)


def one_hot(n: int, seed: int) -> np.ndarray:
    return np.eye(4, dtype=np.float32)[np.random.default_rng(seed).integers(0, 4, (n, L))]


def tracing_counts(model: keras.Model) -> dict[str, int]:
    """Traces of each traced function memoised on ``model``, by builder name."""
    store = vars(model).get(_OWNER_ATTRIBUTE, {})
    return {key[1]: fn.experimental_get_tracing_count() for key, fn in store.items()}


def fused_counts() -> dict:
    """Traces of the process-wide fused DeepLIFT kernels."""
    return {key: fn.experimental_get_tracing_count() for key, fn in _SHARED.items()
            if key[0] == "deeplift-kernel"}


@pytest.mark.parametrize("name, builders", [
    ("deepshap", {"rescale_function"}),
    ("ism", {"mutant_function", "target_function"}),
    ("saliency", {"gradient_function"}),
    ("input_x_gradient", {"gradient_function"}),
    ("integrated_gradients", {"gradient_function"}),
    ("gradcam", {"gradcam_function"}),
])
def test_each_method_traces_once_whatever_the_rows(name, builders):
    model = tiny_model()
    method = METHODS[name]
    options = {"n_shuffles": 3} if method.needs_references else {}
    if name == "integrated_gradients":
        options["steps"] = 3
    for i, n in enumerate(ROWS):
        method(model, one_hot(n, i), output=0, batch_size=16, **options)
    assert tracing_counts(model) == {builder: 1 for builder in builders}


def test_fused_kernels_are_not_retraced_per_call_or_per_model():
    """The fused kernels are process-wide: once traced for a model's shapes, neither other row
    counts nor a second model of the same architecture trace them again."""
    deeplift.deepshap(tiny_model(1), one_hot(ROWS[0], 0), n_shuffles=3, output=0, batch_size=16)
    traced = fused_counts()
    for seed in (1, 2):
        model = tiny_model(seed)
        for i, n in enumerate(ROWS):
            deeplift.deepshap(model, one_hot(n, i), n_shuffles=3, output=0, batch_size=16)
    assert traced and fused_counts() == traced


def test_deepshap_runs_every_chunk_at_one_batch_shape(monkeypatch):
    """XLA compiles the fused kernels once per input shape: every call of the traced function
    must see the same shapes, for any number of rows, with or without given references."""
    shapes: list[tuple] = []
    build = deeplift.rescale_function

    def recording(*args, **kwargs):
        fn = build(*args, **kwargs)

        def call(x, refs, others):
            shapes.append((tuple(x.shape), tuple(refs.shape)))
            return fn(x, refs, others)

        return call

    monkeypatch.setattr(deeplift, "rescale_function", recording)
    model = tiny_model(3)
    for i, n in enumerate(ROWS):
        x = one_hot(n, i)
        deeplift.deepshap(model, x, n_shuffles=3, output=0, batch_size=16)
        refs = np.repeat(x[:, None, ::-1], 3, axis=1)
        deeplift.deepshap(model, x, references=refs, output=0, batch_size=16)
    per = 16 // (3 + 1)
    assert set(shapes) == {((per, L, 4), (per * 3, L, 4))}
    assert len(shapes) == 2 * sum(-(-n // per) for n in ROWS)


def test_padding_leaves_the_scores_of_every_row_unchanged():
    """Rows of a padded chunk score what they score unpadded (batch_size=4, R=3: one row per
    chunk, never padded)."""
    model = tiny_model(4)
    x = one_hot(7, 5)
    refs = np.stack([np.roll(x, k, axis=1) for k in (1, 2, 3)], axis=1)
    rtol = f32_rtol(model_terms(model))
    for hypothetical in (False, True):
        padded, single = (deeplift.deepshap(model, x, references=refs, output=1, batch_size=size,
                                            hypothetical=hypothetical) for size in (16, 4))
        assert np.abs(single).max() > 0
        assert_f32_close(padded, single, rtol=rtol)


def test_pad_rows():
    a = np.arange(6).reshape(3, 2)
    assert pad_rows(a, 3) is a
    np.testing.assert_array_equal(pad_rows(a, 5), [[0, 1], [2, 3], [4, 5], [4, 5], [4, 5]])

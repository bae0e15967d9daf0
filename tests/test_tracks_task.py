"""The binned-track Task (tasks/tracks.py): its RC rules, storage, pipeline, loss and evaluation.

The RC maps of the tests are written here by hand: unstranded tracks reverse their bins; stranded
track pairs, stored (+1, -1, +2, -2, ...), reverse their bins and swap the two strands of each
pair. Models are tiny hand-made Keras models with known weights (an architecture trained on the
task: tests/test_enformer.py).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import assert_f32_close, f32_rtol
from scipy import stats

from benchmark_rc.data.hdf5 import validate, write_dataset
from benchmark_rc.data.pipeline import make_dataset
from benchmark_rc.errors import DatasetError
from benchmark_rc.layers import RCTransform
from benchmark_rc.layers.conjoin import RC_RULE_FUNCTIONS
from benchmark_rc.metrics import track_metrics
from benchmark_rc.tasks import TASKS, TRACKS, get_task

L, BIN, S, T = 16, 4, 2, 2  # 16 bp, 4 bins of 4 bp, 2 stranded pairs, 2 unstranded tracks


def reverse_bins(a):
    return a[:, ::-1, :]


def reverse_and_swap_pairs(a):
    out = np.empty_like(a)
    out[..., 0::2] = a[:, ::-1, 1::2]  # + strand of the RC = - strand, bins reversed
    out[..., 1::2] = a[:, ::-1, 0::2]
    return out


def random_data(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": np.eye(4, dtype=np.uint8)[rng.integers(0, 4, (n, L))],
            "tracks": rng.poisson(3.0, (n, L // BIN, T)).astype(np.float32),
            "stranded_tracks": rng.poisson(2.0, (n, L // BIN, 2 * S)).astype(np.float32)}


def test_the_task_is_registered_with_its_rules():
    assert get_task("tracks") is TRACKS and TASKS["tracks"] is TRACKS
    assert TRACKS.output_rules == {"tracks": "length", "stranded_tracks": "pairs"}
    assert TRACKS.input_rules == {"sequence": "regular"}


@pytest.mark.parametrize("pairs", [1, 3])
def test_pairs_rule_numpy_keras_and_tf_agree_with_the_hand_map(pairs):
    from benchmark_rc.data.pipeline import _TF_RC_RULES

    a = np.random.default_rng(pairs).random((2, 5, 2 * pairs)).astype(np.float32)
    want = reverse_and_swap_pairs(a)
    # permutations of stored values: exact
    np.testing.assert_array_equal(RC_RULE_FUNCTIONS["pairs"](a), want)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(
        RC_RULE_FUNCTIONS["pairs"](keras.ops.convert_to_tensor(a))), want)
    np.testing.assert_array_equal(np.asarray(_TF_RC_RULES["pairs"](a)), want)
    np.testing.assert_array_equal(np.asarray(RCTransform("pairs")(a)), want)
    np.testing.assert_array_equal(RC_RULE_FUNCTIONS["pairs"](want), a)  # an involution
    if pairs > 1:  # not the "regular" rule (reverse all channels) once there are 2+ pairs
        assert not np.array_equal(RC_RULE_FUNCTIONS["regular"](a), want)
    with pytest.raises(ValueError, match="even number"):
        RC_RULE_FUNCTIONS["pairs"](a[..., :1])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("tracks") / "tracks.h5"
    splits = {split: random_data(6, seed) for seed, split in enumerate(("train", "valid", "test"))}
    write_dataset(path, "tracks", splits, params={"test": True})
    return path, splits


def test_write_validate_and_rc_augmented_batches(dataset):
    path, splits = dataset
    assert validate(path) == {"train": 6, "valid": 6, "test": 6}
    x, y = next(iter(make_dataset(path, "train", batch_size=6, rc_augment="within")))
    x, y = np.asarray(x), {k: np.asarray(v) for k, v in y.items()}
    raw = splits["train"]
    np.testing.assert_array_equal(x[:6], raw["x"])
    np.testing.assert_array_equal(x[6:], raw["x"][:, ::-1, ::-1])
    np.testing.assert_array_equal(y["tracks"][6:], reverse_bins(raw["tracks"]))
    np.testing.assert_array_equal(y["stranded_tracks"][6:],
                                  reverse_and_swap_pairs(raw["stranded_tracks"]))


@pytest.mark.parametrize(("array", "shape", "message"), [
    ("stranded_tracks", (3, 4, 3), "even number"),
    ("stranded_tracks", (3, 5, 2), "bins"),
])
def test_check_split_errors(tmp_path, array, shape, message):
    data = random_data(3, 1)
    data[array] = np.zeros(shape, np.float32)
    with pytest.raises(DatasetError, match=message):
        write_dataset(tmp_path / "bad.h5", "tracks", {"train": data}, params={})
        validate(tmp_path / "bad.h5")


def base_count_model(strand_bases: tuple[int, int]) -> keras.Model:
    """Bin-wise base counts -> softplus rates. tracks: (C+G, A+T) counts (RC-invariant per bin);
    stranded pair k: (count of base strand_bases[0], of strand_bases[1]) scaled by k + 1. With
    (A, T) the model is RC-equivariant by the task's rules; with (A, C) it is not."""
    seq = keras.Input((L, 4), name="sequence")
    counts = keras.layers.AveragePooling1D(BIN, name="freq")(seq)
    tracks = keras.layers.Dense(T, use_bias=False, activation="softplus", name="tracks")
    stranded = keras.layers.Dense(2 * S, use_bias=False, activation="softplus",
                                  name="stranded_tracks")
    model = keras.Model(seq, {"tracks": tracks(counts), "stranded_tracks": stranded(counts)})
    w = np.zeros((4, T), np.float32)
    w[[1, 2], 0], w[[0, 3], 1] = 4.0, 4.0
    tracks.set_weights([w])
    v = np.zeros((4, 2 * S), np.float32)
    for k in range(S):
        v[strand_bases[0], 2 * k] = v[strand_bases[1], 2 * k + 1] = 4.0 * (k + 1)
    stranded.set_weights([v])
    loss, weights = TRACKS.make_loss({})
    model.compile(optimizer="adam", loss=loss, loss_weights=weights)
    return model


def test_evaluate_metrics_and_rc_divergence(dataset):
    path, splits = dataset
    good = TRACKS.evaluate(base_count_model((0, 3)), path, "test", batch_size=4)
    bad = TRACKS.evaluate(base_count_model((0, 1)), path, "test", batch_size=4)
    assert good["n"] == bad["n"] == 6
    # equivariant by the task's rules: only float32 round-off (a 4-term mean, a softplus)
    assert good["rc_divergence"] <= f32_rtol(16) * 10
    assert bad["rc_divergence"] > 0.05
    # the correlations are those of log(1 + counts) per track over every bin of the split
    model = base_count_model((0, 3))
    pred = model.predict(splits["test"]["x"].astype(np.float32), verbose=0)
    true = np.concatenate([splits["test"]["tracks"], splits["test"]["stranded_tracks"]], -1)
    pred = np.concatenate([pred["tracks"], pred["stranded_tracks"]], -1)
    for j in range(true.shape[-1]):
        t, p = np.log1p(true[..., j]).ravel(), np.log1p(pred[..., j]).ravel()
        assert good["pearson_per_track"][j] == pytest.approx(stats.pearsonr(t, p)[0], abs=1e-5)
        assert good["spearman_per_track"][j] == pytest.approx(stats.spearmanr(t, p)[0],
                                                              abs=1e-5)
    assert good["pearson"] == pytest.approx(np.mean(good["pearson_per_track"]))


def test_track_metrics_perfect_and_constant_tracks():
    rng = np.random.default_rng(3)
    true = rng.poisson(3.0, (5, 4, 3)).astype(float)
    pred = true.copy()
    pred[..., 2] = 1.0  # a constant prediction has no correlation: excluded and counted
    out = track_metrics(true, pred)
    assert out["pearson"] == pytest.approx(1.0) and out["spearman"] == pytest.approx(1.0)
    assert out["n_tracks_excluded"] == 1 and np.isnan(out["pearson_per_track"][2])


def test_poisson_loss_is_the_poisson_nll():
    model = base_count_model((0, 3))
    data = random_data(4, 9)
    x = data["x"].astype(np.float32)
    pred = model.predict(x, verbose=0)
    got = model.evaluate(x, {k: data[k] for k in ("tracks", "stranded_tracks")}, verbose=0,
                         return_dict=True)
    want = sum(np.mean(pred[k] - data[k] * np.log(pred[k] + keras.config.epsilon()))
               for k in ("tracks", "stranded_tracks"))
    assert_f32_close(got["loss"], want, rtol=f32_rtol(64, 16))


def test_model_hparams_come_from_the_arrays():
    hp = TRACKS.model_hparams({}, 20, 2, {"x": (5, 20, 4), "tracks": (5, 4, 3),
                                          "stranded_tracks": (5, 4, 6)})
    assert hp == {"input_length": 16, "num_tracks": 3, "num_stranded": 3, "output_bins": 4}

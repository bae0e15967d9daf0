"""tf.data pipelines: determinism, shuffling, RC augmentation, jitter, upsampling, errors.

The pipeline moves, crops, flips and casts stored values (one-hot bases, integer counts, float32
controls), so those comparisons are exact; only the log counts it computes (log1p of an exactly
summed integer count) carry the few-ulp error of log1p and get a float32 tolerance.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import assert_f32_close, f32_rtol

from benchmark_rc.data.hdf5 import write_dataset
from benchmark_rc.data.pipeline import make_dataset, upsample_stride, upsampling_plan
from benchmark_rc.errors import UserError
from benchmark_rc.sequence import reverse_complement

MARGIN = 5
# log1p is accurate to a few ulp relative to its value; the summed counts are exact integers in
# float32, so no floor: log1p(0) = 0 exactly
LOG1P_RTOL = f32_rtol(4)


def _one_hot(rng, n, length):
    return np.eye(4, dtype=np.uint8)[rng.integers(0, 4, size=(n, length))]


@pytest.fixture(scope="module")
def classification():
    rng = np.random.default_rng(0)
    n = 53
    return {"x": _one_hot(rng, n, 30), "y": np.arange(n * 2, dtype=np.float32).reshape(n, 2)}


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(1)
    y = np.zeros((130, 1), dtype=np.float32)
    y[rng.choice(130, size=17, replace=False)] = 1
    return {"x": _one_hot(rng, 130, 12), "y": y}


@pytest.fixture(scope="module")
def profile_file(tmp_path_factory):
    """Profile split with windows widened by MARGIN: x 24 + 2J, targets 14 + 2J."""
    rng = np.random.default_rng(2)
    n = 9
    splits = {}
    for split in ("train", "valid", "test"):
        control = rng.poisson(3.0, size=(n, 14 + 2 * MARGIN, 2)).astype(np.float32)
        splits[split] = {
            "x": _one_hot(rng, n, 24 + 2 * MARGIN),
            "profile": rng.poisson(2.0, size=(n, 14 + 2 * MARGIN, 2)).astype(np.float32),
            "control": control,
            "control_logcount": np.log1p(control[:, MARGIN:-MARGIN, 0].sum(1, keepdims=True)),
        }
    path = tmp_path_factory.mktemp("pipeline") / "profile.h5"
    write_dataset(path, "profile", splits, params={}, attrs={"jitter_margin": MARGIN})
    return path, splits


def _numpy(ds, batches=None):
    items = ds if batches is None else ds.take(batches)
    out = []
    for item in items:
        out.append(_to_numpy(item))
    return out


def _to_numpy(item):
    if isinstance(item, dict):
        return {k: _to_numpy(v) for k, v in item.items()}
    if isinstance(item, tuple):
        return tuple(_to_numpy(v) for v in item)
    return item.numpy()


def _flat_bytes(batches):
    def flat(item):
        if isinstance(item, dict):
            return b"".join(flat(item[k]) for k in sorted(item))
        if isinstance(item, tuple):
            return b"".join(flat(v) for v in item)
        return item.tobytes()
    return b"".join(flat(b) for b in batches)


def _rows(x, data):
    """Row index of each example of x (B, L, 4) in data["x"]."""
    table = {row.tobytes(): i for i, row in enumerate(data["x"].astype(np.float32))}
    return [table[row.tobytes()] for row in x]


def test_plain_batches_in_file_order(classification, tmp_path):
    batches = _numpy(make_dataset(classification, "train", batch_size=10))
    path = tmp_path / "c.h5"
    write_dataset(path, "classification", {s: classification for s in ("train", "valid", "test")},
                  params={})
    assert _flat_bytes(_numpy(make_dataset(path, "test", batch_size=10))) == _flat_bytes(batches)
    int_labels = {"x": classification["x"], "y": classification["y"].astype(np.int64)}
    (x, y), = _numpy(make_dataset(int_labels, "train", batch_size=64))
    assert x.dtype == y.dtype == np.float32
    assert [len(b[0]) for b in batches] == [10] * 5 + [3]
    x = np.concatenate([b[0] for b in batches])
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, classification["x"])
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), classification["y"])


def test_shuffling_is_seeded_and_changes_per_epoch(classification):
    ds = make_dataset(classification, "train", batch_size=8, shuffle=True, seed=5)
    epoch1, epoch2 = _numpy(ds), _numpy(ds)
    order1 = _rows(np.concatenate([b[0] for b in epoch1]), classification)
    order2 = _rows(np.concatenate([b[0] for b in epoch2]), classification)
    assert sorted(order1) == sorted(order2) == list(range(53))
    assert order1 != order2 and order1 != list(range(53))
    y = np.concatenate([b[1] for b in epoch1])
    np.testing.assert_array_equal(y, classification["y"][order1])
    again = make_dataset(classification, "train", batch_size=8, shuffle=True, seed=5)
    assert _flat_bytes(_numpy(again)) == _flat_bytes(epoch1)
    other = make_dataset(classification, "train", batch_size=8, shuffle=True, seed=6)
    assert _flat_bytes(_numpy(other)) != _flat_bytes(epoch1)
    # repeat=True: endless, a new order on each pass.
    endless = _numpy(make_dataset(classification, "train", batch_size=53, shuffle=True,
                                  seed=5, repeat=True), batches=3)
    orders = [_rows(b[0], classification) for b in endless]
    assert all(sorted(o) == list(range(53)) for o in orders) and orders[0] != orders[1]


def test_rc_within_batch(classification):
    batches = _numpy(make_dataset(classification, "train", batch_size=10, shuffle=True,
                                  seed=1, rc_augment="within"))
    assert [len(b[0]) for b in batches] == [20] * 5 + [6]
    for x, y in batches:
        half = len(x) // 2
        np.testing.assert_array_equal(x[half:], reverse_complement(x[:half]))
        np.testing.assert_array_equal(y[half:], y[:half])
        np.testing.assert_array_equal(y[:half], classification["y"][_rows(x[:half],
                                                                         classification)])


def test_rc_random_strand(classification):
    ds = make_dataset(classification, "train", batch_size=53, seed=3, rc_augment="random")
    (x, y), = _numpy(ds)
    forward = classification["x"].astype(np.float32)
    is_fwd = (x == forward).all(axis=(1, 2))
    is_rc = (x == reverse_complement(forward)).all(axis=(1, 2))
    assert (is_fwd | is_rc).all() and 10 < is_rc.sum() < 43
    np.testing.assert_array_equal(y, classification["y"])
    (x_again, _), = _numpy(make_dataset(classification, "train", batch_size=53, seed=3,
                                        rc_augment="random"))
    np.testing.assert_array_equal(x, x_again)
    (x_other, _), = _numpy(make_dataset(classification, "train", batch_size=53, seed=4,
                                        rc_augment="random"))
    assert not np.array_equal(x, x_other)


def test_profile_centre_crop_and_within_rc(profile_file):
    path, splits = profile_file
    data = splits["valid"]
    (inputs, targets), = _numpy(make_dataset(path, "valid", batch_size=9, rc_augment="within"))
    crop = slice(MARGIN, -MARGIN)
    fwd = slice(0, 9)
    np.testing.assert_array_equal(inputs["sequence"][fwd], data["x"][:, crop])
    np.testing.assert_array_equal(targets["profile"][fwd], data["profile"][:, crop])
    np.testing.assert_array_equal(inputs["control"][fwd], data["control"][:, crop])
    np.testing.assert_array_equal(inputs["control_logcount"][fwd], data["control_logcount"])
    assert_f32_close(targets["counts"][fwd],
                     np.log1p(data["profile"][:, crop].sum(axis=1, dtype=np.float64)),
                     rtol=LOG1P_RTOL, floor=0.0)
    rc = slice(9, 18)
    np.testing.assert_array_equal(inputs["sequence"][rc], reverse_complement(data["x"][:, crop]))
    # Profile: positions reversed and strands swapped; control: length only; counts swapped.
    np.testing.assert_array_equal(targets["profile"][rc], data["profile"][:, crop][:, ::-1, ::-1])
    np.testing.assert_array_equal(inputs["control"][rc], data["control"][:, crop][:, ::-1, :])
    np.testing.assert_array_equal(inputs["control_logcount"][rc], data["control_logcount"])
    # (not exact: TF's vectorised log1p may differ in the last bit between batch rows, each
    # within a few ulp of the true value)
    assert_f32_close(targets["counts"][rc], targets["counts"][fwd][:, ::-1], rtol=2 * LOG1P_RTOL,
                     floor=0.0)
    assert inputs["sequence"].shape == (18, 24, 4) and targets["profile"].shape == (18, 14, 2)


def test_profile_jitter_and_random_strand(profile_file):
    path, splits = profile_file
    data = splits["train"]
    ds = make_dataset(path, "train", batch_size=9, shuffle=False, seed=2, jitter=MARGIN,
                      rc_augment="random", repeat=True)
    shifts, flips = set(), set()
    for inputs, targets in _numpy(ds, batches=12):
        for i in range(9):
            seq = inputs["sequence"][i]
            found = None
            for flip, offset in itertools.product((False, True), range(2 * MARGIN + 1)):
                x = data["x"][i, offset:offset + 24]
                if np.array_equal(seq, reverse_complement(x) if flip else x):
                    found = (flip, offset)
                    break
            assert found is not None
            flip, offset = found
            profile = data["profile"][i, offset:offset + 14]
            control = data["control"][i, offset:offset + 14]
            np.testing.assert_array_equal(targets["profile"][i],
                                          profile[::-1, ::-1] if flip else profile)
            np.testing.assert_array_equal(inputs["control"][i],
                                          control[::-1] if flip else control)
            assert_f32_close(inputs["control_logcount"][i],
                             np.log1p(control[:, :1].sum(axis=0, dtype=np.float64)),
                             rtol=LOG1P_RTOL, floor=0.0)
            shifts.add(offset - MARGIN)
            flips.add(flip)
    assert flips == {False, True}
    assert min(shifts) < 0 < max(shifts) and max(abs(s) for s in shifts) <= MARGIN
    first = _flat_bytes(_numpy(make_dataset(path, "train", batch_size=9, seed=2, jitter=3,
                                            rc_augment="within", repeat=True), batches=3))
    again = _flat_bytes(_numpy(make_dataset(path, "train", batch_size=9, seed=2, jitter=3,
                                            rc_augment="within", repeat=True), batches=3))
    other = _flat_bytes(_numpy(make_dataset(path, "train", batch_size=9, seed=9, jitter=3,
                                            rc_augment="within", repeat=True), batches=3))
    assert first == again != other


def test_upsampling_stream(binary):
    fraction, batch = 0.2, 10
    y = binary["y"][:, 0]
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    stride = upsample_stride(len(pos), len(neg), fraction)
    assert stride == int(np.ceil(len(neg) * 0.25 / len(pos))) == 2
    plan = upsampling_plan(binary["y"], fraction, batch)
    assert plan["pass_sizes"] == [17 + 57, 17 + 56]
    assert plan["positive_fraction"] == pytest.approx(2 * 17 / (74 + 73))
    ds = make_dataset(binary, "train", batch_size=batch, upsample=fraction, seed=4,
                      rc_augment="within")
    n_batches = 2 * sum(plan["pass_sizes"]) // batch + 1
    batches = _numpy(ds, batches=n_batches)
    assert all(len(b[0]) == 2 * batch for b in batches)
    for x, labels in batches:
        np.testing.assert_array_equal(x[batch:], reverse_complement(x[:batch]))
        np.testing.assert_array_equal(labels[batch:], labels[:batch])
    rows = np.concatenate([_rows(b[0][:batch], binary) for b in batches])
    start = 0
    for k in range(4):  # passes rotate the negative offset: 0, 1, 0, 1
        size = plan["pass_sizes"][k % stride]
        chunk = rows[start:start + size]
        start += size
        assert sorted(chunk[np.isin(chunk, pos)]) == sorted(pos)
        np.testing.assert_array_equal(np.sort(chunk[np.isin(chunk, neg)]),
                                      neg[k % stride::stride])
        is_pos = np.isin(chunk, pos)
        assert is_pos.mean() == pytest.approx(17 / size)
        gaps = np.diff(np.flatnonzero(is_pos))
        assert gaps.max() - gaps.min() <= 1  # evenly interleaved
        if k == 0:
            first_pass = chunk
        elif k == 2:
            assert not np.array_equal(first_pass, chunk)  # reshuffled on every pass
    again = _numpy(make_dataset(binary, "train", batch_size=batch, upsample=fraction, seed=4,
                                rc_augment="within"), batches=n_batches)
    assert _flat_bytes(again) == _flat_bytes(batches)


def test_model_fit_consumes_dataset(binary):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12, 4)), keras.layers.Conv1D(2, 3),
                              keras.layers.GlobalMaxPooling1D(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    plan = upsampling_plan(binary["y"], 0.2, 16)
    ds = make_dataset(binary, "train", batch_size=16, upsample=0.2, rc_augment="within")
    history = model.fit(ds, steps_per_epoch=plan["steps_per_pass"], epochs=2, verbose=0,
                        shuffle=False)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"rc_augment": "both"}, "rc_augment must be one of"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"split": "training"}, "split must be one of"),
    ({"jitter": 2}, "jitter applies to profile datasets only"),
    ({"upsample": 0.2}, "upsampling needs one binary task"),
    ({"upsample": 1.5, "source": "binary"}, r"upsample fraction must be in \(0, 1\)"),
    ({"source": "missing"}, "no x array"),
    ({"source": "short_y"}, "/y has 3 rows, /x has 53"),
])
def test_validation_errors(classification, binary, kwargs, message):
    sources = {"binary": binary, "missing": {"y": classification["y"]},
               "short_y": {"x": classification["x"], "y": classification["y"][:3]}}
    kwargs = dict(kwargs)
    source = sources.get(kwargs.pop("source", None), classification)
    args = {"split": kwargs.pop("split", "train"), "batch_size": kwargs.pop("batch_size", 4)}
    with pytest.raises(UserError, match=message):
        make_dataset(source, **args, **kwargs)


def test_validation_errors_with_files(profile_file, tmp_path):
    path, _ = profile_file
    with pytest.raises(UserError, match="jitter 6 must be between 0 and the stored jitter margin"):
        make_dataset(path, "train", batch_size=4, jitter=MARGIN + 1)
    with pytest.raises(UserError, match="upsampling applies to binary classification"):
        make_dataset(path, "train", batch_size=4, upsample=0.2)
    with pytest.raises(UserError, match="no such file"):
        make_dataset(tmp_path / "absent.h5", "train", batch_size=4)
    _, splits = profile_file
    train = splits["train"]
    bad_control = {**train, "control": train["control"][:, 1:]}
    with pytest.raises(UserError, match="control has length 23, /profile has 24"):
        make_dataset(bad_control, "train", batch_size=4, jitter_margin=MARGIN)
    bad_logcount = {**train, "control_logcount": train["control_logcount"][:, 0]}
    with pytest.raises(UserError, match=r"control_logcount has shape \(9,\), expected"):
        make_dataset(bad_logcount, "train", batch_size=4, jitter_margin=MARGIN)
    off_centre = {**train, "x": train["x"][:, 1:]}
    with pytest.raises(UserError, match="length 33 and .profile length 24 do not centre"):
        make_dataset(off_centre, "train", batch_size=4, jitter_margin=MARGIN)
    binary_y = np.array([[0.0], [1.0], [0.5]], dtype=np.float32)
    with pytest.raises(UserError, match="needs 0/1 labels"):
        upsampling_plan(binary_y, 0.2, 4)

"""The HDF5 dataset schema: round trip, validation of broken files, atomic writes.

Round trips compare with assert_array_equal: HDF5 stores and returns the very bytes written
(uint8 one-hot, float32 arrays), so any difference is a bug, not round-off.
"""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from benchmark_rc.data.hdf5 import (
    SCHEMA_VERSION,
    DatasetWriter,
    read_attrs,
    read_motifs,
    read_split,
    validate,
    write_dataset,
)
from benchmark_rc.errors import DatasetError, UserError


def _one_hot(rng, n, length):
    x = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, size=(n, length))]
    x[0, 3] = 0  # an N base: all-zero rows are allowed
    return x


def _classification_splits(rng):
    splits = {}
    for split, n in (("train", 7), ("valid", 3), ("test", 2)):
        splits[split] = {
            "x": _one_hot(rng, n, 20),
            "y": rng.integers(0, 2, size=(n, 3)).astype(np.float32),
            "motifs": {"seq": [0, n - 1], "start": [2, 5], "end": [8, 11],
                       "name": ["GATA_known6", "ELF1_known2"], "strand": [1, -1]},
            "coords": {"chrom": ["chr1"] * n, "start": np.arange(n) * 100,
                       "end": np.arange(n) * 100 + 20, "strand": [1] * n},
        }
    return splits


@pytest.fixture()
def good_file(tmp_path):
    path = tmp_path / "good.h5"
    write_dataset(path, "classification", _classification_splits(np.random.default_rng(0)),
                  params={"seed": 3, "motifs": ["GATA_known6"], "np": np.int64(4)})
    return path


@pytest.fixture()
def profile_file(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "profile.h5"
    splits = {s: {"x": _one_hot(rng, 4, 30),
                  "profile": rng.poisson(1.0, size=(4, 16, 2)).astype(np.float32),
                  "control": rng.random((4, 16, 2)).astype(np.float32),
                  "control_logcount": rng.random((4, 1)).astype(np.float32)}
              for s in ("train", "valid", "test")}
    write_dataset(path, "profile", splits, params={"kind": "profile"},
                  attrs={"jitter_margin": 3})
    return path, splits


def test_round_trip_classification(good_file):
    splits = _classification_splits(np.random.default_rng(0))
    assert validate(good_file) == {"train": 7, "valid": 3, "test": 2}
    for split, content in splits.items():
        data = read_split(good_file, split)
        np.testing.assert_array_equal(data["x"], content["x"])
        np.testing.assert_array_equal(data["y"], content["y"])
        assert data["x"].dtype == np.uint8 and data["y"].dtype == np.float32
        assert list(data["coords"]["chrom"]) == content["coords"]["chrom"]
        motifs = read_motifs(good_file, split)
        assert list(motifs.columns) == ["seq", "start", "end", "name", "strand"]
        assert motifs["name"].tolist() == content["motifs"]["name"]
        assert motifs["strand"].tolist() == [1, -1]
    attrs = read_attrs(good_file)
    assert attrs["schema_version"] == SCHEMA_VERSION
    assert attrs["task"] == "classification" and attrs["alphabet"] == "ACGT"
    assert attrs["params"] == {"seed": 3, "motifs": ["GATA_known6"], "np": 4}
    only_x = read_split(good_file, "train", keys=("x",))
    assert set(only_x) == {"x"}


def test_round_trip_profile_and_chunked_append(profile_file, tmp_path):
    path, splits = profile_file
    assert validate(path) == {"train": 4, "valid": 4, "test": 4}
    assert read_attrs(path)["jitter_margin"] == 3
    for split, content in splits.items():
        data = read_split(path, split)
        for key, value in content.items():
            np.testing.assert_array_equal(data[key], value)
    # Appending in pieces gives the concatenation; a split never appended exists with 0 rows.
    out = tmp_path / "pieces.h5"
    x = _one_hot(np.random.default_rng(2), 10, 12)
    y = np.arange(10, dtype=np.float32)[:, None]
    with DatasetWriter(out, "classification", params={}, chunk_rows=4) as writer:
        writer.append("train", x=x[:3], y=y[:3])
        writer.append("train", x=x[3:], y=y[3:])
        writer.append("valid", x=x[:1], y=y[:1])
    data = read_split(out, "train")
    np.testing.assert_array_equal(data["x"], x)
    np.testing.assert_array_equal(data["y"], y)
    assert validate(out) == {"train": 10, "valid": 1, "test": 0}
    assert read_split(out, "test")["x"].shape == (0, 12, 4)


def _set(name, value):
    def mutate(f):
        del f[name]
        f[name] = value
    return mutate


def _attr(name, value):
    def mutate(f):
        f.attrs[name] = value
    return mutate


def _delete(name):
    def mutate(f):
        del f[name]
    return mutate


def _poke(name, index, value):
    def mutate(f):
        data = f[name][()]
        data[index] = value
        del f[name]
        f[name] = data
    return mutate


X = np.eye(4, dtype=np.uint8)[np.zeros((7, 20), dtype=int)]

BROKEN = {
    "schema version": (_attr("schema_version", 99), "schema_version"),
    "task": (_attr("task", "regression"), "attribute task"),
    "alphabet": (_attr("alphabet", "ACGU"), "alphabet"),
    "missing split": (_delete("valid"), "split /valid is missing"),
    "missing y": (_delete("train/y"), "/train/y is missing"),
    "x dtype": (_set("train/x", X.astype(np.float32)), "dtype float32, expected uint8"),
    "x channels": (_set("train/x", np.zeros((7, 20, 5), np.uint8)), "has shape (7, 20, 5)"),
    "y ndim": (_set("train/y", np.zeros(7, np.float32)), "/train/y has shape (7,)"),
    "row counts": (_set("train/y", np.zeros((6, 3), np.float32)), "has 6 rows, /x has 7"),
    "not one-hot value": (_poke("train/x", (2, 4, 1), 2), "row 2, position 4"),
    "two bases": (_poke("train/x", (3, 5), [1, 1, 0, 0]), "more than one base"),
    "nan label": (_poke("train/y", (1, 0), np.nan), "/train/y row 1 has a NaN"),
    "motif start >= end": (_poke("train/motifs/end", 0, 2), "start 2 >= end 2"),
    "motif strand": (_poke("train/motifs/strand", 1, 0), "strand 0 is not +1 or -1"),
    "motif seq": (_poke("train/motifs/seq", 1, 7), "outside the 7 sequences"),
    "motif beyond end": (_poke("train/motifs/end", 1, 21), "outside the 7 sequences of length 20"),
    "motif column": (_delete("test/motifs/name"), "lacks column(s) name"),
    "coords rows": (_set("valid/coords/start", np.arange(2)), "coords columns must be 1-D"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_validate_rejects_broken_file(good_file, tmp_path, case):
    mutate, message = BROKEN[case]
    broken = tmp_path / f"broken_{case.replace(' ', '_')}.h5"
    shutil.copy(good_file, broken)
    with h5py.File(broken, "a") as f:
        mutate(f)
    with pytest.raises(DatasetError) as err:
        validate(broken)
    assert message in str(err.value)
    assert str(broken) in str(err.value)  # the message names the file


def test_validate_rejects_profile_length_mismatch(profile_file, tmp_path):
    path, _ = profile_file
    broken = tmp_path / "broken_profile.h5"
    shutil.copy(path, broken)
    with h5py.File(broken, "a") as f:
        _set("test/control", np.zeros((4, 15, 2), np.float32))(f)
    with pytest.raises(DatasetError, match="control has length 15, /profile has 16"):
        validate(broken)


@pytest.mark.parametrize("edit, message", [
    (lambda f: _set("valid/x", np.zeros((4, 31, 4), np.uint8))(f), "do not centre the profile"),
    (lambda f: _set("valid/x", np.zeros((4, 14, 4), np.uint8))(f), "do not centre the profile"),
    (lambda f: f.attrs.__setitem__("jitter_margin", 8), "jitter_margin=8 does not fit"),
    (lambda f: f.attrs.__setitem__("jitter_margin", -1), "jitter_margin=-1 does not fit"),
])
def test_validate_rejects_inconsistent_profile_windows(profile_file, tmp_path, edit, message):
    path, _ = profile_file
    assert validate(path)["valid"] == 4  # the fixture itself is consistent (30 - 16 even, 16 > 6)
    broken = tmp_path / "broken_windows.h5"
    shutil.copy(path, broken)
    with h5py.File(broken, "a") as f:
        edit(f)
    with pytest.raises(DatasetError, match=message):
        validate(broken)


def test_unreadable_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        validate(tmp_path / "absent.h5")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(DatasetError, match="not a readable HDF5 file"):
        read_split(text, "train")


def test_atomic_write_leaves_nothing_on_failure(tmp_path, good_file):
    out = tmp_path / "new.h5"
    with pytest.raises(RuntimeError, match="boom"):
        with DatasetWriter(out, "classification", params={}) as writer:
            writer.append("train", x=X, y=np.zeros((7, 3), np.float32))
            raise RuntimeError("boom")
    assert not out.exists()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert before == ["good.h5"]
    # A failing rewrite of an existing file keeps the previous complete version.
    original = good_file.read_bytes()
    with pytest.raises(ValueError, match="different row counts"):
        with DatasetWriter(good_file, "classification", params={}) as writer:
            writer.append("train", x=X, y=np.zeros((6, 3), np.float32))
    assert good_file.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.h5"]


def test_failure_while_finishing_publishes_nothing(tmp_path, monkeypatch):
    """An error in the final bookkeeping (after the with-block body succeeded) must not rename
    the half-finished temporary file onto the destination."""
    out = tmp_path / "late.h5"

    def broken_finish(self):
        raise OSError("disk full")

    monkeypatch.setattr(DatasetWriter, "_finish", broken_finish)
    with pytest.raises(OSError, match="disk full"):
        with DatasetWriter(out, "classification", params={}) as writer:
            writer.append("train", x=X, y=np.zeros((7, 3), np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_written_files_get_the_umask_mode_not_owner_only(tmp_path):
    """Atomic writes go through mkstemp (mode 0600); the published file must have the mode a
    plain open() gives, so datasets can be shared (e.g. a group-readable data directory)."""
    import os

    from benchmark_rc.fileio import atomic_write_text

    old = os.umask(0o022)
    try:
        out = tmp_path / "shared.h5"
        with DatasetWriter(out, "classification", params={}) as writer:
            writer.append("train", x=X, y=np.zeros((7, 3), np.float32))
        atomic_write_text(tmp_path / "note.txt", "x")
        os.umask(0o077)
        atomic_write_text(tmp_path / "private.txt", "x")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "note.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "private.txt").stat().st_mode & 0o777 == 0o600


def test_failure_while_opening_leaves_no_temporary_file(tmp_path, monkeypatch):
    import benchmark_rc.data.hdf5 as hdf5_module

    def refuse(*args, **kwargs):
        raise OSError("cannot create")

    monkeypatch.setattr(hdf5_module.h5py, "File", refuse)
    with pytest.raises(OSError, match="cannot create"):
        with DatasetWriter(tmp_path / "never.h5", "classification", params={}):
            pass
    assert list(tmp_path.iterdir()) == []

"""The benchmark_rc HDF5 dataset format: writer, reader and validator.

One file per dataset, one group per split (``/train``, ``/valid``, ``/test``), each with

* ``x``                uint8   (N, L, 4)   one-hot ACGT, all-zero rows for N;
* ``y``                float32 (N, T)      labels (task ``classification``);
* ``profile``          float32 (N, P, 2)   target counts, (+, -) strands (task ``profile``);
* ``control``          float32 (N, P, 2)   strand-collapsed control: (raw, smoothed);
* ``control_logcount`` float32 (N, 1)      log(1 + total control counts);
* ``coords/{chrom,start,end,strand}``      genomic windows (optional; strand int8 +1 / -1);
* ``motifs/{seq,start,end,name,strand}``   embedded motif instances of simulated data (optional).

File attributes: ``schema_version``, ``task``, ``alphabet`` = "ACGT" and ``params`` (the JSON of
every parameter that generated the file). Profile files may store windows widened by
``attrs["jitter_margin"]`` = J bases on each side (x of length 1346 + 2J, profile/control of
1000 + 2J); the input pipeline crops them. Datasets are chunked by rows; files are written to a
temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from benchmark_rc.errors import DatasetError
from benchmark_rc.fileio import atomic_path, json_default
from benchmark_rc.tasks import TASKS, Task, get_task

SCHEMA_VERSION = 1
SPLITS = ("train", "valid", "test")
ALPHABET = "ACGT"

_STR = h5py.string_dtype("utf-8")
TABLE_SPECS: dict[str, dict[str, Any]] = {
    "coords": {"chrom": _STR, "start": np.int64, "end": np.int64, "strand": np.int8},
    "motifs": {"seq": np.int64, "start": np.int64, "end": np.int64, "name": _STR, "strand": np.int8},
}


class DatasetWriter:
    """Stream arrays into a new dataset file, split by split, chunk by chunk.

    Use as a context manager; the file appears at ``path`` only when the block exits without an
    exception. Every split listed in ``SPLITS`` exists in the result (possibly with 0 rows).

    >>> with DatasetWriter("sim.h5", task="classification", params={"seed": 1}) as w:
    ...     w.append("train", x=x_train, y=y_train)
    ...     w.append_table("train", "motifs", seq=..., start=..., end=..., name=..., strand=...)
    """

    def __init__(self, path: str | os.PathLike, task: str, params: Mapping[str, Any],
                 attrs: Mapping[str, Any] | None = None, chunk_rows: int = 256):
        if task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
        self.path = Path(path)
        self.task = task
        self._arrays = TASKS[task].arrays
        self.params = dict(params)
        self.attrs = dict(attrs or {})
        self.chunk_rows = chunk_rows
        self._atomic = None
        self._file: h5py.File | None = None
        self._shapes: dict[str, tuple[int, ...]] = {}

    def __enter__(self) -> DatasetWriter:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            self._file = h5py.File(tmp, "w")
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        f = self._file
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["task"] = self.task
        f.attrs["alphabet"] = ALPHABET
        f.attrs["params"] = json.dumps(self.params, sort_keys=True, default=json_default)
        for key, value in self.attrs.items():
            f.attrs[key] = value
        for split in SPLITS:
            f.require_group(split)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._file is not None
        failed = None
        if exc_type is None:
            try:
                self._finish()
            except BaseException as err:  # a failing finish must not publish the file either
                failed = err
                exc_type, exc, tb = type(err), err, err.__traceback__
        self._file.close()
        self._atomic.__exit__(exc_type, exc, tb)  # renames on success, else removes the temp
        if failed is not None:
            raise failed

    def append(self, split: str, **arrays: np.ndarray) -> None:
        """Append rows to the arrays of ``split`` (all given arrays must have the same N)."""
        f = self._require_open()
        _check_split(split)
        rows = {len(a) for a in arrays.values()}
        if len(rows) > 1:
            raise ValueError(f"arrays appended to {split} have different row counts: {rows}")
        for name, array in arrays.items():
            if name not in self._arrays:
                raise ValueError(f"task {self.task} has no array {name!r} "
                                 f"(arrays: {', '.join(self._arrays)})")
            spec = self._arrays[name]
            array = np.asarray(array)
            if array.ndim != spec.ndim:
                raise ValueError(f"{name} must have {spec.ndim} dims, got shape {array.shape}")
            tail = tuple(array.shape[1:])
            if self._shapes.setdefault(name, tail) != tail:
                raise ValueError(f"{name}: row shape {tail} differs from earlier {self._shapes[name]}")
            _append(f[split], name, array.astype(spec.dtype, copy=False), self.chunk_rows)

    def append_table(self, split: str, table: str, **columns: Any) -> None:
        """Append rows to the ``coords`` or ``motifs`` table of ``split``."""
        f = self._require_open()
        _check_split(split)
        spec = TABLE_SPECS[table]
        if set(columns) != set(spec):
            raise ValueError(f"{table} needs columns {sorted(spec)}, got {sorted(columns)}")
        group = f[split].require_group(table)
        for name, dtype in spec.items():
            values = columns[name]
            array = (np.asarray([str(v) for v in values], dtype=object) if dtype is _STR
                     else np.asarray(values, dtype=dtype))
            _append(group, name, array, max(self.chunk_rows, 1024), dtype=dtype)

    def _require_open(self) -> h5py.File:
        if self._file is None:
            raise RuntimeError("DatasetWriter must be used as a context manager")
        return self._file

    def _finish(self) -> None:
        f = self._file
        # params / attrs may be updated while the writer is open (e.g. counts known at the end)
        f.attrs["params"] = json.dumps(self.params, sort_keys=True, default=json_default)
        for key, value in self.attrs.items():
            f.attrs[key] = value
        for split in SPLITS:
            for name, tail in self._shapes.items():
                if name not in f[split]:
                    dtype = self._arrays[name].dtype
                    f[split].create_dataset(name, shape=(0, *tail), maxshape=(None, *tail),
                                            dtype=dtype, chunks=(self.chunk_rows, *tail))
            for table, spec in TABLE_SPECS.items():
                if any(table in f[s] for s in SPLITS) and table not in f[split]:
                    group = f[split].create_group(table)
                    for name, dtype in spec.items():
                        group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype,
                                             chunks=(1024,))


def _append(group: h5py.Group, name: str, array: np.ndarray, chunk_rows: int,
            dtype: Any = None) -> None:
    if name not in group:
        tail = array.shape[1:]
        group.create_dataset(name, shape=(0, *tail), maxshape=(None, *tail),
                             dtype=dtype if dtype is not None else array.dtype,
                             chunks=(chunk_rows, *tail))
    ds = group[name]
    start = ds.shape[0]
    ds.resize(start + len(array), axis=0)
    if len(array):
        ds[start:] = array


def write_dataset(path: str | os.PathLike, task: str, splits: Mapping[str, Mapping[str, Any]],
                  params: Mapping[str, Any], attrs: Mapping[str, Any] | None = None) -> Path:
    """Write a whole dataset at once. ``splits[split]`` maps array names (and the table names
    ``coords`` / ``motifs``, each a mapping of columns) to values."""
    with DatasetWriter(path, task, params, attrs) as writer:
        for split, content in splits.items():
            arrays = {k: v for k, v in content.items() if k not in TABLE_SPECS}
            writer.append(split, **arrays)
            for table in TABLE_SPECS:
                if table in content:
                    writer.append_table(split, table, **content[table])
    return Path(path)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")



# ----------------------------------------------------------------------------------------------
# Reading


def _open(path: str | os.PathLike) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DatasetError(f"{path}: not a readable HDF5 file ({err})") from None


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """File attributes, with ``params`` decoded from JSON."""
    with _open(path) as f:
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
    if "params" in attrs:
        attrs["params"] = json.loads(attrs["params"])
    return attrs


def read_split(path: str | os.PathLike, split: str,
               keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Load a split into memory: arrays as numpy, tables as dicts of 1-D arrays (str decoded)."""
    _check_split(split)
    with _open(path) as f:
        if split not in f:
            raise DatasetError(f"{path}: split /{split} is missing")
        group = f[split]
        out: dict[str, Any] = {}
        for name in keys or tuple(group.keys()):
            if name not in group:
                raise DatasetError(f"{path}: /{split}/{name} is missing")
            item = group[name]
            if isinstance(item, h5py.Group):
                out[name] = {c: _read_column(item[c]) for c in item}
            else:
                out[name] = item[()]
    return out


def _read_column(ds: h5py.Dataset) -> np.ndarray:
    if h5py.check_string_dtype(ds.dtype) is not None:
        return ds.asstr()[()]
    return ds[()]


def read_motifs(path: str | os.PathLike, split: str):
    """The motif-instance table of a split as a pandas DataFrame (seq, start, end, name, strand)."""
    import pandas as pd

    table = read_split(path, split, keys=("motifs",))["motifs"]
    return pd.DataFrame({c: table[c] for c in TABLE_SPECS["motifs"]})


# ----------------------------------------------------------------------------------------------
# Validation


def validate(path: str | os.PathLike, chunk_rows: int = 4096) -> dict[str, int]:
    """Check a file against the schema; raise :class:`DatasetError` naming what is wrong.

    Returns the number of rows per split. Checks: attributes, every split present, the arrays the
    task needs with the right dtype and shape, equal row counts, one-hot rows (0/1 values, at most
    one 1 per row; all-zero N rows allowed), finite targets, profile windows centred in the
    sequence windows and wider than twice ``jitter_margin``, and the coords / motifs tables.
    """
    path = Path(path)
    with _open(path) as f:
        version = f.attrs.get("schema_version")
        if version != SCHEMA_VERSION:
            raise DatasetError(f"{path}: attribute schema_version is {version!r}, "
                               f"expected {SCHEMA_VERSION}")
        task = get_task(f.attrs.get("task"), f"{path}: attribute task")
        if f.attrs.get("alphabet") != ALPHABET:
            raise DatasetError(f"{path}: attribute alphabet is {f.attrs.get('alphabet')!r}, "
                               f"expected {ALPHABET!r}")
        counts = {}
        for split in SPLITS:
            if split not in f:
                raise DatasetError(f"{path}: split /{split} is missing (need {', '.join(SPLITS)})")
            counts[split] = _validate_split(path, f[split], task, chunk_rows,
                                            int(f.attrs.get("jitter_margin", 0)))
    return counts


def _validate_split(path: Path, group: h5py.Group, task: Task, chunk_rows: int,
                    jitter_margin: int = 0) -> int:
    where = f"{path}: /{group.name.strip('/')}"
    n_rows = None
    for name, spec in task.arrays.items():
        if name not in group:
            raise DatasetError(f"{where}/{name} is missing (task {task.name} needs "
                               f"{', '.join(task.arrays)})")
        ds = group[name]
        if ds.dtype != spec.dtype:
            raise DatasetError(f"{where}/{name} has dtype {ds.dtype}, expected {spec.dtype}")
        spec.check_shape(f"{where}/{name}", ds.shape)
        if n_rows is None:
            n_rows = ds.shape[0]
        elif ds.shape[0] != n_rows:
            raise DatasetError(f"{where}/{name} has {ds.shape[0]} rows, /x has {n_rows}")
    task.check_split(where, {name: group[name].shape for name in task.arrays}, jitter_margin)
    x = group["x"]
    for start in range(0, x.shape[0], chunk_rows):
        block = x[start:start + chunk_rows]
        bad_value = np.argwhere(block > 1)
        if len(bad_value):
            n, p, _ = bad_value[0]
            raise DatasetError(f"{where}/x row {start + n}, position {p}: value "
                               f"{block[n, p].tolist()} is not one-hot (values must be 0 or 1)")
        bad_row = np.argwhere(block.sum(axis=-1) > 1)
        if len(bad_row):
            n, p = bad_row[0]
            raise DatasetError(f"{where}/x row {start + n}, position {p}: "
                               f"{block[n, p].tolist()} has more than one base set")
    for name in list(task.arrays)[1:]:
        ds = group[name]
        for start in range(0, ds.shape[0], chunk_rows):
            block = ds[start:start + chunk_rows]
            if not np.isfinite(block).all():
                row = start + int(np.argwhere(~np.isfinite(block))[0][0])
                raise DatasetError(f"{where}/{name} row {row} has a NaN or infinite value")
    for table, spec in TABLE_SPECS.items():
        if table in group:
            _validate_table(where, group[table], table, spec, n_rows, x.shape[1])
    return int(n_rows)


def _validate_table(where: str, group: h5py.Group, table: str, spec: dict[str, Any],
                    n_rows: int, length: int) -> None:
    missing = sorted(set(spec) - set(group))
    if missing:
        raise DatasetError(f"{where}/{table} lacks column(s) {', '.join(missing)}")
    sizes = {c: group[c].shape for c in spec}
    if len({s for s in sizes.values()}) != 1 or len(next(iter(sizes.values()))) != 1:
        raise DatasetError(f"{where}/{table} columns must be 1-D of equal length, got {sizes}")
    start, end, strand = group["start"][()], group["end"][()], group["strand"][()]
    if np.any(start >= end):
        i = int(np.argmax(start >= end))
        raise DatasetError(f"{where}/{table} row {i}: start {start[i]} >= end {end[i]}")
    if not np.isin(strand, (-1, 1)).all():
        i = int(np.argmax(~np.isin(strand, (-1, 1))))
        raise DatasetError(f"{where}/{table} row {i}: strand {strand[i]} is not +1 or -1")
    if table == "coords" and sizes["start"][0] != n_rows:
        raise DatasetError(f"{where}/coords has {sizes['start'][0]} rows, /x has {n_rows}")
    if table == "motifs":
        seq = group["seq"][()]
        bad = (seq < 0) | (seq >= n_rows) | (start < 0) | (end > length)
        if bad.any():
            i = int(np.argmax(bad))
            raise DatasetError(f"{where}/motifs row {i}: seq {seq[i]}, [{start[i]}, {end[i]}) "
                               f"is outside the {n_rows} sequences of length {length}")

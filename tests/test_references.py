"""Dinucleotide-shuffled references: what a shuffle keeps (dinucleotide counts, first and last
token, the one-hot encoding with N rows), seeding, independence from the batch, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark_rc.attribution.references import (
    SHUFFLE_ALGORITHM,
    check_references,
    dinuc_shuffle_references,
)
from benchmark_rc.errors import UserError

N_TOKEN = 4  # all-zero (N) rows


def encode(tokens: np.ndarray) -> np.ndarray:
    """Tokens 0..3 (bases) and 4 (N) -> one-hot rows, all-zero for N: (..., L, 4) float32."""
    return np.eye(5, 4, dtype=np.float32)[tokens]


def decode(one_hot: np.ndarray) -> np.ndarray:
    """One-hot rows -> tokens, 4 for all-zero rows; fails on anything else."""
    assert set(np.unique(one_hot).tolist()) <= {0.0, 1.0}
    sums = one_hot.sum(-1)
    assert set(np.unique(sums).tolist()) <= {0.0, 1.0}, "a row with several ones"
    return np.where(sums == 0, N_TOKEN, one_hot.argmax(-1))


def dinucleotide_counts(tokens: np.ndarray) -> np.ndarray:
    """(..., L) tokens -> (..., 25) counts of each (token, next token) pair, N included."""
    pairs = tokens[..., :-1] * 5 + tokens[..., 1:]
    counts = (pairs[..., None] == np.arange(25)).sum(-2)
    assert (counts.sum(-1) == tokens.shape[-1] - 1).all()
    return counts


def random_tokens(rng: np.random.Generator, n: int, length: int, p_n: float = 0.0) -> np.ndarray:
    tokens = rng.integers(0, 4, (n, length))
    tokens[rng.random((n, length)) < p_n] = N_TOKEN
    return tokens


def batch() -> np.ndarray:
    """Tokens of one batch (L = 40) with the hard cases: N rows (single, runs, at both ends),
    single repeated bases, only two letters, an all-N sequence."""
    rng = np.random.default_rng(0)
    tokens = random_tokens(rng, 12, 40, p_n=0.1)
    tokens[1] = 2
    tokens[2, :20] = N_TOKEN
    tokens[3] = N_TOKEN
    tokens[4, [0, -1]] = N_TOKEN
    tokens[5] = rng.integers(0, 2, 40) * 3
    tokens[6, 10:30] = 1
    return tokens


def assert_valid_shuffles(tokens: np.ndarray, refs: np.ndarray) -> None:
    """Every reference keeps its sequence's dinucleotide counts, first and last token."""
    n, length = tokens.shape
    assert refs.shape == (n, refs.shape[1], length, 4) and refs.dtype == np.float32
    shuffled = decode(refs)  # (N, R, L)
    np.testing.assert_array_equal(dinucleotide_counts(shuffled),
                                  np.broadcast_to(dinucleotide_counts(tokens)[:, None],
                                                  (*shuffled.shape[:2], 25)))
    np.testing.assert_array_equal(shuffled[..., 0], np.broadcast_to(tokens[:, :1],
                                                                    shuffled.shape[:2]))
    np.testing.assert_array_equal(shuffled[..., -1], np.broadcast_to(tokens[:, -1:],
                                                                     shuffled.shape[:2]))


def test_the_algorithm_is_named():
    assert SHUFFLE_ALGORITHM == "benchmark_rc-dinuc-v2"


@pytest.mark.parametrize("length", [1, 2, 3, 4, 7, 40, 301])
def test_shuffles_keep_dinucleotides_ends_and_the_encoding(length):
    rng = np.random.default_rng(length)
    tokens = random_tokens(rng, 9, length, p_n=0.15)
    tokens[0] = 1  # a single repeated base
    tokens[1] = N_TOKEN  # all N
    refs = dinuc_shuffle_references(encode(tokens), 7, seed=3)
    assert_valid_shuffles(tokens, refs)


def test_hard_cases_and_input_dtypes():
    tokens = batch()
    x = encode(tokens)
    refs = dinuc_shuffle_references(x, 25, seed=1)
    assert_valid_shuffles(tokens, refs)
    # a single repeated base and all-N have exactly one shuffle: themselves
    np.testing.assert_array_equal(refs[1], np.broadcast_to(x[1], refs[1].shape))
    np.testing.assert_array_equal(refs[3], np.zeros_like(refs[3]))
    # integer one-hot input gives the same references as float
    np.testing.assert_array_equal(dinuc_shuffle_references(x.astype(np.uint8), 25, seed=1), refs)


def test_shuffles_are_not_degenerate():
    rng = np.random.default_rng(1)
    x = encode(random_tokens(rng, 4, 1000, p_n=0.02))
    refs = dinuc_shuffle_references(x, 10, seed=0)
    same = (refs == x[:, None]).all(-1).mean(-1)  # fraction of positions kept, per reference
    assert same.max() < 0.5  # a random walk keeps ~1/4 of the bases, the identity all of them
    assert not (refs[:, :1] == refs).all(axis=(2, 3)).all(axis=1).any()  # shuffles differ


def test_short_sequence_has_several_shuffles():
    """A 30-bp sequence has many Eulerian walks; 50 shuffles must not all coincide, and they
    should spread over many of the walks."""
    rng = np.random.default_rng(2)
    x = encode(random_tokens(rng, 1, 30))
    refs = dinuc_shuffle_references(x, 50, seed=0)[0]
    distinct = {ref.tobytes() for ref in refs}
    assert len(distinct) >= 10


def test_same_distribution_as_deeplifts_dinuc_shuffle():
    """Over many shuffles of a short sequence with N rows, the walks reached and their
    frequencies match deeplift's ``dinuc_shuffle`` (the algorithm this one vectorises): equal
    supports, total variation distance at the sampling noise (~0.04 for 12 walks, 4000 draws)."""
    from collections import Counter

    from deeplift.dinuc_shuffle import dinuc_shuffle

    x = encode(np.array([4, 1, 0, 1, 2, 4, 2, 0, 1, 3, 4, 3, 4, 0]))
    n = 4000
    ours = Counter(ref.tobytes() for ref in dinuc_shuffle_references(x[None], n, seed=0)[0])
    theirs = Counter(ref.tobytes() for ref in dinuc_shuffle(x, n, np.random.RandomState(0)))
    assert set(ours) == set(theirs) and len(ours) >= 10
    distance = sum(abs(ours[k] - theirs[k]) for k in ours) / (2 * n)
    assert distance < 0.1


def test_seeding_is_reproducible_and_seeds_differ():
    rng = np.random.default_rng(3)
    x = encode(random_tokens(rng, 3, 500, p_n=0.05))
    a = dinuc_shuffle_references(x, 5, seed=7)
    np.testing.assert_array_equal(a, dinuc_shuffle_references(x, 5, seed=7))
    np.testing.assert_array_equal(a, dinuc_shuffle_references(x, 5, seed=np.int64(7)))
    b = dinuc_shuffle_references(x, 5, seed=8)
    assert (a != b).any(axis=(2, 3)).all()  # every reference of every sequence changes
    # the first k references are those asked with n_shuffles=k
    np.testing.assert_array_equal(dinuc_shuffle_references(x, 2, seed=7), a[:, :2])


def test_references_do_not_depend_on_the_batch():
    """A sequence's references depend only on its content and the seed: not on the other
    sequences, its position, the batch size or the vectorised blocks."""
    from benchmark_rc.attribution import references

    rng = np.random.default_rng(4)
    x = encode(random_tokens(rng, 30, 64, p_n=0.05))
    full = dinuc_shuffle_references(x, 4, seed=2)
    order = rng.permutation(30)
    np.testing.assert_array_equal(dinuc_shuffle_references(x[order], 4, seed=2), full[order])
    for i in (0, 17):
        np.testing.assert_array_equal(dinuc_shuffle_references(x[i:i + 1], 4, seed=2),
                                      full[i:i + 1])
    duplicated = np.concatenate([x[5:6], x[:3], x[5:6]])
    refs = dinuc_shuffle_references(duplicated, 4, seed=2)
    np.testing.assert_array_equal(refs[0], full[5])
    np.testing.assert_array_equal(refs[-1], full[5])
    saved = references.BLOCK_WALKS
    try:
        references.BLOCK_WALKS = 8  # two sequences per block of 4 shuffles
        np.testing.assert_array_equal(dinuc_shuffle_references(x, 4, seed=2), full)
    finally:
        references.BLOCK_WALKS = saved


def test_attribution_outputs_record_how_references_were_made(tmp_path):
    """attribute.json and the .h5 of a reference-based method name the shuffle's version (the
    same seed gives other references under another version); ISM's .h5 names none."""
    import json

    import h5py

    import benchmark_rc as brc
    from benchmark_rc.cli import main
    from benchmark_rc.data.hdf5 import write_dataset

    rng = np.random.default_rng(5)
    split = {"x": encode(random_tokens(rng, 3, 40)).astype(np.uint8),
             "y": np.ones((3, 3), dtype=np.float32)}
    data = write_dataset(tmp_path / "toy.h5", "classification",
                         {s: split for s in ("train", "valid", "test")}, params={})
    model = tmp_path / "model.keras"
    brc.build_model("sim", "standard", input_length=40, seed=1).save(model)
    out = tmp_path / "out"
    assert main(["attribute", "--model", str(model), "--data", str(data), "--methods",
                 "deepshap,ism", "--n-shuffles", "2", "--seed", "4", "--out", str(out),
                 "--no-progress"]) == 0
    params = json.loads((out / "attribute.json").read_text())
    assert params["shuffle_algorithm"] == SHUFFLE_ALGORITHM
    with h5py.File(out / "deepshap.h5") as f:
        assert f.attrs["shuffle_algorithm"] == SHUFFLE_ALGORITHM
        assert f.attrs["n_shuffles"] == 2 and f.attrs["seed"] == 4
    with h5py.File(out / "ism.h5") as f:
        assert "shuffle_algorithm" not in f.attrs and "n_shuffles" not in f.attrs


def test_empty_inputs():
    assert dinuc_shuffle_references(np.zeros((0, 10, 4)), 3).shape == (0, 3, 10, 4)
    assert dinuc_shuffle_references(np.zeros((2, 0, 4)), 3).shape == (2, 3, 0, 4)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_shuffles": 0}, "n_shuffles must be a positive integer"),
    ({"n_shuffles": 2.5}, "n_shuffles must be a positive integer"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"seed": 1.5}, "seed must be a non-negative integer"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(UserError, match=message):
        dinuc_shuffle_references(np.zeros((1, 5, 4)), **kwargs)


@pytest.mark.parametrize("shape", [(5, 4), (1, 5, 3), (1, 2, 5, 4)])
def test_bad_shapes(shape):
    with pytest.raises(UserError, match=r"expected one-hot sequences \(N, L, 4\)"):
        dinuc_shuffle_references(np.zeros(shape), 2)


def test_check_references():
    x = np.zeros((2, 5, 4), np.float32)
    refs = check_references(np.zeros((2, 3, 5, 4), np.float64), x)
    assert refs.dtype == np.float32 and refs.shape == (2, 3, 5, 4)
    for bad in (np.zeros((2, 0, 5, 4)), np.zeros((1, 3, 5, 4)), np.zeros((2, 3, 5))):
        with pytest.raises(UserError, match="expected shape"):
            check_references(bad, x)
    with pytest.raises(UserError, match="NaN or infinite"):
        check_references(np.full((2, 1, 5, 4), np.nan), x)

"""Reference (baseline) sequences for DeepLIFT/DeepSHAP and integrated gradients."""

from __future__ import annotations

import hashlib

import numpy as np

from benchmark_rc.errors import UserError

# Which shuffle made a set of references: written into the metadata of attribution outputs.
# v1 was deeplift's ``dinuc_shuffle`` (RandomState(seed) per sequence); v2 is the vectorised
# walk below, seeded per sequence content. Same algorithm, other random numbers: a given seed
# gives other shuffles than v1.
SHUFFLE_ALGORITHM = "benchmark_rc-dinuc-v2"

BLOCK_WALKS = 1024  # walks (sequences x shuffles) stepped together: numpy calls stay large
# enough to amortise their overhead while the work arrays stay in cache

_N_TOKEN = 4  # an all-zero (N) row is a fifth token, shuffled like a base
_ONE_HOT = np.eye(_N_TOKEN + 1, _N_TOKEN, dtype=np.float32)  # token -> row; N -> zeros
_GROUP_SHIFT = 59  # bit layout of the sort keys: group (4 bits) | random | edge index


def dinuc_shuffle_references(x: np.ndarray, n_shuffles: int = 20, seed: int = 0) -> np.ndarray:
    """Dinucleotide-shuffled references of every sequence: (N, L, 4) -> (N, R, L, 4) float32.

    The Altschul-Erikson / Kandel shuffle that deeplift's ``dinuc_shuffle`` implements: a random
    Eulerian walk through the sequence's dinucleotide graph in which each token's list of
    successors is shuffled except its last edge, so every shuffle keeps the first and last token
    and the dinucleotide counts exactly; all-zero (N) rows are a fifth token. All walks of a
    block of sequences step together in numpy (:data:`BLOCK_WALKS`).

    Seeding: sequence i's random numbers come from ``PCG64(SeedSequence([seed, hash of its
    tokens]))``, so its references depend only on its content and ``seed`` (not on the batch it
    is in, nor its position; identical sequences get identical references), and the first k of
    ``n_shuffles`` references are those of ``n_shuffles=k``. :data:`SHUFFLE_ALGORITHM` names
    this scheme.
    """
    if not isinstance(n_shuffles, int | np.integer) or n_shuffles < 1:
        raise UserError(f"n_shuffles must be a positive integer, got {n_shuffles!r}")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[-1] != 4:
        raise UserError(f"expected one-hot sequences (N, L, 4), got shape {x.shape}")
    n, length = x.shape[:2]
    r = int(n_shuffles)
    out = np.empty((n, r, length, 4), dtype=np.float32)  # every row is written below
    if n == 0 or length == 0:
        return out
    nonzero = x != 0
    tokens = np.where(nonzero.any(-1), nonzero.argmax(-1), _N_TOKEN).astype(np.uint8)
    per = block_sequences(r)
    for start in range(0, n, per):
        block = tokens[start:start + per]
        walks = _walks(block, _successors(block, r, int(seed)), r)
        np.take(_ONE_HOT, walks.T.reshape(block.shape[0], r, length), axis=0,
                out=out[start:start + per], mode="clip")
    return out


def block_sequences(n_shuffles: int) -> int:
    """Sequences whose ``n_shuffles`` walks are stepped together (about :data:`BLOCK_WALKS`)."""
    return max(1, BLOCK_WALKS // int(n_shuffles))


def _successors(tokens: np.ndarray, r: int, seed: int) -> np.ndarray:
    """Each sequence's edges (i -> i+1), grouped by source token, uniformly shuffled within each
    group except the token's last edge, which stays last: (m, R, L-1) successor tokens.

    One sort per walk of packed int64 keys, ``group << 59 | random bits | edge index``, where
    group = 2 * source token + (is the token's last edge); the random bits order the edges of a
    group uniformly (up to ties of two draws, which keep the edges' order: 49 random bits at 1 kb,
    at least 19 for any length allowed), and the low bits carry the edge index out of the sort.
    """
    m, length = tokens.shape
    n_edges = length - 1
    src, dst = tokens[:, :-1], tokens[:, 1:]
    if n_edges == 0:
        return np.empty((m, r, 0), dtype=tokens.dtype)
    group = 2 * src.astype(np.uint64)
    reverse = src[:, ::-1]
    for t in range(_N_TOKEN + 1):  # pin the last edge leaving each token
        hit = reverse == t
        rows = np.flatnonzero(hit.any(1))
        group[rows, n_edges - 1 - hit[rows].argmax(1)] += 1
    index_bits = max(1, (n_edges - 1).bit_length())
    if index_bits > _GROUP_SHIFT - 19:
        raise UserError(f"sequences of length {length} are too long to shuffle")
    fixed = (group << np.uint64(_GROUP_SHIFT)) | np.arange(n_edges, dtype=np.uint64)
    keys = np.empty((m, r, n_edges), dtype=np.uint64)
    for i in range(m):
        digest = hashlib.blake2b(tokens[i].tobytes(), digest_size=8).digest()
        entropy = np.random.SeedSequence([seed, int.from_bytes(digest, "little")])
        keys[i] = np.random.PCG64(entropy).random_raw((r, n_edges))
    keys &= np.uint64(((1 << _GROUP_SHIFT) - 1) & ~((1 << index_bits) - 1))
    keys |= fixed[:, None]
    order = keys.view(np.int64)  # < 2**63: sorts as uint64, and int64 sorts faster
    order.sort(axis=-1)
    order &= (1 << index_bits) - 1
    order += (np.arange(m) * n_edges)[:, None, None]
    return np.take(dst, order)


def _walks(tokens: np.ndarray, successors: np.ndarray, r: int) -> np.ndarray:
    """The Eulerian walks, (L, m*R) tokens: from the first token, leave each token by the next
    unused edge of its shuffled successor list. Sequential along L, vectorised over the walks."""
    m, length = tokens.shape
    n_walks, n_edges = m * r, length - 1
    counts = np.stack([(tokens[:, :-1] == t).sum(1) for t in range(_N_TOKEN + 1)], axis=1)
    first_edge = np.zeros((m, _N_TOKEN + 1), dtype=np.intp)
    np.cumsum(counts[:, :-1], axis=1, out=first_edge[:, 1:])
    # next unused edge of (walk, token), as an index into the flat successor array
    cursor = (np.repeat(first_edge, r, axis=0)
              + (np.arange(n_walks) * n_edges)[:, None]).ravel()
    succ = successors.ravel()
    row = np.arange(n_walks) * (_N_TOKEN + 1)
    walks = np.empty((length, n_walks), dtype=np.uint8)
    walks[0] = current = np.repeat(tokens[:, 0], r)
    for j in range(1, length):
        at = row + current
        edge = cursor[at]
        cursor[at] = edge + 1
        walks[j] = current = succ[edge]
    return walks


def check_references(references: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Validate user references (N, R, L, 4) against x (N, L, 4); returns float32."""
    refs = np.asarray(references)
    if refs.ndim != 4 or refs.shape[0] != x.shape[0] or refs.shape[2:] != x.shape[1:] \
            or refs.shape[1] < 1:
        raise UserError(f"references: expected shape (N, R, L, 4) = ({x.shape[0]}, R, "
                        f"{x.shape[1]}, {x.shape[2]}) with R >= 1, got {refs.shape}")
    refs = refs.astype(np.float32, copy=False)
    if not np.isfinite(refs).all():
        raise UserError("references contain NaN or infinite values")
    return refs

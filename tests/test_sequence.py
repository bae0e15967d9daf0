"""One-hot encoding and the RC transforms of the conventions.

Exact comparisons throughout: encoding writes 0/1, and the RC transforms only permute stored
values (numpy or TF flips), which no backend or kernel can round.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark_rc.sequence import (
    one_hot_decode,
    one_hot_encode,
    one_hot_encode_many,
    reverse_complement,
    reverse_control,
    swap_strands,
)

COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def test_encoding_order_case_and_unknown_letters():
    x = one_hot_encode("ACGTNacgtRY-")
    np.testing.assert_array_equal(x[:4], np.eye(4, dtype=np.uint8))
    np.testing.assert_array_equal(x[5:9], np.eye(4, dtype=np.uint8))
    assert not x[4].any() and not x[9:].any()
    assert x.dtype == np.uint8 and x.shape == (12, 4)


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="ACGTN", min_size=1, max_size=60))
def test_rc_of_one_hot_is_the_reverse_complement_string(seq):
    rc_string = seq.translate(COMPLEMENT)[::-1]
    np.testing.assert_array_equal(reverse_complement(one_hot_encode(seq)), one_hot_encode(rc_string))
    assert one_hot_decode(one_hot_encode(seq)) == seq


def test_encode_many_and_decode_many():
    seqs = ["ACGT", "TTNA"]
    x = one_hot_encode_many(seqs, dtype=np.float32)
    assert x.shape == (2, 4, 4) and x.dtype == np.float32
    assert one_hot_decode(x) == seqs


def test_tensor_and_numpy_transforms_agree():
    rng = np.random.default_rng(0)
    x = rng.random((3, 7, 2)).astype(np.float32)
    for transform in (reverse_complement, reverse_control, swap_strands):
        np.testing.assert_array_equal(np.asarray(transform(tf.constant(x))), transform(x))
    # profile RC = reverse positions and swap strands; control = reverse positions only
    np.testing.assert_array_equal(reverse_complement(x)[:, 0, 0], x[:, -1, 1])
    np.testing.assert_array_equal(reverse_control(x)[:, 0, 0], x[:, -1, 0])
    np.testing.assert_array_equal(swap_strands(x)[..., 0], x[..., 1])

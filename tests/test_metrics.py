"""Metrics against independent scipy/sklearn computations and hand-made profiles.

The metrics are float64 numpy code, so tolerances are float64 ones (eps 2.2e-16): rel=1e-12
where the same formula runs in another order, rel=1e-9 where an independent implementation
(gaussian_filter1d, scipy.stats) sums over 1000-position profiles, pytest.approx's default
(rel 1e-6) against sklearn's rank metrics, and exact == where the arithmetic is exact.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import average_precision_score, roc_auc_score

from benchmark_rc import metrics


def test_classification_metrics_macro_over_tasks():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(200, 3)).astype(np.float32)
    s = y * 0.3 + rng.random((200, 3))
    got = metrics.classification_metrics(y, s)
    assert got["auroc"] == pytest.approx(np.mean([roc_auc_score(y[:, t], s[:, t]) for t in range(3)]))
    assert got["auprc"] == pytest.approx(
        np.mean([average_precision_score(y[:, t], s[:, t]) for t in range(3)]))
    assert got["n_tasks_excluded"] == 0
    assert 0.5 < got["auroc"] < 1.0


def test_classification_metrics_single_class_task_is_excluded():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=(50, 2)).astype(np.float32)
    y[:, 1] = 0
    s = rng.random((50, 2))
    got = metrics.classification_metrics(y, s)
    assert got["n_tasks_excluded"] == 1
    assert got["auroc"] == pytest.approx(roc_auc_score(y[:, 0], s[:, 0]))
    assert math.isnan(metrics.classification_metrics(y[:, 1:], s[:, 1:])["auroc"])


def test_jensen_shannon_hand_made_values():
    # P = [1, 0], Q = [1/2, 1/2]: M = [3/4, 1/4]
    expected = 0.5 * math.log(4 / 3) + 0.25 * (math.log(2 / 3) + math.log(2))
    assert metrics.jensen_shannon(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(
        expected, rel=1e-12)
    # renormalisation: counts work like probabilities
    assert metrics.jensen_shannon(np.array([7.0, 0.0]), np.array([2.0, 2.0])) == pytest.approx(
        expected, rel=1e-12)
    assert metrics.jensen_shannon(np.array([0.0, 3.0]), np.array([5.0, 0.0])) == pytest.approx(
        math.log(2))
    assert math.isnan(metrics.jensen_shannon(np.zeros(4), np.ones(4)))


def _spike(n: int, length: int, pos_plus: int, pos_minus: int) -> np.ndarray:
    a = np.zeros((n, length, 2))
    a[:, pos_plus, 0] = 5
    a[:, pos_minus, 1] = 2
    return a


def test_jensen_shannon_is_never_negative_for_nearly_equal_distributions():
    # p ≈ q: the two relative-entropy sums cancel to round-off, which without the clamp in
    # jensen_shannon comes out negative for about half of these pairs (e.g. -6.8e-18).
    rng = np.random.default_rng(0)
    p = rng.random((500, 1000, 2))
    q = p * (1 + 1e-9 * rng.standard_normal(p.shape))
    js = metrics.jensen_shannon(p, q, axis=1)
    assert np.all(js >= 0)
    assert np.all(js < 1e-15)  # still ~0: the clamp does not hide a real divergence
    assert np.isnan(metrics.jensen_shannon(np.zeros(4), np.ones(4)))  # NaN is kept


def test_profile_jsd_identical_and_disjoint():
    true = _spike(3, 1000, 100, 900)
    assert metrics.profile_metrics(true, true / true.sum(axis=1, keepdims=True))["jsd"] == (
        pytest.approx(0.0, abs=1e-12))
    # spikes 400 bp apart stay disjoint after the 7-tap smoothing -> ln 2 on both strands
    far = _spike(3, 1000, 500, 500)
    assert metrics.profile_metrics(true, far)["jsd"] == pytest.approx(math.log(2))


def _independent_jsd(true: np.ndarray, pred: np.ndarray) -> float:
    values = []
    for n in range(true.shape[0]):
        per_strand = []
        for s in range(true.shape[2]):
            t = gaussian_filter1d(true[n, :, s].astype(float), 3, truncate=1, mode="reflect")
            p = gaussian_filter1d(pred[n, :, s].astype(float), 3, truncate=1, mode="reflect")
            per_strand.append(jensenshannon(t / t.sum(), p / p.sum()) ** 2)  # natural log
        values.append(np.mean(per_strand))
    return float(np.mean(values))


def _independent_corr(true: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    pears, spears = [], []
    length = true.shape[1]
    for n in range(true.shape[0]):
        tv = [true[n, i, s] for i in range(length) for s in range(2)]  # interleaved
        pv = [pred[n, i, s] for i in range(length) for s in range(2)]
        for size in (1, 5, 10):
            tb = [max(tv[i:i + size]) for i in range(0, len(tv), size)]
            pb = [max(pv[i:i + size]) for i in range(0, len(pv), size)]
            pears.append(stats.pearsonr(tb, pb)[0])
            spears.append(stats.spearmanr(tb, pb)[0])
    return float(np.mean(pears)), float(np.mean(spears))


@pytest.fixture(scope="module")
def random_profiles():
    rng = np.random.default_rng(3)
    true = rng.poisson(0.3, size=(6, 1000, 2)).astype(np.float32)
    true[:, 400:420] += rng.poisson(4, size=(6, 20, 2))
    logits = rng.normal(size=(6, 1000, 2))
    logits[:, 395:425] += 2
    pred = metrics.softmax_profile(logits)
    return true, pred


def test_profile_metrics_match_independent_computation(random_profiles):
    true, pred = random_profiles
    got = metrics.profile_metrics(true, pred)
    assert got["jsd"] == pytest.approx(_independent_jsd(true, pred), rel=1e-9)
    pearson, spearman = _independent_corr(true, pred)
    assert got["pearson"] == pytest.approx(pearson, rel=1e-9)
    assert got["spearman"] == pytest.approx(spearman, rel=1e-9)
    assert got["n_jsd_excluded"] == 0 and got["n_corr_excluded"] == 0
    assert 0 < got["jsd"] < math.log(2) and got["pearson"] > 0.1


def test_correlations_use_strand_interleaving():
    # + strand rises, - strand falls: with interleaving, bin size 10 mixes both strands, so the
    # binned correlations differ from the strand-concatenated ones.
    length = 50
    true = np.stack([np.arange(length), np.arange(length)[::-1]], axis=1)[None].astype(float)
    pred = np.stack([np.arange(length) ** 2, np.zeros(length)], axis=1)[None].astype(float)
    pear, _ = metrics.profile_correlations(true, pred, bin_sizes=(1, 10))
    tv = true[0].reshape(-1)
    pv = pred[0].reshape(-1)
    assert pear[0, 0] == pytest.approx(stats.pearsonr(tv, pv)[0])
    assert pear[0, 1] == pytest.approx(stats.pearsonr(tv.reshape(-1, 10).max(1),
                                                      pv.reshape(-1, 10).max(1))[0])
    tc, pc = true[0].T.reshape(-1), pred[0].T.reshape(-1)  # strands concatenated instead
    concatenated = stats.pearsonr(tc.reshape(-1, 10).max(1), pc.reshape(-1, 10).max(1))[0]
    assert abs(pear[0, 1] - concatenated) > 0.05


def test_all_zero_example_is_excluded_and_counted(random_profiles):
    true, pred = random_profiles
    with_zero = np.concatenate([true, np.zeros((1, 1000, 2), np.float32)])
    pred_zero = np.concatenate([pred, pred[:1]])
    got = metrics.profile_metrics(with_zero, pred_zero)
    ref = metrics.profile_metrics(true, pred)
    assert got["n_jsd_excluded"] == 1 and got["n_corr_excluded"] == 3  # one example x 3 bins
    for key in ("jsd", "pearson", "spearman"):
        assert got[key] == pytest.approx(ref[key], rel=1e-12)


def test_rc_divergence_profile_zero_for_equivariant_and_positive_otherwise(random_profiles):
    # rc_divergence_profile takes f(x) and the RC prediction already mapped back, RC_out(f(RC x))
    rng = np.random.default_rng(5)
    fwd = rng.normal(size=(4, 100, 2))
    predicted_for_rc = fwd[:, ::-1, ::-1]  # what an equivariant model predicts for RC(x)
    mapped_back = predicted_for_rc[:, ::-1, ::-1]  # RC_out by hand: reverse, swap strands
    # exact: the mapped-back logits are the forward logits element for element
    assert metrics.rc_divergence_profile(fwd, mapped_back) == 0.0
    # a model that ignores the strand: its RC prediction mapped back is the mirror image
    assert metrics.rc_divergence_profile(fwd, predicted_for_rc) > 1e-3


def test_rc_divergence_logits():
    f = np.array([[0.5, -1.0], [2.0, 0.0]])
    # exact: |f - f| = 0, and sums / means of these small dyadic numbers are exact in binary
    assert metrics.rc_divergence_logits(f, f) == 0
    assert metrics.rc_divergence_logits(f, f + np.array([[1.0, -1.0], [0.0, 2.0]])) == 1.0
    with pytest.raises(ValueError):
        metrics.rc_divergence_logits(f, f[:1])

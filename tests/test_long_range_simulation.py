"""`benchmark-rc simulate long-range` (data/simulation_long_range.py): the stored ground truth
(promoter counts follow basal + sum of enhancer strengths x exp(-distance / decay), recomputed
here from the motif table's positions), the strand-aware local tracks, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark_rc.data.hdf5 import read_attrs, read_motifs, read_split, validate
from benchmark_rc.data.simulations import simulate


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("lr") / "lr.h5"
    # 1024 bp = 8 bins of 128, all stored; large depth: counts close to their rates
    simulate("long-range", path, num_seqs=60, seq_len=1024, out_bins=8, decay=256.0,
             seed=5)
    return path


def test_layout_and_motif_table(data):
    assert validate(data) == {"train": 42, "valid": 9, "test": 9}
    arrays = read_split(data, "train")
    assert arrays["x"].shape == (42, 1024, 4) and arrays["tracks"].shape == (42, 8, 2)
    assert arrays["stranded_tracks"].shape == (42, 8, 2)
    motifs = read_motifs(data, "train")
    names = set(motifs["name"])
    assert names == {"ELF1_known2", "GATA_known6"}
    assert read_attrs(data)["params"]["decay"] == 256.0


def test_promoter_counts_follow_distal_enhancers(data):
    """Total promoter-track counts of sequences with a promoter correlate with the hand-made
    distance-weighted enhancer sum (not with the enhancer count alone at this decay)."""
    arrays = read_split(data, "train")
    motifs = read_motifs(data, "train")
    centre = (1024 - 1) / 2
    drive, counts = [], []
    for n in range(len(arrays["x"])):
        rows = motifs[motifs["seq"] == n]
        if not (rows["name"] == "ELF1_known2").any():
            assert arrays["tracks"][n, :, 0].sum() == 0  # no promoter, no promoter signal
            continue
        enh = rows[rows["name"] == "GATA_known6"]
        d = (enh["start"] + enh["end"] - 1) / 2 - centre
        drive.append(np.exp(-np.abs(d) / 256.0).sum())
        counts.append(arrays["tracks"][n, :, 0].sum())
    assert len(drive) > 20
    assert np.corrcoef(drive, counts)[0, 1] > 0.6


def test_stranded_track_follows_the_motif_strand(data):
    arrays = read_split(data, "train")
    motifs = {k: np.asarray(v) for k, v in read_motifs(data, "train").items()}
    enh = motifs["name"] == "GATA_known6"
    plus = np.zeros(len(arrays["x"]))
    minus = np.zeros(len(arrays["x"]))
    np.add.at(plus, motifs["seq"][enh & (motifs["strand"] == 1)], 1)
    np.add.at(minus, motifs["seq"][enh & (motifs["strand"] == -1)], 1)
    got = arrays["stranded_tracks"].sum(axis=1)
    assert np.corrcoef(plus, got[:, 0])[0, 1] > 0.7 and np.corrcoef(minus, got[:, 1])[0, 1] > 0.7
    assert np.corrcoef(plus, got[:, 1])[0, 1] < np.corrcoef(minus, got[:, 1])[0, 1]


def test_cli(tmp_path):
    from benchmark_rc.cli import main

    out = tmp_path / "cli.h5"
    assert main(["simulate", "long-range", "--num-seqs", "20", "--seq-len", "512",
                 "--out-bins", "4", "--out", str(out)]) == 0
    assert validate(out)["train"] == 14

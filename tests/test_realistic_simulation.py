"""The Prakash-style realistic simulation (issue 17 item 2, spec/interpretation.md §2.4):
dinucleotide shuffle, FIMO hits pasted back at their positions and strands, ground truth equal to
a re-scan of the stored sequences, clear errors for bad inputs, and the CLI / sweep table."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from benchmark_rc import cli
from benchmark_rc.data import simulation_realistic as R
from benchmark_rc.data.hdf5 import SPLITS, read_attrs, read_split, validate
from benchmark_rc.data.simulation import Instance
from benchmark_rc.data.simulations import SIMULATIONS, generator, simulate
from benchmark_rc.errors import UserError
from benchmark_rc.interpret.filters import write_meme

LETTERS = np.array(list("ACGT"))
# Two non-palindromic test motifs: near-consensus PPMs (0.97 on the letter), so that every planted
# consensus instance is a FIMO hit at p < 1e-4 (4**-8 = 1.5e-5) and chance hits are rare.
CONSENSUS = {"GATAish": "AGATAAGG", "SP1ish": "GGGGCGGGA"}


def _ppm(consensus: str) -> np.ndarray:
    ppm = np.full((len(consensus), 4), 0.01)
    ppm[np.arange(len(consensus)), ["ACGT".index(c) for c in consensus]] = 0.97
    return ppm


def _rc(text: str) -> str:
    return text[::-1].translate(str.maketrans("ACGT", "TGCA"))


def _write_fasta(path, seqs, names=None):
    names = names or [f"seq{i}" for i in range(len(seqs))]
    path.write_text("".join(f">{n} some description\n{s[:60]}\n{s[60:]}\n"
                            for n, s in zip(names, seqs, strict=True)))
    return path


def _planted(rng, num, length, counts):
    """Uniform random sequences with counts[i] consensus instances each (random motif, strand
    and position)."""
    seqs = []
    for k in counts:
        s = list(LETTERS[rng.integers(0, 4, length)])
        for _ in range(k):
            motif = list(CONSENSUS.values())[rng.integers(len(CONSENSUS))]
            motif = motif if rng.random() < 0.5 else _rc(motif)
            start = rng.integers(length - len(motif) + 1)
            s[start:start + len(motif)] = motif
        seqs.append("".join(s))
    return seqs


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A MEME file of the two motifs, 24 positives of 120 bp (4 without any planted instance)
    and 16 negatives (a quarter with one instance)."""
    root = tmp_path_factory.mktemp("realistic")
    rng = np.random.default_rng(7)
    meme = write_meme(root / "motifs.meme", {n: _ppm(c) for n, c in CONSENSUS.items()})
    pos = _planted(rng, 24, 120, [0] * 4 + [1, 2] * 10)
    neg = _planted(rng, 16, 120, [1, 0, 0, 0] * 4)
    return {"meme": meme, "pos": _write_fasta(root / "pos.fa", pos),
            "neg": _write_fasta(root / "neg.fa", neg), "root": root}


# ---------------------------------------------------------------------------- the shuffle
@pytest.mark.parametrize("text", ["ACG", "AAAAAAAAAC", "ACACACACAGT", "AAACCCGGGTTTA" * 3,
                                  "GATTACA", None])
def test_shuffle_preserves_dinucleotide_counts_and_ends(text):
    rng = np.random.default_rng(0)
    tokens = (rng.integers(0, 4, 500).astype(np.int8) if text is None
              else np.array(["ACGT".index(c) for c in text], dtype=np.int8))
    for _ in range(20):
        out = R.dinucleotide_shuffle(tokens, rng)
        assert out.dtype == tokens.dtype and out.shape == tokens.shape
        assert np.array_equal(R.dinucleotide_counts(out), R.dinucleotide_counts(tokens))
        assert out[0] == tokens[0] and out[-1] == tokens[-1]


def test_shuffle_shuffles():
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, 4, 200).astype(np.int8)
    outs = {R.dinucleotide_shuffle(tokens, rng).tobytes() for _ in range(20)}
    assert tokens.tobytes() not in outs and len(outs) == 20


def test_shuffle_is_uniform_over_all_sequences_with_the_same_dinucleotides():
    """Every sequence with the same first letter and dinucleotide counts is reached, about equally
    often (deeplift's shuffle, which keeps the original last exits, reaches only some)."""
    tokens = np.array(["ACGT".index(c) for c in "ACAGACGAT"], dtype=np.int8)
    grid = np.array(list(itertools.product(range(4), repeat=len(tokens))), dtype=np.int8)
    pairs = 4 * grid[:, :-1].astype(np.int64) + grid[:, 1:]
    counts = np.stack([np.bincount(p, minlength=16) for p in pairs])
    same = (counts == R.dinucleotide_counts(tokens).ravel()).all(axis=1) & (grid[:, 0] == tokens[0])
    valid = {g.tobytes() for g in grid[same]}
    assert len(valid) >= 4
    rng = np.random.default_rng(2)
    draws = 400 * len(valid)
    seen: dict[bytes, int] = {}
    for _ in range(draws):
        key = R.dinucleotide_shuffle(tokens, rng).tobytes()
        seen[key] = seen.get(key, 0) + 1
    assert set(seen) == valid
    # 400 expected per sequence, binomial SD < 20: 100 is over 5 SD
    assert max(abs(c - 400) for c in seen.values()) < 100, seen


# ---------------------------------------------------------------------------- Markov background
def test_default_background_is_stationary_and_rc_symmetric():
    model = R.MarkovBackground.default()
    joint = model.initial
    assert np.allclose(joint.sum(axis=0), joint.sum(axis=1), rtol=0, atol=1e-12)
    assert np.allclose(joint, joint[::-1, ::-1].T, rtol=0, atol=1e-12)  # f(a,b) = f(b', a')
    assert np.allclose(model.transitions.sum(axis=-1), 1.0, rtol=0, atol=1e-12)


def test_fitted_background_recovers_the_sampling_table():
    model = R.MarkovBackground.default()
    tokens = model.sample(np.random.default_rng(3), 200, 500)
    assert tokens.dtype == np.int8 and tokens.min() >= 0 and tokens.max() <= 3
    fitted = R.MarkovBackground.fit(list(tokens), "sampled")
    # about 1,500-6,000 trinucleotides per context (x2 with the RCs): SD of a transition < 0.01
    assert np.abs(fitted.transitions - model.transitions).max() < 0.05
    assert np.abs(fitted.initial - model.initial).max() < 0.01
    cg = fitted.initial[1, 2] / (fitted.initial[1].sum() * fitted.initial[:, 2].sum())
    assert cg < 0.4  # CpG depletion survives the round trip


# ---------------------------------------------------------------------------- inputs and errors
@pytest.mark.parametrize("content, message", [
    ("", "the FASTA file is empty"),
    ("\n  \n", "the FASTA file is empty"),
    ("ACGTACGT\n", r"bad.fa:1: sequence before the first '>' header"),
    (">a\nACGT\n>b\n\n>c\nACGT\n", r"bad.fa:3: record b has no sequence"),
    (">a\nACGT\n>rec2 x\nACNT\n", r"bad.fa:3: record rec2 has 'N' at position 3"),
    (">a\nACGT\n>b\nACGTA\n", r"record b is 5 bp but record a is 4 bp"),
])
def test_fasta_errors_name_the_file_and_record(tmp_path, content, message):
    path = tmp_path / "bad.fa"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        R.read_fasta(path)


def test_fasta_missing_lowercase_and_counted_drops(tmp_path):
    with pytest.raises(UserError, match="no such FASTA file"):
        R.read_fasta(tmp_path / "absent.fa")
    path = tmp_path / "mixed.fa"
    path.write_text(">a\nacgt\n>b\nACRT\n>c\nTTTT\n")
    records = R.read_fasta(path, drop_non_acgt=True)
    assert records.names == ["a", "c"] and records.dropped == ["b"]
    assert [t.tolist() for t in records.tokens] == [[0, 1, 2, 3], [3, 3, 3, 3]]
    path.write_text(">a\nNNNN\n")
    with pytest.raises(UserError, match="all 1 record.*non-ACGT"):
        R.read_fasta(path, drop_non_acgt=True)


@pytest.mark.filterwarnings("ignore:Failed to fetch internal database ID")  # pyjaspar, MA9999.9
def test_motif_errors(tmp_path, files):
    bad = tmp_path / "bad.meme"
    bad.write_text("this is not a motif file\n")
    with pytest.raises(UserError, match="bad.meme"):
        R.load_motifs(str(bad))
    with pytest.raises(UserError, match="RELEASE one of"):
        R.load_motifs("jaspar:JASPAR1999")
    with pytest.raises(UserError, match="MA9999.9 is not in JASPAR2016"):
        R.load_motifs("jaspar:JASPAR2016:MA9999.9")
    assert set(R.load_motifs("jaspar:JASPAR2016:MA0079.3")) == {"SP1_MA0079.3"}
    with pytest.raises(UserError, match="longer than the 5-bp"):
        R.build(np.zeros((2, 5), np.int8), None, R.load_motifs(str(files["meme"])),
                np.random.default_rng(0))
    with pytest.raises(UserError, match="no motif passes the filter"):
        R.build(np.zeros((2, 40), np.int8), None, R.load_motifs(str(files["meme"])),
                np.random.default_rng(0))


# ---------------------------------------------------------------------------- the simulation
def test_hits_are_pasted_at_their_original_positions_and_strands(files):
    pos = np.stack(R.read_fasta(files["pos"]).tokens)
    neg = np.stack(R.read_fasta(files["neg"]).tokens)
    pwms = R.load_motifs(str(files["meme"]))
    sim = R.build(pos, neg, pwms, np.random.default_rng(5))
    pos_hits = R._by_row(R.scan(pos, pwms, 1e-4), len(pos))
    neg_hits = R._by_row(R.scan(neg, pwms, 1e-4), len(neg))
    assert sim.counts["positives_without_kept_hit_dropped"] >= 4
    assert sim.counts["positives"] + sim.counts["positives_without_kept_hit_dropped"] == 24
    assert sim.counts["negatives"] == 16 and sim.counts["hits_pasted_negatives"] >= 4
    for row, (label, src) in enumerate(zip(sim.labels, sim.source, strict=True)):
        original = (pos if label else neg)[src]
        hits = (pos_hits if label else neg_hits)[src]
        assert sim.pasted[row] == hits
        for h in hits:  # the original bases, so the same motif, strand and score
            assert np.array_equal(sim.tokens[row, h.start:h.end], original[h.start:h.end])
            assert (h.start, h.end, h.name, h.strand) in {
                (t.start, t.end, t.name, t.strand) for t in sim.truth[row]}
        if label:  # the rest is a dinucleotide shuffle, not the original
            assert len(hits) > 0 and not np.array_equal(sim.tokens[row], original)


def test_offline_default_ground_truth_equals_a_rescan(tmp_path):
    path = R.simulate_realistic(tmp_path / "offline.h5", num_seqs=30, length=150, seed=3)
    rows = validate(path)
    assert sum(rows.values()) > 40
    params = read_attrs(path)["params"]
    assert params["source"] == "offline Markov-2" and params["threshold"] == 1e-4
    assert params["motifs"] == R.DEFAULT_MOTIFS and params["kept_motifs"]
    assert params["background"]["order"] == 2
    counts = params["counts"]
    assert counts["positives"] + counts["positives_without_kept_hit_dropped"] == 30
    assert counts["negatives"] == 30
    total = 0
    labels = []
    for split in SPLITS:
        stored = R.read_ground_truth(path, split)
        assert stored == R.rescan(path, split)
        total += len(stored)
        labels.append(read_split(path, split, keys=("y",))["y"])
    assert total == counts["ground_truth_hits"] > 0
    assert set(np.concatenate(labels).ravel().tolist()) == {0.0, 1.0}


def test_without_negatives_hits_are_implanted_at_the_background_rate(tmp_path, files):
    common = {"positives": files["pos"], "motifs": str(files["meme"]), "seed": 4}
    implanted = read_attrs(R.simulate_realistic(tmp_path / "a.h5", **common))["params"]
    none = read_attrs(R.simulate_realistic(tmp_path / "b.h5", implant_negatives=False,
                                           **common))["params"]
    assert implanted["counts"]["negatives"] == implanted["counts"]["positives"]
    assert implanted["counts"]["hits_pasted_negatives"] > 0
    assert none["counts"]["hits_pasted_negatives"] == 0
    assert implanted["negative_hit_fraction"] == 0.25
    for split in SPLITS:
        assert R.read_ground_truth(tmp_path / "a.h5", split) == R.rescan(tmp_path / "a.h5",
                                                                         split)


def test_cli_end_to_end(tmp_path, files, capsys):
    out = tmp_path / "cli.h5"
    assert cli.main(["simulate", "realistic", "--positives", str(files["pos"]), "--negatives",
                     str(files["neg"]), "--motifs", str(files["meme"]), "--seed", "9",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "24 records read, 0 dropped for non-ACGT letters" in printed
    assert "positives without kept hit dropped" in printed
    validate(out)
    params = read_attrs(out)["params"]
    assert params["positives"] == str(files["pos"]) and params["seed"] == 9
    assert sorted(params["kept_motifs"]) == sorted(CONSENSUS)
    for split in SPLITS:
        assert R.read_ground_truth(out, split) == R.rescan(out, split)
    bad = _write_fasta(tmp_path / "n.fa", ["ACGT" * 30, "ACGN" * 30], ["ok", "chr1:5-125"])
    assert cli.main(["simulate", "realistic", "--positives", str(bad), "--motifs",
                     str(files["meme"]), "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert "record chr1:5-125 has 'N' at position 4" in err
    assert not (tmp_path / "x.h5").exists()


def test_cli_offline_mean_motifs(tmp_path):
    """--mean-motifs reaches the offline sources: more instances per positive source, more hits
    pasted back (same seed, same sources otherwise)."""
    pasted = {}
    for mean in ("1", "4"):
        out = tmp_path / f"m{mean}.h5"
        assert cli.main(["simulate", "realistic", "--num-seqs", "40", "--length", "150",
                         "--mean-motifs", mean, "--seed", "2", "--out", str(out)]) == 0
        params = read_attrs(out)["params"]
        assert params["mean_motifs"] == float(mean)
        pasted[mean] = params["counts"]["hits_pasted_positives"]
    assert pasted["4"] > 1.5 * pasted["1"], pasted  # chance hits of the background add to both


def test_the_simulation_table_has_kind_realistic(tmp_path, files):
    assert "realistic" in SIMULATIONS
    assert generator("realistic") is R.simulate_realistic
    with pytest.raises(UserError, match="simulation 'realistic'.*positive.*parameters:"):
        simulate("realistic", tmp_path / "a.h5", positive=str(files["pos"]))
    with pytest.raises(UserError, match="negatives need positives"):
        simulate("realistic", tmp_path / "b.h5", negatives=str(files["neg"]))


def test_stored_ground_truth_is_an_instance_table():
    """The ground truth rows are the same Instance type as the other simulations' motif tables
    (so benchmark-rc interpret reads them through the motifs table and motif_pwms)."""
    hit = R.scan(np.array([[0] * 10 + ["ACGT".index(c) for c in "AGATAAGG"] + [0] * 10],
                          dtype=np.int8), {"GATAish": _ppm("AGATAAGG")}, 1e-4)
    assert hit == [Instance(0, 10, 18, "GATAish", 1)]


def test_chromosome_split(tmp_path, files):
    """Rows go to the split of their source record's chromosome (region-named records)."""
    rng = np.random.default_rng(11)
    chroms = ["chr1", "chr2", "chr3", "chr4"] * 3
    pos = _write_fasta(tmp_path / "pos.fa", _planted(rng, 12, 100, [1] * 12),
                       [f"{c}:{100 * i}-{100 * i + 100}" for i, c in enumerate(chroms)])
    neg = _write_fasta(tmp_path / "neg.fa", _planted(rng, 8, 100, [0] * 8),
                       [f"peak{i}::{c}:5-105(+)" for i, c in enumerate(chroms[:8])])
    assert R.record_chromosome("peak3::chrX:5-105(-)") == "chrX"
    assert R.record_chromosome("seq1") is None
    out = R.simulate_realistic(tmp_path / "chrom.h5", positives=pos, negatives=neg,
                               motifs=str(files["meme"]), valid_chroms="chr2",
                               test_chroms=["chr3", "chr4"])
    params = read_attrs(out)["params"]
    assert params["counts"]["positives"] == 12  # every positive has a planted hit
    # positives: 3 per chromosome; negatives: 2 per chromosome
    assert params["counts"]["rows"] == {"train": 5, "valid": 5, "test": 10}
    assert validate(out) == {"train": 5, "valid": 5, "test": 10}
    assert params["split"] == {"method": "chromosomes", "valid_chroms": ["chr2"],
                               "test_chroms": ["chr3", "chr4"]}
    for split in SPLITS:
        assert R.read_ground_truth(out, split) == R.rescan(out, split)
    with pytest.raises(UserError, match="chrom9 match no record"):
        R.simulate_realistic(tmp_path / "a.h5", positives=pos, motifs=str(files["meme"]),
                             test_chroms="chrom9")
    with pytest.raises(UserError, match="record seq0 is not named by its region"):
        R.simulate_realistic(tmp_path / "b.h5", positives=files["pos"],
                             motifs=str(files["meme"]), test_chroms="chr1")
    with pytest.raises(UserError, match="chr2 are both validation and test"):
        R.simulate_realistic(tmp_path / "c.h5", positives=pos, motifs=str(files["meme"]),
                             valid_chroms="chr2", test_chroms="chr2,chr3")
    with pytest.raises(UserError, match="offline simulation splits at random"):
        R.simulate_realistic(tmp_path / "d.h5", test_chroms="chr1")

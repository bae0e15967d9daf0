"""`benchmark-rc prepare binary|profile` on small genomes, peaks and bigWigs written here."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyBigWig
import pytest

from benchmark_rc import cli
from benchmark_rc.data.hdf5 import read_attrs, read_split, validate
from benchmark_rc.sequence import one_hot_encode, reverse_complement, reverse_control

SIZES = {"chr1": 12000, "chr2": 10000, "chr3": 16000, "chr4": 6000, "chrM": 1500}
COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


# ------------------------------------------------------------------------------------------------
# inputs


def write_fasta(path: Path, seqs: dict[str, str], width: int = 60) -> Path:
    with open(path, "w") as f:
        for name, seq in seqs.items():
            f.write(f">{name} some description\n")
            for i in range(0, len(seq), width):
                f.write(seq[i:i + width] + "\n")
    return path


def write_bgzip_fasta(path: Path, seqs: dict[str, str]) -> Path:
    from Bio import bgzf

    with bgzf.BgzfWriter(str(path), "wb") as handle:
        for name, seq in seqs.items():
            handle.write(f">{name}\n".encode())
            for i in range(0, len(seq), 70):
                handle.write((seq[i:i + 70] + "\n").encode())
    return path


def write_lines(path: Path, lines: list[str], compress: bool = False) -> Path:
    text = "".join(line + "\n" for line in lines)
    if compress:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def write_bigwig(path: Path, tracks: dict[str, np.ndarray], nan_at: tuple | None = None,
                 sizes: dict[str, int] = SIZES) -> Path:
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(sizes.items()))
    for chrom in sizes:
        if chrom not in tracks:
            continue
        values = tracks[chrom].astype(np.float64)
        if nan_at is not None and nan_at[0] == chrom:
            values = values.copy()
            values[nan_at[1]] = np.nan
        covered = np.flatnonzero(values != 0)  # sparse: uncovered positions read as 0
        bw.addEntries([chrom] * len(covered), covered.tolist(), ends=(covered + 1).tolist(),
                      values=values[covered].tolist())
    bw.close()
    return path


def random_genome(rng: np.random.Generator) -> dict[str, str]:
    seqs = {}
    for chrom, n in SIZES.items():
        letters = rng.choice(list("ACGTacgt"), n, p=[0.2] * 4 + [0.05] * 4)
        seqs[chrom] = "".join(letters)
    s = seqs["chr3"]  # an N gap for the N filter
    seqs["chr3"] = s[:6000] + "N" * 1200 + s[7200:]
    return seqs


def narrowpeak(chrom, start, end, strand=".", summit=-1) -> str:
    return f"{chrom}\t{start}\t{end}\tpeak\t0\t{strand}\t1.0\t-1\t-1\t{summit}"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(7)
    d = tmp_path_factory.mktemp("prep")
    seqs = random_genome(rng)
    genome = write_fasta(d / "genome.fa", seqs)
    peaks = []
    # random peaks: starts 7 bp apart and summit offsets 100..106, so all summits differ; ranges
    # keep their windows off the N gap, the chromosome ends and the blacklist
    ranges = {"chr1": (600, 5200), "chr2": (600, 4200), "chr3": (600, 4200), "chr4": (2600, 3200)}
    for chrom, (lo, hi) in ranges.items():
        for i, start in enumerate(rng.choice(np.arange(lo, hi, 7), 6, replace=False)):
            strand = "-" if rng.random() < 0.4 else "+"
            peaks.append(narrowpeak(chrom, start, start + 200, strand, 100 + i))
    peaks.append(peaks[0])  # a duplicate record
    peaks.append(narrowpeak("chr2", 30, 230, "+", 100))  # window runs off the chromosome start
    peaks.append(narrowpeak("chr3", 6400, 6600, "+", 100))  # inside the N gap
    peaks.append(narrowpeak("chr4", 700, 900, "+", 100))  # window [300, 1300) hits the blacklist
    peaks.append(narrowpeak("chrM", 600, 800, "+", 100))  # chrM: in no split with --train-chroms
    negatives = [f"{c}\t{s}\t{s + 300}" for c, n in SIZES.items()
                 for s in rng.choice(np.arange(0, n - 300, 11), 15, replace=False)]
    tracks = {name: {c: rng.poisson(2.0, n).astype(np.float64) * sign
                     for c, n in SIZES.items()}
              for name, sign in (("plus", 1), ("minus", -1), ("cplus", 1), ("cminus", -1))}
    nan_chrom, nan_pos = peaks[0].split("\t")[0], int(peaks[0].split("\t")[1]) + 5
    bigwigs = {name: write_bigwig(d / f"{name}.bw", t,
                                  nan_at=(nan_chrom, nan_pos) if name == "plus" else None)
               for name, t in tracks.items()}
    return {
        "dir": d, "seqs": seqs, "genome": genome,
        "peaks": write_lines(d / "peaks.narrowPeak", peaks), "peak_lines": peaks,
        "negatives": write_lines(d / "negatives.bed", negatives),
        "blacklist": write_lines(d / "blacklist.bed", ["chr4\t1200\t1220", "chrUn\t0\t10"]),
        "tracks": tracks, "bigwigs": bigwigs, "nan": (nan_chrom, nan_pos),
    }


def run_cli(*args) -> int:
    return cli.main(["prepare", *map(str, args), "--no-progress"])


def binary_args(data, out, *extra):
    return ["binary", "--genome", data["genome"], "--peaks", data["peaks"], "--negatives",
            data["negatives"], "--out", out, *extra]


def profile_args(data, out, *extra, peaks=None):
    b = data["bigwigs"]
    return ["profile", "--genome", data["genome"], "--peaks", peaks or data["peaks"],
            "--plus", b["plus"], "--minus", b["minus"], "--control-plus", b["cplus"],
            "--control-minus", b["cminus"], "--out", out, "--sequence-length", 300,
            "--output-length", 200, "--jitter-margin", 20, "--valid-chroms", "chr1",
            "--test-chroms", "chr2", *extra]


def expected_window(seqs, chrom, start, end, strand):
    s = seqs[chrom][start:end]
    x = one_hot_encode(s)
    return reverse_complement(x) if strand < 0 else x


def load(path):
    return {s: read_split(path, s) for s in ("train", "valid", "test")}


def parse_peaks(lines):
    out = []
    for line in lines:
        c, s, e, _, _, strand, *_, summit = line.split("\t")
        out.append((c, int(s), int(e), strand, int(s) + int(summit)))
    return out


# ------------------------------------------------------------------------------------------------
# binary


@pytest.fixture(scope="module")
def binary(data):
    out = data["dir"] / "binary.h5"
    assert run_cli(*binary_args(data, out, "--blacklist", data["blacklist"],
                                "--train-chroms", "chr3,chr4", "--flank", 50)) == 0
    return out


def test_binary_windows_labels_splits(binary, data, capsys):
    counts_rows = validate(binary)
    splits = load(binary)
    peaks = parse_peaks(data["peak_lines"])
    centres = {(c, summit) for c, _, _, _, summit in peaks}
    split_of = {"chr1": "valid", "chr2": "test", "chr3": "train", "chr4": "train"}
    positive_windows = [(c["coords"]["chrom"][i], c["coords"]["start"][i])
                        for c in splits.values() for i in np.flatnonzero(c["y"][:, 0] == 1)]
    total_pos = 0
    for split, content in splits.items():
        coords, x, y = content["coords"], content["x"], content["y"]
        assert x.shape == (len(y), 1000, 4) and y.shape == (len(y), 1) and x.dtype == np.uint8
        assert counts_rows[split] == len(y) > 0
        for i in range(len(y)):
            c, s, e, st = coords["chrom"][i], coords["start"][i], coords["end"][i], coords["strand"][i]
            assert e - s == 1000
            np.testing.assert_array_equal(x[i], expected_window(data["seqs"], c, s, e, st))
            assert split_of[c] == split  # split membership; chrM is in no split
            assert y[i, 0] == float((c, s + 500) in centres)
        total_pos += int(y.sum())
        pos = y[:, 0] == 1
        # every negative is >= flank (50) away from every peak interval and positive window
        for i in np.flatnonzero(~pos):
            c, s, e = coords["chrom"][i], coords["start"][i], coords["end"][i]
            for pc, ps, pe, _, _ in peaks:
                if pc == c:
                    assert e + 50 <= ps or s >= pe + 50
            for pc, ps in positive_windows:
                if pc == c:
                    assert e + 50 <= ps or s >= ps + 1000 + 50
    assert (splits["train"]["coords"]["strand"] == -1).any()  # - strand records were exercised
    counts = read_attrs(binary)["params"]["counts"]
    assert counts["peaks"]["records"] == len(peaks)
    assert counts["peaks"]["duplicate_records"] == 1
    assert counts["peaks"]["off_chromosome_edge"] == 1
    assert counts["peaks"]["too_many_n"] == 1
    assert counts["peaks"]["blacklisted"] == 1
    assert counts["peaks"]["chromosome_in_no_split"] == 1
    assert counts["blacklist"]["blacklist_records_on_other_chromosomes"] == 1
    written = counts["written"]
    assert sum(w["positive"] for w in written.values()) == total_pos == len(peaks) - 5
    assert counts["negatives"]["overlapping_a_positive"] > 0


def test_binary_compressed_inputs_match_plain(binary, data, tmp_path):
    genome = write_bgzip_fasta(tmp_path / "genome.fa.gz", data["seqs"])
    peaks = write_lines(tmp_path / "peaks.narrowPeak.gz", data["peak_lines"], compress=True)
    out = tmp_path / "gz.h5"
    args = binary_args(data, out, "--blacklist", data["blacklist"], "--train-chroms",
                       "chr3,chr4", "--flank", 50)
    args[args.index("--genome") + 1] = genome
    args[args.index("--peaks") + 1] = peaks
    assert run_cli(*args) == 0
    assert (tmp_path / "genome.fa.gz.fai").exists()  # index built
    a, b = load(binary), load(out)
    for split in a:
        for key in ("x", "y"):
            np.testing.assert_array_equal(a[split][key], b[split][key])
        np.testing.assert_array_equal(a[split]["coords"]["start"], b[split]["coords"]["start"])


def test_gc_matched_negatives(tmp_path):
    rng = np.random.default_rng(3)
    # chr3 half GC-rich, half AT-rich; peaks only in the GC-rich half
    rich = "".join(rng.choice(list("ACGT"), 20000, p=[0.1, 0.4, 0.4, 0.1]))
    poor = "".join(rng.choice(list("ACGT"), 20000, p=[0.4, 0.1, 0.1, 0.4]))
    seqs = {"chr1": "".join(rng.choice(list("ACGT"), 8000)), "chr3": rich + poor}
    starts = rng.choice(np.arange(1000, 18000, 97), 30, replace=False)
    seqs["chr2"] = "".join(rng.choice(list("ACGT"), 8000))
    genome = write_fasta(tmp_path / "g.fa", seqs)
    peaks = write_lines(tmp_path / "p.bed", [f"chr3\t{s}\t{s + 100}" for s in starts]
                        + ["chr1\t3000\t3100", "chr2\t3000\t3100"])
    out = tmp_path / "gc.h5"
    assert run_cli("binary", "--genome", genome, "--peaks", peaks, "--gc-negatives", 2,
                   "--gc-bins", 10, "--out", out, "--seed", 5, "--test-chroms", "chr2") == 0
    train = read_split(out, "train")
    gc = train["x"][..., 1:3].sum(axis=(1, 2)) / 1000
    y = train["y"][:, 0]
    assert y.sum() == 30 and (y == 0).sum() == 60
    bins = np.clip((gc * 10).astype(int), 0, 9)
    np.testing.assert_array_equal(np.bincount(bins[y == 0], minlength=10),
                                  2 * np.bincount(bins[y == 1], minlength=10))
    neg = train["coords"]["start"][y == 0]
    assert (neg + 1000 <= 20200).all()  # from the GC-rich half (or barely across), as positives
    assert gc[y == 0].mean() > 0.7
    for s in neg:
        assert all(s + 1000 <= p or s >= p + 100 for p in starts)
    counts = read_attrs(out)["params"]["counts"]
    assert counts["gc_negatives"]["shortfall"] == 0
    assert read_split(out, "valid")["y"].shape == (3, 1)  # chr1: 1 positive + 2 negatives
    out2 = tmp_path / "gc2.h5"
    assert run_cli("binary", "--genome", genome, "--peaks", peaks, "--gc-negatives", 2,
                   "--gc-bins", 10, "--out", out2, "--seed", 5, "--test-chroms", "chr2") == 0
    np.testing.assert_array_equal(read_split(out2, "train")["coords"]["start"],
                                  train["coords"]["start"])  # seeded


# ------------------------------------------------------------------------------------------------
# profile


@pytest.fixture(scope="module")
def profile(data):
    out = data["dir"] / "profile.h5"
    assert run_cli(*profile_args(data, out)) == 0
    return out


def smoothed(track: np.ndarray, pos: int, window: int) -> float:
    left, right = (window - 1) // 2, window // 2
    lo, hi = pos - left, pos + right + 1
    padded = np.pad(track, window, mode="edge")
    return float(padded[lo + window:hi + window].mean())


def test_profile_targets_equal_bigwig_values(profile, data, capsys):
    validate(profile)
    attrs = read_attrs(profile)
    assert attrs["jitter_margin"] == 20 and attrs["task"] == "profile"
    t = data["tracks"]
    n_rows = nan_reads = 0
    for split, content in load(profile).items():
        coords = content["coords"]
        n = len(content["x"])
        n_rows += n
        assert content["x"].shape == (n, 340, 4) and content["profile"].shape == (n, 240, 2)
        assert content["control"].shape == (n, 240, 2)
        for i in range(n):
            c, s, e, st = coords["chrom"][i], coords["start"][i], coords["end"][i], coords["strand"][i]
            assert {"chr1": "valid", "chr2": "test"}.get(c, "train") == split
            np.testing.assert_array_equal(content["x"][i], expected_window(data["seqs"], c, s, e, st))
            o = s + 50  # output window inside the sequence window
            plus = t["plus"][c][o:o + 240].copy()
            if c == data["nan"][0] and o <= data["nan"][1] < o + 240:
                plus[data["nan"][1] - o] = 0.0  # the stored NaN reads as 0
                nan_reads += 1
            minus = np.abs(t["minus"][c][o:o + 240])
            ctrl = t["cplus"][c] + np.abs(t["cminus"][c])
            smooth = np.array([smoothed(ctrl, p, 51) for p in range(o, o + 240)])
            prof = np.stack([plus, minus], -1)
            ctl = np.stack([ctrl[o:o + 240], smooth], -1)
            if st < 0:
                prof, ctl = reverse_complement(prof), reverse_control(ctl)
            np.testing.assert_allclose(content["profile"][i], prof, rtol=0, atol=0)
            np.testing.assert_allclose(content["control"][i], ctl, rtol=1e-5, atol=1e-5)
            logcount = np.log1p(ctrl[o + 20:o + 220].sum())
            np.testing.assert_allclose(content["control_logcount"][i, 0], logcount, rtol=1e-6)
    counts = attrs["params"]["counts"]
    assert nan_reads >= 1  # the one stored NaN value is counted once, however many windows
    assert counts["bigwig_nan_values"] == {"plus": 1, "minus": 0, "control plus": 0,
                                           "control minus": 0}
    assert counts["peaks"]["too_many_n"] == 1 and counts["peaks"]["duplicate_records"] == 1
    assert n_rows == sum(counts["written"].values())


def test_profile_nan_is_warned(data, tmp_path, capsys):
    assert run_cli(*profile_args(data, tmp_path / "p.h5")) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "NaN value(s)" in err and "plus.bw" in err


@pytest.mark.parametrize("window", [51, 50])
def test_profile_minus_strand_is_rc_of_plus(data, tmp_path, window):
    peaks = write_lines(tmp_path / "pm.bed", ["chr3\t3000\t3200\tp\t0\t+",
                                              "chr3\t3000\t3200\tp\t0\t-",
                                              "chr1\t3000\t3200\tp\t0\t+",  # valid, test:
                                              "chr2\t3000\t3200\tp\t0\t+"])  # not empty
    out = tmp_path / "pm.h5"
    assert run_cli(*profile_args(data, out, "--smoothing-window", window,
                                 "--train-chroms", "chr3", peaks=peaks)) == 0
    train = read_split(out, "train")
    order = np.argsort(train["coords"]["strand"])[::-1]  # + first
    x, prof, ctl = train["x"][order], train["profile"][order], train["control"][order]
    np.testing.assert_array_equal(x[1], reverse_complement(x[0]))
    np.testing.assert_array_equal(prof[1], reverse_complement(prof[0]))
    np.testing.assert_array_equal(ctl[1][:, 0], ctl[0][::-1, 0])
    if window % 2:  # odd window: smoothing commutes with the reversal, exactly
        np.testing.assert_allclose(ctl[1][:, 1], ctl[0][::-1, 1], rtol=1e-6)
    else:  # even window: smoothing the reversed track is shifted by 1 bp (spec §8 item 8)
        assert np.abs(ctl[1][:, 1] - ctl[0][::-1, 1]).max() > 1e-3
        np.testing.assert_allclose(ctl[1][:-1, 1], ctl[0][::-1, 1][1:], rtol=1e-5)
    assert train["control_logcount"][0, 0] == train["control_logcount"][1, 0]


def test_params_record_every_option(profile):
    params = read_attrs(profile)["params"]
    assert params["command"] == "prepare profile"
    for key in ("sequence_length", "output_length", "jitter_margin", "smoothing_window",
                "max_n", "valid_chroms", "test_chroms", "bigwigs", "versions", "counts"):
        assert key in params
    json.dumps(params)


# ------------------------------------------------------------------------------------------------
# building blocks


def test_interval_index_matches_brute_force():
    from data_prep.regions import IntervalIndex

    rng = np.random.default_rng(1)
    chroms = np.array(["a", "b", "c"], dtype=object)
    ref_c = chroms[rng.integers(0, 2, 300)]  # "c" has no intervals
    ref_s = rng.integers(0, 5000, 300)
    ref_e = ref_s + rng.integers(1, 80, 300)
    q_c = chroms[rng.integers(0, 3, 2000)]
    q_s = rng.integers(0, 5000, 2000)
    q_e = q_s + rng.integers(1, 50, 2000)
    for flank in (0, 7):
        got = IntervalIndex(ref_c, ref_s, ref_e, flank=flank).overlaps(q_c, q_s, q_e)
        want = np.array([((ref_c == c) & (ref_s - flank < e) & (ref_e + flank > s)).any()
                         for c, s, e in zip(q_c, q_s, q_e, strict=True)])
        np.testing.assert_array_equal(got, want)
        assert want.any() and not want.all()


def test_whitespace_and_tab_bed_parse_alike(tmp_path):
    from data_prep.regions import read_regions

    lines = ["browser position chr1", "track name=x", "chr1\t10\t20\tn\t0\t-\t1\t1\t1\t3",
             "", "chr2\t5\t9\tn\t0\t.\t1\t1\t1\t-1"]
    tab = read_regions(write_lines(tmp_path / "a.bed", lines))
    space = read_regions(write_lines(tmp_path / "b.bed", [ln.replace("\t", "  ") for ln in lines]))
    for r in (tab, space):
        assert list(r.chrom) == ["chr1", "chr2"]
        np.testing.assert_array_equal(r.centre, [13, 7])  # summit offset 3; -1 -> midpoint
        np.testing.assert_array_equal(r.strand, [-1, 1])
        np.testing.assert_array_equal(r.line, [3, 5])

"""`benchmark-rc prepare` on inputs as they come in practice (issue 16): BED12 / gappedPeak peak
files, genomes with one or few chromosomes (position-based hold-outs), and chromosome names that
differ between the FASTA, the BED files and the bigWigs (`chr1` vs `1`, `chrM` vs `MT`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_data_prep import write_bigwig, write_fasta, write_lines

from benchmark_rc import cli
from benchmark_rc.data.hdf5 import read_attrs, read_split, validate

SPLITS = ("train", "valid", "test")


def prepare(*args) -> int:
    return cli.main(["prepare", *map(str, args), "--no-progress"])


def load(path: Path) -> dict:
    return {s: read_split(path, s) for s in SPLITS}


def expect_error(argv: list, out: Path, capsys, *fragments: str) -> str:
    """``prepare`` fails with exit status 2, a one-line error holding every fragment, no
    traceback and no output file."""
    capsys.readouterr()
    assert prepare(*argv) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in last, f"{fragment!r} not in {last!r}"
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.*"))
    return err


def random_seq(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list("ACGT"), n))


def check_accounting(counts: dict) -> None:
    """Every window of a class is written or dropped for a counted reason, in each split."""
    for cls in ("peaks", "negatives", "gc_negatives"):
        if cls not in counts:
            continue
        for split, row in counts[cls]["by_split"].items():
            dropped = sum(v for k, v in row.items() if k not in ("windows", "written"))
            assert row.get("windows", 0) == dropped + row.get("written", 0), (cls, split, row)


# ------------------------------------------------------------------------------------------------
# item 2: column 10 is a summit only in narrowPeak files


@pytest.fixture(scope="module")
def bed12(tmp_path_factory):
    """50 BED12 peaks (600 bp, block count 2 in column 10), each right after a 300-bp N run:
    centred on start + 2 (column 10 read as a summit) a 500-bp window is half N."""
    d = tmp_path_factory.mktemp("bed12")
    rng = np.random.default_rng(16)
    seqs, peaks, negatives = {}, [], []
    for chrom, n_peaks in (("chr1", 10), ("chr2", 10), ("chr3", 30)):
        seq = []
        for i in range(n_peaks):
            start = i * 1600 + 300
            seq += ["N" * 300, random_seq(rng, 1300)]
            peaks.append(f"{chrom}\t{start}\t{start + 600}\tp{i}\t0\t+\t{start}\t{start + 600}"
                         f"\t0\t2\t100,100,\t0,500,")
            negatives.append(f"{chrom}\t{start + 800}\t{start + 900}")
        seqs[chrom] = "".join(seq)
    return {"genome": write_fasta(d / "genome.fa", seqs), "seqs": seqs,
            "peaks": write_lines(d / "peaks.bed12", peaks), "peak_lines": peaks,
            "negatives": write_lines(d / "neg.bed", negatives), "dir": d}


def bed12_args(data: dict, out: Path, *extra) -> list:
    return ["binary", "--genome", data["genome"], "--peaks", data["peaks"], "--negatives",
            data["negatives"], "--window", 500, "--out", out, *extra]


def test_bed12_peaks_next_to_n_runs_give_50_positive_windows(bed12, tmp_path, capsys):
    out = tmp_path / "bed12.h5"
    assert prepare(*bed12_args(bed12, out)) == 0
    validate(out)
    splits = load(out)
    assert sum(int(splits[s]["y"].sum()) for s in SPLITS) == 50
    for split in SPLITS:
        coords, y = splits[split]["coords"], splits[split]["y"][:, 0]
        for start in coords["start"][y == 1]:
            assert (start - 50) % 1600 == 300  # midpoint-centred: [start + 50, start + 550)
        assert (splits[split]["x"][y == 1].sum(axis=-1) == 1).all()  # no N in them
    counts = read_attrs(out)["params"]["counts"]
    assert counts["peaks"]["centred_on"] == "midpoint"
    assert counts["peaks"]["too_many_n"] == 0 and counts["peaks"]["written"] == 50
    check_accounting(counts)


def test_declared_narrowpeak_reads_column_10_and_reports_the_drops(bed12, tmp_path, capsys):
    """--peak-format narrowPeak on the same file: column 10 is taken as the summit, every window
    is half N; the per-reason count is printed and the empty class is an error."""
    out = tmp_path / "np.h5"
    err = expect_error(bed12_args(bed12, out, "--peak-format", "narrowPeak"), out, capsys,
                       "train split has no positive windows",
                       "all 30 peak windows in it were dropped (too many n: 30)")
    assert "too many n" in err and "centred on: summit" in err  # the table on stderr


def test_peak_format_rules(tmp_path):
    from data_prep.regions import read_regions

    bed12 = write_lines(tmp_path / "a.bed", ["chr1\t100\t700\tp\t0\t+\t100\t700\t0\t2\t1,1,\t0,5,"])
    narrow = write_lines(tmp_path / "b.narrowPeak", ["chr1\t100\t700\tp\t0\t+\t1\t-1\t-1\t50"])
    gapped = write_lines(tmp_path / "c.gappedPeak",
                         ["chr1\t100\t700\tp\t0\t+\t100\t700\t0\t2\t1,1,\t0,5,\t1\t-1\t-1"])
    bed6 = write_lines(tmp_path / "d.bed", ["# header", "chr1\t100\t700\tp\t0\t-"])
    assert read_regions(bed12).centre[0] == 400  # auto: 12 columns -> midpoint
    assert read_regions(gapped).centre[0] == 400  # 15 columns -> midpoint
    assert read_regions(narrow).centre[0] == 150  # exactly 10 columns -> summit
    assert read_regions(narrow, peak_format="bed").centre[0] == 400
    assert read_regions(bed12, peak_format="narrowPeak").centre[0] == 102  # as declared
    from benchmark_rc.errors import UserError

    with pytest.raises(UserError, match=r"d\.bed line 2: .*6 columns.*--peak-format narrowPeak"):
        read_regions(bed6, "peaks", peak_format="narrowPeak")


def test_empty_negative_class_is_an_error(bed12, tmp_path, capsys):
    """Background regions that all overlap positives leave a split without negatives."""
    neg = write_lines(tmp_path / "neg.bed",
                      ["\t".join(line.split("\t")[:3]) for line in bed12["peak_lines"]])
    out = tmp_path / "o.h5"
    argv = bed12_args(bed12, out)
    argv[argv.index("--negatives") + 1] = neg
    expect_error(argv, out, capsys, "split has no negative windows",
                 "were dropped (overlapping a positive: ")


# ------------------------------------------------------------------------------------------------
# item 3: genomes with one or few chromosomes


@pytest.fixture(scope="module")
def yeast(tmp_path_factory):
    """Two chromosomes (chrIV 30 kb, chrV 20 kb), peaks every 500 bp, background in between."""
    d = tmp_path_factory.mktemp("yeast")
    rng = np.random.default_rng(4)
    sizes = {"chrIV": 30000, "chrV": 20000}
    seqs = {c: random_seq(rng, n) for c, n in sizes.items()}
    peaks = [f"{c}\t{s}\t{s + 100}" for c, n in sizes.items() for s in range(300, n - 400, 500)]
    neg = [f"{c}\t{s}\t{s + 50}" for c, n in sizes.items() for s in range(50, n - 100, 500)]
    tracks = {c: rng.poisson(1.0, n).astype(np.float64) for c, n in sizes.items()}
    bigwigs = {name: write_bigwig(d / f"{name}.bw", tracks, sizes=sizes)
               for name in ("plus", "minus", "cplus", "cminus")}
    return {"sizes": sizes, "genome": write_fasta(d / "yeast.fa", seqs), "bigwigs": bigwigs,
            "peaks": write_lines(d / "peaks.bed", peaks),
            "negatives": write_lines(d / "neg.bed", neg)}


def yeast_args(data: dict, out: Path, *extra) -> list:
    return ["binary", "--genome", data["genome"], "--peaks", data["peaks"], "--negatives",
            data["negatives"], "--window", 200, "--out", out, *extra]


def yeast_profile_args(data: dict, out: Path, *extra) -> list:
    b = data["bigwigs"]
    return ["profile", "--genome", data["genome"], "--peaks", data["peaks"], "--plus",
            b["plus"], "--minus", b["minus"], "--control-plus", b["cplus"], "--control-minus",
            b["cminus"], "--sequence-length", 300, "--output-length", 200, "--jitter-margin", 20,
            "--out", out, *extra]


def test_default_splits_on_a_yeast_genome_fail_with_what_to_pass(yeast, tmp_path, capsys):
    out = tmp_path / "y.h5"
    expect_error(yeast_args(yeast, out), out, capsys, "valid split is empty",
                 "chromosome chr1 is not in", "chromosomes: chrIV, chrV",
                 "--valid-chroms", "--valid-regions chrIV:27000-30000", "--holdout-fraction")
    expect_error(yeast_profile_args(yeast, out), out, capsys, "valid split is empty",
                 "chromosomes chr1, chr8, chr9 are not in")
    expect_error(yeast_args(yeast, out, "--valid-regions", "chrIV:0-5000"), out, capsys,
                 "test split is empty", "chromosome chr2 is not in", "--test-regions")


def brute_force_split(chrom: str, start: int, end: int, spans: dict) -> str | None:
    """The split whose positions hold all of [start, end), or None (straddles / no split)."""
    owners = {s for s, items in spans.items() for c, lo, hi in items
              if c == chrom and lo < end and start < hi}
    return owners.pop() if len(owners) == 1 and any(
        c == chrom and lo <= start and end <= hi
        for lo_hi in spans.values() for c, lo, hi in lo_hi) else None


def check_windows_in_splits(out: Path, spans: dict) -> None:
    splits = load(out)
    for split in SPLITS:
        coords = splits[split]["coords"]
        assert len(coords["start"]) > 0
        for c, s, e in zip(coords["chrom"], coords["start"], coords["end"], strict=True):
            assert brute_force_split(c, int(s), int(e), spans) == split, (split, c, s, e)


def expected_straddlers(lines: list[str], window: int, spans: dict, sizes: dict) -> int:
    n = 0
    for line in lines:
        c, s, e = line.split("\t")[:3]
        centre = (int(s) + int(e)) // 2
        lo, hi = centre - window // 2, centre - window // 2 + window
        if 0 <= lo and hi <= sizes[c] and brute_force_split(c, lo, hi, spans) is None:
            n += 1
    return n


def test_valid_and_test_regions(yeast, tmp_path, capsys):
    out = tmp_path / "regions.h5"
    # peak windows [250, 450) + 500 k: the boundaries at 5300 and 9400 cut one each
    assert prepare(*yeast_args(yeast, out, "--valid-regions", "chrIV:0-5300",
                               "--test-regions", "chrIV:5300-9400,chrV:15000-20000",
                               "--gc-negatives", 1)) == 0
    spans = {"valid": [("chrIV", 0, 5300)],
             "test": [("chrIV", 5300, 9400), ("chrV", 15000, 20000)],
             "train": [("chrIV", 9400, 30000), ("chrV", 0, 15000)]}
    check_windows_in_splits(out, spans)  # positives, BED and GC-matched negatives alike
    counts = read_attrs(out)["params"]["counts"]
    check_accounting(counts)
    peak_lines = Path(yeast["peaks"]).read_text().splitlines()
    assert counts["peaks"]["straddles_split_boundary"] == expected_straddlers(
        peak_lines, 200, spans, yeast["sizes"]) == 2
    params = read_attrs(out)["params"]
    assert params["splits"]["valid"] == "chrIV:0-5300"
    assert params["valid_regions"] == ["chrIV:0-5300"] and params["valid_chroms"] == []


def test_holdout_fraction(yeast, tmp_path):
    out = tmp_path / "holdout.h5"
    assert prepare(*yeast_args(yeast, out, "--holdout-fraction", "0.1,0.2")) == 0
    # last 10% -> valid, the 20% before it -> test (floor of exact fractions)
    spans = {"valid": [("chrIV", 27000, 30000), ("chrV", 18000, 20000)],
             "test": [("chrIV", 21000, 27000), ("chrV", 14000, 18000)],
             "train": [("chrIV", 0, 21000), ("chrV", 0, 14000)]}
    check_windows_in_splits(out, spans)
    counts = read_attrs(out)["params"]["counts"]
    check_accounting(counts)
    peak_lines = Path(yeast["peaks"]).read_text().splitlines()
    assert counts["peaks"]["straddles_split_boundary"] == expected_straddlers(
        peak_lines, 200, spans, yeast["sizes"])
    neg_lines = Path(yeast["negatives"]).read_text().splitlines()
    assert counts["negatives"]["straddles_split_boundary"] == expected_straddlers(
        neg_lines, 200, spans, yeast["sizes"]) > 0


def test_holdout_fraction_profile_keeps_jittered_windows_inside(yeast, tmp_path):
    out = tmp_path / "profile.h5"
    assert prepare(*yeast_profile_args(yeast, out, "--holdout-fraction", "0.2,0.2")) == 0
    validate(out)
    spans = {"valid": [("chrIV", 24000, 30000), ("chrV", 16000, 20000)],
             "test": [("chrIV", 18000, 24000), ("chrV", 12000, 16000)],
             "train": [("chrIV", 0, 18000), ("chrV", 0, 12000)]}
    check_windows_in_splits(out, spans)  # the stored 340-bp windows, jitter margin included
    check_accounting(read_attrs(out)["params"]["counts"])


def test_split_layout_unit():
    from data_prep.chroms import ChromAliases
    from data_prep.splits import NO_SPLIT, STRADDLES, build_layout

    sizes = {"a": 1000, "b": 999, "c": 500}
    aliases = ChromAliases(sizes, "g.fa")
    layout, record = build_layout(aliases, sizes, valid_chroms=None, test_chroms=None,
                                  train_chroms="a,b", holdout_fraction="0.1,0.1",
                                  test_regions="c:0-100", log=print)
    assert layout.intervals(1) == [("a", 900, 1000), ("b", 899, 999)]
    assert layout.intervals(2) == [("a", 800, 900), ("b", 799, 899), ("c", 0, 100)]
    chrom = np.array(["a", "a", "a", "c", "c"], dtype=object)
    got = layout.assign(chrom, np.array([0, 850, 890, 0, 50]), np.array([10, 900, 910, 100, 150]))
    np.testing.assert_array_equal(got, [0, 2, STRADDLES, 2, STRADDLES])
    assert layout.assign(np.array(["c"], object), np.array([200]), np.array([300]))[0] == NO_SPLIT
    assert record["splits"]["test"] == "a:800-900, b:799-899, c:0-100"


@pytest.mark.parametrize("extra, fragments", [
    (["--valid-regions", "chrIV:5000"], ["--valid-regions", "expected CHROM:START-END"]),
    (["--valid-regions", "chrIV:0-40000"], ["expected 0 <= START < END <= 30000"]),
    (["--valid-regions", "chrIV:0-5000", "--test-regions", "chrIV:4000-6000"],
     ["chrIV:0-5000 and chrIV:4000-6000 overlap"]),
    (["--valid-chroms", "chrV", "--test-regions", "chrV:0-100"],
     ["chrV is already wholly in the valid split"]),
    (["--valid-regions", "chrX:0-100", "--test-regions", "chrV:0-100"],
     ["--valid-regions chrX:0-100: chromosome 'chrX' is not in"]),
    (["--holdout-fraction", "0.5,0.6"], ["--holdout-fraction", "summing to less than 1"]),
    (["--holdout-fraction", "0.1"], ["expected two fractions"]),
    (["--holdout-fraction", "0.1,0"], ["test split is empty"]),
])
def test_bad_split_options(yeast, tmp_path, capsys, extra, fragments):
    out = tmp_path / "bad.h5"
    expect_error(yeast_args(yeast, out, *extra), out, capsys, *fragments)


def test_split_left_without_windows_is_explained(yeast, tmp_path, capsys):
    """A test region narrower than the window holds a peak centre but no whole window."""
    out = tmp_path / "narrow.h5"
    expect_error(yeast_args(yeast, out, "--holdout-fraction", "0.1,0",
                            "--test-regions", "chrIV:1300-1400"), out, capsys,
                 "test split has no positive windows (test = chrIV:1300-1400)",
                 "all 1 peak windows in it were dropped (straddles split boundary: 1)")


# ------------------------------------------------------------------------------------------------
# item 4: chromosome names


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    """A UCSC-named genome (chr1, chr2, chr3, chrM) and the same inputs in UCSC and Ensembl
    naming (1, 2, 3, MT), bigWigs included."""
    d = tmp_path_factory.mktemp("names")
    rng = np.random.default_rng(5)
    sizes = {"chr1": 6000, "chr2": 6000, "chr3": 8000, "chrM": 3000}
    ensembl = {"chr1": "1", "chr2": "2", "chr3": "3", "chrM": "MT"}
    seqs = {c: random_seq(rng, n) for c, n in sizes.items()}
    peaks = [(c, s) for c in sizes for s in range(600, sizes[c] - 800, 700)]
    neg = [(c, s) for c in sizes for s in range(250, sizes[c] - 500, 700)]
    tracks = {c: rng.poisson(1.0, n).astype(np.float64) for c, n in sizes.items()}
    out = {"genome": write_fasta(d / "genome.fa", seqs), "renames": ensembl, "dir": d}
    for naming, rename in (("ucsc", lambda c: c), ("ensembl", ensembl.get)):
        out[naming] = {
            "peaks": write_lines(d / f"{naming}.peaks.bed",
                                 [f"{rename(c)}\t{s}\t{s + 100}\tp\t0\t+" for c, s in peaks]),
            "negatives": write_lines(d / f"{naming}.neg.bed",
                                     [f"{rename(c)}\t{s}\t{s + 40}" for c, s in neg]),
            "blacklist": write_lines(d / f"{naming}.black.bed", [f"{rename('chr3')}\t600\t650"]),
            "bigwigs": [write_bigwig(d / f"{naming}.{k}.bw",
                                     {rename(c): t for c, t in tracks.items()},
                                     sizes={rename(c): n for c, n in sizes.items()})
                        for k in ("plus", "minus", "cplus", "cminus")],
        }
    return out


def named_args(named: dict, naming: str, out: Path, *extra, task: str = "binary") -> list:
    files = named[naming]
    split_names = ["1", "2"] if naming == "ensembl" else ["chr1", "chr2"]
    args = [task, "--genome", named["genome"], "--peaks", files["peaks"], "--blacklist",
            files["blacklist"], "--valid-chroms", split_names[0], "--test-chroms",
            split_names[1], "--out", out, *extra]
    if task == "binary":
        return args + ["--negatives", files["negatives"], "--window", 300]
    plus, minus, cplus, cminus = files["bigwigs"]
    return args + ["--plus", plus, "--minus", minus, "--control-plus", cplus,
                   "--control-minus", cminus, "--sequence-length", 300, "--output-length",
                   200, "--jitter-margin", 10]


def assert_same_dataset(a: Path, b: Path) -> None:
    for split in SPLITS:
        x, y = read_split(a, split), read_split(b, split)
        assert len(x["x"]) > 0
        for key in x:
            if key == "coords":
                for col in x[key]:
                    np.testing.assert_array_equal(x[key][col], y[key][col])
            else:
                np.testing.assert_array_equal(x[key], y[key])


@pytest.mark.parametrize("task", ["binary", "profile"])
def test_chrom_aliases_auto_matches_the_fasta_naming(named, tmp_path, task):
    ucsc, ens = tmp_path / "ucsc.h5", tmp_path / "ens.h5"
    assert prepare(*named_args(named, "ucsc", ucsc, task=task)) == 0
    assert prepare(*named_args(named, "ensembl", ens, "--chrom-aliases", "auto", task=task)) == 0
    assert_same_dataset(ucsc, ens)  # FASTA names in the coords, chrM <- MT included
    assert set(read_split(ens, "train")["coords"]["chrom"]) == {"chr3", "chrM"}
    params = read_attrs(ens)["params"]
    assert params["chrom_aliases"] == "auto"
    assert params["renamed_chromosomes"] == {"1": "chr1", "2": "chr2", "3": "chr3", "MT": "chrM"}
    assert params["counts"]["blacklist"]["blacklist_records_on_other_chromosomes"] == 0
    assert params["counts"]["peaks"]["blacklisted"] == 1  # "3\t600\t650" applied to chr3


def test_chrom_aliases_file(named, tmp_path):
    aliases = write_lines(tmp_path / "aliases.txt", ["# name in files\tname in FASTA",
                                                    *(f"{e}\t{u}" for u, e in
                                                      named["renames"].items())])
    ucsc, ens = tmp_path / "ucsc.h5", tmp_path / "ens.h5"
    assert prepare(*named_args(named, "ucsc", ucsc, task="profile")) == 0
    assert prepare(*named_args(named, "ensembl", ens, "--chrom-aliases", aliases,
                               task="profile")) == 0
    assert_same_dataset(ucsc, ens)


def test_mismatched_names_without_aliases_suggest_the_fix(named, tmp_path, capsys):
    out = tmp_path / "o.h5"
    ens, ucsc = named["ensembl"], named["ucsc"]
    # peaks: file, line, missing name and the FASTA name it matches
    argv = named_args(named, "ensembl", out, "--valid-chroms", "chr1", "--test-chroms", "chr2")
    expect_error(argv, out, capsys, f"{ens['peaks']} line 1: chromosome '1' is not in the "
                 f"genome FASTA {named['genome']}; the genome has 'chr1': pass "
                 "--chrom-aliases auto")
    # split options
    argv = named_args(named, "ucsc", out, "--valid-chroms", "1")
    expect_error(argv, out, capsys, "--valid-chroms: chromosome '1' is not in",
                 "the genome has 'chr1': pass --chrom-aliases auto")
    # the blacklist is not silently ignored when only its naming differs
    argv = named_args(named, "ucsc", out)
    argv[argv.index("--blacklist") + 1] = ens["blacklist"]
    expect_error(argv, out, capsys, f"{ens['blacklist']} line 1: chromosome '3'",
                 "the genome has 'chr3'")
    # bigWigs
    argv = named_args(named, "ucsc", out, task="profile")
    argv[argv.index("--plus") + 1] = ens["bigwigs"][0]
    expect_error(argv, out, capsys, f"{ens['bigwigs'][0]}: plus bigWig lacks chromosome 'chr1'",
                 f"first at {ucsc['peaks']} line 1", "the bigWig has '1': pass "
                 "--chrom-aliases auto")


def test_alias_file_errors(named, tmp_path, capsys):
    out = tmp_path / "o.h5"
    cases = {
        "three columns": (["1\tchr1\textra"], ["line 1: expected 2 columns", "got 3"]),
        "conflict": (["1\tchr1", "2\tchr2", "1\tchr2"], ["line 3: '1' is mapped to 'chr2'",
                                                         "line 1 maps it to 'chr1'"]),
        "empty": (["# nothing"], ["alias file is empty"]),
        "typo": (["1\tchr1", "2\tchr2", "3\tchr33", "MT\tchrM"],
                 ["chromosome '3' maps to 'chr33'", "line 3), which is not in the genome"]),
        "incomplete": (["1\tchr1", "2\tchr2", "3\tchr3"],
                       ["chromosome 'MT' is not in", "add the line 'MT<TAB>chrM'"]),
    }
    for lines, fragments in cases.values():
        path = write_lines(tmp_path / "aliases.txt", lines)
        expect_error(named_args(named, "ensembl", out, "--chrom-aliases", path), out, capsys,
                     *fragments)
    missing = tmp_path / "nope.txt"
    expect_error(named_args(named, "ensembl", out, "--chrom-aliases", missing), out, capsys,
                 str(missing), "alias file not found")


def test_auto_rule():
    from data_prep.chroms import ChromAliases

    aliases = ChromAliases(["chr1", "chrX", "chrM", "chrUn_gl000220", "2"], "g.fa", "auto")
    for name, want in {"1": "chr1", "chr1": "chr1", "Chr1": "chr1", "X": "chrX", "MT": "chrM",
                       "M": "chrM", "chrMT": "chrM", "Mito": "chrM", "Un_gl000220":
                       "chrUn_gl000220", "chr2": "2", "2": "2", "3": None, "chrY": None}.items():
        assert aliases.resolve(name) == want, name
    ambiguous = ChromAliases(["chrM", "MT"], "g.fa", "auto")
    assert ambiguous.resolve("M") is None and ambiguous.resolve("MT") == "MT"

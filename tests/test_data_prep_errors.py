"""`benchmark-rc prepare`: every kind of bad input gives a clear error (file, line, expectation),
exit status 2, no traceback and no output file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyBigWig
import pytest

from benchmark_rc import cli

SIZES = {"chr1": 3000, "chr2": 2500, "chr5": 3000}  # default splits: valid chr1, test chr2


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("prep_err")
    rng = np.random.default_rng(0)
    with open(d / "genome.fa", "w") as f:
        for chrom, n in SIZES.items():
            seq = "".join(rng.choice(list("ACGT"), n))
            f.write(f">{chrom}\n" + "".join(seq[i:i + 50] + "\n" for i in range(0, n, 50)))
    (d / "peaks.bed").write_text("chr1\t1400\t1600\nchr2\t1200\t1300\nchr5\t1400\t1600\n")
    (d / "neg.bed").write_text("chr1\t100\t200\nchr2\t2200\t2300\nchr5\t300\t400\n")
    bigwigs = {}
    for name in ("plus", "minus", "cplus", "cminus"):
        path = d / f"{name}.bw"
        bw = pyBigWig.open(str(path), "w")
        bw.addHeader(list(SIZES.items()))
        for chrom, n in SIZES.items():
            bw.addEntries(chrom, 0, values=np.ones(n).tolist(), span=1, step=1)
        bw.close()
        bigwigs[name] = path
    partial = d / "chr1_only.bw"
    bw = pyBigWig.open(str(partial), "w")
    bw.addHeader([("chr1", SIZES["chr1"])])
    bw.addEntries("chr1", 0, values=np.ones(SIZES["chr1"]).tolist(), span=1, step=1)
    bw.close()
    bigwigs["chr1_only"] = partial
    other = d / "other_assembly.bw"
    bw = pyBigWig.open(str(other), "w")
    bw.addHeader([("chr1", SIZES["chr1"]), ("chr2", SIZES["chr2"] + 1), ("chr5", SIZES["chr5"])])
    bw.close()
    bigwigs["other"] = other
    (d / "not_a_bigwig.bw").write_text("chr1\t0\t10\t1.0\n")
    bigwigs["text"] = d / "not_a_bigwig.bw"
    return {"dir": d, "genome": d / "genome.fa", "peaks": d / "peaks.bed",
            "neg": d / "neg.bed", "bw": bigwigs}


def binary(inputs, out, peaks=None, negatives=None, genome=None, extra=()):
    return ["prepare", "binary", "--genome", str(genome or inputs["genome"]), "--peaks",
            str(peaks or inputs["peaks"]), "--negatives", str(negatives or inputs["neg"]),
            "--out", str(out), "--window", "500", "--no-progress", *map(str, extra)]


def profile(inputs, out, plus=None, peaks=None):
    bw = inputs["bw"]
    return ["prepare", "profile", "--genome", str(inputs["genome"]), "--peaks",
            str(peaks or inputs["peaks"]), "--plus", str(plus or bw["plus"]), "--minus",
            str(bw["minus"]), "--control-plus", str(bw["cplus"]), "--control-minus",
            str(bw["cminus"]), "--out", str(out), "--sequence-length", "400",
            "--output-length", "300", "--jitter-margin", "10", "--no-progress"]


def expect_error(argv, out: Path, capsys, *fragments: str) -> str:
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*"))  # no temporary file left behind
    return err


BAD_BED = {
    "missing_chrom": ("chr1\t10\t20\nchrZ\t10\t20\n", ["line 2", "'chrZ'", "not in the genome"]),
    "beyond_end": ("chr1\t2900\t3100\n", ["line 1", "ends beyond the end of chr1", "3000"]),
    "start_ge_end": ("# comment\nchr1\t50\t50\n", ["line 2", "start 50 >= end 50"]),
    "non_integer": ("chr1\t10\t20\nchr1\t1e3\t2000\n", ["line 2", "'1e3' is not an integer"]),
    "negative_start": ("chr1\t-5\t20\n", ["line 1", "negative"]),
    "too_few_columns": ("chr1\t10\n", ["line 1", "at least 3", "got 2"]),
    "inconsistent_columns": ("chr1\t10\t20\nchr1\t30\t40\tname\n",
                             ["line 2", "has 4 columns", "first record has 3"]),
    "empty": ("", ["is empty"]),
    "header_only": ("track name=peaks\n# nothing\n", ["is empty"]),
    "bad_strand": ("chr1\t10\t20\tn\t0\tx\n", ["line 1", "strand", "'x'"]),
    "bad_summit": ("chr1\t10\t20\tn\t0\t+\t1\t1\t1\t15\n", ["line 1", "summit offset", "15"]),
}


@pytest.mark.parametrize("case", sorted(BAD_BED))
def test_bad_peaks_file(inputs, tmp_path, capsys, case):
    text, fragments = BAD_BED[case]
    peaks = tmp_path / f"{case}.bed"
    peaks.write_text(text)
    out = tmp_path / "out.h5"
    expect_error(binary(inputs, out, peaks=peaks), out, capsys, str(peaks), *fragments)


def test_bad_negatives_file_is_named(inputs, tmp_path, capsys):
    neg = tmp_path / "neg.bed"
    neg.write_text("chr1\t100\t200\nchr2\t300\tabc\n")
    out = tmp_path / "out.h5"
    expect_error(binary(inputs, out, negatives=neg), out, capsys, f"{neg} line 2", "'abc'")


def test_missing_and_malformed_genome(inputs, tmp_path, capsys):
    out = tmp_path / "out.h5"
    missing = tmp_path / "nope.fa"
    expect_error(binary(inputs, out, genome=missing), out, capsys, str(missing), "not found")
    ragged = tmp_path / "ragged.fa"
    ragged.write_text(">chr1\nACGTACGT\nACG\nACGTACGT\n")
    expect_error(binary(inputs, out, genome=ragged), out, capsys, str(ragged), "FASTA")
    gz = tmp_path / "plain_gzip.fa.gz"
    import gzip

    with gzip.open(gz, "wt") as f:
        f.write(">chr1\nACGT\n")
    expect_error(binary(inputs, out, genome=gz), out, capsys, str(gz), "bgzip")


def test_bigwig_lacking_a_chromosome(inputs, tmp_path, capsys):
    out = tmp_path / "out.h5"
    bw = inputs["bw"]["chr1_only"]
    expect_error(profile(inputs, out, plus=bw), out, capsys, str(bw), "lacks chromosome 'chr2'",
                 f"{inputs['peaks']} line 2")


def test_bigwig_of_another_assembly(inputs, tmp_path, capsys):
    out = tmp_path / "out.h5"
    bw = inputs["bw"]["other"]
    expect_error(profile(inputs, out, plus=bw), out, capsys, str(bw), "'chr2' length 2501",
                 "2500")


def test_not_a_bigwig(inputs, tmp_path, capsys):
    out = tmp_path / "out.h5"
    bw = inputs["bw"]["text"]
    expect_error(profile(inputs, out, plus=bw), out, capsys, str(bw), "not a bigWig")


def test_option_errors(inputs, tmp_path, capsys):
    out = tmp_path / "out.h5"
    argv = binary(inputs, out)
    i = argv.index("--negatives")
    del argv[i:i + 2]
    expect_error(argv, out, capsys, "--negatives", "--gc-negatives")
    expect_error(binary(inputs, out, extra=["--valid-chroms", "chr1", "--test-chroms", "chr1"]),
                 out, capsys, "'chr1'", "both valid and test")
    expect_error(binary(inputs, out, extra=["--max-n", "1.5"]), out, capsys, "--max-n")
    argv = profile(inputs, out)
    argv[argv.index("--output-length") + 1] = "299"
    expect_error(argv, out, capsys, "must be even")


def test_nothing_left_leaves_previous_file_untouched(inputs, tmp_path, capsys):
    out = tmp_path / "out.h5"
    out.write_bytes(b"previous complete output")
    peaks = tmp_path / "edge.bed"
    peaks.write_text("chr1\t0\t100\n")  # its 500-bp window runs off the chromosome start
    neg = tmp_path / "edge_neg.bed"
    neg.write_text("chr2\t2450\t2500\n")  # off the end
    capsys.readouterr()
    assert cli.main(binary(inputs, out, peaks=peaks, negatives=neg)) == 2
    err = capsys.readouterr().err
    assert "train split has no positive windows" in err and "Traceback" not in err
    assert out.read_bytes() == b"previous complete output"
    assert not list(tmp_path.glob(".out.h5.*"))


def test_cli_process_exit_status_without_traceback(inputs, tmp_path):
    peaks = tmp_path / "bad.bed"
    peaks.write_text("chr1\t10\t20\nchr1\tten\t20\n")
    out = tmp_path / "out.h5"
    script = Path(sys.executable).parent / "benchmark-rc"
    result = subprocess.run([str(script), *binary(inputs, out, peaks=peaks)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert f"error: {peaks} line 2: start 'ten' is not an integer" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()

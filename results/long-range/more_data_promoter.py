"""Promoter fit of the two more-data models (more-data.yaml), their paired bootstrap difference
over test sequences, and the sequence's ceilings; writes more_data_promoter.json.

    .venv/bin/python results/long-range/more_data_promoter.py runs/long-range-8k
"""

import json
import sys
from pathlib import Path

import numpy as np

from benchmark_rc.attribution.targets import TrackTarget, predict_target
from benchmark_rc.fileio import atomic_write_text
from benchmark_rc.interpret.long_range import oracle_promoter_fit, promoter_counts
from benchmark_rc.registry import load_model

RUNS = {"enformer": "long-range-8k-standard-s1535",
        "conv-only": "long-range-8k-convonly-standard-s1535"}
RESAMPLES, SEED, REACH, BINS = 2000, 0, 259, 2

sweep = Path(sys.argv[1])
data = sweep / "data" / "long-range-8k.h5"
rows, observed, x = promoter_counts(data, "test", BINS)
fit = {}
for label, run in RUNS.items():
    model = load_model(sweep / "runs" / run / "model.keras", compile=False)
    fit[label] = predict_target(model, x.astype(np.float32), logits=False,
                                output=TrackTarget("tracks", 0, bins=BINS)).astype(np.float64)


def pearson(pred, i):
    return float(np.corrcoef(pred[i], observed[i])[0, 1])


everything = np.arange(len(observed))
rng = np.random.default_rng(SEED)
diffs = []
for _ in range(RESAMPLES):
    i = rng.integers(0, len(observed), len(observed))
    diffs.append(pearson(fit["enformer"], i) - pearson(fit["conv-only"], i))
out = {"runs": RUNS, "data": str(data), "split": "test", "bins": BINS, "n": len(observed),
       "promoter_pearson": {k: pearson(v, everything) for k, v in fit.items()},
       "difference": pearson(fit["enformer"], everything) - pearson(fit["conv-only"], everything),
       "bootstrap": {"resamples": RESAMPLES, "seed": SEED,
                     "ci95": [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))],
                     "fraction_le_0": float(np.mean(np.asarray(diffs) <= 0))},
       "ceilings": oracle_promoter_fit(data, REACH, "test", BINS)}
atomic_write_text(Path(__file__).with_name("more_data_promoter.json"), json.dumps(out, indent=2))
print(json.dumps(out, indent=2))

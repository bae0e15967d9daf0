#!/usr/bin/env bash
# The training sweep of results/koo, as run (resumable: rerun to continue). One CPU thread:
# the machine had 2 cores, another long sweep used one, and the load average stayed near 8.
# Order: the comparisons that matter most first, so an unfinished sweep still answers them:
# seed 1535 standard (relu vs exponential, CNN-dist then CNN-deep), then posthoc (the rcaug
# run conjoined), then rcps, then seeds 1780 and 2143 of everything.
set -euo pipefail
OUT=${OUT:-runs/koo}
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_ENABLE_ONEDNN_OPTS=1
export TF_CPP_MIN_LOG_LEVEL=2
for strategy in standard posthoc rcps; do
  .venv/bin/benchmark-rc sweep --preset koo-cpu --seeds 1535 --strategies "$strategy" \
    --out "$OUT" --no-progress --no-report
done
for seed in 1780 2143; do  # then seed by seed, so a partial sweep has every strategy of a seed
  .venv/bin/benchmark-rc sweep --preset koo-cpu --seeds "$seed" --out "$OUT" --no-progress \
    --no-report
done

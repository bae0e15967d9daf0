#!/usr/bin/env bash
# sim1000 of results/paper-sim, as run (resumable: rerun to continue; finished runs are
# skipped). Seed by seed, the paper's first 5 seeds first, default layers then the original
# stack's RCPS (run ids -original), one TensorFlow thread, oneDNN kernels on (README.md).
# On a fresh machine first: mkdir -p runs/paper-sim && cp results/paper-sim/results.csv runs/paper-sim/
set -euo pipefail
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_ENABLE_ONEDNN_OPTS=1
for seed in 1535 1780 2143 3578 4652 6117 6806 7626 9295 9999; do
  benchmark-rc sweep --preset paper-sim \
    --strategies standard,rcaug,posthoc,posthoc-prob,conjoined,rcps,rcps-half --seeds "$seed" \
    --out runs/paper-sim --no-progress --no-report
  benchmark-rc sweep --preset paper-sim --strategies rcps --compat original --seeds "$seed" \
    --out runs/paper-sim --no-progress --no-report
done
# then: cp runs/paper-sim/results.csv results/paper-sim/ && benchmark-rc report results/paper-sim
#       && benchmark-rc compare-paper results/paper-sim

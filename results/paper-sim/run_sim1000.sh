#!/usr/bin/env bash
# sim1000 of results/paper-sim, as run (resumable: rerun to continue; finished runs are
# skipped). One TensorFlow thread, oneDNN kernels on (README.md). Two passes over the seeds:
#   1. rcaug (which also gives posthoc and posthoc-prob) and rcps for the paper's first 5 seeds:
#      the baselines results/irrep-sim compares its sim1000 runs against;
#   2. every strategy seed by seed, default layers then the original stack's RCPS (run ids
#      -original); runs pass 1 finished are skipped.
# On a fresh machine first: mkdir -p runs/paper-sim && cp results/paper-sim/results.csv runs/paper-sim/
set -euo pipefail
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_ENABLE_ONEDNN_OPTS=1
sweep() { benchmark-rc sweep --preset paper-sim --out runs/paper-sim --no-progress --no-report "$@"; }
for seed in 1535 1780 2143 3578 4652; do
  sweep --strategies rcaug,posthoc,posthoc-prob,rcps --seeds "$seed"
done
for seed in 1535 1780 2143 3578 4652 6117 6806 7626 9295 9999; do
  sweep --strategies standard,rcaug,posthoc,posthoc-prob,conjoined,rcps,rcps-half --seeds "$seed"
  sweep --strategies rcps --compat original --seeds "$seed"
done
# then: cp runs/paper-sim/results.csv results/paper-sim/ && benchmark-rc report results/paper-sim
#       && benchmark-rc compare-paper results/paper-sim

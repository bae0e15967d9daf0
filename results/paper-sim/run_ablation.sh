#!/usr/bin/env bash
# Which quirk of the original stack makes the paper's RCPS numbers (issue 11; docs/results.md):
# sim200 RCPS with only the original's batch norms (original-bn: affine RC batch norm without
# statistics, correct RC convolutions), then only its 2*conv RC convolutions (original-conv, the
# control: a batch norm that normalises cancels the factor 2). Same data, protocol and seeds as
# the rest of results/paper-sim; rows land in the same results.csv (run ids -original-bn,
# -original-conv). Resumable. On a fresh machine first:
#   mkdir -p runs/paper-sim && cp results/paper-sim/results.csv runs/paper-sim/
set -euo pipefail
# oneDNN off, as every sim200 row of results/paper-sim ran (TensorFlow's default on this CPU)
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_ENABLE_ONEDNN_OPTS=0
for compat in original-bn original-conv; do
  benchmark-rc sweep --config results/paper-sim/sim200.yaml --compat "$compat" \
    --out runs/paper-sim --no-progress --no-report
done

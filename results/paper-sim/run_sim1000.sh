#!/usr/bin/env bash
# sim1000 of results/paper-sim, as run (resumable: rerun to continue; finished runs are
# skipped). One TensorFlow thread, oneDNN kernels on (README.md). Usage: run_sim1000.sh [I/N]
# runs shard I of N (default 0/1, everything): one shard per core, all into runs/paper-sim
# (shards share results.csv safely). Three passes:
#   1. rcaug (which also gives posthoc and posthoc-prob) and rcps for the paper's first 5 seeds:
#      the baselines results/irrep-sim compares its sim1000 runs against (ran unsharded);
#   2. the other strategies for the same 5 seeds, the original stack's RCPS first (run ids
#      -original): the paper's RCPS figure is the one our default layers do not reach;
#   3. every strategy for the paper's other 5 seeds: the original stack's RCPS, then strategy by
#      strategy, shortest first, so that whole strategies reach 10 seeds early; (strategy, seed)
#      items alternate between the shards (--shard splits the preset's jobs, sim200's included,
#      unevenly for one seed at a time).
# On a fresh machine first: mkdir -p runs/paper-sim && cp results/paper-sim/results.csv runs/paper-sim/
set -euo pipefail
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_ENABLE_ONEDNN_OPTS=1
SHARD=${1:-0/1}
sweep() { benchmark-rc sweep --preset paper-sim --out runs/paper-sim --no-progress --no-report "$@"; }
FIRST=1535,1780,2143,3578,4652
LAST=6117,6806,7626,9295,9999
ALL=standard,rcaug,posthoc,posthoc-prob,conjoined,rcps,rcps-half
[ "$SHARD" = 0/1 ] && sweep --strategies rcaug,posthoc,posthoc-prob,rcps --seeds "$FIRST"
sweep --strategies rcps --compat original --seeds "$FIRST" --shard "$SHARD"
sweep --strategies "$ALL" --seeds "$FIRST" --shard "$SHARD"
sweep --strategies rcps --compat original --seeds "$LAST" --shard "$SHARD"
item=0
for strategies in rcps-half standard rcaug,posthoc,posthoc-prob rcps conjoined; do
  for seed in ${LAST//,/ }; do
    [ $((item % ${SHARD#*/})) = "${SHARD%/*}" ] && sweep --strategies "$strategies" --seeds "$seed"
    item=$((item + 1))
  done
done
# then: cp runs/paper-sim/results.csv results/paper-sim/ && benchmark-rc report results/paper-sim
#       && benchmark-rc compare-paper results/paper-sim

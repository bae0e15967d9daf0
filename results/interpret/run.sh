#!/usr/bin/env bash
# results/interpret, as run (resumable: rerun to continue). The interpret-cpu preset, one seed
# at a time so that every partial state is whole seeds; then `interpret` (--n-seqs 100, as the
# preset says) on whatever has finished: its per-run caches make a rerun cheap. One TensorFlow
# thread, oneDNN on. On a fresh machine first: mkdir -p runs/interpret and copy
# results/interpret/results.csv there (and results/interpret/interpret_runs/* to runs/interpret/interpret/runs/).
set -euo pipefail
OUT=${OUT:-runs/interpret}
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_ENABLE_ONEDNN_OPTS=1
export TF_CPP_MIN_LOG_LEVEL=2
# SHARD=I/N (I counts from 0): one of N processes sharing OUT (sweep --shard)
for seed in 1535 1780 2143; do
  .venv/bin/benchmark-rc sweep --preset interpret-cpu --seeds "$seed" --out "$OUT" \
    ${SHARD:+--shard "$SHARD"} --no-progress --no-report
done
# then the scores (resumable: per-run caches in $OUT/interpret/runs):
.venv/bin/benchmark-rc interpret --sweep "$OUT" --n-seqs 100 --no-filters

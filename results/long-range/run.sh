#!/usr/bin/env bash
# results/long-range, as run (resumable: rerun to continue). The long-range-cpu preset (enformer
# and its conv-only ablation, n_transformer=0, on `simulate long-range` at its defaults: 2,000
# sequences of 4,096 bp, 24 output bins of 128 bp; <= 10 epochs; seed 1535), standard first on
# both so the ablation question is answered first, then rcps, conjoined, rcaug (+ posthoc); then
# rcps with symmetric-only relative positions (symmetric.yaml, its own sweep directory
# OUT-symmetric). One TensorFlow thread, oneDNN on. On a fresh machine first: mkdir -p
# runs/long-range runs/long-range-symmetric, then copy results/long-range/results.csv and
# symmetric.csv there as results.csv. More seeds: SEEDS=1780,2143 (the symmetric sweep is then
# skipped); SHARD=I/N (I counts from 0) splits each call's jobs over N processes sharing OUT.
set -euo pipefail
OUT=${OUT:-runs/long-range}
SEEDS=${SEEDS:-}
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_ENABLE_ONEDNN_OPTS=1
export TF_CPP_MIN_LOG_LEVEL=2
for strategies in standard rcps conjoined rcaug,posthoc; do
  .venv/bin/benchmark-rc sweep --preset long-range-cpu --strategies "$strategies" --out "$OUT" \
    ${SEEDS:+--seeds "$SEEDS"} ${SHARD:+--shard "$SHARD"} --no-progress --no-report
done
[ -n "$SEEDS" ] && exit 0
.venv/bin/benchmark-rc sweep --config results/long-range/symmetric.yaml --out "$OUT-symmetric" \
  --no-progress --no-report

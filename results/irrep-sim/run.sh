#!/usr/bin/env bash
# results/irrep-sim, as run (resumable). sim200's 5 seeds first (sim200.yaml: paper-sim's sim200
# dataset only), then the reduced profile task seed by seed (profile.yaml, into its own
# directory), then sim1000 (irrep's 5 seeds, then irrep-kmer's); one TensorFlow thread, oneDNN
# kernels on.
# On a fresh machine first: mkdir -p runs/irrep-sim && cp results/irrep-sim/results.csv runs/irrep-sim/
set -euo pipefail
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_ENABLE_ONEDNN_OPTS=1
benchmark-rc sweep --config results/irrep-sim/sim200.yaml --out runs/irrep-sim --no-progress --no-report
for seed in 1535 1780 2143 3578 4652; do
  benchmark-rc sweep --config results/irrep-sim/profile.yaml --seeds "$seed" \
    --out runs/irrep-profile --no-progress --no-report
done
# irrep before irrep-kmer: an irrep-kmer epoch costs ~3.3x an irrep epoch on this CPU (its first
# layer reads 64 3-mer channels; sim200 epoch times), so the 5 irrep seeds come first
for strategy in irrep irrep-kmer; do
  for seed in 1535 1780 2143 3578 4652; do
    benchmark-rc sweep --preset paper-sim --strategies "$strategy" --seeds "$seed" \
      --out runs/irrep-sim --no-progress --no-report
  done
done

#!/usr/bin/env bash
# Koo interpretability scores of every finished run of the results/koo sweep (resumable: rerun
# after more runs finish). 100 positive test sequences per run for the attributions (Koo: 500;
# CPU), 10 position-shuffled references, logits explained; filters on the whole test split.
# Koo's five methods and definition without the RC pass, as the committed per-run caches
# (interpret_runs/) were made.
set -euo pipefail
OUT=${OUT:-runs/koo}
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 TF_ENABLE_ONEDNN_OPTS=1
export TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/benchmark-rc interpret --sweep "$OUT" --out "$OUT/interpret" --n-seqs 100 --n-refs 10 \
  --methods saliency,input_x_gradient,integrated_gradients,deepshap,ism --definitions koo --no-rc

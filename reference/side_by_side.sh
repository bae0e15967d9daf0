#!/usr/bin/env bash
# Side-by-side training (issue 19, item 4): the paper's sim200 models through the original stack
# (reference/train_original.py under .venv-legacy) and through benchmark_rc (`benchmark-rc train`
# with --compat original and with the default layers), on the same dataset and seeds.
#
#   reference/side_by_side.sh OUT            # from the repository root; resumable
#
# Runs one training at a time, single-threaded (TF_NUM_INTRAOP_THREADS=1,
# TF_NUM_INTEROP_THREADS=1; the original side sets the same in its tf.ConfigProto), with
# TF_ENABLE_ONEDNN_OPTS unset (TensorFlow's default, as results/paper-sim was made). A run whose
# result file exists is skipped; an unfinished benchmark_rc run resumes from its checkpoint, an
# unfinished original run starts over; a failed run is logged and the next one started (rerun
# the script to retry it). benchmark_rc runs from a snapshot of the committed code (git archive
# HEAD into OUT/code, made once and reused on resume, its commit in OUT/code/COMMIT), so edits of
# the working tree during the hours of training do not reach them. Layout:
#   OUT/code/                                       the benchmark_rc snapshot (PYTHONPATH)
#   OUT/sim200.h5                                   benchmark-rc simulate paper --length 200 --seed 1234
#   OUT/original/<standard|rcps|siamese>-s<seed>/   history.csv, result.json, test_pred.npy, model.h5
#   OUT/ours-original/<strategy>-s<seed>/           benchmark-rc train ... --compat original; test.json
#   OUT/ours-default/<strategy>-s<seed>/            benchmark-rc train ... ; test.json
# Then: .venv/bin/python reference/side_by_side_report.py OUT results/original-vs-ours
# (runs not in OUT keep their committed rows). COMMIT=REV makes the snapshot from REV instead of
# HEAD, to continue with the code the earlier runs used.
set -uo pipefail
OUT=${1:?usage: reference/side_by_side.sh OUT}
SEEDS=${SEEDS:-"1535 1780"}
# original model:our strategy pairs (restrict both to run only what results/ marks pending)
MODELS=${MODELS:-"standard:standard rcps:rcps siamese:conjoined"}
PY=${PY:-.venv/bin/python}
LEGACY_PY=${LEGACY_PY:-.venv-legacy/bin/python}
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
unset TF_ENABLE_ONEDNN_OPTS
mkdir -p "$OUT"
if [ ! -f "$OUT/code/COMMIT" ]; then
  rm -rf "$OUT/code" && mkdir -p "$OUT/code"
  git archive "${COMMIT:-HEAD}" | tar -x -C "$OUT/code" \
    && git rev-parse "${COMMIT:-HEAD}" > "$OUT/code/COMMIT" || exit 1
fi
brc() { PYTHONPATH=$OUT/code "$PY" "$OUT/code/benchmark_rc_launcher.py" "$@"; }
DATA=$OUT/sim200.h5
if [ ! -f "$DATA" ]; then
  brc simulate paper --length 200 --seed 1234 --out "$DATA.partial.h5" || exit 1
  mv "$DATA.partial.h5" "$DATA"
fi

log() { echo "$(date -u +%FT%TZ) $*"; }

original() {  # model seed
  local dir=$OUT/original/$1-s$2
  [ -f "$dir/result.json" ] && { log "skip original $1 s$2"; return; }
  rm -rf "$dir"
  log "start original $1 s$2"
  "$LEGACY_PY" reference/train_original.py --data "$DATA" --model "$1" --seed "$2" \
    --out "$dir" || log "FAILED original $1 s$2"
}

ours() {  # compat strategy seed
  local dir=$OUT/ours-$1/$2-s$3
  [ -f "$dir/test.json" ] && { log "skip ours-$1 $2 s$3"; return; }
  log "start ours-$1 $2 s$3"
  local compat=()
  [ "$1" = original ] && compat=(--compat original)
  brc train --data "$DATA" --arch sim --strategy "$2" --seed "$3" --out "$dir" \
    "${compat[@]}" --no-progress \
    && brc evaluate --model "$dir" --data "$DATA" --split test --out "$dir/test.json" \
    || log "FAILED ours-$1 $2 s$3"
}

for seed in $SEEDS; do
  for pair in $MODELS; do
    model=${pair%%:*} strategy=${pair##*:}
    original "$model" "$seed"
    ours original "$strategy" "$seed"
    ours default "$strategy" "$seed"
  done
done
log "all done"

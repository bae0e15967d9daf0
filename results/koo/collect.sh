#!/usr/bin/env bash
# Copy the committed files of results/koo from the scratch sweep directory.
set -euo pipefail
OUT=${OUT:-runs/koo}
DEST=results/koo
cp "$OUT/results.csv" "$DEST/results.csv"
cp "$OUT/interpret/table.md" "$DEST/interpret_table.md"
cp "$OUT/interpret/attribution.csv" "$OUT/interpret/filters.csv" "$DEST/"
mkdir -p "$DEST/interpret_runs"  # per-run caches: restore.sh resumes from them
cp "$OUT"/interpret/runs/*.json "$DEST/interpret_runs/"
rm -rf "$DEST/filters" && mkdir -p "$DEST/filters"
for d in "$OUT"/interpret/filters/*/; do
  run=$(basename "$d"); mkdir -p "$DEST/filters/$run"
  cp "$d/report.md" "$d/filters.csv" "$d/filters.meme" "$DEST/filters/$run/"
done
first=$(ls -d "$OUT"/runs/*/config.json | head -1)
.venv/bin/python - "$first" > "$DEST/versions.json" <<'PY'
import json, platform, os, sys
c = json.load(open(sys.argv[1]))
print(json.dumps({"versions": c.get("versions"), "machine": platform.machine(),
                  "cpus": os.cpu_count(), "threads": "TF intra/inter-op 1"}, indent=2))
PY
.venv/bin/python results/koo/key_table.py  # the README tables (key_table.md)

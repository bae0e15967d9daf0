#!/usr/bin/env bash
# Recreate the scratch sweep directory from the committed files (runs/ is not in git), so that
# run_sweep.sh and run_interpret.sh continue where the last session stopped: the sweep rows whose
# interpretation is committed (interpret_runs/RUN.json, the per-run cache of `benchmark-rc
# interpret`, and filters/RUN/) are kept and skipped; a row without them is dropped, so its model
# (not committed) is trained again.
set -euo pipefail
OUT=${OUT:-runs/koo}
SRC=results/koo
mkdir -p "$OUT/interpret/runs" "$OUT/interpret/filters"
cp "$SRC"/interpret_runs/*.json "$OUT/interpret/runs/"
cp -r "$SRC"/filters/* "$OUT/interpret/filters/"
.venv/bin/python - "$SRC" "$OUT" <<'PY'
import sys
from pathlib import Path
import pandas as pd
src, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = pd.read_csv(src / "results.csv", dtype=str)
done = {p.stem for p in (src / "interpret_runs").glob("*.json")}
keep = rows[rows["run_id"].isin(done)]
print(f"restored {len(keep)} interpreted runs; {len(rows) - len(keep)} to retrain: "
      f"{sorted(set(rows['run_id']) - done)}")
keep.to_csv(out / "results.csv", index=False)
PY

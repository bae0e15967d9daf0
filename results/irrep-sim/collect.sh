#!/usr/bin/env bash
# Copy the committed files of results/irrep-sim from the scratch sweep directories and write the
# reports: the sim rows beside paper-sim's runs of the same seeds (report --compare-with, no
# retraining of the baselines), the profile task (its own irrep / rcps / rcaug / posthoc runs).
set -euo pipefail
DEST=results/irrep-sim
cp runs/irrep-sim/results.csv "$DEST/results.csv"
benchmark-rc report "$DEST" --compare-with results/paper-sim
if [ -f runs/irrep-profile/results.csv ]; then
  mkdir -p "$DEST/profile"
  cp runs/irrep-profile/results.csv runs/irrep-profile/sweep.json "$DEST/profile/"
  benchmark-rc report "$DEST/profile"
fi

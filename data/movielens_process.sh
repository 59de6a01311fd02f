#!/usr/bin/env bash
# Usage: bash data/movielens_process.sh [CONFIG.yaml] [--key value ...]   (see data/movielens_process.py)
set -euo pipefail
exec "${PYTHON:-python3}" "$(dirname "$0")/movielens_process.py" "$@"

#!/usr/bin/env bash
# Usage: bash data/amazon23_data_process.sh [CONFIG.yaml] [--key value ...]   (see data/amazon23_data_process.py)
set -euo pipefail
exec "${PYTHON:-python3}" "$(dirname "$0")/amazon23_data_process.py" "$@"

#!/usr/bin/env bash
# Usage: bash data/lcrec_process.sh [CONFIG.yaml] [--key value ...]   (see data/lcrec_process.py)
set -euo pipefail
exec "${PYTHON:-python3}" "$(dirname "$0")/lcrec_process.py" "$@"

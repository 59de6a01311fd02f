#!/usr/bin/env bash
# Usage: bash data/synthetic.sh [CONFIG.yaml] [--key value ...]   (see data/synthetic.py)
set -euo pipefail
exec "${PYTHON:-python3}" "$(dirname "$0")/synthetic.py" "$@"

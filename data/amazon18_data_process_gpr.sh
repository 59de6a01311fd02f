#!/usr/bin/env bash
# Usage: bash data/amazon18_data_process_gpr.sh CONFIG.yaml [--key value | --gpr.key value ...]   (see data/amazon18_data_process_gpr.py)
set -euo pipefail
exec "${PYTHON:-python3}" "$(dirname "$0")/amazon18_data_process_gpr.py" "$@"

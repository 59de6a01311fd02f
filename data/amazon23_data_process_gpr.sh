#!/usr/bin/env bash
# Usage: bash data/amazon23_data_process_gpr.sh CONFIG.yaml [--key value | --gpr.key value ...]   (see data/amazon23_data_process_gpr.py)
set -euo pipefail
exec "${PYTHON:-python3}" "$(dirname "$0")/amazon23_data_process_gpr.py" "$@"

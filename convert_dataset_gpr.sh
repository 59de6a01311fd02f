#!/usr/bin/env bash
# Usage: bash convert_dataset_gpr.sh CONFIG.yaml [--key value | --gpr.key value ...]   (see convert_dataset_gpr.py)
set -euo pipefail
exec python "$(dirname "$0")/convert_dataset_gpr.py" "$@"

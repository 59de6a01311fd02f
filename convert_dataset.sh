#!/usr/bin/env bash
# Usage: bash convert_dataset.sh CONFIG.yaml [--key value ...]   (see convert_dataset.py)
set -euo pipefail
exec python "$(dirname "$0")/convert_dataset.py" "$@"

#!/usr/bin/env bash
# Usage: bash rq/generate_indices_plus.sh [CONFIG.yaml] [--key value ...]   (see rq/generate_indices_plus.py)
set -euo pipefail
exec python "$(dirname "$0")/generate_indices_plus.py" "$@"

#!/usr/bin/env bash
# Usage: bash rq/rqkmeans_constrained.sh [CONFIG.yaml] [--key value ...]   (see rq/rqkmeans_constrained.py)
set -euo pipefail
exec python "$(dirname "$0")/rqkmeans_constrained.py" "$@"

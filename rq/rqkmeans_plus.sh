#!/usr/bin/env bash
# Usage: bash rq/rqkmeans_plus.sh [CONFIG.yaml] [--key value ...]   (see rq/rqkmeans_plus.py)
set -euo pipefail
exec python "$(dirname "$0")/rqkmeans_plus.py" "$@"

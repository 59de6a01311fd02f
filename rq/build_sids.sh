#!/usr/bin/env bash
# Usage: bash rq/build_sids.sh [CONFIG.yaml] [--key value ...]   (see rq/build_sids.py)
set -euo pipefail
exec python "$(dirname "$0")/build_sids.py" "$@"

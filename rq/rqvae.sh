#!/usr/bin/env bash
# Usage: bash rq/rqvae.sh [CONFIG.yaml] [--key value ...]   (see rq/rqvae.py)
set -euo pipefail
exec python "$(dirname "$0")/rqvae.py" "$@"

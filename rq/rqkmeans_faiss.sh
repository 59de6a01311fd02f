#!/usr/bin/env bash
# Usage: bash rq/rqkmeans_faiss.sh [CONFIG.yaml] [--key value ...]   (see rq/rqkmeans_faiss.py)
set -euo pipefail
exec python "$(dirname "$0")/rqkmeans_faiss.py" "$@"

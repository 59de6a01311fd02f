#!/usr/bin/env bash
# Usage: bash rq/rqkmeans_faiss.sh [CONFIG.yaml] [--key value ...]   (see rq/rqkmeans_faiss.py)
exec bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/launch.sh" rqkmeans_faiss "$@"

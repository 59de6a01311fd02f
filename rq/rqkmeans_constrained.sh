#!/usr/bin/env bash
# Usage: bash rq/rqkmeans_constrained.sh [CONFIG.yaml] [--key value ...]   (see rq/rqkmeans_constrained.py)
exec bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/launch.sh" rqkmeans_constrained "$@"

#!/usr/bin/env bash
# Usage: bash rq/rqkmeans_plus.sh [CONFIG.yaml] [--key value ...]   (see rq/rqkmeans_plus.py)
exec bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/launch.sh" rqkmeans_plus "$@"

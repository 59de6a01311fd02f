#!/usr/bin/env bash
# Usage: bash data/movielens_process.sh [CONFIG.yaml] [--key value ...]   (see data/movielens_process.py)
exec bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/launch.sh" movielens_process "$@"

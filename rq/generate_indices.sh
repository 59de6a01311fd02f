#!/usr/bin/env bash
# Usage: bash rq/generate_indices.sh [CONFIG.yaml] [--key value ...]   (see rq/generate_indices.py)
exec bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/launch.sh" generate_indices "$@"

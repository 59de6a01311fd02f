#!/usr/bin/env bash
# Usage: bash rq/build_sids.sh [CONFIG.yaml] [--key value ...]   (see rq/build_sids.py)
exec bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/launch.sh" build_sids "$@"

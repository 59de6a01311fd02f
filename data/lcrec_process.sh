#!/usr/bin/env bash
# Usage: bash data/lcrec_process.sh [CONFIG.yaml] [--key value ...]   (see data/lcrec_process.py)
exec bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/launch.sh" lcrec_process "$@"

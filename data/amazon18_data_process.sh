#!/usr/bin/env bash
# Usage: bash data/amazon18_data_process.sh [CONFIG.yaml] [--key value ...]   (see data/amazon18_data_process.py)
exec bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/launch.sh" amazon18_data_process "$@"

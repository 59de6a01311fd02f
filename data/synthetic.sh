#!/usr/bin/env bash
# Usage: bash data/synthetic.sh [CONFIG.yaml] [--key value ...]   (see data/synthetic.py)
exec bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/launch.sh" synthetic "$@"

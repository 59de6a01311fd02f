#!/usr/bin/env bash
# Usage: bash rq/rqvae.sh [CONFIG.yaml] [--key value ...]   (see rq/rqvae.py)
exec bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/launch.sh" rqvae "$@"

#!/usr/bin/env bash
# Usage: bash rq/text2emb/amazon_text2emb.sh CONFIG.yaml [--key value ...]
# Several processes (GPUs; CPU ranks where none is visible): NUM_PROCESSES=8 bash rq/text2emb/amazon_text2emb.sh CONFIG.yaml
set -euo pipefail
script="$(dirname "$0")/amazon_text2emb.py"
if [[ "${NUM_PROCESSES:-1}" -gt 1 ]]; then
  exec accelerate launch --num_processes "$NUM_PROCESSES" "$script" "$@"
fi
exec python "$script" "$@"

#!/usr/bin/env bash
# GPR evaluation (GPR prompt, optional type-prefixed trie).
#   bash evaluate_gpr.sh CONFIG.yaml [--evaluate.key value | --gpr.key value ...]
#   NUM_PROCESSES=4 bash evaluate_gpr.sh CONFIG.yaml ...     # accelerate launch, one shard per process
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ "${NUM_PROCESSES:-1}" -gt 1 ]]; then
    launch_args=(--multi_gpu --num_processes "$NUM_PROCESSES" --num_machines 1 --mixed_precision no --dynamo_backend no)
    exec accelerate launch "${launch_args[@]}" "$HERE/evaluate_gpr.py" "$@"
fi
exec python "$HERE/evaluate_gpr.py" "$@"

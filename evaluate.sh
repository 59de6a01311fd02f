#!/usr/bin/env bash
# Constrained beam-search evaluation of a checkpoint.
#   bash evaluate.sh CONFIG.yaml [--model_path DIR --num_beams 50 --batch_size 8 --output_dir DIR ...]
#   NUM_PROCESSES=4 bash evaluate.sh CONFIG.yaml ...     # accelerate launch, one shard per process
#   bash evaluate.sh metrics --result_json R.json --info_file I.txt
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NUM_PROCESSES="${NUM_PROCESSES:-1}"

if [[ "${1:-}" != "metrics" && "$NUM_PROCESSES" -gt 1 ]]; then
    # --multi_gpu selects accelerate's torchrun launcher; on a CPU-only machine it starts
    # NUM_PROCESSES gloo ranks (accelerate's --cpu flag alone would start a single process).
    launch_args=(--multi_gpu --num_processes "$NUM_PROCESSES" --num_machines 1 --mixed_precision no --dynamo_backend no
                 --main_process_port "${MAIN_PROCESS_PORT:-29521}")
    exec accelerate launch "${launch_args[@]}" "$HERE/evaluate.py" "$@"
fi
exec python "$HERE/evaluate.py" "$@"

#!/usr/bin/env bash
# SFT stage.  Usage:  bash sft.sh CONFIG.yaml [--key value ...]
#
#   bash sft.sh configs/ml-100k.yaml                                  # one process (CPU or one GPU)
#   NUM_PROCESSES=8 bash sft.sh CONFIG                                # DDP over 8 GPUs (accelerate launch)
#   NUM_PROCESSES=8 DEEPSPEED=zero2 bash sft.sh CONFIG                # DeepSpeed ZeRO-2 (or zero3)
#   NUM_PROCESSES=2 bash sft.sh CONFIG          # without a visible GPU: 2 CPU processes (gloo), DEEPSPEED too
#                                               # (CUDA_VISIBLE_DEVICES= forces CPU on a GPU node)
#
# ACCELERATE_CONFIG overrides the accelerate config file; MAIN_PROCESS_PORT the rendezvous port;
# SFT_SCRIPT the training script (sft_gpr.sh sets sft_gpr.py).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

NUM_PROCESSES="${NUM_PROCESSES:-1}"
SFT_SCRIPT="$HERE/${SFT_SCRIPT:-sft.py}"
if [[ "$NUM_PROCESSES" -le 1 && -z "${DEEPSPEED:-}" ]]; then
    exec python "$SFT_SCRIPT" "$@"
fi

if [[ -n "${DEEPSPEED:-}" ]]; then
    default_config="$HERE/configs/accelerate/deepspeed_${DEEPSPEED}.yaml"
else
    default_config="$HERE/configs/accelerate/multi_gpu.yaml"
fi
config="${ACCELERATE_CONFIG:-$default_config}"
if [[ ! -f "$config" ]]; then
    echo "sft.sh: accelerate config $config not found (DEEPSPEED must be zero2 or zero3)" >&2
    exit 2
fi
exec accelerate launch --config_file "$config" --num_processes "$NUM_PROCESSES" \
    --main_process_port "${MAIN_PROCESS_PORT:-29511}" "$SFT_SCRIPT" "$@"

#!/usr/bin/env bash
# RL stage (GRPO with constrained rollouts).  Usage:
#   bash rl.sh CONFIG.yaml [--key value ...]              one process (CPU, or one GPU)
#   NPROC=8 bash rl.sh CONFIG.yaml [...]                  8 GPUs: accelerate + DeepSpeed ZeRO-2 (run from the repo
#                                                         root; ACCELERATE_CONFIG, default
#                                                         configs/accelerate/deepspeed_zero2.yaml -> configs/deepspeed/zero2.json)
#   NPROC=2 CPU=1 bash rl.sh CONFIG.yaml [...]            2 CPU processes (gloo DDP through torchrun; also on a GPU node)
#   NPROC=2 CPU=1 ACCELERATE_CONFIG=configs/accelerate/deepspeed_zero2.yaml bash rl.sh ...   ZeRO-2 on 2 CPU processes
# per_device_train_batch_size counts completions per process (a multiple of num_generations).
# RL_SCRIPT picks the training script (rl_gpr.sh sets rl_gpr.py).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NPROC="${NUM_PROCESSES:-${NPROC:-1}}"   # NUM_PROCESSES, as in sft.sh/evaluate.sh (NPROC kept for compatibility)
PORT="${MAIN_PROCESS_PORT:-${MAIN_PORT:-29503}}"  # MAIN_PROCESS_PORT as in sft.sh/evaluate.sh
SCRIPT="$HERE/${RL_SCRIPT:-rl.py}"
if [[ "$NPROC" -le 1 ]]; then
  exec python "$SCRIPT" "$@"
fi
if [[ "${CPU:-0}" == "1" ]]; then
  # accelerate's --cpu flag would start a single process; its torchrun launcher (multi-GPU or DeepSpeed config)
  # starts NPROC gloo ranks when no GPU is visible.
  export CUDA_VISIBLE_DEVICES=""
  DEFAULT_CONFIG="$HERE/configs/accelerate/multi_gpu.yaml"
else
  DEFAULT_CONFIG="$HERE/configs/accelerate/deepspeed_zero2.yaml"
fi
exec accelerate launch --config_file "${ACCELERATE_CONFIG:-$DEFAULT_CONFIG}" \
  --num_processes "$NPROC" --main_process_port "$PORT" "$SCRIPT" "$@"

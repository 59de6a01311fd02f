#!/usr/bin/env bash
# RL (GRPO):  bash rl.sh CONFIG.yaml [--key value ...]   (NUM_PROCESSES, DEEPSPEED, CPU, ...: see scripts/launch.sh)
exec bash "$(dirname "${BASH_SOURCE[0]}")/scripts/launch.sh" "$(basename "${RL_SCRIPT:-rl.py}" .py)" "$@"

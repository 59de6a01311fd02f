#!/usr/bin/env bash
# GPR RL (GPR prompt, optional HEPO).  Usage:  bash rl_gpr.sh CONFIG.yaml [--rl.key value | --gpr.key value ...]
# Same launch options as rl.sh (NPROC, CPU, ACCELERATE_CONFIG); see rl_gpr.py.
set -euo pipefail
RL_SCRIPT=rl_gpr.py exec bash "$(dirname "$0")/rl.sh" "$@"

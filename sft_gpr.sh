#!/usr/bin/env bash
# GPR SFT (U/E/type tokens, VAFT).  Usage:  bash sft_gpr.sh CONFIG.yaml [--sft.key value | --gpr.key value ...]
# Same launch options as sft.sh (NUM_PROCESSES, DEEPSPEED, ACCELERATE_CONFIG); see sft_gpr.py.
set -euo pipefail
SFT_SCRIPT=sft_gpr.py exec bash "$(dirname "$0")/sft.sh" "$@"

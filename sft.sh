#!/usr/bin/env bash
# SFT:  bash sft.sh CONFIG.yaml [--key value ...]   (NUM_PROCESSES, DEEPSPEED, CPU, ...: see scripts/launch.sh)
exec bash "$(dirname "${BASH_SOURCE[0]}")/scripts/launch.sh" "$(basename "${SFT_SCRIPT:-sft.py}" .py)" "$@"

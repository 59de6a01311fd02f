#!/usr/bin/env bash
# GPR SFT = sft.sh with gpr.enabled on:  bash sft_gpr.sh CONFIG.yaml [--sft.key value | --gpr.key value ...]   (see scripts/launch.sh)
exec bash "$(dirname "${BASH_SOURCE[0]}")/scripts/launch.sh" sft_gpr "$@"

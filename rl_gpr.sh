#!/usr/bin/env bash
# GPR RL = rl.sh with gpr.enabled on (GPR prompt, gpr.hepo):  bash rl_gpr.sh CONFIG.yaml [--rl.key v | --gpr.key v ...]   (see scripts/launch.sh)
exec bash "$(dirname "${BASH_SOURCE[0]}")/scripts/launch.sh" rl_gpr "$@"

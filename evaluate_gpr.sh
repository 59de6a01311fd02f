#!/usr/bin/env bash
# GPR evaluation = evaluate.sh with gpr.enabled on:  bash evaluate_gpr.sh CONFIG.yaml [--evaluate.key v | --gpr.key v ...]   (see scripts/launch.sh)
exec bash "$(dirname "${BASH_SOURCE[0]}")/scripts/launch.sh" evaluate_gpr "$@"

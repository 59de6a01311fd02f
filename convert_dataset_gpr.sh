#!/usr/bin/env bash
# GPR LLM-stage files = convert_dataset.sh with gpr.enabled on:  bash convert_dataset_gpr.sh CONFIG.yaml [--key v | --gpr.key v ...]
exec bash "$(dirname "${BASH_SOURCE[0]}")/scripts/launch.sh" convert_dataset_gpr "$@"

#!/usr/bin/env bash
# Amazon 2023 data + GPR side files = amazon23_data_process.sh with gpr.enabled on:  bash data/amazon23_data_process_gpr.sh CONFIG.yaml [--key v | --gpr.key v ...]
exec bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/launch.sh" amazon23_data_process_gpr "$@"

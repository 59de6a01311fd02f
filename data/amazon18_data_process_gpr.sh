#!/usr/bin/env bash
# Amazon 2018 data + GPR side files = amazon18_data_process.sh with gpr.enabled on:  bash data/amazon18_data_process_gpr.sh CONFIG.yaml [--key v | --gpr.key v ...]
exec bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/launch.sh" amazon18_data_process_gpr "$@"

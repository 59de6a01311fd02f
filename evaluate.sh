#!/usr/bin/env bash
# Constrained beam-search evaluation:  bash evaluate.sh CONFIG.yaml [--model_path DIR --name NAME ...]
#   bash evaluate.sh metrics --result_json R.json --info_file I.txt     (NUM_PROCESSES=N shards: see scripts/launch.sh)
exec bash "$(dirname "${BASH_SOURCE[0]}")/scripts/launch.sh" evaluate "$@"

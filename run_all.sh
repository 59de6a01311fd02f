#!/usr/bin/env bash
# Run every stage of one config in order, skipping stages whose outputs match the config:
#   bash run_all.sh configs/ml-100k.yaml                 # the embedded default, end to end on CPU
#   bash run_all.sh configs/ml-100k.yaml --from sft      # redo SFT and everything after it
#   bash run_all.sh configs/ml-100k.yaml --only baselines
#   bash run_all.sh configs/ml-100k.yaml --sft.num_train_epochs 1    (overrides reach every stage)
#   bash run_all.sh configs/ml-100k.yaml --dry_run      # check the config and overrides, list what would run
# Results (table, plots, resolved configs) land in results/<config name>/.
set -euo pipefail
exec "${PYTHON:-python3}" -m minionerec.pipeline "$@"

#!/usr/bin/env bash
# LLM-stage files:  bash convert_dataset.sh CONFIG.yaml [--key value ...]   (see convert_dataset.py)
exec bash "$(dirname "${BASH_SOURCE[0]}")/scripts/launch.sh" convert_dataset "$@"

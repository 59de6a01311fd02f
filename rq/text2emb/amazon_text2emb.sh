#!/usr/bin/env bash
# Item embeddings:  bash rq/text2emb/amazon_text2emb.sh CONFIG.yaml [--key value ...]   (NUM_PROCESSES=8: see scripts/launch.sh)
exec bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/launch.sh" amazon_text2emb "$@"

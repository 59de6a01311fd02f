#!/usr/bin/env bash
# GPR item embeddings = amazon_text2emb.sh with gpr.enabled on ([EMPTY] texts):  bash rq/text2emb/amazon_text2emb_gpr.sh CONFIG.yaml [--key v ...]
exec bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/launch.sh" amazon_text2emb_gpr "$@"

#!/usr/bin/env bash
# Recommendation baselines (popularity, Markov, SASRec, GRU4Rec) on the LLM-stage splits.
#   bash baselines.sh configs/ml-100k.yaml [--model all|popularity|markov|sasrec|gru4rec] [--key value ...]
# Trains on train, selects on valid, prints HR/NDCG@K on test; writes <workdir>/baselines/.
set -euo pipefail
exec python "$(dirname "${BASH_SOURCE[0]}")/baselines.py" "$@"

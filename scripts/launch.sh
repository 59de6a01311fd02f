#!/usr/bin/env bash
# The one launcher of every stage script:  bash scripts/launch.sh STAGE [CONFIG.yaml] [--key value | --section.key value ...]
# Every stage wrapper (sft.sh, rl.sh, evaluate.sh, data/*.sh, rq/*.sh, ...) is one line calling it.
#
#   NUM_PROCESSES=N        processes (default 1).  N > 1 runs `accelerate launch --config_file ...` (sft, rl,
#                          evaluate, text embedding; the other stages always run one process).  NPROC: old name.
#   DEEPSPEED=zero2|zero3  DeepSpeed for sft/rl (configs/accelerate/deepspeed_<x>.yaml), also with one process;
#                          none = plain DDP.  Unset: DDP, except rl on GPUs, which keeps upstream's ZeRO-2.
#   CPU=1                  CPU ranks (hides the GPUs); without a visible GPU, ranks are CPU ranks anyway (gloo)
#   MAIN_PROCESS_PORT=P    the rendezvous port of a multi-process run (default 29511)
#   ACCELERATE_CONFIG=F    an accelerate config file of your own (wins over DEEPSPEED)
#   PYTHON=python3         the interpreter (accelerate runs under the same one)
#   LAUNCH_DRY_RUN=1       print the command instead of running it
#
#   NUM_PROCESSES=8 DEEPSPEED=zero2 bash scripts/launch.sh sft configs/industrial.yaml
#   NUM_PROCESSES=2 CPU=1 bash scripts/launch.sh rl configs/ml-100k.yaml --rl.max_steps 10
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEFAULT_PORT=29511

# STAGE -> script (relative to the repository root) and how it may run:
#   one   always one process;  ranks   NUM_PROCESSES ranks (DDP);  train   ranks, DeepSpeed allowed
#   train_zero2   train, and ZeRO-2 by default on GPUs (upstream's rl.sh)
stage_entry() {
  case "$1" in
    synthetic)                  echo "data/synthetic.py one" ;;
    amazon18_data_process)      echo "data/amazon18_data_process.py one" ;;
    amazon18_data_process_gpr)  echo "data/amazon18_data_process_gpr.py one" ;;
    amazon23_data_process)      echo "data/amazon23_data_process.py one" ;;
    amazon23_data_process_gpr)  echo "data/amazon23_data_process_gpr.py one" ;;
    movielens_process)          echo "data/movielens_process.py one" ;;
    lcrec_process)              echo "data/lcrec_process.py one" ;;
    amazon_text2emb)            echo "rq/text2emb/amazon_text2emb.py ranks" ;;
    amazon_text2emb_gpr)        echo "rq/text2emb/amazon_text2emb_gpr.py ranks" ;;
    build_sids)                 echo "rq/build_sids.py one" ;;
    rqvae)                      echo "rq/rqvae.py one" ;;
    rqkmeans_faiss)             echo "rq/rqkmeans_faiss.py one" ;;
    rqkmeans_constrained)       echo "rq/rqkmeans_constrained.py one" ;;
    rqkmeans_plus)              echo "rq/rqkmeans_plus.py one" ;;
    generate_indices)           echo "rq/generate_indices.py one" ;;
    generate_indices_plus)      echo "rq/generate_indices_plus.py one" ;;
    convert_dataset)            echo "convert_dataset.py one" ;;
    convert_dataset_gpr)        echo "convert_dataset_gpr.py one" ;;
    baselines)                  echo "baselines.py one" ;;
    sft)                        echo "sft.py train" ;;
    sft_gpr)                    echo "sft_gpr.py train" ;;
    rl)                         echo "rl.py train_zero2" ;;
    rl_gpr)                     echo "rl_gpr.py train_zero2" ;;
    evaluate)                   echo "evaluate.py ranks" ;;
    evaluate_gpr)               echo "evaluate_gpr.py ranks" ;;
    *) return 1 ;;
  esac
}
STAGES="synthetic amazon18_data_process amazon18_data_process_gpr amazon23_data_process amazon23_data_process_gpr
movielens_process lcrec_process amazon_text2emb amazon_text2emb_gpr build_sids rqvae rqkmeans_faiss rqkmeans_constrained
rqkmeans_plus generate_indices generate_indices_plus convert_dataset convert_dataset_gpr baselines sft sft_gpr rl rl_gpr
evaluate evaluate_gpr"

fail() { echo "launch.sh: $*" >&2; exit 2; }
note() { echo "launch.sh: $*" >&2; }

[[ $# -ge 1 ]] || fail "usage: bash scripts/launch.sh STAGE [CONFIG.yaml] [--key value ...]; stages: $(echo $STAGES)"
stage="$1"
shift
entry="$(stage_entry "$stage")" || fail "unknown stage '$stage'; stages: $(echo $STAGES)"
script="$ROOT/${entry% *}"
kind="${entry#* }"
[[ -f "$script" ]] || fail "stage '$stage' runs $script, which does not exist"

py="${PYTHON:-python3}"
nproc="${NUM_PROCESSES:-}"
if [[ -z "$nproc" && -n "${NPROC:-}" ]]; then
  note "NPROC is deprecated: use NUM_PROCESSES=$NPROC"
  nproc="$NPROC"
fi
nproc="${nproc:-1}"
[[ "$nproc" =~ ^[1-9][0-9]*$ ]] || fail "NUM_PROCESSES must be a positive whole number, got '$nproc'"
port="${MAIN_PROCESS_PORT:-}"
if [[ -z "$port" && -n "${MAIN_PORT:-}" ]]; then
  note "MAIN_PORT is deprecated: use MAIN_PROCESS_PORT=$MAIN_PORT"
  port="$MAIN_PORT"
fi
port="${port:-$DEFAULT_PORT}"
deepspeed="${DEEPSPEED:-}"
[[ -z "$deepspeed" || "$deepspeed" =~ ^(zero2|zero3|none)$ ]] || fail "DEEPSPEED must be zero2, zero3 or none, got '$deepspeed'"

env_prefix=()
if [[ "${CPU:-0}" == "1" ]]; then
  export CUDA_VISIBLE_DEVICES=""
  env_prefix=(CUDA_VISIBLE_DEVICES=)
fi

gpu_visible() {
  [[ -n "${CUDA_VISIBLE_DEVICES-unset}" && "${CUDA_VISIBLE_DEVICES-}" != "-1" ]] || return 1
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1
}

# "evaluate.sh metrics ..." recomputes metrics from a result file: one process
if [[ "$stage" == evaluate* && "${1:-}" == "metrics" ]]; then
  kind=one
fi

accelerate_config=""
case "$kind" in
  one)
    if [[ "$nproc" -gt 1 || -n "$deepspeed" ]]; then
      note "$stage runs in one process (NUM_PROCESSES=$nproc${deepspeed:+, DEEPSPEED=$deepspeed} ignored)"
    fi
    nproc=1 ;;
  ranks)
    [[ -z "$deepspeed" ]] || note "$stage does not train: DEEPSPEED=$deepspeed ignored"
    [[ "$nproc" -le 1 ]] || accelerate_config="$ROOT/configs/accelerate/multi_gpu.yaml" ;;
  train|train_zero2)
    if [[ "$deepspeed" == zero2 || "$deepspeed" == zero3 ]]; then
      accelerate_config="$ROOT/configs/accelerate/deepspeed_${deepspeed}.yaml"
    elif [[ "$nproc" -gt 1 ]]; then
      if [[ "$kind" == train_zero2 && -z "$deepspeed" ]] && gpu_visible; then
        accelerate_config="$ROOT/configs/accelerate/deepspeed_zero2.yaml"
      else
        accelerate_config="$ROOT/configs/accelerate/multi_gpu.yaml"
      fi
    fi ;;
esac
if [[ -n "$accelerate_config" && -n "${ACCELERATE_CONFIG:-}" ]]; then
  accelerate_config="$ACCELERATE_CONFIG"
fi

if [[ -n "$accelerate_config" ]]; then
  [[ -f "$accelerate_config" ]] || fail "accelerate config $accelerate_config not found"
  command=("$py" -m accelerate.commands.launch --config_file "$accelerate_config" --num_processes "$nproc"
           --main_process_port "$port" "$script" "$@")
else
  command=("$py" "$script" "$@")
fi

if [[ "${LAUNCH_DRY_RUN:-0}" == "1" ]]; then
  printf '%q ' "${env_prefix[@]}" "${command[@]}"
  echo
  exit 0
fi
exec "${command[@]}"

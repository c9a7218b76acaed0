#!/usr/bin/env bash
# Pretrain with MindSpore's msrun (no rank table; CPU, GPU or Ascend): msrun starts a scheduler and
# LOCAL_WORKER_NUM workers of run_pretrain.py --distribute true on this machine. Runs in the foreground
# (--join=True); exits non-zero if any worker fails.
#
# Usage: bash scripts/run_distributed_pretrain_msrun.sh WORKER_NUM DATA_DIR [OUTPUT_DIR] [options] [-- ARGS...]
#   WORKER_NUM              processes over all machines (or --worker_num N)
#   DATA_DIR                pretraining records (or --data_dir DIR)
#   OUTPUT_DIR              checkpoints and logs (or --output_dir DIR; default: output/pretrain in the repository)
#   --device_target T       CPU, GPU or Ascend (default: what the config says)
#   --local_worker_num N    processes on this machine (default: WORKER_NUM)
#   --master_addr ADDR      scheduler address (default: 127.0.0.1; several machines: the first machine's IP)
#   --master_port PORT      scheduler port (default: 8118)
#   --node_rank R           this machine's index among the machines (default: 0; -1: msrun assigns)
#   --config FILE           run_pretrain.py config (default: configs/pretrain_base.yaml)
#   --dry_run               validate, then print the msrun command instead of running it
#   -- ARGS                 passed to run_pretrain.py unchanged, e.g. -- --train.epochs 1
#
# Example (2 CPU processes): bash scripts/run_distributed_pretrain_msrun.sh 2 data/ --device_target CPU
# Logs: OUTPUT_DIR/logs/worker_<r>.log and scheduler.log (msrun --log_dir).
# msrun starts every process with the `python` on PATH (PYTHON is not used): activate the venv first.
# The scheduler also runs run_pretrain.py (MS_ROLE=MS_SCHED), inside mindspore.communication.init().
# Environment: MSRUN (default: msrun, installed with mindspore),
#              PRETRAIN_ENTRY (default: run_pretrain.py of this repository; tests use a stub).
set -euo pipefail
unset CDPATH

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
MSRUN="${MSRUN:-msrun}"
ENTRY="${PRETRAIN_ENTRY:-$ROOT/run_pretrain.py}"

source "$ROOT/scripts/lib/common.sh"

worker_num="" data_dir="" output_dir="" config="$ROOT/configs/pretrain_base.yaml" device_target=""
local_worker_num="" master_addr="127.0.0.1" master_port="8118" node_rank="0"
dry_run=0 positional=() extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;
    --worker_num) need_value "$@"; worker_num="$2"; shift ;;
    --data_dir) need_value "$@"; data_dir="$2"; shift ;;
    --output_dir) need_value "$@"; output_dir="$2"; shift ;;
    --device_target) need_value "$@"; device_target="$2"; shift ;;
    --local_worker_num) need_value "$@"; local_worker_num="$2"; shift ;;
    --master_addr) need_value "$@"; master_addr="$2"; shift ;;
    --master_port) need_value "$@"; master_port="$2"; shift ;;
    --node_rank) need_value "$@"; node_rank="$2"; shift ;;
    --config) need_value "$@"; config="$2"; shift ;;
    --dry_run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) die "unknown option $1 (see --help; arguments for run_pretrain.py go after --)" ;;
    *) positional+=("$1") ;;
  esac
  shift
done
assign_positionals worker_num data_dir output_dir
[ -n "$worker_num" ] || die "WORKER_NUM is required (see --help)"
[[ "$worker_num" =~ ^[1-9][0-9]*$ ]] || die "WORKER_NUM must be a positive integer, got '$worker_num'"
local_worker_num="${local_worker_num:-$worker_num}"
if ! [[ "$local_worker_num" =~ ^[1-9][0-9]*$ && "$local_worker_num" -le "$worker_num" ]]; then
  die "--local_worker_num must be 1..$worker_num, got '$local_worker_num'"
fi
if ! [[ "$master_port" =~ ^[0-9]+$ && "$master_port" -ge 1024 && "$master_port" -le 65535 ]]; then
  die "--master_port must be 1024..65535, got '$master_port'"
fi
[[ "$node_rank" =~ ^(-1|[0-9]+)$ ]] || die "--node_rank must be a non-negative integer or -1, got '$node_rank'"
case "$device_target" in ""|CPU|GPU|Ascend) ;; *) die "--device_target must be CPU, GPU or Ascend, got '$device_target'" ;; esac
[ -n "$data_dir" ] || die "DATA_DIR is required (see --help)"
[ -d "$data_dir" ] || die "DATA_DIR '$data_dir' is not a directory"
data_dir="$(cd -- "$data_dir" && pwd)"
output_dir="$(abspath "${output_dir:-$ROOT/output/pretrain}")"
log_dir="$output_dir/logs"

target=()
if [ -n "$device_target" ]; then target=(--device_target "$device_target"); fi
cmd=("$MSRUN" --worker_num="$worker_num" --local_worker_num="$local_worker_num" --master_addr="$master_addr"
     --master_port="$master_port" --node_rank="$node_rank" --log_dir="$log_dir" --join=True
     "$ENTRY" --config "$config" --data_dir "$data_dir" --output_dir "$output_dir" ${target[@]+"${target[@]}"}
     --distribute true ${extra[@]+"${extra[@]}"})

if [ "$dry_run" = 1 ]; then
  echo "# $local_worker_num of $worker_num worker(s) on this machine, logs $log_dir/worker_<r>.log"
  quote "${cmd[@]}"
  exit 0
fi

command -v "$MSRUN" >/dev/null || die "$MSRUN not found on PATH (it comes with mindspore: activate the venv)"
mkdir -p "$log_dir"
echo "starting $local_worker_num of $worker_num worker(s) with $MSRUN; logs $log_dir/worker_<r>.log"
rc=0
"${cmd[@]}" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "error: distributed pretraining failed (msrun exit code $rc); logs in $log_dir" >&2
  exit "$rc"
fi
echo "all $local_worker_num worker(s) finished; logs in $log_dir"

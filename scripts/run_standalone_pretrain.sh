#!/usr/bin/env bash
# Pretrain in a single process (one CPU, GPU or Ascend device), in the foreground; the output goes to
# the terminal and to OUTPUT_DIR/logs/standalone.log; the exit status is run_pretrain.py's.
#
# Usage: bash scripts/run_standalone_pretrain.sh [options] DATA_DIR [OUTPUT_DIR] [-- ARGS...]
#   DATA_DIR             pretraining records (or --data_dir DIR)
#   OUTPUT_DIR           checkpoints and logs (or --output_dir DIR; default: output/pretrain in the repository)
#   --device_target T    CPU, GPU or Ascend (default: what the config says)
#   --device_id N        device to use (run_pretrain.py --device_id; default: what the config says)
#   --config FILE        run_pretrain.py config (default: configs/pretrain_base.yaml)
#   --dry_run            validate, then print the command instead of running it
#   -- ARGS              passed to run_pretrain.py unchanged, e.g. -- --train.epochs 1
#
# Example: bash scripts/run_standalone_pretrain.sh --device_target Ascend --device_id 0 /data/zhwiki
# Environment: PYTHON (default: python on PATH; activate the venv first),
#              PRETRAIN_ENTRY (default: run_pretrain.py of this repository; tests use a stub).
set -euo pipefail
unset CDPATH

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
ENTRY="${PRETRAIN_ENTRY:-$ROOT/run_pretrain.py}"

source "$ROOT/scripts/lib/common.sh"

data_dir="" output_dir="" config="$ROOT/configs/pretrain_base.yaml" device_target="" device_id=""
dry_run=0 positional=() extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;
    --data_dir) need_value "$@"; data_dir="$2"; shift ;;
    --output_dir) need_value "$@"; output_dir="$2"; shift ;;
    --device_target) need_value "$@"; device_target="$2"; shift ;;
    --device_id) need_value "$@"; device_id="$2"; shift ;;
    --config) need_value "$@"; config="$2"; shift ;;
    --dry_run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) die "unknown option $1 (see --help; arguments for run_pretrain.py go after --)" ;;
    *) positional+=("$1") ;;
  esac
  shift
done
assign_positionals data_dir output_dir
case "$device_target" in ""|CPU|GPU|Ascend) ;; *) die "--device_target must be CPU, GPU or Ascend, got '$device_target'" ;; esac
[[ -z "$device_id" || "$device_id" =~ ^[0-9]+$ ]] || die "--device_id must be a non-negative integer, got '$device_id'"
[ -n "$data_dir" ] || die "DATA_DIR is required (see --help)"
[ -d "$data_dir" ] || die "DATA_DIR '$data_dir' is not a directory"
data_dir="$(cd -- "$data_dir" && pwd)"
output_dir="$(abspath "${output_dir:-$ROOT/output/pretrain}")"
log_file="$output_dir/logs/standalone.log"

device=()  # only what the command line gave; the config decides the rest
if [ -n "$device_target" ]; then device+=(--device_target "$device_target"); fi
if [ -n "$device_id" ]; then device+=(--device_id "$device_id"); fi
cmd=("$PYTHON" "$ENTRY" --config "$config" --data_dir "$data_dir" --output_dir "$output_dir"
     ${device[@]+"${device[@]}"} --distribute false ${extra[@]+"${extra[@]}"})

if [ "$dry_run" = 1 ]; then
  echo "# log $log_file"
  echo "$(quote "${cmd[@]}") 2>&1 | tee $(quote "$log_file")"
  exit 0
fi

mkdir -p "$(dirname -- "$log_file")"
echo "log: $log_file"
rc=0
"${cmd[@]}" 2>&1 | tee "$log_file" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "error: pretraining failed (exit code $rc); log $log_file" >&2
  exit "$rc"
fi

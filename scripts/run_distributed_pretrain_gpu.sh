#!/usr/bin/env bash
# Pretrain on GPUs with mpirun (NCCL): DEVICE_NUM processes of run_pretrain.py --device_target GPU
# --distribute true; each takes its rank from MindSpore's get_rank(). Runs in the foreground; exits
# non-zero if any rank fails (mpirun's status).
#
# Usage: bash scripts/run_distributed_pretrain_gpu.sh DEVICE_NUM DATA_DIR [OUTPUT_DIR] [options] [-- ARGS...]
#   DEVICE_NUM       number of processes, one per GPU (or --device_num N)
#   DATA_DIR         pretraining records (or --data_dir DIR)
#   OUTPUT_DIR       checkpoints and logs (or --output_dir DIR; default: output/pretrain in the repository)
#   --hostfile FILE  Open MPI hostfile for several machines (default: all processes on this machine)
#   --config FILE    run_pretrain.py config (default: configs/pretrain_base.yaml)
#   --dry_run        validate, then print the mpirun command instead of running it
#   -- ARGS          passed to run_pretrain.py unchanged, e.g. -- --train.epochs 1
#
# Example: bash scripts/run_distributed_pretrain_gpu.sh 8 /data/zhwiki
# Logs: mpirun --output-filename OUTPUT_DIR/logs, i.e. OUTPUT_DIR/logs/1/rank.<r>/stdout with Open MPI 4.
# With --hostfile every machine needs the repository, the data and the same PYTHON at the same paths.
# MindSpore does not support mpirun on CPU; use run_distributed_pretrain_msrun.sh there.
# Environment: PYTHON (default: python on PATH; activate the venv first), MPIRUN (default: mpirun),
#              PRETRAIN_ENTRY (default: run_pretrain.py of this repository; tests use a stub).
set -euo pipefail
unset CDPATH

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
MPIRUN="${MPIRUN:-mpirun}"
ENTRY="${PRETRAIN_ENTRY:-$ROOT/run_pretrain.py}"

source "$ROOT/scripts/lib/common.sh"

device_num="" data_dir="" output_dir="" config="$ROOT/configs/pretrain_base.yaml" hostfile=""
dry_run=0 positional=() extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;
    --device_num) need_value "$@"; device_num="$2"; shift ;;
    --data_dir) need_value "$@"; data_dir="$2"; shift ;;
    --output_dir) need_value "$@"; output_dir="$2"; shift ;;
    --hostfile) need_value "$@"; hostfile="$2"; shift ;;
    --config) need_value "$@"; config="$2"; shift ;;
    --dry_run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) die "unknown option $1 (see --help; arguments for run_pretrain.py go after --)" ;;
    *) positional+=("$1") ;;
  esac
  shift
done
assign_positionals device_num data_dir output_dir
[ -n "$device_num" ] || die "DEVICE_NUM is required (see --help)"
[[ "$device_num" =~ ^[1-9][0-9]*$ ]] || die "DEVICE_NUM must be a positive integer, got '$device_num'"
[ -n "$data_dir" ] || die "DATA_DIR is required (see --help)"
[ -d "$data_dir" ] || die "DATA_DIR '$data_dir' is not a directory"
if [ -n "$hostfile" ]; then
  [ -f "$hostfile" ] || die "hostfile '$hostfile' not found"
  hostfile="$(abspath "$hostfile")"
fi
data_dir="$(cd -- "$data_dir" && pwd)"
output_dir="$(abspath "${output_dir:-$ROOT/output/pretrain}")"
log_dir="$output_dir/logs"

cmd=("$MPIRUN" -n "$device_num")
if [ "$(id -u)" = 0 ]; then cmd+=(--allow-run-as-root); fi
if [ -n "$hostfile" ]; then cmd+=(--hostfile "$hostfile"); fi
cmd+=(--output-filename "$log_dir" --merge-stderr-to-stdout
      "$PYTHON" "$ENTRY" --config "$config" --data_dir "$data_dir" --output_dir "$output_dir"
      --device_target GPU --distribute true ${extra[@]+"${extra[@]}"})

if [ "$dry_run" = 1 ]; then
  echo "# $device_num rank(s), logs under $log_dir"
  quote "${cmd[@]}"
  exit 0
fi

command -v "$MPIRUN" >/dev/null || die "$MPIRUN not found (install Open MPI, e.g. apt-get install openmpi-bin)"
mkdir -p "$log_dir"
echo "starting $device_num rank(s) with $MPIRUN; per-rank logs under $log_dir"
rc=0
"${cmd[@]}" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "error: distributed pretraining failed (mpirun exit code $rc); logs under $log_dir" >&2
  exit "$rc"
fi
echo "all $device_num rank(s) finished; logs under $log_dir"

#!/usr/bin/env bash
# Pretrain on the Ascend devices of this server from an HCCL rank table: one run_pretrain.py process per
# device, each with RANK_TABLE_FILE, DEVICE_ID, RANK_ID (global), RANK_SIZE, RANK_START and
# HCCL_CONNECT_TIMEOUT. Runs in the foreground until every rank has exited; if one rank fails, the others
# are stopped and the script exits with that rank's status.
#
# Usage: bash scripts/run_distributed_pretrain_ascend.sh DATA_DIR RANK_TABLE_FILE [OUTPUT_DIR] [options] [-- ARGS...]
#   DATA_DIR                 pretraining records (or --data_dir DIR)
#   RANK_TABLE_FILE          HCCL rank table JSON, e.g. from tools/hccl_tools.py (or --rank_table_file FILE)
#   OUTPUT_DIR               checkpoints and logs (or --output_dir DIR; default: output/pretrain in the repository)
#   --config FILE            run_pretrain.py config (default: configs/pretrain_base.yaml)
#   --server_id ID           this host's server_id in the rank table (default: matched against its addresses)
#   --hccl_connect_timeout S seconds HCCL waits for the other ranks (default: $HCCL_CONNECT_TIMEOUT or 600)
#   --dry_run                validate, then print each rank's environment and command instead of running them
#   -- ARGS                  passed to run_pretrain.py unchanged, e.g. -- --train.epochs 1
#
# Example (the zoo's form): bash scripts/run_distributed_pretrain_ascend.sh /data/zhwiki hccl_8p_01234567_10.0.0.1.json
# Several servers: run the same command with the same table on each; every server starts its own devices,
# with their global rank ids. Logs: OUTPUT_DIR/logs/rank_<RANK_ID>.log.
# Environment: PYTHON (default: python on PATH; activate the venv first),
#              PRETRAIN_ENTRY (default: run_pretrain.py of this repository; tests use a stub).
set -euo pipefail
unset CDPATH

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
ENTRY="${PRETRAIN_ENTRY:-$ROOT/run_pretrain.py}"

source "$ROOT/scripts/lib/common.sh"

data_dir="" rank_table="" output_dir="" config="$ROOT/configs/pretrain_base.yaml"
plan_options=() dry_run=0 positional=() extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;
    --data_dir) need_value "$@"; data_dir="$2"; shift ;;
    --rank_table_file) need_value "$@"; rank_table="$2"; shift ;;
    --output_dir) need_value "$@"; output_dir="$2"; shift ;;
    --config) need_value "$@"; config="$2"; shift ;;
    --server_id|--hccl_connect_timeout) need_value "$@"; plan_options+=("$1" "$2"); shift ;;
    --dry_run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) die "unknown option $1 (see --help; arguments for run_pretrain.py go after --)" ;;
    *) positional+=("$1") ;;
  esac
  shift
done
assign_positionals data_dir rank_table output_dir
[ -n "$data_dir" ] || die "DATA_DIR is required (see --help)"
[ -d "$data_dir" ] || die "DATA_DIR '$data_dir' is not a directory"
[ -n "$rank_table" ] || die "RANK_TABLE_FILE is required (see --help; tools/hccl_tools.py writes one)"
data_dir="$(cd -- "$data_dir" && pwd)"
output_dir="$(abspath "${output_dir:-$ROOT/output/pretrain}")"
log_dir="$output_dir/logs"

# Validate the rank table and find this server's processes before starting anything.
plan="$(PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m src.launch ascend-plan \
  --rank_table "$rank_table" --log_dir "$log_dir" ${plan_options[@]+"${plan_options[@]}"})" || exit $?

cmd=("$PYTHON" "$ENTRY" --config "$config" --data_dir "$data_dir" --output_dir "$output_dir"
     --device_target Ascend --distribute true ${extra[@]+"${extra[@]}"})

if [ "$dry_run" = 1 ]; then
  while IFS=$'\t' read -r -a f; do  # rank, device id, log file, KEY=VALUE...
    echo "# rank ${f[0]} on device ${f[1]}, log ${f[2]}"
    echo "$(quote env "${f[@]:3}" "${cmd[@]}") > $(quote "${f[2]}") 2>&1 &"
  done <<< "$plan"
  echo "wait"
  exit 0
fi

mkdir -p "$log_dir"
pids=() ranks=() logs=()
stop_ranks() { local p; for p in ${pids[@]+"${pids[@]}"}; do kill -TERM "$p" 2>/dev/null || true; done; }
on_signal() { echo "interrupted: stopping all ranks" >&2; stop_ranks; wait; exit "$1"; }
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
while IFS=$'\t' read -r -a f; do
  env "${f[@]:3}" "${cmd[@]}" > "${f[2]}" 2>&1 &
  pids+=("$!") ranks+=("${f[0]}") logs+=("${f[2]}")
  echo "started rank ${f[0]} on device ${f[1]} (pid $!), log ${f[2]}"
done <<< "$plan"
echo "waiting for ${#pids[@]} rank(s); logs in $log_dir"

# Wait for every rank; at the first failure stop the others (they would block in collectives until the timeout).
status=0 left=${#pids[@]}
while [ "$left" -gt 0 ]; do
  for i in "${!pids[@]}"; do
    if kill -0 "${pids[$i]}" 2>/dev/null; then continue; fi  # still running
    rc=0; wait "${pids[$i]}" || rc=$?
    unset "pids[$i]"; left=$((left - 1))
    if [ "$rc" -eq 0 ]; then
      echo "rank ${ranks[$i]} finished"
    elif [ "$status" -eq 0 ]; then
      status=$rc
      echo "error: rank ${ranks[$i]} failed with exit code $rc; last lines of ${logs[$i]}:" >&2
      tail -n 20 "${logs[$i]}" >&2 || true
      echo "stopping the other ranks" >&2
      stop_ranks
    else
      echo "rank ${ranks[$i]} exited with code $rc" >&2
    fi
  done
  if [ "$left" -gt 0 ]; then sleep 0.5; fi
done
if [ "$status" -ne 0 ]; then
  echo "error: distributed pretraining failed (exit code $status); logs in $log_dir" >&2
  exit "$status"
fi
echo "all ${#ranks[@]} rank(s) finished; logs in $log_dir"

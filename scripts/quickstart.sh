#!/usr/bin/env bash
# The main job on the built-in default, from a fresh clone, on a CPU box (about 7 minutes on 2 cores once .venv is installed):
#   1. install the pinned dependencies into .venv;
#   2. fetch the real English Wikipedia sample dump and the uncased vocab (checksummed, cached);
#   3. Wikipedia -> one sentence per line (tools/wiki_to_text.py); the last shard is held out;
#   4. sentences -> MLM/NSP MindRecord shards (tools/create_pretraining_data.py);
#   5. pretrain a small BERT from scratch (run_pretrain.py, configs/pretrain_quickstart.yaml) and
#      print held-out MLM accuracy (against the unigram baseline), MLM perplexity and NSP accuracy
#      (against the majority class), and the same on 960 training records (seen vs unseen articles).
# Running it again resumes from the last checkpoint (a finished run only re-evaluates).
#
# Usage: bash scripts/quickstart.sh [--output DIR] [-- extra run_pretrain.py options]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
output="output/quickstart"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --output) output="$2"; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

bash scripts/setup_env.sh
py=.venv/bin/python
dump="$($py tools/fetch_data.py enwiki_dump | cut -f2)"
vocab="$($py tools/fetch_data.py vocab_en | cut -f2)"

$py tools/wiki_to_text.py --input "$dump" --output-dir "$output/text" --language en --shard-size-mb 0.5 \
  --overwrite --no-progress
shards=("$output"/text/wiki_*.txt)
held_out="${shards[-1]}"
train=$(IFS=,; echo "${shards[*]:0:${#shards[@]}-1}")

$py tools/create_pretraining_data.py --input_file "$train" --output_dir "$output/data/train" --vocab_file "$vocab" \
  --max_seq_length 64 --max_predictions_per_seq 10 --dupe_factor 5 --progress false --overwrite true
$py tools/create_pretraining_data.py --input_file "$held_out" --output_dir "$output/data/eval" --vocab_file "$vocab" \
  --max_seq_length 64 --max_predictions_per_seq 10 --dupe_factor 1 --progress false --overwrite true

$py run_pretrain.py --config configs/pretrain_quickstart.yaml --data_dir "$output/data/train" \
  --eval_data_dir "$output/data/eval" --output_dir "$output/pretrain" "${extra[@]}"
echo "loss curve: $output/pretrain/loss_curve.png, metrics: $output/pretrain/metrics.jsonl"

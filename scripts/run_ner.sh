#!/usr/bin/env bash
# Fine-tune a NER tagger on one device, in the foreground: build the records if they are not there
# yet (tools/create_ner_data.py), then train, evaluate and predict (run_ner.py).
# Output goes to the terminal and to OUTPUT_DIR/logs/ner.log; the exit status is the failing step's.
#
# Usage: bash scripts/run_ner.sh --task TASK --output_dir DIR [options] [-- ARGS...]
#   --task NAME          conll ('token TAG' files), cluener (CLUENER2020 JSON lines), msra,
#                        peoples_daily (built in: fetched when --data_dir is not given)
#   --data_dir DIR       the task's files (conll: train.txt, dev.txt, test.txt; cluener: *.json)
#   --vocab_file FILE    vocabulary of the model
#   --max_seq_length N   record length (default 128; must equal the model's seq_length)
#   --records_dir DIR    where the records go (default: OUTPUT_DIR/records; reused when present)
#   --output_dir DIR     checkpoints, metrics, predictions, all_results.json
#   --config FILE        run_ner.py config (default: configs/ner_msra.yaml)
#   --init_checkpoint F  pretrained or converted checkpoint to fine-tune
#   --device_target T    CPU, GPU or Ascend; --device_id N: the device
#   --data_args "..."    extra options for tools/create_ner_data.py (one quoted string), e.g.
#                        "--scheme IOBES" or "--tag_column 3 --source_scheme IOB1"
#   --dry_run            print the commands instead of running them
#   -- ARGS              passed to run_ner.py unchanged, e.g. -- --use_crf false --seed 1
#
# Example: bash scripts/run_ner.sh --task msra --vocab_file vocab_zh.txt --init_checkpoint bert_zh.ckpt \
#            --output_dir output/msra --device_target GPU
# Environment: PYTHON (default: python on PATH; activate the venv first).
set -euo pipefail
unset CDPATH

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
source "$ROOT/scripts/lib/common.sh"
FT_DATA_TOOL="$ROOT/tools/create_ner_data.py"
FT_RUN="$ROOT/run_ner.py"
FT_CONFIG="$ROOT/configs/ner_msra.yaml"
FT_LOG=ner.log
source "$ROOT/scripts/lib/finetune.sh"

#!/usr/bin/env bash
# Fine-tune for extractive question answering (SQuAD v1.1 / v2.0, CMRC 2018) on one device, in the
# foreground: build the records if they are not there yet (tools/create_squad_data.py), then train,
# evaluate and write the predictions (run_squad.py).
# Output goes to the terminal and to OUTPUT_DIR/logs/squad.log; the exit status is the failing step's.
#
# Usage: bash scripts/run_squad.sh (--task TASK | --train_file F --predict_file F) --output_dir DIR [options] [-- ARGS...]
#   --task NAME          built in (fetched): squad_v1 (SQuAD v1.1 train + dev), squad_v1_unanswerable
#                        (v1.1 dev + unanswerable questions, a SQuAD 2.0-style set), fixtures
#   --train_file FILE    SQuAD-layout JSON to train on
#   --predict_file FILE  SQuAD-layout JSON to evaluate (or predict)
#   --vocab_file FILE    vocabulary of the model
#   --max_seq_length N   window length (default 384; must equal the model's seq_length)
#   --records_dir DIR    where the records go (default: OUTPUT_DIR/records; reused when present)
#   --output_dir DIR     checkpoints, metrics, predictions, all_results.json
#   --config FILE        run_squad.py config (default: configs/squad_v1.yaml)
#   --init_checkpoint F  pretrained or converted checkpoint to fine-tune
#   --device_target T    CPU, GPU or Ascend; --device_id N: the device
#   --data_args "..."    extra options for tools/create_squad_data.py (one quoted string), e.g.
#                        "--version_2_with_negative true" or "--doc_stride 128 --max_train_questions 2000"
#   --dry_run            print the commands instead of running them
#   -- ARGS              passed to run_squad.py unchanged, e.g. -- --version_2_with_negative true --seed 1
#
# Example: bash scripts/run_squad.sh --train_file train-v1.1.json --predict_file dev-v1.1.json \
#            --vocab_file vocab.txt --init_checkpoint bert_base.ckpt --output_dir output/squad --device_target GPU
# Environment: PYTHON (default: python on PATH; activate the venv first).
set -euo pipefail
unset CDPATH

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
source "$ROOT/scripts/lib/common.sh"
FT_DATA_TOOL="$ROOT/tools/create_squad_data.py"
FT_RUN="$ROOT/run_squad.py"
FT_CONFIG="$ROOT/configs/squad_v1.yaml"
FT_LOG=squad.log
FT_MAX_SEQ_LENGTH=384
FT_FILES=1
source "$ROOT/scripts/lib/finetune.sh"

#!/usr/bin/env bash
# The main job on the built-in default, from a fresh clone:
#   1. install the pinned dependencies into .venv;
#   2. fetch the real all-MiniLM-L6-v2 checkpoint and the gensim news corpus (checksummed, cached);
#   3. convert the HuggingFace checkpoint to MindSpore (every key accounted for);
#   4. run the converted encoder on real news articles and print nearest neighbours.
#
# Usage: bash scripts/quickstart.sh [--output DIR]     (default output/quickstart)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
output="output/quickstart"
while [ $# -gt 0 ]; do
  case "$1" in
    --output) output="$2"; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

bash scripts/setup_env.sh
py=.venv/bin/python
minilm="$($py tools/fetch_data.py minilm | cut -f2)"
corpus="$($py tools/fetch_data.py gensim_test_data | cut -f2)/lee_background.cor"

$py tools/convert_checkpoint.py --input "$minilm" --output "$output/minilm.ckpt"
$py tools/encode_text.py --checkpoint "$output/minilm.ckpt" --vocab "$minilm/vocab.txt" \
  --input "$corpus" --max-texts 32 --save-embeddings "$output/embeddings.npy"

#!/usr/bin/env bash
# Create the project-local virtual environment .venv and install the pinned dependencies into it.
#
# Usage: bash scripts/setup_env.sh [--test] [--tf]
#   --test  also install the reference implementations the tests compare against
#           (PyTorch 2.13 CPU, transformers 4.46.3, TensorFlow, bert-tensorflow) and pytest
#   --tf    also install TensorFlow (Google TF1 checkpoints, TFRecord output)
# Environment: PYTHON=python3.11 picks the interpreter used to create .venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
extras=()
while [ $# -gt 0 ]; do
  case "$1" in
    --test) extras+=(test) ;;
    --tf) extras+=(tf) ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

python_bin="${PYTHON:-$(command -v python3.11 || command -v python3)}"
venv="$ROOT/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv with $python_bin"
  "$python_bin" -m venv "$venv"
fi

spec="$ROOT"
if [ ${#extras[@]} -gt 0 ]; then
  spec="$ROOT[$(IFS=,; echo "${extras[*]}")]"
fi
# Skip pip when the same dependency spec is already installed.
stamp="$venv/.installed-$(cat "$ROOT/pyproject.toml" <(echo "$spec") | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  exit 0
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e "$spec"
rm -f "$venv"/.installed-*
touch "$stamp"
echo "installed $spec into $venv"

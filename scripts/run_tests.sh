#!/usr/bin/env bash
# Install everything the tests need into .venv, fetch the real sample data, run pytest.
#
# Usage: bash scripts/run_tests.sh [--all] [PYTEST_ARGS...]
#   --all   include the tests marked slow (default: -m "not slow")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
markers=(-m "not slow")
if [ "${1:-}" = "--all" ]; then
  markers=()
  shift
fi

bash scripts/setup_env.sh --test

# The Debian fortune packages are fetched with apt-get download, which needs package lists.
if command -v apt-get >/dev/null 2>&1 && ! apt-cache show fortunes-zh >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
  else
    echo "warning: apt package lists are missing and this is not root; run 'sudo apt-get update'" >&2
  fi
fi
.venv/bin/python tools/fetch_data.py all >/dev/null

.venv/bin/python -m pytest "${markers[@]}" "$@"

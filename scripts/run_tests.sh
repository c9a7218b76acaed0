#!/usr/bin/env bash
# Install everything the tests need into .venv, fetch the real sample data, run pytest.
#
# Usage: bash scripts/run_tests.sh [--all] [PYTEST_ARGS...]
#   --all   include the tests marked slow (default: -m "not slow")
# Test files are shared out to 2 pytest-xdist workers (-n 2 --dist loadfile: a file's tests stay in one
# process); -n 0 in PYTEST_ARGS runs them in this process, -n 4 on 4 workers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
markers=(-m "not slow")
if [ "${1:-}" = "--all" ]; then
  markers=()
  shift
fi

bash scripts/setup_env.sh --test

# The Debian fortune packages are fetched with apt-get download, which needs package lists;
# the MPI tests need an MPI library (Open MPI from Debian).
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    if ! apt-cache show fortunes-zh >/dev/null 2>&1 || ! command -v mpirun >/dev/null 2>&1; then
      apt-get update -qq
    fi
    command -v mpirun >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends openmpi-bin >/dev/null
  elif ! apt-cache show fortunes-zh >/dev/null 2>&1; then
    echo "warning: apt package lists are missing and this is not root; run 'sudo apt-get update'" >&2
  fi
fi
.venv/bin/python tools/fetch_data.py all >/dev/null

.venv/bin/python -m pytest -n 2 --dist loadfile "${markers[@]}" "$@"

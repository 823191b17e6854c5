#!/usr/bin/env bash
# Runs the whole test suite (installs what it needs on the first run).
# Usage: bash tests/run.sh [pytest args...]   e.g. bash tests/run.sh -m "not slow" -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=../test/python_env.sh
source test/python_env.sh --with-tests
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
exec "$PYTHON" -m pytest "$@"

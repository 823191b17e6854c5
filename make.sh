#!/usr/bin/env bash
# Builds the Cython VOT region-overlap extension (utils/region/_region_ext*.so) in place.
# Optional: without it utils.region uses its numba implementation, which gives identical numbers.
# Usage: bash make.sh            (PYTHON=/path/to/python bash make.sh to pick the interpreter; default: the project venv)
set -euo pipefail

case "${1:-}" in
  -h|--help)
    echo "usage: bash make.sh   # builds utils/region/_region_ext in place with setup.py build_ext --inplace"
    exit 0
    ;;
  "") ;;
  *)
    echo "usage: bash make.sh   (unknown argument: $1)" >&2
    exit 2
    ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=test/python_env.sh
source test/python_env.sh  # keeps $PYTHON if set, else the project venv (created on a fresh machine)
"$PYTHON" setup.py build_ext --inplace
"$PYTHON" -c "import siammask.utils.region as r; print('siammask.utils.region backend:', r.BACKEND)"

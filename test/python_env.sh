# shellcheck shell=bash
# Sourced by the shell scripts: sets PYTHON to an interpreter that has the project's requirements.
#
# Order: $PYTHON if set; the project virtualenv .venv if present; python3 if it already has the requirements (an
# Ascend/CUDA server with its own torch); otherwise .venv is created and the pinned requirements installed (fast the
# second time: a stamp records what was installed).
# Usage: source test/python_env.sh [--with-tests]

_siammask_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_siammask_want_tests=0
[ "${1:-}" = "--with-tests" ] && _siammask_want_tests=1

_siammask_venv_ready() {
    # ready when the stamps record what is installed: the runtime requirements always, the test ones when wanted
    [ -x "$_siammask_root/.venv/bin/python" ] || return 1
    [ "$(cat "$_siammask_root/.venv/.siammask-stamp" 2>/dev/null)" = "$(_siammask_stamp runtime)" ] || return 1
    [ "$_siammask_want_tests" = 0 ] \
        || [ "$(cat "$_siammask_root/.venv/.siammask-test-stamp" 2>/dev/null)" = "$(_siammask_stamp tests)" ]
}

_siammask_stamp() {
    # a checksum of the files that decide what `$1` (runtime | tests) installs
    local files=("$_siammask_root/requirements.txt" "$_siammask_root/constraints.txt" "$_siammask_root/setup.py")
    [ "$1" = tests ] && files=("$_siammask_root/requirements-test.txt" "$_siammask_root/constraints.txt")
    cat "${files[@]}" | cksum | cut -d' ' -f1
}

_siammask_make_venv() {
    local py="${SIAMMASK_BOOTSTRAP_PYTHON:-python3}"
    echo "[python_env] setting up $_siammask_root/.venv (once; later runs reuse it)" >&2
    [ -x "$_siammask_root/.venv/bin/python" ] || "$py" -m venv "$_siammask_root/.venv"
    local pip=("$_siammask_root/.venv/bin/python" -m pip install -q --disable-pip-version-check)
    local reqs=(-r "$_siammask_root/requirements.txt")
    [ "$_siammask_want_tests" = 1 ] && reqs+=(-r "$_siammask_root/requirements-test.txt")
    local log="$_siammask_root/.venv/install.log"
    if ! { "${pip[@]}" -c "$_siammask_root/constraints.txt" "${reqs[@]}" setuptools wheel \
            && "${pip[@]}" --no-deps --no-build-isolation -e "$_siammask_root"; } >"$log" 2>&1; then
        grep -v "^WARNING: Location" "$log" | tail -n 20 >&2
        echo "[python_env] installing the requirements failed; full log: $log" >&2
        return 1
    fi
    (cd "$_siammask_root" && PYTHON="$_siammask_root/.venv/bin/python" bash make.sh >/dev/null 2>&1) \
        || echo "[python_env] Cython region extension not built; using the numba fallback" >&2
    _siammask_stamp runtime > "$_siammask_root/.venv/.siammask-stamp"
    if [ "$_siammask_want_tests" = 1 ]; then _siammask_stamp tests > "$_siammask_root/.venv/.siammask-test-stamp"; fi
}

if [ -n "${PYTHON:-}" ]; then
    :
elif [ -x "$_siammask_root/.venv/bin/python" ] || ! python3 -c "import torch, cv2, numba, scipy, tqdm, colorama, tensorboardX" 2>/dev/null; then
    _siammask_venv_ready || _siammask_make_venv || { echo "[python_env] cannot set up .venv" >&2; return 1; }
    PYTHON="$_siammask_root/.venv/bin/python"
else
    PYTHON=python3
    # a system interpreter with its own torch (e.g. torch_npu): make the project importable without installing it
    export PYTHONPATH="$_siammask_root${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ "$_siammask_want_tests" = 1 ] && ! "$PYTHON" -c "import pytest, shapely" 2>/dev/null; then
    "$PYTHON" -m pip install -q --disable-pip-version-check -r "$_siammask_root/requirements-test.txt" 2>&1 \
        | grep -v "^WARNING: Location" >&2 || true
fi
export PYTHON
unset -f _siammask_venv_ready _siammask_stamp _siammask_make_venv

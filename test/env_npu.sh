# shellcheck shell=bash
# Ascend NPU environment (CANN toolkit, log levels, HCCL), as the Ascend ModelZoo port's test/env_npu.sh.
# Sourced by the training scripts only where CANN is installed (/etc/Ascend/ascend_cann_install.info or
# /usr/local/Ascend); sourcing it elsewhere does nothing and returns 0.
# Usage: source test/env_npu.sh

_cann_info=/etc/Ascend/ascend_cann_install.info
if [ -f "$_cann_info" ]; then
    _cann_path="$(grep -m1 '^Install_Path=' "$_cann_info" | cut -d= -f2- || true)"
else
    _cann_path=/usr/local/Ascend
fi

if [ -n "$_cann_path" ] && [ -d "$_cann_path" ]; then
    # set_env.sh scripts are not written for `set -u`
    _restore_u=0
    case "$-" in *u*) _restore_u=1; set +u ;; esac
    if [ -d "$_cann_path/ascend-toolkit/latest" ]; then
        # shellcheck disable=SC1091
        source "$_cann_path/ascend-toolkit/set_env.sh"
    elif [ -f "$_cann_path/nnae/set_env.sh" ]; then
        # shellcheck disable=SC1091
        source "$_cann_path/nnae/set_env.sh"
    fi
    [ "$_restore_u" = 1 ] && set -u

    # device logs: errors only, no event logs (needs the driver tools; harmless when absent)
    if command -v msnpureport >/dev/null 2>&1; then
        for _dev in 0 1 2 3 4 5 6 7; do
            msnpureport -g error -d "$_dev" >/dev/null 2>&1 || true
        done
        msnpureport -e disable >/dev/null 2>&1 || true
    fi

    export BMMV2_ENABLE=1
    export ASCEND_SLOG_PRINT_TO_STDOUT=1
    export ASCEND_GLOBAL_LOG_LEVEL=3
    export ASCEND_GLOBAL_EVENT_ENABLE=0
    export TASK_QUEUE_ENABLE=1
    export PTCOPY_ENABLE=1
    export COMBINED_ENABLE=0
    export DYNAMIC_OP="ADD#MUL"
    export HCCL_WHITELIST_DISABLE=1
    HCCL_IF_IP="$(hostname -I 2>/dev/null | awk '{print $1}' || true)"
    export HCCL_IF_IP
    unset _dev _restore_u
fi
unset _cann_info _cann_path

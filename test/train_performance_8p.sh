#!/usr/bin/env bash
# Ascend-style multi-process performance run of SiamMask training (torchrun, DDP; 8 processes by default): a fixed
# number of iterations, then the summary test/output/<id>/SiamMask_for_Pytorch_bs<B>_<N>p_perf.log.
# Usage: bash test/train_performance_8p.sh [--nproc=N] [--data_path=DIR] [--device=...] [--batch_size=N] ...
#        (bash test/train_performance_8p.sh --help lists every option)
set -euo pipefail
SCRIPT_NAME=train_performance_8p.sh
SCRIPT_PURPOSE="Performance run with --nproc processes (DDP through torchrun; hccl on NPU, nccl on CUDA, gloo on CPU):
--num_steps iterations per process, then the summary. E.g. on a CPU: --nproc=2."
RUN_KIND=perf DEFAULT_NPROC=8 CPU_BATCH=4 CPU_STEPS=30 CPU_EPOCHS=20
# shellcheck source=lib_train.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_train.sh"
siammask_main "$@"

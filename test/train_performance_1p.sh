#!/usr/bin/env bash
# Ascend-style 1-process performance run of SiamMask training: a fixed number of iterations, then the summary
# test/output/<id>/SiamMask_for_Pytorch_bs<B>_1p_perf.log (FPS, s/iter, loss). The README's training quick start.
# Usage: bash test/train_performance_1p.sh [--data_path=DIR] [--device=...] [--batch_size=N] [--num_steps=N] ...
#        (bash test/train_performance_1p.sh --help lists every option)
set -euo pipefail
SCRIPT_NAME=train_performance_1p.sh
SCRIPT_PURPOSE="Performance run on one device: --num_steps iterations of tools/train_siammask.py, then the summary.
On a CPU the defaults (batch 4, 30 iterations) finish in a few minutes."
RUN_KIND=perf DEFAULT_NPROC=1 CPU_BATCH=4 CPU_STEPS=30 CPU_EPOCHS=20
# shellcheck source=lib_train.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_train.sh"
siammask_main "$@"

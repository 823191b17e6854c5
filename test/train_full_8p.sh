#!/usr/bin/env bash
# Ascend-style full training of SiamMask with 8 processes (torchrun, DDP), then VOT2018 tracking with every epoch
# checkpoint (tools/test.py), evaluation (tools/eval.py) and the summary
# test/output/<id>/SiamMask_for_Pytorch_bs<B>_<N>p_acc.log, which also holds the best EAO.
# Usage: bash test/train_full_8p.sh [--nproc=N] [--epochs=N] [--data_path=DIR] [--device=...] [--batch_size=N] ...
#        (bash test/train_full_8p.sh --help lists every option)
set -euo pipefail
SCRIPT_NAME=train_full_8p.sh
SCRIPT_PURPOSE="Full run: --epochs epochs with --nproc processes, checkpoint every epoch, VOT2018 test of each checkpoint
(the real set under --data_path, else the built-in one), EAO; the summary adds TrainAccuracy (the last epoch's mean
loss, as the Ascend field) and BestEAO / BestEpoch. On a CPU the default is 6 epochs (the warm-up takes 5); there the
second half, with ResNet layer2/3 unfrozen, is very slow (the dilated layer3's backward pass), so a CPU full run is a
check with a small --config rather than a recipe."
RUN_KIND=full DEFAULT_NPROC=8 CPU_BATCH=4 CPU_STEPS=30 CPU_EPOCHS=6
# shellcheck source=lib_train.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_train.sh"
siammask_main "$@"

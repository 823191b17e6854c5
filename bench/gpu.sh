#!/usr/bin/env bash
# The GPU figures of issue 13 in one short command, for a session that is lent a CUDA machine:
#   1. the training step on CUDA with AMP (bf16 and fp16) and channels_last, batch 128, both stages: pairs/s
#      (bench/model_step.py; the GPU line of its header names the device, each line the dtype);
#   2. tracking with mask + refine on CUDA, exact fp32 and --fast (fp16), beside original-work: FPS
#      (bench/track_fps.py).
# Targets: >= 1000 training pairs/s on one H100/H200, >= 250 FPS tracking with refine. Each step has its own
# time limit (about 8 minutes in all); the logs go to OUT_DIR (default $OUT, else /tmp/siammask_gpu).
# Needs a torch that sees a CUDA device, and nothing built: the checkout is put on PYTHONPATH.
# Usage: bash bench/gpu.sh [OUT_DIR]        (PYTHON=/path/to/python to choose the interpreter; default python3)
set -euo pipefail

case "${1:-}" in
  -h|--help)
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-${OUT:-/tmp/siammask_gpu}}"
python="${PYTHON:-python3}"
cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if ! "$python" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "error: bench/gpu.sh: $python's torch sees no CUDA device (run it on a GPU machine)" >&2
  exit 2
fi
mkdir -p "$out"
{ date -u +"%Y-%m-%d %H:%M UTC"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
    || true; "$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } \
  | tee "$out/device.txt"
status=0
timeout 270 "$python" bench/model_step.py --device cuda --batch 128 --precision bf16 fp16 --channels-last on \
  --steps 5 --rounds 3 --no-original-work --threads 8 2>&1 | tee "$out/model_step.txt" || status=1
timeout 210 "$python" bench/track_fps.py --device cuda --modes original-work,exact-unfused,exact,fast --frames 70 \
  --rounds 3 --threads 8 2>&1 | tee "$out/track_fps.txt" || status=1
exit "$status"

# shellcheck shell=bash
# Shared by test/train_performance_1p.sh, test/train_performance_8p.sh and test/train_full_8p.sh (Ascend ModelZoo
# style training scripts): option parsing, device-dependent defaults, the built-in-data fallback, the torchrun launch,
# the evaluation of the full run and the summary file. The calling script sets SCRIPT_NAME, SCRIPT_PURPOSE,
# RUN_KIND (perf | full), DEFAULT_NPROC, CPU_BATCH, CPU_STEPS and CPU_EPOCHS, then calls siammask_main "$@".
#
# Environment overrides (the tests use them to stay out of the working tree):
#   SIAMMASK_OUTPUT_ROOT   parent of <id>/ (default: test/output)
#   SIAMMASK_SAVE_ROOT     parent of the checkpoint folders (default: output)
#   SIAMMASK_BUILTIN_DATA  the built-in data root (default: data/synthetic)

siammask_usage() {
    cat <<EOF
usage: bash test/${SCRIPT_NAME} [--data_path=DIR] [--device=auto|npu|cuda|cpu] [--batch_size=N] [--num_steps=N]
       [--epochs=N] [--nproc=N] [--nnodes=N] [--node_rank=N] [--master_addr=HOST] [--master_port=PORT]
       [--config=FILE] [--workers=N] [--seed=N] [--amp | --no_amp]

${SCRIPT_PURPOSE}

  --data_path=DIR  data root holding the config's datasets (default: data). When they are missing there, the run
                   trains on the built-in synthetic data (generated into data/synthetic when absent) and says so.
  --device=D       auto (NPU, else CUDA, else CPU), npu, cuda or cpu (default: auto)
  --batch_size=N   batch per process (default: 64 on NPU/CUDA, ${CPU_BATCH} on CPU)
  --num_steps=N    iterations to run, performance scripts only (default: 2000 on NPU/CUDA, ${CPU_STEPS} on CPU)
  --epochs=N       epochs of the lr schedule, and of the run for train_full (default: 20; CPU: ${CPU_EPOCHS})
  --nproc=N        processes on this node, launched with torchrun when more than one process runs in all
                   (default: ${DEFAULT_NPROC}); CPU processes use gloo; the lrs are multiplied by the world size (--P)
  --nnodes, --node_rank, --master_addr, --master_port
                   passed to torchrun for multi-node runs (defaults 1, 0, 127.0.0.1, 18888)
  --config=FILE    experiment config (default: experiments/siammask_base_ascend/config.json)
  --workers=N      DataLoader workers per process (default: CPU cores / nproc, at most 16; 2 on CPU)
  --seed=N         seed (default: 12345)
  --amp, --no_amp  mixed precision (fp16 on NPU/CUDA, bf16 on CPU) or not (default: on for NPU with a static loss
                   scale of 128, as the Ascend port's apex O1; off on CUDA and CPU)

Outputs: test/output/<ASCEND_DEVICE_ID or 0>/ (recreated by each run): training log, losses, <CaseName>.log summary.
Checkpoints: output/<CaseName>_<date>/ (a new folder per run). Run from the repository root or from test/.
EOF
}

siammask_die() {
    echo "error: $*" >&2
    exit 1
}

siammask_parse_args() {
    DATA_PATH=data DEVICE=auto BATCH='' NUM_STEPS='' EPOCHS='' NPROC="$DEFAULT_NPROC" NNODES=1 NODE_RANK=0
    MASTER_ADDR_OPT='' MASTER_PORT_OPT='' CONFIG=experiments/siammask_base_ascend/config.json WORKERS='' SEED=12345
    AMP_MODE=auto
    local arg
    for arg in "$@"; do
        case "$arg" in
            --data_path=*) DATA_PATH="${arg#*=}" ;;
            --device=*) DEVICE="${arg#*=}" ;;
            --batch_size=*) BATCH="${arg#*=}" ;;
            --num_steps=*) NUM_STEPS="${arg#*=}" ;;
            --epochs=*) EPOCHS="${arg#*=}" ;;
            --nproc=*) NPROC="${arg#*=}" ;;
            --nnodes=*) NNODES="${arg#*=}" ;;
            --node_rank=*) NODE_RANK="${arg#*=}" ;;
            --master_addr=*) MASTER_ADDR_OPT="${arg#*=}" ;;
            --master_port=*) MASTER_PORT_OPT="${arg#*=}" ;;
            --config=*) CONFIG="${arg#*=}" ;;
            --workers=*) WORKERS="${arg#*=}" ;;
            --seed=*) SEED="${arg#*=}" ;;
            --amp) AMP_MODE=on ;;
            --no_amp) AMP_MODE=off ;;
            --more_path1=*) ;;  # Ascend platform option; nothing to copy here
            -h | --help) siammask_usage; exit 0 ;;
            *) siammask_usage >&2; siammask_die "unknown option '$arg'" ;;
        esac
    done
    local name value
    for name in BATCH NUM_STEPS EPOCHS NPROC NNODES NODE_RANK WORKERS SEED MASTER_PORT_OPT; do
        value="${!name}"
        [[ -z "$value" || "$value" =~ ^[0-9]+$ ]] || siammask_die "${name,,}=$value is not a whole number"
    done
    [ "$NPROC" -ge 1 ] && [ "$NNODES" -ge 1 ] || siammask_die "--nproc and --nnodes must be at least 1"
}

# The device, its defaults, threads. Sources test/env_npu.sh where CANN is installed.
siammask_setup_device() {
    case "$DEVICE" in auto | npu | cuda | cpu) ;; *) siammask_die "--device must be auto, npu, cuda or cpu" ;; esac
    if [ "$DEVICE" != cpu ] && [ "$DEVICE" != cuda ] \
        && { [ -f /etc/Ascend/ascend_cann_install.info ] || [ -d /usr/local/Ascend ]; }; then
        # shellcheck source=env_npu.sh
        source test/env_npu.sh
    fi
    DEVICE_TYPE="$("$PYTHON" -c "import sys; from siammask.utils.runtime import resolve_device_type as r; print(r(sys.argv[1]))" \
        "$DEVICE")" || siammask_die "device '$DEVICE' is not available"
    local cores
    cores="$(nproc 2>/dev/null || echo 1)"
    WORLD=$((NPROC * NNODES))
    if [ "$DEVICE_TYPE" = cpu ]; then
        : "${BATCH:=$CPU_BATCH}" "${NUM_STEPS:=$CPU_STEPS}" "${EPOCHS:=$CPU_EPOCHS}"
        local threads=$((cores / NPROC))
        export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$((threads > 0 ? threads : 1))}"
        : "${WORKERS:=$((threads > 2 ? 2 : (threads > 0 ? threads : 1)))}"
    else
        : "${BATCH:=64}" "${NUM_STEPS:=2000}" "${EPOCHS:=20}"
        export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
        local per=$((cores / NPROC))
        : "${WORKERS:=$((per > 16 ? 16 : (per > 0 ? per : 1)))}"
    fi
    [ "$BATCH" -ge 1 ] || siammask_die "--batch_size must be at least 1"
    AMP=()
    if [ "$AMP_MODE" = on ]; then
        AMP=(--amp)
    elif [ "$AMP_MODE" = auto ] && [ "$DEVICE_TYPE" = npu ]; then
        AMP=(--amp --loss-scale 128)
    fi
}

# Use the config's datasets under --data_path, or fall back to the built-in data (and say so).
siammask_setup_data() {
    local missing
    missing="$("$PYTHON" - "$CONFIG" "$DATA_PATH" <<'PYEOF'
import os
import sys

from siammask.datasets.sub_dataset import resolve_path
from siammask.utils.config import load_config

cfg = load_config(sys.argv[1])
subsets = cfg.train_datasets.datasets if cfg.train_datasets else {}
missing = [name for name, d in subsets.items()
           if not (os.path.isdir(resolve_path(d.root, sys.argv[2])) and os.path.isfile(resolve_path(d.anno, sys.argv[2])))]
print(" ".join(missing) if subsets else "train_datasets")
PYEOF
)" || siammask_die "cannot read the config $CONFIG"
    DATA_ROOT="$DATA_PATH"
    USING_BUILTIN=0
    if [ -n "$missing" ]; then
        echo "[${SCRIPT_NAME}] no training data for $CONFIG under '$DATA_PATH' (missing: $missing)."
        echo "[${SCRIPT_NAME}] training on the BUILT-IN SYNTHETIC data instead (experiments/siammask_synthetic);" \
             "its losses and speed are not those of the real recipe."
        CONFIG=experiments/siammask_synthetic/config.json
        DATA_ROOT="${SIAMMASK_BUILTIN_DATA:-data/synthetic}"
        USING_BUILTIN=1
        if [ ! -f "$DATA_ROOT/builtin.json" ]; then
            echo "[${SCRIPT_NAME}] generating the built-in data into $DATA_ROOT (once, seconds)"
            "$PYTHON" tools/make_synthetic_data.py --out "$DATA_ROOT" --size quick --no-progress
        fi
    fi
}

siammask_launch() {  # args: training flags. Console output (only rank 0 logs INFO) is also written to $TRAIN_LOG.
    local tool=tools/train_siammask.py
    if [ "$WORLD" -eq 1 ]; then
        "$PYTHON" -u "$tool" "$@" 2>&1 | tee "$TRAIN_LOG"
    else
        local rdzv=(--nnodes="$NNODES" --node_rank="$NODE_RANK")
        if [ "$NNODES" -eq 1 ] && [ -z "$MASTER_ADDR_OPT$MASTER_PORT_OPT" ]; then
            rdzv=(--standalone)  # a free port on this machine
        else
            rdzv+=(--master_addr="${MASTER_ADDR_OPT:-127.0.0.1}" --master_port="${MASTER_PORT_OPT:-18888}")
        fi
        "$PYTHON" -u -m torch.distributed.run --nproc_per_node="$NPROC" "${rdzv[@]}" "$tool" "$@" 2>&1 \
            | tee "$TRAIN_LOG"
    fi
}

siammask_number() {  # what value: stop unless value is a number
    [[ "$2" =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]] || siammask_die "could not read $1 from $TRAIN_LOG (got '$2')"
}

# Track the VOT2018 benchmark with every epoch checkpoint (one after the other), evaluate, keep the best EAO.
siammask_evaluate() {
    BEST_EAO='' BEST_EPOCH=''
    [ "$NODE_RANK" = 0 ] || return 0
    local vot_root="$DATA_PATH"
    if [ ! -f "$vot_root/VOT2018.json" ] && [ ! -f "$vot_root/VOT2018/VOT2018.json" ]; then
        vot_root="${SIAMMASK_BUILTIN_DATA:-data/synthetic}"
        echo "[${SCRIPT_NAME}] no VOT2018 under '$DATA_PATH': evaluating on the BUILT-IN synthetic VOT set ($vot_root)"
        if [ ! -f "$vot_root/builtin.json" ]; then
            "$PYTHON" tools/make_synthetic_data.py --out "$vot_root" --size quick --no-progress
        fi
    fi
    local results="$OUT_DIR/results" ckpt epoch found=0
    while IFS= read -r ckpt; do
        found=1
        epoch="$(basename "$ckpt" .pth)"
        epoch="${epoch#checkpoint_e}"
        echo "[${SCRIPT_NAME}] VOT2018 with the epoch-$epoch checkpoint $ckpt"
        "$PYTHON" -u tools/test.py --config "$CONFIG" --resume "$ckpt" --mask --dataset VOT2018 \
            --data-root "$vot_root" --result-dir "$results" --tracker-name "SiamMask_e${epoch}" \
            --device "$DEVICE_TYPE" 2>&1 | tee -a "$OUT_DIR/test_VOT2018.log"
    done < <(find "$SAVE_DIR" -maxdepth 1 -name 'checkpoint_e*.pth' | sort -V)
    [ "$found" = 1 ] || siammask_die "no epoch checkpoint in $SAVE_DIR to evaluate"
    "$PYTHON" tools/eval.py --dataset VOT2018 --data-root "$vot_root" --result_dir "$results/VOT2018" \
        --tracker_prefix SiamMask_e --num "$WORKERS" --json "$OUT_DIR/eval_VOT2018.json" 2>&1 \
        | tee "$OUT_DIR/eval_test_VOT2018.log"
    read -r BEST_EAO BEST_EPOCH < <("$PYTHON" - "$OUT_DIR/eval_VOT2018.json" <<'EOF'
import json
import math
import sys

evals = json.load(open(sys.argv[1]))
eao = {name: (v["eao"] if v["eao"] is not None else math.nan) for name, v in evals.items()}
valid = {name: value for name, value in eao.items() if not math.isnan(value)}
if valid:
    name = max(valid, key=valid.get)
else:  # every video is shorter than the EAO interval: rank by accuracy, report the EAO as nan
    name = max(evals, key=lambda n: evals[n]["accuracy"] or 0.0)
print(f"{eao[name]:.4f} {name[len('SiamMask_e'):]}")
EOF
)
    if [ "$BEST_EAO" = nan ]; then
        echo "[${SCRIPT_NAME}] WARNING: EAO is undefined (nan): the VOT2018 videos in $vot_root are all shorter than" \
             "the EAO interval [100, 356]; BestEpoch is the most accurate checkpoint" >&2
    else
        siammask_number "the best EAO" "$BEST_EAO"
    fi
    echo "Best EAO (VOT2018) : $BEST_EAO at epoch $BEST_EPOCH"
}

siammask_summary() {  # arg: end-to-end seconds
    local e2e="$1" speed fps loss_file actual_loss accuracy=''
    # seconds per iteration: the running average on the last Progress line (warm-up iterations excluded)
    speed="$(grep -a "Progress: " "$TRAIN_LOG" | tail -n 1 | sed -n 's/.*Speed: \([0-9.][0-9.]*\) s\/iter.*/\1/p')"
    siammask_number "the speed (last 'Progress:' line)" "$speed"
    fps="$(awk -v b="$BATCH" -v w="$WORLD" -v t="$speed" 'BEGIN { if (t > 0) printf "%.2f", b * w / t }')"
    siammask_number "the throughput (speed 0?)" "$fps"
    loss_file="$OUT_DIR/train_${CASE_NAME}_loss.txt"
    grep -a "siammask_loss: " "$TRAIN_LOG" | sed 's/.*siammask_loss: \([^ ]*\) .*/\1/' > "$loss_file" || true
    actual_loss="$(tail -n 1 "$loss_file")"
    siammask_number "the loss ('siammask_loss:')" "$actual_loss"
    if [ "$RUN_KIND" = full ]; then
        # mean loss of the last epoch from its epoch-end line (a loss, named TrainAccuracy as in the Ascend scripts)
        accuracy="$(grep -a "done.*siammask_loss (mean): " "$TRAIN_LOG" | tail -n 1 \
            | sed -n 's/.*siammask_loss (mean): \([^[:space:]]*\).*/\1/p')"
        siammask_number "the last epoch's mean loss" "$accuracy"
    fi
    echo "Final Performance images/sec : $fps"
    if [ -n "$accuracy" ]; then echo "Final Train Accuracy (mean loss of the last epoch) : $accuracy"; fi
    echo "E2E Training Duration sec : $e2e"
    {
        echo "Network = SiamMask_for_Pytorch"
        echo "RankSize = $WORLD"
        echo "BatchSize = $BATCH"
        echo "DeviceType = $(uname -m)"
        echo "CaseName = $CASE_NAME"
        echo "ActualFPS = $fps"
        echo "TrainingTime = $(awk -v t="$speed" 'BEGIN { printf "%.3f", t }')"
        if [ -n "$accuracy" ]; then echo "TrainAccuracy = $accuracy"; fi
        echo "ActualLoss = $actual_loss"
        echo "E2ETrainingTime = $e2e"
        if [ "$RUN_KIND" = full ]; then
            echo "BestEAO = $BEST_EAO"
            echo "BestEpoch = $BEST_EPOCH"
        fi
    } > "$OUT_DIR/${CASE_NAME}.log"
    local note=''
    if [ "$USING_BUILTIN" = 1 ]; then note=' (trained on the built-in synthetic data)'; fi
    echo "[${SCRIPT_NAME}] summary: $OUT_DIR/${CASE_NAME}.log${note}"
}

siammask_main() {
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    siammask_parse_args "$@"
    # shellcheck source=python_env.sh
    source test/python_env.sh
    siammask_setup_device
    siammask_setup_data
    local start_time end_time kind=perf
    start_time="$(date +%s)"
    export ASCEND_DEVICE_ID="${ASCEND_DEVICE_ID:-0}" RANK_ID="${RANK_ID:-0}"
    OUT_DIR="${SIAMMASK_OUTPUT_ROOT:-test/output}/${ASCEND_DEVICE_ID}"
    rm -rf "$OUT_DIR"
    mkdir -p "$OUT_DIR"
    if [ "$RUN_KIND" = full ]; then kind=acc; fi
    CASE_NAME="SiamMask_for_Pytorch_bs${BATCH}_${WORLD}p_${kind}"
    SAVE_DIR="${SIAMMASK_SAVE_ROOT:-output}/${CASE_NAME}_$(date +%Y%m%d-%H%M%S)"
    TRAIN_LOG="$OUT_DIR/train_${ASCEND_DEVICE_ID}_${WORLD}p.log"
    if [ "$RUN_KIND" = perf ]; then TRAIN_LOG="$OUT_DIR/train_${ASCEND_DEVICE_ID}_${WORLD}p_perf.log"; fi
    echo "[${SCRIPT_NAME}] device $DEVICE_TYPE, $WORLD process(es), batch $BATCH per process, config $CONFIG," \
         "data root $DATA_ROOT, checkpoints $SAVE_DIR, log $TRAIN_LOG"
    local args=(--config "$CONFIG" --data-root "$DATA_ROOT" --device "$DEVICE_TYPE" --workers "$WORKERS"
                --batch "$BATCH" --epochs "$EPOCHS" --P "$WORLD" --seed "$SEED" --save_dir "$SAVE_DIR"
                -l "" --log-dir "$OUT_DIR/board" "${AMP[@]}")  # -l: torchrun refuses an ambiguous --log
    if [ "$RUN_KIND" = perf ]; then
        args+=(--num-steps "$NUM_STEPS" --print-freq 1)
    else
        args+=(--print-freq 20)
    fi
    siammask_launch "${args[@]}"
    if [ "$RUN_KIND" = full ]; then siammask_evaluate; fi
    end_time="$(date +%s)"
    if [ "$NODE_RANK" != 0 ]; then
        echo "[${SCRIPT_NAME}] node $NODE_RANK done; node 0 writes the summary"
        return 0
    fi
    siammask_summary "$((end_time - start_time))"
}

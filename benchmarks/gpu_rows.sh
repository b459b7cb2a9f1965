#!/usr/bin/env bash
# The GPU rows of RESULTS.md in one run sized for a short lease (580 s of row limits in all, inside one 600 s command): forecasts
# against the reference in fp32, bf16, bf16 autocast and after compile_for_inference; the training steps in fp32 and
# under bf16 autocast; the Best-of-Many step's peak CUDA memory at K = 1 and 256; latent sampling and select-then-decode at ViT-B sizes. Every row is one of the CPU scripts,
# unchanged, with --device; each has its own time limit, so one that overruns does not cost the others.
#
#   benchmarks/gpu_rows.sh [DEVICE] [COPY_TO]
#     DEVICE   cuda (default) or cpu: the same rows on the CPU, to check the script itself
#     COPY_TO  also copy each row's results/gpu_*.json (and the log) there as soon as it is written ($OUT by default)
#   QUICK=1 benchmarks/gpu_rows.sh cpu      every row at toy sizes (tiny preset, 32-64 px), files named quick_* (not
#                                           kept in git): about 4 minutes on 2 cores
#
# The package is imported from ../src (no install needed); PYTHON picks the interpreter (default python3).
set -uo pipefail
DEVICE=${1:-cuda}
COPY_TO=${2:-${OUT:-}}
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")"
export PYTHONPATH="$(cd .. && pwd)/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PREFIX=${QUICK:+quick_}gpu
mkdir -p results
LOG=results/${PREFIX}_rows.log
: >"$LOG"
failed=0

copy_back() {
    [ -n "$COPY_TO" ] && mkdir -p "$COPY_TO" && cp results/"$PREFIX"_*.json "$LOG" "$COPY_TO"/ 2>/dev/null
    return 0
}

row() {  # row NAME SECONDS SCRIPT ARGS...: one script under its own limit, results in results/$PREFIX_NAME.json
    local name=$1 limit=$2
    shift 2
    echo "== $name ($limit s): $*" | tee -a "$LOG"
    local started=$SECONDS
    timeout --signal=INT --kill-after=20 "$limit" "$PYTHON" "$@" --device "$DEVICE" --output "${PREFIX}_$name" 2>&1 | tee -a "$LOG"
    local status=${PIPESTATUS[0]}
    echo "== $name: exit $status after $((SECONDS - started)) s" | tee -a "$LOG"
    [ "$status" = 0 ] || failed=1
    copy_back
}

"$PYTHON" - <<'EOF' 2>&1 | tee -a "$LOG"
import platform, torch, transformers, diffusers
print("python", platform.python_version(), "torch", torch.__version__, "transformers", transformers.__version__,
      "diffusers", diffusers.__version__)
print("cuda", torch.cuda.get_device_name() if torch.cuda.is_available() else "not available")
EOF

if [ -n "${QUICK:-}" ]; then
    row inference 300 bench_inference.py --preset tiny --sizes 64 --batch-sizes 1 2 --repeats 1 --autocast --reference-bf16
    row inference_compiled 300 bench_inference.py --preset tiny --sizes 64 --batch-sizes 2 --repeats 1 --compile
    row training 300 bench_training.py --size 32 --candidates 4 16 --steps 1
    row training_bf16 300 bench_training.py --size 32 --candidates 4 --steps 1 --bf16
    row select_then_decode 300 bench_select_then_decode.py --rows latent vitb_latent vitb_select --num-clips 2 \
        --latent-samples 100 --repeats 1 --vitb-size 32 --vitb-repeats 1
    row memory 300 bench_memory.py --candidates 1 4 --batch-size 2 --num-frames 3
else
    # Compilation is per shape (tens of seconds each on a GPU), so it gets one shape and a row of its own.
    row inference 170 bench_inference.py --sizes 256 512 --batch-sizes 1 8 --repeats 3 --autocast --reference-bf16
    row inference_compiled 140 bench_inference.py --sizes 256 --batch-sizes 8 --repeats 3 --compile
    row training 80 bench_training.py --candidates 16 64 256 --batch-size 8
    row training_bf16 60 bench_training.py --candidates 16 64 256 --batch-size 8 --bf16
    row select_then_decode 80 bench_select_then_decode.py --rows latent vitb_latent vitb_select --vitb-repeats 3
    row memory 50 bench_memory.py --candidates 1 256
fi
exit $failed

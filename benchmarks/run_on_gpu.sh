#!/usr/bin/env bash
# One GPU session's checks, as one command: the CUDA-only tests, then bench_render's quality and turbo rows.
#
#   bash benchmarks/run_on_gpu.sh OUTDIR [BUDGET_S]
#
# For a machine without the project's install (a lent GPU box): wheels in .whl/ (diffusers, kornia, imageio-ffmpeg,
# built for that machine's Python) are installed to /tmp/site first. Results: OUTDIR/bench.jsonl (one JSON line per
# configuration), OUTDIR/bench.txt (the table), OUTDIR/tests.txt.
set -u
OUT=${1:-/tmp/animator-gpu}
BUDGET=${2:-330}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, diffusers, transformers, kornia, cv2; print('torch', torch.__version__, 'diffusers', \
diffusers.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"

# CUDA-only tests (skipped on CPU CI): fp16 img2img, warp, colour, flow, depth, compiled renders.
timeout 240 python3 -m pytest -q -p no:cacheprovider -x -k "cuda or fp16 or CUDA" \
    tests/test_render_speed.py tests/geometry/test_warp3d.py tests/test_color.py \
    tests/backends/flow/test_flow_estimators.py tests/backends/depth/test_depth_transformers.py \
    tests/backends/denoise/test_denoise_img2img.py 2>&1 | tail -25 | tee "$OUT/tests.txt"

# Turbo first (the 60 fps target), then quality; 768 only while the budget lasts.
timeout $((BUDGET + 240)) python3 benchmarks/bench_render.py --configs turbo,quality --sizes 512,768 \
    --frames 24 --warmup 4 --naive-frames 6 --floor-repeats 5 --keep-going --time-budget-s "$BUDGET" \
    2> >(grep -v Warning | tail -60 > "$OUT/bench.log") | tee "$OUT/bench.txt"
grep '^{' "$OUT/bench.txt" > "$OUT/bench.jsonl"

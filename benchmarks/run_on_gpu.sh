#!/usr/bin/env bash
# One GPU session's checks, as one command: bench_render's quality and turbo rows, then the CUDA-only tests.
#
#   bash benchmarks/run_on_gpu.sh OUTDIR [BUDGET_S]
#
# For a machine without the project's install (a lent GPU box): wheels in .whl/ (diffusers, kornia, kornia_rs,
# imageio-ffmpeg, qoi, importlib_metadata, built for that machine's Python 3.12; `bash benchmarks/fetch_gpu_wheels.sh`
# puts them there) are installed to /tmp/site first. Results: OUTDIR/bench.jsonl (one JSON line per
# configuration), OUTDIR/bench.txt (the tables: bench_upsample's, bench_render's, analyze_trace's), OUTDIR/tests.txt. Environment: RUNS, END_S, SKIP_TESTS, UPSAMPLE, RUN_TIMEOUT, BENCH_ARGS, FRAMES (see below),
# TRACES=1: also a profiler trace per configuration, OUTDIR/trace-CONFIG-SIZE.json.gz (the device tool returns at most
# 8 files: with TRACES, at most 3 RUNS per call).
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
# everything a render imports that a bare GPU image may lack (qoi: the resume journal; imageio_ffmpeg: the encoder)
python3 -c "import torch, diffusers, transformers, kornia, cv2, qoi, imageio_ffmpeg; print('torch', torch.__version__, \
'diffusers', diffusers.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" \
    2>&1 | tee -a "$OUT/gpu.txt"

# UPSAMPLE=1: sub-pixel upsampling against diffusers' layers, eager fp16 (each layer, the VAE decoder, one UNet eval),
# also with cudnn.benchmark on: ~60 s with building the model twice. Measured on an H200 in session 9 (README), so
# off by default: a lease's minutes go to the render rows.
if [ -n "${UPSAMPLE:-}" ]; then
    timeout 120 python3 benchmarks/bench_upsample.py --devices cuda --cudnn-benchmark 2>> "$OUT/bench.log" \
        | tee -a "$OUT/bench.txt" | grep '^|'
fi

# RUNS: configuration:size pairs, in order (quality: 25 steps at CFG 7 with Deforum's image feedback; quality-latent:
# the same with latent feedback; turbo: one UNet evaluation, the 60 fps target). The default starts with the 768
# rows, which no GPU session has measured yet (every 512 target was met on an H200 in session 9); the open A/Bs are
# BENCH_ARGS="--subpixel-upsample off" and BENCH_ARGS="--compile none" (eager: what a render without --compile costs)
# on quality:512. A pair starts only while fewer than BUDGET seconds have passed since the script started; each is
# its own process (fresh memory; TorchInductor's on-disk cache lets a later row of the same models and size skip
# most of its compile), the model folders are built once. Seen on an H200 (session 2): a 512 pair took ~130 s,
# mostly compiling; quality at 768 over 200 s. On an H100 (session 6, the regions compiled too): turbo:512 and
# quality:512 ~180 s each, the CUDA tests ~100 s, pip and the GPU's start ~30 s: one 600 s call holds two 512 rows
# and the tests. On an H200 (session 9): bench_upsample plus quality-latent:512 ~330 s, then quality:512 in a second
# call on the warm machine 105 s (the cache), turbo:512 200 s (its own compile), the CUDA tests 104 s.
# BENCH_ARGS: more bench_render options for every row (an A/B: BENCH_ARGS="--cudnn-benchmark on").
# FRAMES (default 96) timed frames per row: the headline ms/frame counts until the video is finished, so x264's
# end-of-run flush (~108 ms on the H100 in session 6, 2% of a 48-frame quality row) is spread over more frames; a
# quality row's 96 frames take ~12 s.
: > "$OUT/bench.jsonl"
for run in ${RUNS:-quality:768 turbo:768 quality:512 turbo:512 quality-latent:512 turbo-latent-small-depth:512 turbo-small-depth:512 turbo-latent:512}; do
    if (( SECONDS > BUDGET )); then
        echo "{\"config\": \"${run%%:*}\", \"size\": \"${run##*:}\", \"skipped\": \"budget of ${BUDGET} s spent\"}" \
            | tee -a "$OUT/bench.jsonl"
        continue
    fi
    timeout "${RUN_TIMEOUT:-400}" python3 benchmarks/bench_render.py --configs "${run%%:*}" --sizes "${run##*:}" \
        --frames "${FRAMES:-96}" --warmup 4 --naive-frames 6 --floor-repeats 5 --keep-going --models-dir /tmp/animator-models \
        ${TRACES:+--trace-dir "$OUT"} ${BENCH_ARGS:-} \
        2> >(grep -v Warning | tail -40 >> "$OUT/bench.log") | tee -a "$OUT/bench.txt"
    grep '^{' "$OUT/bench.txt" | tail -1 >> "$OUT/bench.jsonl"
    trace="$OUT/trace-${run%%:*}-${run##*:}.json.gz"
    if [ -n "${TRACES:-}" ] && [ -f "$trace" ]; then  # the GPU time per stage and model, read here
        python3 benchmarks/analyze_trace.py "$trace" --frames 4 2>&1 | tee -a "$OUT/bench.txt"
    fi
done

# CUDA-only tests (skipped on CPU CI): fp16 img2img, warp, colour, flow, depth, compiled renders. They run after the
# benchmarks (the figures are what a short lease is for), in the time left until END_S seconds after the start
# (default 560: a 600 s device call). SKIP_TESTS=1 leaves them out.
if [ -z "${SKIP_TESTS:-}" ]; then
    left=$(( ${END_S:-560} - SECONDS ))
    if (( left > 30 )); then
        timeout "$left" python3 -m pytest -q -p no:cacheprovider -p no:logging --tb=short -k "cuda or fp16" \
            tests/geometry/test_warp3d.py tests/geometry/test_resample.py tests/test_color.py \
            tests/backends/flow/test_flow_estimators.py tests/backends/depth/test_depth_transformers.py \
            tests/backends/denoise/test_denoise_img2img.py tests/backends/test_subpixel.py tests/test_render_speed.py tests/test_render_latent.py \
            > "$OUT/tests.txt" 2>&1
        grep -E "passed|failed|Error|assert" "$OUT/tests.txt" | tail -15
    else
        echo "CUDA tests skipped: ${left} s left before END_S" | tee "$OUT/tests.txt"
    fi
fi

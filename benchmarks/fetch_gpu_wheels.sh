#!/usr/bin/env bash
# Wheels a lent GPU machine lacks, into .whl/ (git-ignored), for benchmarks/run_on_gpu.sh to install there.
#
#   bash benchmarks/fetch_gpu_wheels.sh          # here, before the device call (that machine has no internet)
#
# The lent machines (seen in sessions 2 and 6) have Python 3.12, torch with CUDA, transformers and numpy, but not
# diffusers, kornia, qoi or imageio-ffmpeg; a fresh checkout of this project has no .whl/, so every GPU session runs
# this once, then calls the device with carry [".whl"]. Versions are the ones the CPU install resolves, except
# imageio-ffmpeg: 0.5.1 bundles an ffmpeg of 27 MB where 0.8.1's is 68 MB, and what travels to the machine (the
# working tree plus carried paths) may be 64 MiB at most (42 MB of wheels with 0.5.1).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python3 -m pip download -q --dest .whl --no-deps --only-binary=:all: \
    --python-version 3.12 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --platform any \
    "diffusers==0.42.1" "kornia==0.9.0" kornia_rs qoi "imageio_ffmpeg==0.5.1" importlib_metadata
ls -la .whl
du -sh .whl

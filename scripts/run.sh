#!/usr/bin/env bash
# The main job: `scripts/run.sh render keyframes/demo.yaml -o demo.mp4` sets up .venv on first use and runs animator.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
exec "$root/scripts/venv.sh" animator "$@"

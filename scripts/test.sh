#!/usr/bin/env bash
# Installs animator with its test extras into .venv (first run only), checks format and lint (ruff), and runs the
# whole test suite.
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/geometry -x`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
# Format and lint first: a lint error fails the run like a failing test.
"$root/scripts/venv.sh" --extras test ruff format --check --quiet .
"$root/scripts/venv.sh" --extras test ruff check --quiet .
exec "$root/scripts/venv.sh" --extras test python -m pytest -n "${ANIMATOR_TEST_WORKERS:-2}" "$@"

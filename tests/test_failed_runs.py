"""A failed rl.train / rl.evaluate is accounted for: one error line on the console and at the end of the run
dir's log; a run that failed before doing any work leaves no run dir behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, "+exp=english_only", "model=nano", "logging=none", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600)  # fmt: skip


@pytest.mark.parametrize(
    "module,args,message",
    [
        ("rl.train", ("data.path=/nonexistent/pika.jsonl",), "error: data.path: no such file, got '/nonexistent/pika.jsonl'"),
        ("rl.evaluate", ("adapter=/nonexistent/adapter", "evaluate.n=8"), "error: adapter: no such folder, got '/nonexistent/adapter'"),
    ],
)
def test_a_run_that_fails_before_any_work_leaves_no_run_dir(nano, tmp_path, module, args, message):
    run_dir = tmp_path / "runs" / "2026-12-03_15-00-00"
    done = run(module, *args, f"hydra.run.dir={run_dir}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(message)
    assert not run_dir.exists()  # the config check comes before Hydra makes any run dir


def test_a_run_that_fails_after_training_keeps_its_dir_and_its_log_says_why(nano, tmp_path):
    """One step, no evaluation, publish on: the gate refuses an adapter nobody evaluated (exit 1)."""
    run_dir = tmp_path / "run"
    done = run("rl.train", "trainer.max_steps=1", "trainer.save_steps=1", "evaluate.enabled=false",
               "publish.enabled=true", f"serving.dir={tmp_path / 'serving'}", f"hydra.run.dir={run_dir}")  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: refusing to publish {run_dir / 'adapter'}: no evaluation of this adapter")
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()  # the trained adapter is kept
    log_lines = (run_dir / "train.log").read_text().strip().splitlines()
    assert log_lines[-1].endswith(error)  # the run dir says how the run ended
    assert not (tmp_path / "serving").exists() or not list((tmp_path / "serving").glob(".versions/*/v*"))


def test_a_wandb_mode_typo_stops_the_run_before_any_work(nano, tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "ofline"}
    done = subprocess.run([sys.executable, "-m", "rl.train", "+exp=english_only", "model=nano", f"hydra.run.dir={run_dir}"],
                          cwd=REPO, capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: WANDB_MODE: expected online, offline or disabled, got 'ofline'"
    )
    assert not run_dir.exists()

"""The prepared GPU check (bench/gpu_check.py) exercised on a CPU: the driver, its child processes, the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.gpu_check import PHASES, Phase, Result, markdown, run_child, skip_reason

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_cpu_mode_runs_the_nano_phase_and_skips_the_gpu_only_ones(nano, tmp_path):
    result = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--cpu", "--steps", "2", "--out", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    by_phase = {r["phase"]: r for r in report["results"]}
    assert list(by_phase) == [p.name for p in PHASES]
    hf = by_phase["hf"]
    assert hf["status"] == "passed" and hf["steps"] == 2 and hf["step_s"] > 0 and hf["error"] == ""
    assert set(hf["before"]) == set(hf["after"]) == {"reward_mean", "english_rate"}
    assert hf["peak_gib"] is None  # no GPU
    assert all(by_phase[p]["status"] == "skipped" for p in ("vllm_colocate", "unsloth"))
    table = (tmp_path / "gpu_check.md").read_text()
    assert table.startswith("GPU check on CPU") and "| hf | passed | 2 |" in table


def test_a_phase_that_dies_is_a_failed_row_not_a_crash():
    result = run_child(Phase("no_such_phase", [], None, 1.0, 60), steps=2, cpu=True, timeout_s=60)
    assert result.status == "failed" and "without a result" in result.error and "StopIteration" in result.error


def test_phases_skip_when_their_package_is_missing():
    vllm_phase = next(p for p in PHASES if p.name == "vllm_colocate")
    assert skip_reason(vllm_phase, cpu=True) == "--cpu: GPU-only phase"
    assert skip_reason(vllm_phase, cpu=False) == "vllm not installed"  # the CPU venv never has vLLM
    assert skip_reason(PHASES[0], cpu=False) is None


def test_table_shows_what_ran():
    results = [
        Result("hf", "passed", steps=40, step_s=0.213, peak_gib=1.26, before={"reward_mean": 1.6, "english_rate": 0.55},
               after={"reward_mean": 2.4, "english_rate": 0.9}, wall_s=71),
        Result("vllm_colocate", "failed", wall_s=240, error="no result within 240s"),
        Result("unsloth", "skipped", error="unsloth not installed"),
    ]  # fmt: skip
    lines = markdown(results, "NVIDIA H200").splitlines()
    assert lines[4] == "| hf | passed | 40 | 0.21 s | 1.3 GiB | 1.60 -> 2.40 | 0.55 -> 0.90 | 71 s |  |"
    assert lines[5] == "| vllm_colocate | failed | - | - | - | - | - | 240 s | no result within 240s |"
    assert lines[6].endswith("| unsloth not installed |")

"""The two GPU install sets in pyproject.toml: each is a whole known-good set the core bounds admit.

That each resolves on PyPI is checked on demand by scripts/check_extras.sh (network, minutes; figures in
docs/gpu.md); here: the pins agree with each other and with the rules the code enforces.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from rl.doctor.driver import EXTRA_CUDA, driver_runs, extra_for_driver, min_driver
from rl.rollout import several_gpus_problem, trl_vllm_server_problem

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
CORE = {Requirement(r).name: Requirement(r) for r in PROJECT["dependencies"]}


def pins(extra: str) -> dict[str, str]:
    reqs = [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    assert all(str(r.specifier).startswith("==") for r in reqs), "a GPU set pins exact versions"
    return {r.name.replace("_", "-"): str(r.specifier)[2:] for r in reqs}


@pytest.mark.parametrize(
    ("extra", "torch", "vllm", "trl"),
    [("gpu", "2.13.0", "0.31.0", "1.15.0"), ("gpu-cu12", "2.10.0", "0.19.1", "1.14.2")],
)
def test_each_gpu_set_is_pinned_and_admitted_by_the_core_bounds(extra, torch, vllm, trl):
    got = pins(extra)
    assert (got["torch"], got["vllm"], got["trl"]) == (torch, vllm, trl)
    for name, version in got.items():
        if name in CORE:
            assert CORE[name].specifier.contains(version), f"{extra}: {name}=={version} outside {CORE[name]}"
    # rollout=vllm_server works with each set's own TRL and vLLM
    assert trl_vllm_server_problem(trl, vllm) is None


def test_each_set_names_the_driver_it_needs():
    assert EXTRA_CUDA == {"gpu": "13.0", "gpu-cu12": "12.8"}
    assert min_driver(EXTRA_CUDA["gpu"]) == "580.65.06" and min_driver(EXTRA_CUDA["gpu-cu12"]) == "525.60.13"


@pytest.mark.parametrize(
    ("driver", "cuda", "runs"),
    [
        ("530.41.03", "12.8", True),  # the users' box ("CUDA Version: 12.1") and torch 2.10.0+cu128
        ("530.41.03", "13.0", False),  # ... and torch 2.13.0 (CUDA 13)
        ("525.60.13", "12.8", True),
        ("525.60.12", "12.8", False),
        ("580.65.06", "13.0", True),
        ("590.44.01", "12.8", True),
        ("470.256.02", "12.8", False),
        ("garbage", "12.8", None),
    ],
)
def test_driver_table(driver, cuda, runs):
    assert driver_runs(driver, cuda) is runs


@pytest.mark.parametrize(
    ("driver", "extra"), [("530.41.03", "gpu-cu12"), ("575.57.08", "gpu-cu12"), ("580.95.05", "gpu"), ("470.1", None)]
)
def test_the_extra_a_driver_runs(driver, extra):
    assert extra_for_driver(driver) == extra


@pytest.mark.parametrize(
    ("trl", "vllm", "problem"),
    [
        ("1.14.2", "0.19.1", None),
        ("1.15.0", "0.19.1", "TRL 1.15.0 needs vLLM >= 0.21"),
        ("1.16.0", "0.20.2", "TRL 1.16.0 needs vLLM >= 0.21"),
        ("1.16.0", "0.21.0", None),
        ("1.15.0", "0.31.0", None),
        ("1.16.0", None, None),  # no vLLM: check_available says so on its own
    ],
)
def test_server_mode_trl_vllm_pairs(trl, vllm, problem):
    found = trl_vllm_server_problem(trl, vllm)
    assert (found is None) if problem is None else (problem in found and "gpu-cu12" in found)


@pytest.mark.parametrize(
    ("count", "world_size", "refused"), [(0, None, False), (1, None, False), (3, None, True), (2, "2", False)]
)
def test_one_training_process_sees_one_gpu(count, world_size, refused):
    problem = several_gpus_problem(count, world_size)
    assert (problem is not None) is refused
    if refused:
        assert "CUDA_VISIBLE_DEVICES=0" in problem and "\n" not in problem
